"""DJPQ (toolchain/methods/djpq.py): the soft costs (eqs. 15-19) against the hard cost counter, the
gates' bound (eq. 13), a run that learns different widths per layer and prunes channels — with and
without the power-of-two restriction — exported bit-exact by export-fpga, and bad options."""

import copy
import math

import pytest
import torch

import toolchain
from toolchain.data import synthetic
from toolchain.methods import Djpq, MethodConfig, MethodError
from toolchain.methods.costs import layer_costs
from toolchain.methods.hardware import HardwareProbe, HardwareTarget
from toolchain.methods.soft_costs import SoftCost, estimate_weights
from toolchain.nn import BitsError
from toolchain.nn.gate import ChannelGate
from toolchain.pruning import channel_groups

from tests.test_tc_common import export_fpga_bit_exact, needs_gxx

SHAPE = (1, 8, 8)
FAST = {"gamma": 1e-2, "beta": 3e-7, "gate_lr_scale": 100, "quant_lr_scale": 2}


def _run(**options):
    torch.manual_seed(0)
    config = MethodConfig(sparsity=0.0, epochs=15, pretrain_epochs=1, batch_size=32, options={**FAST, **options})
    return Djpq(config).run(toolchain.build("cnn", input_shape=SHAPE), synthetic(512, shape=SHAPE),
                            synthetic(128, shape=SHAPE, seed=1))


@pytest.fixture(scope="module")
def free():
    return _run()


@pytest.fixture(scope="module")
def restricted():
    return _run(restrict=True)


@pytest.mark.parametrize("name", ["cnn", "resnet", "dsconv"])
def test_soft_macs_are_the_hard_macs_at_zero_temperature(name):
    """With alpha far from alpha_th and tau tiny, eq. 19's soft keep is 0 or 1: the soft MACs (eq. 15)
    and BOPs (eq. 16) equal what toolchain.methods.costs counts for the network with those masks."""
    torch.manual_seed(1)
    net = toolchain.build(name, input_shape=SHAPE, weight_bits=4, act_bits=6)
    masked = copy.deepcopy(net)
    gates = {}
    for group, twin in zip(channel_groups(net), channel_groups(masked)):
        if not group.prunable:
            continue
        keep = torch.rand(group.channels) > 0.4
        keep[0] = True
        gates[group.name] = gate = ChannelGate(group.channels)
        with torch.no_grad():
            gate.mu.copy_(keep.float())                         # alpha = 0 (pruned) or e^6 (kept)
        for producer in group.producers:
            net.layers[producer].gate = gate
        twin.set_mask(keep.float())
    cost = SoftCost(net, gates, alpha_threshold=1e-3, tau=1e-9)
    hard = {c.name: c for c in layer_costs(masked)}
    with torch.no_grad():
        assert {n: int(cost.macs(n)) for n in hard} == {n: c.macs for n, c in hard.items()}
        assert {n: int(b) for n, b in cost.layer_bops().items()} == {n: c.bops for n, c in hard.items()}


def test_soft_pruning_ratio_relaxes_eq18():
    gate = ChannelGate(4)
    with torch.no_grad():
        gate.mu.copy_(torch.tensor([0.0, 0.0, 1.0, 1.0]))
    net = toolchain.build("mlp", input_shape=(4,), hidden=(4,))
    net.layers["fc1"].gate = gate
    ratio = SoftCost(net, {"fc1": gate}, alpha_threshold=1e-3, tau=1e-4).pruning_ratios()["fc1"]
    assert float(ratio.detach()) == pytest.approx(0.5, abs=1e-4)  # eq. 18: two of four below alpha_th
    assert float(gate.kl().detach()) == pytest.approx(2 * math.log1p(math.exp(6.0)))   # eq. 13's bound


def _layer_bits(result):
    return {n: b for n, b in result.details["bits"].items() if n != "quant_in"}


