"""The Concat and Upsample layer types: the contract's rules, computed here in plain Python
integers, against torch integer mode, the simulator and onnxruntime; shape and rule checks."""

import numpy as np
import pytest
import torch

from exporters import integer_model as im
from exporters.errors import ModelError
from exporters.examples import Builder, random_inputs
from exporters.grid import Grid
from exporters.onnx_export import to_onnx
from exporters.onnx_import import load_integer_model
from fpga_sim import Simulator
from tests.conftest import ort_trace
from toolchain.integer_mode import run_integer


def contract_concat(xs, grids, layer):
    """``y = clamp(z_y + ((M_i (x_i - z_i) + 2^(n_i-1)) >> n_i), lo, hi)`` per element, Python ints."""
    lo, hi = layer.bounds
    parts = []
    for x, g, m, n in zip(xs, grids, layer.multipliers, layer.shifts):
        rounding = (1 << (n - 1)) if n > 0 else 0

        def rule(v, g=g, m=m, n=n, rounding=rounding):
            return min(max(layer.out.zero_point + ((m * (int(v) - g.zero_point) + rounding) >> n), lo), hi)
        parts.append(np.vectorize(rule, otypes=[np.int64])(x))
    return np.concatenate(parts, axis=1)


@pytest.mark.parametrize("seed", range(6))
def test_concat_and_upsample_follow_the_contract_everywhere(seed):
    rng = np.random.default_rng(seed)
    b = Builder(rng, (2, 3, 4), zero_points=["random", "extreme"][seed % 2], random_requant=seed % 3 == 0)
    a = b.conv("input_q", 3, relu=seed % 2 == 0)
    u = b.upsample(a, (1 + seed % 2, 2))
    c = b.conv("input_q", 2, relu=False)
    c = b.upsample(c, (1 + seed % 2, 2))
    cat = b.concat([u, c, u], relu=seed % 4 == 1, copy_first=seed % 3 == 2)
    if seed % 2:
        b.clamp(cat)
    b.linear(b.flatten(cat), 4, relu=False, signed_out=True)
    model = b.build()
    x = random_inputs(rng, model, 5)
    torch_ints = {k: v.numpy() for k, v in run_integer(model, torch.from_numpy(x), intermediate=True).items()}
    proto = to_onnx(model)
    sim = Simulator(proto).trace({"input": x})
    layer = model.layer(cat)
    expected_up = torch_ints[a].repeat(1 + seed % 2, axis=2).repeat(2, axis=3)  # y[c, h, w] = x[c, h // f, w // f]
    assert np.array_equal(sim[u].astype(np.int64), expected_up)
    expected = contract_concat([torch_ints[s] for s in layer.sources], [model.grid(s) for s in layer.sources], layer)
    assert np.array_equal(torch_ints[cat], expected)
    assert np.array_equal(sim[cat].astype(np.int64), expected)
    assert np.array_equal(ort_trace(proto, {"input": x})[cat].astype(np.int64), expected)
    assert load_integer_model(proto).layer(cat).to_dict(model) == layer.to_dict(model)  # the file round trip


def test_a_copied_input_is_exactly_the_rule():
    """``copies`` claims the rule is the identity on the input's grid: check every integer of it, and
    that a ReLU or clamp narrowing the output, or a signed input, is requantized instead."""
    g, signed = Grid(0.1, 7, 4, False), Grid(0.1, 0, 4, True)
    every = np.arange(g.lo, g.hi + 1).reshape(1, -1, 1, 1)
    for relu, clamp, grids, copied in ((False, None, [g, g], True), (True, None, [g, g], False),
                                       (False, (7, 15), [g, g], False), (False, None, [signed, g], False)):
        layer = im.Concat("c", ("a", "b"), (1 << 15, 1 << 15), (15, 15), g, relu, clamp)
        assert layer.copies(_grids_model(grids)) == (copied, grids[1] == g and not relu and clamp is None)
        if copied:
            assert np.array_equal(contract_concat([every], grids, layer), every)
    # an unsigned input inside a signed output's range is the identity too, but not stored alike
    out = Grid(0.1, 0, 8, True)
    layer = im.Concat("c", ("a", "b"), (1 << 15, 1 << 15), (15, 15), out)
    assert layer.copies(_grids_model([Grid(0.1, 0, 4, False), out])) == (False, True)


def _grids_model(grids):
    """A stand-in holding the tensors 'a' and 'b' on ``grids`` (``copies`` reads only their grids)."""
    class Model:
        def grid(self, name):
            return dict(zip("ab", grids))[name]
    return Model()


def test_concat_and_upsample_shape_rules_name_the_layer():
    x = im.Input("x", (2, 4, 4), Grid(0.1, 0, 8, True))
    g = Grid(0.1, 0, 8, True)  # the concatenation is the output here
    flat = im.Flatten("f", "x")
    cases = [
        ([x, im.Concat("c", ("x",), (1,), (0,), g)], "layer 'c': a Concat needs at least two inputs"),
        ([x, flat, im.Concat("c", ("x", "f"), (1, 1), (0, 0), g)], "layer 'c': Concat inputs must differ in channels "
                                                                  "only; 'x' is \\(2, 4, 4\\), 'f' is \\(32,\\)"),
        ([x, im.Concat("c", ("x", "x"), (1,), (0, 0), g)], "layer 'c': 2 inputs need 2 multipliers and shifts"),
        ([x, im.Concat("c", ("x", "x"), (0, 1), (0, 0), g)], "layer 'c': multipliers must lie in"),
        ([x, flat, im.Upsample("u", "f", 2)], "layer 'u': Upsample needs a \\(C, H, W\\) input"),
    ]
    for layers, match in cases:
        with pytest.raises(ModelError, match=match):
            im.IntegerModel(layers).validate()
    model = im.IntegerModel([x, im.Upsample("u", "x", (1, 3)), im.Concat("c", ("x", "x"), (1, 1), (0, 0), g)])
    assert model.shape("u") == (2, 4, 12) and model.shape("c") == (4, 4, 4)
