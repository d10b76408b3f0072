"""Iterative magnitude pruning with a sensitivity scan (Paupamah, James and Klein 2020)."""

import math

import numpy as np
import pytest
import torch

import toolchain
from exporters import integer_model as im
from toolchain.data import synthetic
from toolchain.methods import METHODS, MethodConfig, MethodError
from toolchain.methods.sensitivity import Sensitivity, allocate, magnitude_mask, scan
from toolchain.nn import mac_layers

SHAPE = (1, 8, 8)
DATA = synthetic(96, shape=SHAPE, seed=0)
VAL = synthetic(48, shape=SHAPE, seed=1)


def _run(model_name="cnn", sparsity=0.6, **options):
    cfg = MethodConfig(sparsity=sparsity, epochs=0.25, pretrain_epochs=0.5, batch_size=32,
                       options={"iterations": 2, "retrain_steps": 2, **options})
    model = toolchain.build(model_name, input_shape=SHAPE)
    return model, METHODS["iterative-magnitude"](cfg).run(model, DATA, VAL)


@pytest.mark.parametrize("model_name", ["cnn", "resnet", "dsconv", "mlp"])
@pytest.mark.parametrize("sparsity", [0.3, 0.8])
def test_reaches_the_target_weight_sparsity(model_name, sparsity):
    _, result = _run(model_name, sparsity)
    masks = [layer.weight_mask for _, layer in mac_layers(result.model)]
    zeros = sum(int((m == 0).sum()) for m in masks)
    total = sum(m.numel() for m in masks)
    assert zeros / total >= sparsity
    assert result.sparsity == pytest.approx(zeros / total) and result.reached
    # ratios never exceed the cap and each layer got at least its allocated share
    for name, layer in result.layers.items():
        assert layer["pruned"] >= math.floor(layer["ratio"] * layer["weights"])
        assert layer["ratio"] <= 0.95 + 1e-9


def test_pruned_weights_are_integer_zeros_in_the_exported_model():
    _, result = _run("resnet", 0.7)
    integer = toolchain.to_integer_model(result.model)
    checked = 0
    for name, layer in mac_layers(result.model):
        weights = integer.layer(name).weight
        mask = layer.weight_mask.numpy()
        assert weights.shape == mask.shape
        assert np.all(weights[mask == 0] == 0), name
        checked += int((mask == 0).sum())
    assert checked > 0
    # and the integer model really is sparse, at least as sparse as the masks say
    macs = [l for l in integer.layers if isinstance(l, (im.Conv, im.Linear))]
    zero_frac = sum(int((l.weight == 0).sum()) for l in macs) / sum(l.weight.size for l in macs)
    assert zero_frac >= result.sparsity


def test_zeros_survive_fine_tuning_and_a_checkpoint_round_trip(tmp_path):
    _, result = _run("cnn", 0.5)
    path = tmp_path / "m.pt"
    toolchain.save(result.model, path)
    loaded = toolchain.load(path)
    for (name, a), (_, b) in zip(mac_layers(result.model), mac_layers(loaded)):
        assert torch.equal(a.weight_mask, b.weight_mask)
        w, _ = b.quantized_weight()
        assert bool((w[b.weight_mask == 0] == 0).all()), name


def test_sensitivity_is_recorded_and_ratios_follow_it():
    _, result = _run("cnn", 0.5)
    sens = result.details["sensitivity"]
    assert set(sens) == {n for n, _ in mac_layers(result.model)}
    for s in sens.values():
        assert len(s["ratios"]) == len(s["drops"]) and s["ratios"] == sorted(s["ratios"])
    ratios = result.details["ratios"]
    sizes = {n: s["weights"] for n, s in sens.items()}
    mean = sum(ratios[n] * sizes[n] for n in ratios) / sum(sizes.values())
    assert mean == pytest.approx(0.5)


def test_target_above_max_ratio_is_refused():
    with pytest.raises(MethodError, match="max_ratio"):
        _run("mlp", 0.9, max_ratio=0.8)


# --- the pieces -------------------------------------------------------------------------------

