"""QuantizeLinear / DequantizeLinear against onnxruntime: ties, saturation, extremes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.test_sim_support import assert_matches_onnxruntime, one_node_model

from fpga_sim import NodeExecutionError, Simulator, UnsupportedNodeError

ZERO_POINTS = [np.uint8(0), np.uint8(255), np.uint8(128), np.int8(-128), np.int8(127), np.int8(0)]


def quantize_model(x, scale, zp, constants=("scale", "zp")):
    inputs = {"x": x, "scale": np.array(scale, np.float32), "zp": None if zp is None else np.array(zp)}
    out_dtype = np.uint8 if zp is None else np.array(zp).dtype
    return one_node_model("QuantizeLinear", inputs, out_dtype, constants=constants)


@pytest.mark.parametrize("zp", ZERO_POINTS, ids=str)
@pytest.mark.parametrize("scale", [1.0, 0.5, 0.25, 0.1, 0.3, 3.0])
def test_ties_round_half_to_even(scale, zp):
    halves = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -3.5, 126.5, -127.5, 100.5], np.float32)
    x = (halves * np.float32(scale)).astype(np.float32)
    model, feeds = quantize_model(x, scale, zp)
    assert_matches_onnxruntime(model, feeds)


def test_ties_hand_computed():
    x = np.array([0.5, 1.5, -2.5, 2.5, -0.5], np.float32)
    model, feeds = quantize_model(x, 1.0, np.int8(0))
    out = assert_matches_onnxruntime(model, feeds)
    assert out.tolist() == [0, 2, -2, 2, 0]


@pytest.mark.parametrize("zp", ZERO_POINTS, ids=str)
def test_saturation(zp):
    x = np.array([1e3, -1e3, 1e30, -1e30, np.inf, -np.inf, 3.4e38, -3.4e38, 127.5, 128.5, -128.5, 255.5, 0.0],
                 np.float32)
    model, feeds = quantize_model(x, 1.0, zp)
    out = assert_matches_onnxruntime(model, feeds)
    info = np.iinfo(out.dtype)
    assert out[0] == info.max and out[1] == info.min and out[4] == info.max and out[5] == info.min


def test_divides_rather_than_multiplying_by_the_reciprocal():
    scale = np.float32(0.3)  # 1/0.3 is inexact: x * (1/s) and x / s round differently near ties
    x = ((np.arange(-500, 500).astype(np.float32) + np.float32(0.5)) * scale).astype(np.float32)
    by_division = np.rint(x / scale)
    by_reciprocal = np.rint(x * (np.float32(1) / scale))
    assert (by_division != by_reciprocal).any()  # the test data tells the two apart
    model, feeds = quantize_model(x, scale, np.int8(0))
    out = assert_matches_onnxruntime(model, feeds)
    assert np.array_equal(out, np.clip(by_division, -128, 127).astype(np.int8))


def test_without_zero_point_gives_uint8():
    model, feeds = quantize_model(np.array([-1.0, 1.0, 300.0], np.float32), 1.0, None)
    out = assert_matches_onnxruntime(model, feeds)
    assert out.tolist() == [0, 1, 255]


def test_scale_and_zero_point_as_graph_inputs():
    model, feeds = quantize_model(np.array([[2.5, -7.0]], np.float32), 0.5, np.uint8(10), constants=())
    assert_matches_onnxruntime(model, feeds)


def test_nan_is_refused_with_node_name():
    model, feeds = quantize_model(np.array([1.0, np.nan], np.float32), 1.0, np.int8(0))
    with pytest.raises(NodeExecutionError, match="quantizelinear_node.*NaN"):
        Simulator(model).run(None, feeds)


@pytest.mark.parametrize("scale", [0.0, np.inf])
def test_bad_constant_scale_refused_at_load(scale):
    model, _ = quantize_model(np.array([1.0], np.float32), scale, np.int8(0))
    with pytest.raises(UnsupportedNodeError, match="scale"):
        Simulator(model)


def test_block_size_refused_at_load():
    model, _ = one_node_model("QuantizeLinear", {"x": np.ones(4, np.float32), "s": np.array(1.0, np.float32),
                                                  "z": np.array(0, np.int8)}, np.int8, ("s", "z"),
                              attrs={"block_size": 2})
    with pytest.raises(UnsupportedNodeError, match="block_size"):
        Simulator(model)


finite_f32 = st.floats(-1e6, 1e6, width=32, allow_nan=False, allow_infinity=False)
scales = st.one_of(st.sampled_from([1.0, 0.5, 0.125, 2.0, 0.1, 1 / 3, 0.0078125]),
                   st.floats(2.0**-13, 1024.0, width=32))
zero_points = st.one_of(st.integers(0, 255).map(np.uint8), st.integers(-128, 127).map(np.int8))


@settings(deadline=None, max_examples=100)
@given(x=hnp.arrays(np.float32, st.integers(1, 40), elements=finite_f32), scale=scales, zp=zero_points)
def test_quantize_property(x, scale, zp):
    model, feeds = quantize_model(x, scale, zp)
    assert_matches_onnxruntime(model, feeds)


@settings(deadline=None, max_examples=80)
@given(k=hnp.arrays(np.int32, st.integers(1, 30), elements=st.integers(-400, 400)), scale=scales, zp=zero_points)
def test_quantize_property_ties(k, scale, zp):
    x = ((k.astype(np.float32) + np.float32(0.5)) * np.float32(scale)).astype(np.float32)
    model, feeds = quantize_model(x, scale, zp)
    assert_matches_onnxruntime(model, feeds)


@settings(deadline=None, max_examples=60)
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.int8, np.int32]), scale=scales)
def test_dequantize_property(data, dtype, scale):
    x = data.draw(hnp.arrays(dtype, st.integers(1, 30)))
    zp = np.array(0 if dtype == np.int32 else data.draw(hnp.from_dtype(np.dtype(dtype))), dtype)
    model, feeds = one_node_model("DequantizeLinear", {"x": x, "s": np.array(scale, np.float32), "z": zp},
                                  np.float32, constants=("s", "z"))
    assert_matches_onnxruntime(model, feeds)


def test_dequantize_hand_computed():
    model, feeds = one_node_model("DequantizeLinear", {"x": np.array([0, 128, 255], np.uint8),
                                                        "s": np.array(0.5, np.float32),
                                                        "z": np.array(128, np.uint8)}, np.float32, ("s", "z"))
    assert assert_matches_onnxruntime(model, feeds).tolist() == [-64.0, 0.0, 63.5]


def test_dequantize_int32_nonzero_zero_point_refused():
    model, _ = one_node_model("DequantizeLinear", {"x": np.array([1], np.int32), "s": np.array(1.0, np.float32),
                                                    "z": np.array(3, np.int32)}, np.float32, ("s", "z"))
    with pytest.raises(UnsupportedNodeError, match="zero point 0"):
        Simulator(model)
