"""MaxPool, Flatten, Reshape and Identity against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.test_sim_support import assert_matches_onnxruntime, int_values, one_node_model

from fpga_sim import NodeExecutionError, Simulator, UnsupportedNodeError


def all_padding_window(size, kernel, stride, dilation, pad_begin, pad_end):
    """Direct check: does some output window along one axis see only padding?"""
    out = (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1
    for o in range(out):
        taps = [o * stride - pad_begin + k * dilation for k in range(kernel)]
        if not any(0 <= t < size for t in taps):
            return True
    return False


@st.composite
def pool_cases(draw):
    dtype = draw(st.sampled_from([np.int8, np.uint8, np.float32, np.float64]))
    kernel = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    strides = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    dilations = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    pads = [draw(st.integers(0, kernel[i % 2] - 1)) for i in range(4)]
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    assume(h + pads[0] + pads[2] >= dilations[0] * (kernel[0] - 1) + 1)
    assume(w + pads[1] + pads[3] >= dilations[1] * (kernel[1] - 1) + 1)
    elements = (st.floats(-1e6, 1e6, width=np.dtype(dtype).itemsize * 8) if np.dtype(dtype).kind == "f"
                else int_values(dtype))
    x = draw(hnp.arrays(dtype, (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w), elements=elements))
    attrs = {"kernel_shape": kernel, "strides": strides, "dilations": dilations, "pads": pads}
    return x, attrs


@settings(deadline=None, max_examples=100)
@given(case=pool_cases())
def test_max_pool_matches_onnxruntime(case):
    x, attrs = case
    model, feeds = one_node_model("MaxPool", {"x": x}, x.dtype, attrs=attrs)
    k, s, d, p = attrs["kernel_shape"], attrs["strides"], attrs["dilations"], attrs["pads"]
    if (all_padding_window(x.shape[2], k[0], s[0], d[0], p[0], p[2])
            or all_padding_window(x.shape[3], k[1], s[1], d[1], p[1], p[3])):
        with pytest.raises(NodeExecutionError, match="entirely in the padding"):
            Simulator(model).run(None, feeds)
    else:
        assert_matches_onnxruntime(model, feeds)


def test_max_pool_padding_never_wins_hand_computed():
    x = np.full((1, 1, 2, 2), -128, np.int8)
    x[0, 0, 1, 1] = -100
    model, feeds = one_node_model("MaxPool", {"x": x}, np.int8, attrs={"kernel_shape": [2, 2], "pads": [1, 1, 1, 1]})
    out = assert_matches_onnxruntime(model, feeds)
    assert out.tolist() == [[[[-128, -128, -128], [-128, -100, -100], [-128, -100, -100]]]]


@pytest.mark.parametrize("attrs, match", [
    ({"ceil_mode": 1}, "ceil_mode"),
    ({"auto_pad": "SAME_UPPER"}, "auto_pad"),
    ({"storage_order": 1}, "storage_order"),
    ({"pads": [2, 0, 0, 0]}, "smaller than the kernel"),
])
def test_max_pool_refused_at_load(attrs, match):
    model, _ = one_node_model("MaxPool", {"x": np.zeros((1, 1, 4, 4), np.uint8)}, np.uint8,
                              attrs={"kernel_shape": [2, 2], **attrs})
    with pytest.raises(UnsupportedNodeError, match=f"maxpool_node.*MaxPool.*{match}"):
        Simulator(model)


def test_max_pool_indices_output_refused():
    model, _ = one_node_model("MaxPool", {"x": np.zeros((1, 1, 4, 4), np.uint8)}, np.uint8,
                              attrs={"kernel_shape": [2, 2]})
    model.graph.node[0].output.append("indices")
    with pytest.raises(UnsupportedNodeError, match="first output"):
        Simulator(model)


@pytest.mark.parametrize("bad", [np.nan, -np.inf])
def test_max_pool_nan_and_negative_infinity_refused(bad):
    x = np.zeros((1, 1, 3, 3), np.float32)
    x[0, 0, 1, 1] = bad
    model, feeds = one_node_model("MaxPool", {"x": x}, np.float32, attrs={"kernel_shape": [2, 2]})
    with pytest.raises(NodeExecutionError, match="NaN or -inf"):
        Simulator(model).run(None, feeds)


@pytest.mark.parametrize("axis", [-4, -3, -1, 0, 1, 2, 3, 4])
def test_flatten_matches_onnxruntime(axis):
    x = np.arange(120, dtype=np.uint8).reshape(2, 3, 4, 5)
    model, feeds = one_node_model("Flatten", {"x": x}, np.uint8, attrs={"axis": axis})
    assert_matches_onnxruntime(model, feeds)


@pytest.mark.parametrize("shape", [[0, -1], [6, 20], [-1], [2, 0, 4, 5], [0, 0, -1, 1]])
def test_reshape_matches_onnxruntime(shape):
    x = np.arange(120, dtype=np.int32).reshape(2, 3, 4, 5)
    model, feeds = one_node_model("Reshape", {"x": x, "shape": np.array(shape, np.int64)}, np.int32,
                                  constants=("shape",))
    assert_matches_onnxruntime(model, feeds)


def test_reshape_shape_must_be_an_initializer():
    model, _ = one_node_model("Reshape", {"x": np.zeros(4, np.int32), "shape": np.array([2, 2], np.int64)}, np.int32)
    with pytest.raises(UnsupportedNodeError, match="must be an initializer"):
        Simulator(model)


def test_reshape_allowzero_refused():
    model, _ = one_node_model("Reshape", {"x": np.zeros(4, np.int32), "shape": np.array([2, 2], np.int64)}, np.int32,
                              constants=("shape",), attrs={"allowzero": 1})
    with pytest.raises(UnsupportedNodeError, match="allowzero"):
        Simulator(model)


@pytest.mark.parametrize("dtype", [np.int8, np.uint64, np.float64])
def test_identity_matches_onnxruntime(dtype):
    model, feeds = one_node_model("Identity", {"x": np.arange(6, dtype=dtype).reshape(3, 2)}, dtype)
    assert_matches_onnxruntime(model, feeds)