def test_magnitude_mask_prunes_the_smallest_and_never_revives():
    mag = torch.tensor([[0.9, 0.05, 0.4], [0.2, 0.7, 0.01]])
    mask = magnitude_mask(mag, torch.ones(2, 3), 0.5)
    assert mask.tolist() == [[1, 0, 1], [0, 1, 0]]      # 3 smallest: 0.01, 0.05, 0.2
    prior = torch.tensor([[0.0, 1, 1], [1, 1, 1]])     # the largest was pruned earlier
    again = magnitude_mask(mag, prior, 2 / 6)
    assert again[0, 0] == 0 and int((again == 0).sum()) == 2


def test_scan_measures_each_layer_alone_and_restores_masks():
    model = toolchain.build("cnn", input_shape=SHAPE)
    model(DATA.x)                                   # batch-norm statistics
    layers = mac_layers(model)
    seen = []

    def accuracy():
        seen.append(tuple(int((l.weight_mask == 0).sum()) for _, l in layers))
        return 1.0 - sum(seen[-1]) / 1000

    before = [l.weight_mask.clone() for _, l in layers]
    result = scan(layers, (0.25, 0.5), lambda l: l.weight.abs(), accuracy)
    assert all(torch.equal(b, l.weight_mask) for b, (_, l) in zip(before, layers))
    assert seen[0] == (0, 0, 0)                      # baseline first
    for call in seen[1:]:
        assert sum(1 for z in call if z) == 1        # one layer pruned at a time
    for s, (_, layer) in zip(result, layers):
        n = layer.weight.numel()
        assert s.drops == pytest.approx((math.ceil(0.25 * n) / 1000, math.ceil(0.5 * n) / 1000))


def test_allocation_prunes_robust_layers_harder_and_hits_the_target_exactly():
    robust = Sensitivity("robust", 300, (0.2, 0.5, 0.8, 0.95), (0.0, 0.0, 0.01, 0.05))
    middle = Sensitivity("middle", 200, (0.2, 0.5, 0.8, 0.95), (0.0, 0.05, 0.2, 0.4))
    fragile = Sensitivity("fragile", 100, (0.2, 0.5, 0.8, 0.95), (0.1, 0.3, 0.6, 0.8))
    for target in (0.1, 0.4, 0.6, 0.9):
        r = allocate([robust, middle, fragile], target, max_ratio=0.95)
        assert r["robust"] >= r["middle"] >= r["fragile"]
        assert (300 * r["robust"] + 200 * r["middle"] + 100 * r["fragile"]) / 600 == pytest.approx(target)
        assert all(0.0 <= v <= 0.95 for v in r.values())
    with pytest.raises(MethodError, match="above the most"):
        allocate([robust, fragile], 0.97, max_ratio=0.95)


def test_allocation_with_flat_curves_still_reaches_the_target():
    flat = [Sensitivity(f"l{i}", 10 * (i + 1), (0.5, 0.9), (0.0, 0.0)) for i in range(3)]
    r = allocate(flat, 0.3, max_ratio=0.9)
    assert sum(10 * (i + 1) * r[f"l{i}"] for i in range(3)) / 60 == pytest.approx(0.3)
    noisy = Sensitivity("noisy", 50, (0.3, 0.6, 0.9), (0.2, -0.1, 0.3))  # non-monotone drops
    assert noisy.ratio_at(0.2) >= 0.6


from hypothesis import given, strategies as st  # noqa: E402

_drops = st.lists(st.floats(-0.2, 1.0, allow_nan=False), min_size=4, max_size=4)


@given(layers=st.lists(st.tuples(st.integers(1, 500), _drops), min_size=1, max_size=5),
       extra=st.lists(st.floats(0.0, 0.5), min_size=4, max_size=4),
       target=st.floats(0.0, 0.9))
def test_allocation_properties(layers, extra, target):
    grid = (0.2, 0.5, 0.8, 0.9)
    sens = [Sensitivity(f"l{i}", n, grid, tuple(d)) for i, (n, d) in enumerate(layers)]
    # a twin of the first layer that is everywhere at least as sensitive
    worse = tuple(max(0.0, d) + e for d, e in zip(layers[0][1], extra))
    sens.append(Sensitivity("worse", layers[0][0], grid, worse))
    r = allocate(sens, target, max_ratio=0.9)
    total = sum(s.weights for s in sens)
    assert sum(s.weights * r[s.name] for s in sens) / total == pytest.approx(target, abs=1e-9)
    assert all(-1e-12 <= v <= 0.9 + 1e-12 for v in r.values())
    assert r["l0"] >= r["worse"] - 1e-9
