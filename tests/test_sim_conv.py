"""ConvInteger: property tests against onnxruntime and a direct-loop reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.test_sim_support import (
    assert_identical,
    assert_matches_onnxruntime,
    int_values,
    one_node_model,
    reference_conv,
)

from fpga_sim import Simulator, UnsupportedNodeError
from fpga_sim.numeric import exact_accumulator_dtype
from fpga_sim.ops.integer_gemm import CentredWeights, store_int32


@st.composite
def conv_cases(draw, per_channel_w_zp=False, max_channels=16, max_size=9):
    depthwise = draw(st.booleans())
    if depthwise:
        c_in = draw(st.integers(1, max_channels))
        group, c_out = c_in, c_in * draw(st.integers(1, 2))
    else:
        group = draw(st.sampled_from([1, 1, 2, 3]))
        c_in = group * draw(st.integers(1, max(1, max_channels // group)))
        c_out = group * draw(st.integers(1, max(1, max_channels // group)))
    k_h, k_w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    strides = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    dilations = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    assume(h + pads[0] + pads[2] >= dilations[0] * (k_h - 1) + 1)
    assume(w + pads[1] + pads[3] >= dilations[1] * (k_w - 1) + 1)
    x_dtype = draw(st.sampled_from([np.uint8, np.int8]))
    w_dtype = draw(st.sampled_from([np.int8, np.int8, np.uint8]))
    x = draw(hnp.arrays(x_dtype, (draw(st.integers(1, 3)), c_in, h, w), elements=int_values(x_dtype)))
    weight = draw(hnp.arrays(w_dtype, (c_out, c_in // group, k_h, k_w), elements=int_values(w_dtype)))
    x_zp = np.array(draw(int_values(x_dtype)), x_dtype)
    if per_channel_w_zp:
        w_zp = draw(hnp.arrays(w_dtype, (c_out,), elements=int_values(w_dtype)))
    else:
        w_zp = draw(st.one_of(st.none(), int_values(w_dtype).map(lambda v: np.array(v, w_dtype))))
    attrs = {"group": group, "strides": strides, "dilations": dilations, "pads": pads,
             "kernel_shape": [k_h, k_w]}
    return x, weight, x_zp, w_zp, attrs


def conv_model(x, weight, x_zp, w_zp, attrs, constants=("w", "x_zp", "w_zp")):
    return one_node_model("ConvInteger", {"x": x, "w": weight, "x_zp": x_zp, "w_zp": w_zp}, np.int32,
                          constants=constants, attrs=attrs)


@settings(deadline=None, max_examples=100)
@given(case=conv_cases())
def test_conv_integer_matches_onnxruntime(case):
    model, feeds = conv_model(*case)
    assert_matches_onnxruntime(model, feeds)


@settings(deadline=None, max_examples=30)
@given(case=conv_cases(), constants=st.sampled_from([(), ("w",), ("x_zp", "w_zp")]))
def test_conv_integer_with_runtime_weights_matches_onnxruntime(case, constants):
    model, feeds = conv_model(*case, constants=constants)
    assert_matches_onnxruntime(model, feeds)


@settings(deadline=None, max_examples=40)
@given(case=conv_cases(per_channel_w_zp=True, max_channels=4, max_size=6))
def test_conv_integer_per_channel_weight_zero_point_matches_reference(case):
    # onnxruntime refuses per-channel w_zero_point; the expectation is the direct loop.
    x, weight, x_zp, w_zp, attrs = case
    model, feeds = conv_model(*case)
    (got,) = Simulator(model).run(None, feeds)
    expected = reference_conv(x, weight, int(x_zp), w_zp, attrs["group"], attrs["pads"], attrs["strides"],
                              attrs["dilations"])
    assert_identical(got, expected)


def test_conv_integer_hand_computed_padding_holds_zero_point():
    # 1x1x2x2 input of 9 with zero point 9 -> every centred value is 0; padding must add 0 too.
    x = np.full((1, 1, 2, 2), 9, np.uint8)
    weight = np.ones((1, 1, 3, 3), np.int8)
    model, feeds = conv_model(x, weight, np.array(9, np.uint8), None, {"pads": [1, 1, 1, 1]})
    assert assert_matches_onnxruntime(model, feeds).tolist() == [[[[0, 0], [0, 0]]]]


def test_conv_integer_beyond_float32_uses_float64_and_stays_exact():
    # 64 channels x 3x3 taps of |w| = 128 with x = 255: |sum| = 255 * 73727 = 18800385 > 2**24,
    # odd, so float32 could not even represent it. The interior output is hand-computed.
    weight = np.full((1, 64, 3, 3), -128, np.int8)
    weight[0, 0, 0, 0] = -127
    x = np.full((1, 64, 5, 5), 255, np.uint8)
    centred = CentredWeights.from_rows(weight.reshape(1, 1, -1), None)
    assert centred.accumulator(np.dtype(np.uint8), 0)[0] == np.float64
    model, feeds = conv_model(x, weight, np.array(0, np.uint8), None, {"pads": [1, 1, 1, 1]})
    out = assert_matches_onnxruntime(model, feeds)
    assert out[0, 0, 2, 2] == 255 * (-128 * 575 - 127) == -18800385


@pytest.mark.parametrize("force", ["int64", "float64"])
def test_conv_integer_int64_and_float64_paths_match_onnxruntime(monkeypatch, force):
    limits = {} if force == "int64" else {np.dtype(np.float64): 2**53}
    monkeypatch.setattr("fpga_sim.numeric._EXACT_INT_LIMIT", limits)
    assert exact_accumulator_dtype(10) == np.dtype(force)
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (2, 4, 7, 6), dtype=np.uint8)
    weight = rng.integers(-128, 128, (6, 2, 3, 2), dtype=np.int8)
    model, feeds = conv_model(x, weight, np.array(200, np.uint8), np.array(-3, np.int8),
                              {"group": 2, "pads": [1, 0, 2, 1], "strides": [2, 1]})
    assert_matches_onnxruntime(model, feeds)


def test_conv_integer_small_chunks_match_onnxruntime(monkeypatch):
    monkeypatch.setattr("fpga_sim.ops.conv_integer.CHUNK_BYTES", 1)  # one sample per chunk
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, (5, 3, 6, 6), dtype=np.int8)
    weight = rng.integers(-128, 128, (4, 3, 3, 3), dtype=np.int8)
    for strides in ([1, 1], [2, 3]):
        model, feeds = conv_model(x, weight, np.array(-128, np.int8), None, {"pads": [1, 1, 1, 1], "strides": strides})
        assert_matches_onnxruntime(model, feeds)


def test_store_int32_wraps_like_an_int32_accumulator():
    exact = np.array([2.0**31 + 5, -(2.0**31) - 1, 7.0])
    out = np.empty(3, np.int32)
    store_int32(out, exact, bound=2**32)
    assert out.tolist() == [-(2**31) + 5, 2**31 - 1, 7]


def test_exact_accumulator_dtype_thresholds():
    assert exact_accumulator_dtype(2**24 - 1) == np.float32
    assert exact_accumulator_dtype(2**24) == np.float64
    assert exact_accumulator_dtype(2**53) == np.int64
    with pytest.raises(ValueError):
        exact_accumulator_dtype(2**63)


@pytest.mark.parametrize("attrs, match", [
    ({"auto_pad": "SAME_UPPER"}, "auto_pad"),
    ({"pads": [1, 1, 1]}, "2-D"),
    ({"kernel_shape": [3]}, "2-D"),
    ({"bogus": 1}, "unsupported attribute 'bogus'"),
    ({"group": 1.0}, "'group' must be of type int"),
    ({"pads": "1 1 1 1"}, "'pads' must be of type ints"),
])
def test_conv_integer_refused_at_load(attrs, match):
    model, _ = conv_model(np.zeros((1, 1, 4, 4), np.uint8), np.zeros((1, 1, 3, 3), np.int8), None, None, attrs)
    with pytest.raises(UnsupportedNodeError, match=f"convinteger_node.*ConvInteger.*{match}"):
        Simulator(model)


def test_conv_integer_3d_refused_at_load():
    model, _ = conv_model(np.zeros((1, 1, 4, 4, 4), np.uint8), np.zeros((1, 1, 3, 3, 3), np.int8), None, None, {})
    with pytest.raises(UnsupportedNodeError, match="2-D"):
        Simulator(model)


def test_conv_integer_channel_mismatch_refused_at_load():
    model, _ = conv_model(np.zeros((1, 3, 4, 4), np.uint8), np.zeros((2, 2, 3, 3), np.int8), None, None, {})
    with pytest.raises(UnsupportedNodeError, match="x has 3 channels, w expects 2 x group 1"):
        Simulator(model)
