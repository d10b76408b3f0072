"""Channel groups, masks and physical removal: masked == removed, bit for bit."""

import numpy as np
import pytest
import torch

import toolchain
from exporters import integer_model as im
from exporters.errors import ModelError
from toolchain.nn import mac_layers
from toolchain.pruning import (ActivationRecorder, channel_groups, count_parameters, kept_channels,
                               remove_channels)

from tests.test_tc_common import SHAPE, qat, simulate, synthetic_batch


def _prune_masks(model, step):
    """At step 2: random channel masks per group (>= 1 channel alive) and magnitude weight masks."""
    if step != 2:
        return
    g = torch.Generator().manual_seed(11)
    for group in channel_groups(model):
        mask = (torch.rand(group.channels, generator=g) > 0.45).float()
        mask[torch.randint(group.channels, (1,), generator=g)] = 1.0
        group.set_mask(mask)
    for _, layer in mac_layers(model):
        threshold = layer.weight.detach().abs().flatten().quantile(0.3)
        layer.weight_mask.copy_((layer.weight.detach().abs() > threshold).float())


@pytest.fixture(scope="module", params=toolchain.MODELS)
def pruned(request):
    torch.manual_seed(3)
    return qat(toolchain.build(request.param, input_shape=SHAPE), steps=5, before_step=_prune_masks)


def _kept(model, round_to):
    return {g.name: len(kept_channels(g.mask, round_to)) for g in channel_groups(model)}


def expected_parameters(name: str, k: dict) -> int:
    """Parameter count implied by the kept channel counts (independent arithmetic, 12x12 input)."""
    bn = 2  # BN scale and shift per channel; hidden layers have no conv bias
    if name == "mlp":
        a, b = k["fc1"], k["fc2"]
        return 144 * a + bn * a + a * b + bn * b + 10 * b + 10
    if name == "cnn":
        a, b = k["conv1"], k["conv2"]
        return 9 * a + bn * a + 9 * a * b + bn * b + 10 * b * 3 * 3 + 10
    if name == "resnet":
        s, a, b = k["stem"], k["block1_conv1"], k["block2_conv1"]
        stem = 9 * s + bn * s
        block = lambda c: 9 * s * c + bn * c + 9 * c * s + bn * s  # noqa: E731
        return stem + block(a) + block(b) + 10 * s + 10
    if name == "dsconv":
        a, b, c = k["stem"], k["pw1"], k["pw2"]
        return (9 * a + bn * a) + (9 * a + bn * a) + (a * b + bn * b) + (9 * b + bn * b) + (b * c + bn * c) + 10 * c + 10
    if name == "unet":  # dec reads the concatenation of enc and the upsampled mid: a + b channels
        a, b, d = k["enc"], k["mid"], k["dec"]
        return (9 * a + bn * a) + (9 * a * b + bn * b) + (9 * (a + b) * d + bn * d) + 10 * d * 6 * 6 + 10
    raise KeyError(name)


@pytest.mark.parametrize("round_to", [1, 4])
def test_masked_and_removed_models_give_identical_integers(pruned, round_to):
    x, _ = synthetic_batch(64, seed=21)
    small = remove_channels(pruned, round_to=round_to)
    masked_q = toolchain.integer_forward(pruned, x)
    removed_model = toolchain.to_integer_model(small)
    removed_q = toolchain.run_integer(removed_model, x)
    assert torch.equal(masked_q, removed_q)
    assert np.array_equal(removed_q.numpy(), simulate(removed_model, x))


@pytest.mark.parametrize("round_to", [1, 4])
def test_parameter_count_follows_kept_channels(pruned, round_to):
    kept = _kept(pruned, round_to)
    small = remove_channels(pruned, round_to=round_to)
    assert count_parameters(small) == expected_parameters(pruned.name, kept)
    assert count_parameters(small) < count_parameters(pruned)
    assert {g.name: g.channels for g in channel_groups(small)} == kept


def test_round_to_keeps_multiples(pruned):
    for group in channel_groups(remove_channels(pruned, round_to=4)):
        original = next(g for g in channel_groups(pruned) if g.name == group.name)
        assert group.channels % 4 == 0 or group.channels == original.channels
        assert group.channels >= int(original.mask.sum())


