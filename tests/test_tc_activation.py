"""Activations on the QuantNet side: QuantActivation (a Lookup after conversion), clamps (ReLU6,
hardtanh) fused into the layer before them, the proof that a clamp adds no disagreement between
fake-quant and integers, channel pruning through an activation, and the refusals' messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import toolchain
import toolchain.nn as q
from exporters import integer_model as im
from exporters.errors import ModelError
from exporters.grid import Grid
from toolchain.convert import UnsupportedModuleError, to_integer_model, trace_metadata
from toolchain.integer_mode import float_forward, run_integer
from toolchain.nn.functions import ACTIVATIONS
from toolchain.pruning import channel_groups, remove_channels
from toolchain.quant import fake_quantize

from tests.test_tc_common import qat, simulate

SHAPE = (2, 6, 6)


def conv_net(*middle, out=10, channels=4):
    """input -> conv (4 channels) -> ``middle`` layers (name, module) -> conv -> GAP -> linear."""
    layers = [("x", q.QuantInput()), ("conv1", q.QuantConv2d(SHAPE[0], channels, 3, padding=1, bn=True)),
              *middle, ("conv2", q.QuantConv2d(channels, channels, 3, padding=1, relu=True)),
              ("gap", q.GlobalAvgPool()), ("fc", q.QuantLinear(channels, out, signed_output=True))]
    return q.QuantNet(layers, SHAPE)


def trained(net, steps=4):
    torch.manual_seed(0)
    return qat(net, steps=steps, shape=SHAPE, lr=0.02).eval()


def batch(n=64, seed=5):
    return torch.randn(n, *SHAPE, generator=torch.Generator().manual_seed(seed)) * 2


def integer_trace(net, x):
    return run_integer(to_integer_model(net), x, intermediate=True)


# -- the clamp: quantizing the clamped value == clamping the quantized one -------------------------

@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("bounds", [(0.0, 6.0), (-1.0, 1.0), (None, 0.5), (-0.25, None)])
def test_clamp_commutes_with_the_output_quantizer_exactly(signed, bounds):
    """Q(clamp(y, a, b)) == clamp(Q(y), Q(a), Q(b)) for every float32 y, Q the fake-quant rule in float32
    and Q(a), Q(b) the integer bounds conversion stores (Grid.clamp_bounds): monotone rounding."""
    gen = torch.Generator().manual_seed(1)
    for trial in range(20):
        s = torch.tensor(float(torch.empty(1).uniform_(0.001, 0.3, generator=gen)), dtype=torch.float32)
        bits = int(torch.randint(2, 9, (1,), generator=gen))
        top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        z = 0 if signed else int(torch.randint(0, top + 1, (1,), generator=gen))
        lo = -top if signed else 0
        grid = Grid(float(s), z, bits, signed)
        qa, qb = grid.clamp_bounds(*bounds)
        ties = (torch.arange(-300, 300, dtype=torch.float32) + 0.5) * s  # exact halves of the grid
        y = torch.cat([torch.randn(4000, generator=gen) * 4 * s * top, ties,
                       torch.tensor([b for b in bounds if b is not None], dtype=torch.float32)])
        clamped = fake_quantize(y.clamp(*bounds), s, lo - z, top - z, "half_up")
        quantized = fake_quantize(y, s, lo - z, top - z, "half_up")
        as_int = lambda v: torch.round(v / s).long() + z  # noqa: E731  (exact: v = (q - z) s)
        assert torch.equal(as_int(clamped), as_int(quantized).clamp(qa, qb)), (trial, grid, bounds)


def test_a_fused_clamp_adds_no_disagreement_between_fake_quant_and_integers():
    """The same network with and without ``clamp=(0, 6)`` (same state, hence the same grids):
    integers with it == integers without it clipped to [Q(0), Q(6)], in both representations."""
    base = trained(conv_net(channels=4))
    clamped = q.QuantNet.from_spec(_with_clamp(base.spec(), "conv1", [0.0, 1.0]))
    clamped.load_state_dict(base.state_dict())
    clamped.eval()
    x = batch()
    grid = trace_metadata(base)["conv1"].grid()
    qa, qb = grid.clamp_bounds(0.0, 1.0)
    assert grid.lo <= qa < qb < grid.hi  # the clamp really cuts the grid
    ints = integer_trace(clamped, x)["conv1"]
    assert torch.equal(ints, integer_trace(base, x)["conv1"].clamp(qa, qb))
    assert (ints == qb).any() and (ints == qa).any()
    fake = clamped.trace(x)["conv1"].int_repr()
    assert torch.equal(fake, base.trace(x)["conv1"].int_repr().clamp(qa, qb))
    assert to_integer_model(clamped).layer("conv1").requant.clamp == (qa, qb)


def _with_clamp(spec, name, clamp):
    for d in spec["layers"]:
        if d["name"] == name:
            d["args"]["clamp"] = clamp
    return spec


def test_quant_clamp_module_fuses_into_the_layer_before_and_matches_the_simulator():
    net = trained(conv_net(("relu6", q.QuantClamp(0.0, 6.0)), ("ht", q.QuantClamp(-1.0, 1.0))))
    model = to_integer_model(net)
    assert [type(layer).__name__ for layer in model.layers][:2] == ["Input", "Conv"]
    assert model.layers[1].name == "ht"  # the fused clamps took over the conv's name
    x = batch()
    meta = trace_metadata(net)["conv1"].grid()
    assert model.layers[1].requant.clamp == meta.clamp_bounds(0.0, 1.0)  # [0, 6] then [-1, 1]: [0, 1]
    got = run_integer(model, x, intermediate=True)
    sim = simulate(model, x, every_layer=True)
    for layer in model.layers:
        assert np.array_equal(got[layer.name].numpy(), sim[layer.name].astype(np.int64)), layer.name
    fake = net.trace(x)["ht"].int_repr()
    assert torch.equal(fake, net.trace(x)["conv1"].int_repr().clamp(*model.layers[1].requant.clamp))


def test_hardtanh_with_a_negative_bound_keeps_negatives_on_the_asymmetric_grid():
    net = trained(conv_net(("ht", q.QuantClamp(-0.5, 0.5))))
    model = to_integer_model(net)
    conv = model.layer("ht")
    lo, hi = conv.requant.clamp
    z = conv.requant.out.zero_point
    assert lo < z < hi  # both signs representable: the hidden grid has a zero point
    out = run_integer(model, batch(), intermediate=True)["ht"]
    assert (out < z).any() and (out > z).any() and out.min() >= lo and out.max() <= hi


def test_clamps_away_from_zero_are_refused_with_the_alternative():
    with pytest.raises(ModelError, match=r"clamp \[0.5, 1.0\] must contain 0.*QuantActivation\('hardtanh'"):
        q.QuantConv2d(1, 2, 3, clamp=(0.5, 1.0))
    with pytest.raises(ModelError, match="must contain 0"):
        q.QuantClamp(-2.0, -1.0)
    with pytest.raises(ModelError, match="at least one bound"):
        q.QuantClamp()
    q.QuantActivation("hardtanh", {"min_val": 0.5, "max_val": 1.0})  # the lookup takes it


# -- QuantActivation -> Lookup ----------------------------------------------------------------------

CASES = [(name, {}) for name in ACTIVATIONS if name not in ("leaky_relu", "elu", "gelu", "clamp")] + [
    ("leaky_relu", {"negative_slope": 0.1}), ("elu", {"alpha": 0.5}), ("gelu", {}), ("gelu", {"approximate": "tanh"}),
    ("clamp", {"min": 0.25})]


@pytest.mark.parametrize("function, params", CASES, ids=[f"{n}{p or ''}" for n, p in CASES])
def test_every_function_converts_to_its_table_and_runs_exactly(function, params):
    net = trained(conv_net((function, q.QuantActivation(function, params))), steps=2)
    model = to_integer_model(net)
    layer = model.layer(function)
    assert isinstance(layer, im.Lookup) and layer.table.size == 256
    # the table is the contract's rule on the input grid, from torch's float64 function
    g_in, g_out = model.grid("conv1"), layer.out
    real = torch.tensor(g_in.scale, dtype=torch.float64) * (torch.arange(256, dtype=torch.float64) - g_in.zero_point)
    value = ACTIVATIONS[function].fn(real, **net.layers[function].params) / g_out.scale
    expected = (g_out.zero_point + torch.floor(value + 0.5)).clamp(g_out.lo, g_out.hi).long()
    assert np.array_equal(layer.table, expected.numpy())
    x = batch()
    got = run_integer(model, x, intermediate=True)
    sim = simulate(model, x, every_layer=True)
    for name, value in got.items():
        assert np.array_equal(value.numpy(), sim[name].astype(np.int64)), name
    # fake-quant forward vs table on the same input integers (every one of the grid): at most one
    # step apart, and rarely that (float32 rounding near ties)
    codes = torch.arange(256).reshape(1, 1, 16, 16)
    meta = trace_metadata(net)["conv1"]
    fed = meta.with_value((codes - g_in.zero_point).float() * meta.scale, None)
    diff = (net.layers[function](fed).int_repr().reshape(-1) - torch.as_tensor(layer.table)).abs()
    assert diff.max() <= 1 and int((diff != 0).sum()) <= 2, diff.nonzero()


@pytest.mark.parametrize("function, params, expect_negative", [("leaky_relu", {"negative_slope": 0.2}, True),
                                                               ("elu", {}, True), ("sigmoid", {}, False)])
def test_functions_with_negative_outputs_use_the_zero_point(function, params, expect_negative):
    net = trained(conv_net((function, q.QuantActivation(function, params))))
    model = to_integer_model(net)
    z = model.layer(function).out.zero_point
    out = run_integer(model, batch(), intermediate=True)[function]
    assert bool((out < z).any()) == expect_negative


def test_spec_and_checkpoint_round_trip(tmp_path):
    net = trained(conv_net(("cl", q.QuantClamp(None, 3.0)),
                           ("act", q.QuantActivation("leaky_relu", {"negative_slope": 0.1}))))
    spec = net.spec()
    assert spec["layers"][3]["args"]["params"] == {"negative_slope": 0.1}
    assert spec["layers"][2]["args"] == {"min_val": None, "max_val": 3.0}
    assert q.QuantNet.from_spec(spec).spec() == spec
    toolchain.save(net, tmp_path / "m.pt")
    again = toolchain.load(tmp_path / "m.pt")
    x = batch()
    assert torch.equal(toolchain.integer_forward(again, x), toolchain.integer_forward(net, x))


# -- pruning through an activation --------------------------------------------------------------

@pytest.mark.parametrize("function", ["sigmoid", "hardswish"])
@pytest.mark.parametrize("round_to", [1, 4])  # 4: one masked channel is kept, dead, carrying f(0)
def test_masked_and_removed_integers_are_equal_through_a_lookup(function, round_to):
    """sigmoid(0) = 1/2: a masked channel is not real zero after the lookup, yet removal stays exact,
    because the consumer's weights on masked channels are 0 already in the masked model."""
    net = trained(conv_net((function, q.QuantActivation(function)), channels=6))
    (group,) = [g for g in channel_groups(net) if g.name == "conv1"]
    assert [c[0] for c in group.consumers] == ["conv2"]
    group.set_mask(torch.tensor([1, 0, 1, 1, 0, 0]))
    x = batch()
    masked = integer_trace(net, x)
    small = remove_channels(net, round_to=round_to)
    removed = integer_trace(small, x)
    assert torch.equal(masked["fc"], removed["fc"]) and torch.equal(masked["conv2"], removed["conv2"])
    dead = masked[function][:, 1]
    z = to_integer_model(net).layer(function).out.zero_point
    if function == "sigmoid":  # the masked channel carries f(0) = 1/2, not real zero
        assert (dead != z).all()
    else:  # hardswish(0) = 0
        assert (dead == z).all()
    assert small.layers["conv1"].out_channels == (3 if round_to == 1 else 4)


