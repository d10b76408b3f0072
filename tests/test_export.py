"""Exporter: hand-computed integers through onnxruntime and the simulator, readable metadata,
and a faithful round trip through the file."""

import json

import numpy as np
import onnx
import pytest

from exporters import examples, integer_model as im
from exporters.errors import ModelError
from exporters.grid import Grid
from exporters.onnx_export import METADATA_KEY, export_onnx, to_onnx
from exporters.onnx_import import load_integer_model
from fpga_sim import Simulator
from tests.conftest import assert_identical, ort_session

IN = Grid(1.0, 0, 8, True)  # scale 1: the float input is the integer itself


def one_linear(weight, bias, m, n, out=Grid(1.0, 0, 8, True), relu=False, in_grid=IN):
    weight = np.asarray(weight)
    o, f = weight.shape
    layers = [im.Input("x", (f,), in_grid),
              im.Linear("fc", "x", weight, bias, 8, np.full(o, 0.1), im.Requant(np.full(o, m), np.full(o, n), out, relu))]
    return im.IntegerModel(layers)


def run_both(model, x):
    proto = to_onnx(model)
    feeds = {"input": np.asarray(x, dtype=np.float32)}
    expected = ort_session(proto).run(None, feeds)
    got = Simulator(proto).run(None, feeds)
    for e, g in zip(expected, got):
        assert_identical(e, g)
    return got[0]


def test_requant_ties_round_half_up():
    # acc = x; y = (x + 1) >> 1: -1.5 -> -1, -0.5 -> 0, 0.5 -> 1, 1.5 -> 2, 2.5 -> 3
    y = run_both(one_linear([[1]], [0], m=1, n=1), [[-3], [-1], [1], [3], [5]])
    assert y.ravel().tolist() == [-1, 0, 1, 2, 3]


def test_input_quantization_rounds_half_to_even_and_clips_narrow():
    # QuantizeLinear: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2, 300 -> 127 (narrow: -300 -> -127, not -128)
    y = run_both(one_linear([[1]], [0], m=1, n=0), [[0.5], [1.5], [-2.5], [300.0], [-300.0]])
    assert y.ravel().tolist() == [0, 2, -2, 127, -127]


def test_negative_accumulators_and_bias():
    # acc = -1000 + 3*x0 - 2*x1; M/2^n = 3/4 (M=3, n=2) -> floor((acc*3 + 2) / 4)
    x = [[10, 20], [-100, 100], [127, -127]]
    acc = [-1000 + 30 - 40, -1000 - 300 - 200, -1000 + 381 + 254]
    expected = [max(-127, min(127, (a * 3 + 2) // 4)) for a in acc]
    assert run_both(one_linear([[3, -2]], [-1000], m=3, n=2), x).ravel().tolist() == expected


def test_clamping_to_unsigned_grid_and_relu():
    # hidden layer: 4-bit unsigned grid, zero point 5, ReLU -> clamp to [5, 15]; output layer copies it
    x = im.Input("x", (1,), IN)
    h = im.Linear("h", "x", [[1]], [0], 8, [0.1], im.Requant([1], [0], Grid(1.0, 5, 4, False), relu=True))
    out = im.Linear("o", "h", [[1]], [0], 8, [0.1], im.Requant([1], [0], Grid(1.0, 0, 8, True)))
    y = run_both(im.IntegerModel([x, h, out]), [[-20], [-1], [0], [3], [10], [50]])
    # h = clamp(5 + x, 5, 15); o = h - 5 (subtract-first with zero point 5)
    assert y.ravel().tolist() == [0, 0, 0, 3, 10, 10]


def test_conv_padding_holds_the_zero_point():
    # 1x1 input with padding 1 and an all-ones 3x3 kernel: only the centre tap sees data,
    # padded taps contribute (z - z) = 0, so the result is (x - z) for an input with zero point 7.
    x = im.Input("x", (1, 1, 1), IN)
    pre = im.Conv("pre", "x", np.ones((1, 1, 1, 1)), [0], 8, [0.1], im.Requant([1], [0], Grid(1.0, 7, 8, False)))
    conv = im.Conv("c", "pre", np.ones((1, 1, 3, 3)), [0], 8, [0.1], im.Requant([1], [0], Grid(1.0, 0, 8, True)),
                   padding=1)
    y = run_both(im.IntegerModel([x, pre, conv]), np.array([[[[3.0]]], [[[-7.0]]], [[[100.0]]]]))
    assert y.ravel().tolist() == [3, -7, 100]


def test_metadata_keeps_every_integer_parameter_readable(rng):
    model = examples.residual(rng)
    proto = to_onnx(model)
    meta = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    by_name = {d["name"]: d for d in meta}
    conv = next(layer for layer in model if isinstance(layer, im.Conv))
    assert by_name[conv.name]["requant"]["multiplier"] == conv.requant.multiplier.tolist()
    assert by_name[conv.name]["requant"]["shift"] == conv.requant.shift.tolist()
    assert by_name[conv.name]["requant"]["out"]["zero_point"] == conv.requant.out.zero_point
    inits = {t.name for t in proto.graph.initializer}
    assert {f"{conv.name}.weight", f"{conv.name}.bias", f"{conv.name}.multiplier", f"{conv.name}.shift"} <= inits
    first = next(n for n in proto.graph.node if n.name.startswith(conv.name + "/"))
    assert "M=" in first.doc_string and "n=" in first.doc_string


@pytest.mark.parametrize("name", sorted(examples.EXAMPLES))
def test_round_trip_through_the_file_is_exact(tmp_path, name):
    model = examples.EXAMPLES[name](np.random.default_rng(7), zero_points="extreme")
    path = export_onnx(model, tmp_path / "m.onnx")
    onnx.checker.check_model(str(path), full_check=True)
    again = to_onnx(load_integer_model(path))
    assert again.SerializeToString() == onnx.load(str(path)).SerializeToString()


def test_import_refuses_foreign_onnx(tmp_path):
    proto = to_onnx(examples.mlp(np.random.default_rng(0)))
    del proto.metadata_props[:]
    with pytest.raises(ModelError, match="not written by Foldline"):
        load_integer_model(proto)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"definitely not protobuf" * 10)
    with pytest.raises(ModelError, match="bad.onnx"):
        load_integer_model(bad)


def test_export_refuses_invalid_model():
    with pytest.raises(ModelError, match="layer 'fc'"):
        to_onnx(one_linear([[200]], [0], m=1, n=0))