def test_kept_channels_rounds_up_with_masked_channels():
    mask = torch.tensor([0., 1., 0., 0., 1., 1., 0.])
    assert kept_channels(mask).tolist() == [1, 4, 5]
    assert kept_channels(mask, round_to=2).tolist() == [0, 1, 4, 5]
    assert kept_channels(mask, round_to=8).tolist() == list(range(7))
    assert kept_channels(torch.zeros(5), round_to=1).tolist() == [0]


def test_weight_mask_zeros_stay_zero_in_integer_weights(pruned):
    integer_model = toolchain.to_integer_model(pruned)
    for name, layer in mac_layers(pruned):
        w = integer_model.layer(name).weight
        zeros = (layer.weight_mask == 0).numpy()
        assert zeros.any() and (w[zeros] == 0).all(), name
    # and a removed model keeps them: its weight_mask was sliced with the weights
    small = remove_channels(pruned)
    small_integers = toolchain.to_integer_model(small)
    for name, layer in mac_layers(small):
        assert (small_integers.layer(name).weight[(layer.weight_mask == 0).numpy()] == 0).all()


def test_masked_channels_output_their_zero_point(pruned):
    integer_model = toolchain.to_integer_model(pruned)
    x, _ = synthetic_batch(8, seed=5)
    outs = toolchain.run_integer(integer_model, x, intermediate=True)
    for group in channel_groups(pruned):
        dead = group.mask == 0
        for name in group.outputs:
            if name in outs:  # a fused ReLU would rename it
                z = integer_model.grid(name).zero_point
                assert (outs[name][:, dead] == z).all(), name


def test_residual_and_depthwise_channels_are_coupled():
    resnet = toolchain.build("resnet", input_shape=(1, 8, 8))
    stem = next(g for g in channel_groups(resnet) if g.name == "stem")
    assert set(stem.producers) == {"stem", "block1_conv2", "block2_conv2"}
    assert {c for c, _, _ in stem.consumers} == {"block1_conv1", "block2_conv1", "head"}
    assert set(stem.outputs) >= {"block1_add", "block2_add"}
    ds = {g.name: g for g in channel_groups(toolchain.build("dsconv", input_shape=(1, 8, 8)))}
    assert ds["stem"].producers == ("stem", "dw1") and ds["pw1"].producers == ("pw1", "dw2")
    cnn = {g.name: g for g in channel_groups(toolchain.build("cnn", input_shape=(1, 8, 8)))}
    assert cnn["conv2"].consumers == (("head", 4, 0),)  # flatten: 2x2 positions per channel


def test_fixed_groups_and_inconsistent_masks_are_refused():
    net = toolchain.build("resnet", input_shape=(1, 8, 8))
    head = next(g for g in channel_groups(net, include_fixed=True) if g.name == "head")
    assert not head.prunable
    with pytest.raises(ModelError, match="head"):
        head.set_mask(torch.zeros(10))
    net.layers["block1_conv2"].channel_mask[0] = 0
    stem = next(g for g in channel_groups(net) if g.name == "stem")
    with pytest.raises(ModelError, match="different channel masks"):
        _ = stem.mask


def test_activation_recorder_sees_masked_channels_as_zero(pruned):
    groups = channel_groups(pruned)
    pruned.eval()
    with ActivationRecorder(pruned, groups) as rec, torch.no_grad():
        pruned(synthetic_batch(16, seed=6)[0])
    pruned.train()
    for group in groups:
        importance = rec.importance(group)
        assert importance.shape == (group.channels,)
        assert (importance[group.mask == 0] == 0).all()
    assert all(not m._forward_hooks for m in pruned.modules())


def test_removed_model_keeps_training(pruned):
    small = remove_channels(pruned, round_to=2)
    qat(small, steps=2, seed=4)  # shapes stay consistent for further QAT (Torch-Pruning #11, #291)
    x, _ = synthetic_batch(16, seed=4)
    integer_model = toolchain.to_integer_model(small)
    assert np.array_equal(toolchain.run_integer(integer_model, x).numpy(), simulate(integer_model, x))
    assert all(layer.out_channels % 2 == 0 for layer in integer_model if isinstance(layer, im.MacLayer)
               and layer is not integer_model.output)