def test_djpq_learns_different_widths_per_layer_and_prunes_channels(free):
    widths = _layer_bits(free)
    weights, acts = {b["weight"] for b in widths.values()}, {b.get("act") for b in widths.values()} - {None}
    assert len(weights) > 1 or len(acts) > 1                     # not one width for every layer
    assert all(b["weight"] < 8 for b in widths.values())         # the BOPs term lowered every layer
    assert free.sparsity > 0 and any(d["kept"] < d["kept_before"] for d in free.layers.values())
    removed = {g: d["kept"] for g, d in free.layers.items()}
    assert free.model.layers["conv2"].weight.shape[0] == removed["conv2"]   # physically removed
    assert all(m.gate is None for m in free.model.layers.values() if hasattr(m, "gate"))


def test_the_restriction_keeps_every_width_a_power_of_two(restricted):
    widths = _layer_bits(restricted)
    values = [b for layer in widths.values() for b in layer.values()]
    assert set(values) <= {2, 4, 8} and len(set(values)) > 1
    assert restricted.sparsity > 0


@needs_gxx
@pytest.mark.parametrize("which", ["free", "restricted"])
def test_djpq_exports_bit_exact_everywhere(which, request, tmp_path):
    result = request.getfixturevalue(which)
    report = export_fpga_bit_exact(result.model, synthetic(12, shape=SHAPE, seed=2).x, tmp_path)
    rows = {r["name"]: r["weight_bits"] for r in report["layers"] if r["weight_bits"] is not None}
    assert rows == {n: b["weight"] for n, b in _layer_bits(result).items()}


def test_estimate_weights_turn_bops_into_the_estimated_metric():
    torch.manual_seed(0)
    net = toolchain.build("cnn", input_shape=SHAPE)
    net(torch.rand(8, *SHAPE))                                  # statistics for the integer model
    probe = HardwareProbe(HardwareTarget())
    weights = estimate_weights(net, probe, "lut")
    estimate = probe.measure(net).estimate
    total = sum(weights[c.name] * c.bops for c in layer_costs(net))
    assert total == pytest.approx(sum(estimate.layer(n)["lut"] for n in ("conv1", "conv2", "head")))


def test_the_fpga_cost_variant_trains():
    torch.manual_seed(0)
    config = MethodConfig(sparsity=0.0, epochs=1, batch_size=32, options={**FAST, "cost": "lut", "beta": 1e-6})
    result = Djpq(config).run(toolchain.build("cnn", input_shape=SHAPE), synthetic(128, shape=SHAPE),
                              synthetic(32, shape=SHAPE, seed=1))
    assert result.details["cost"] == "lut" and set(_layer_bits(result)) == {"conv1", "conv2", "head"}


@pytest.mark.parametrize("config, message", [
    (dict(options={"gamma": -1}), "gamma must be >= 0"),
    (dict(options={"beta": -1e-9}), "beta must be >= 0"),
    (dict(options={"tau": 0}), "tau must be > 0"),
    (dict(options={"cost": "watts"}), "cost must be one of"),
    (dict(options={"restrict": True}, weight_bits=3), "weight_bits = 3 is not one of (2, 4, 8)"),
    (dict(options={"restrict": True}, layer_bits={"conv1": {"act": 6}}), "layer_bits conv1 act = 6"),
    (dict(sparsity=0.5), "learns its pruning ratios"),
    (dict(weight_bits=9), "weight_bits must be in 2..8"),
])
def test_bad_configurations_are_refused_before_training(config, message):
    config = {"sparsity": 0.0, **config}
    with pytest.raises(MethodError) as info:
        Djpq(MethodConfig(**config))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_model_with_other_widths_is_refused_under_the_restriction():
    net = toolchain.build("cnn", input_shape=SHAPE, weight_bits=6)
    method = Djpq(MethodConfig(sparsity=0.0, epochs=1, pretrain_epochs=3, options={"restrict": True}))
    with pytest.raises(BitsError, match="layer 'conv1' weight bits: 6 is not one of"):
        method.run(net, synthetic(32, shape=SHAPE), synthetic(8, shape=SHAPE))