# -- refusals -----------------------------------------------------------------------------------

def test_unknown_functions_name_the_nearest_alternative():
    with pytest.raises(ModelError, match=r"activation 'sigmod' is not supported; nearest: 'sigmoid'"):
        q.QuantActivation("sigmod")
    with pytest.raises(ModelError, match=r"^softmax: not exported; the integer logits' argmax equals softmax's"):
        q.QuantActivation("softmax")
    with pytest.raises(ModelError, match=r"takes \['negative_slope'\], not \['slope'\]"):
        q.QuantActivation("leaky_relu", {"slope": 0.1})


@pytest.mark.parametrize("module, hint", [
    (nn.Softmax(dim=1), "softmax: not exported; the integer logits' argmax equals softmax's"),
    (nn.LogSoftmax(dim=1), "log_softmax: not exported"),
    (nn.Sigmoid(), "use toolchain.nn.QuantActivation('sigmoid')"),
    (nn.ReLU6(), "use clamp=(0, 6) on the layer before, or toolchain.nn.QuantClamp(0, 6)"),
    (nn.LeakyReLU(), "QuantActivation('leaky_relu'"),
])
def test_conversion_names_the_module_its_type_and_the_alternative(module, hint):
    net = q.QuantNet([("x", q.QuantInput()), ("fc", q.QuantLinear(4, 3, signed_output=True)), ("odd", module)],
                     input_shape=(4,))
    with pytest.raises(UnsupportedModuleError) as err:
        to_integer_model(net)
    message = str(err.value)
    assert message.startswith(f"module 'layers.odd' (torch.nn.modules.activation.{type(module).__name__})")
    assert hint in message and "\n" not in message
    with pytest.raises(UnsupportedModuleError, match=f"module '1' .*{type(module).__name__}"):
        to_integer_model(nn.Sequential(q.QuantInput(), module))


def test_fake_quant_forward_is_out_quant_of_f():
    net = trained(conv_net(("act", q.QuantActivation("tanh"))))
    x = batch()
    t = net.trace(x)
    out = t["act"]
    expected = net.layers["act"].out_quant(torch.tanh(t["conv1"].value))
    assert torch.equal(out.value, expected.value)
    assert toolchain.agreement(net, x) >= 0.9
    assert float_forward(net, x).shape == (len(x), 10)
