"""1-D ConvInteger and MaxPool (what Conv1d / MaxPool1d / AvgPool1d export), and the end padding
ceil mode exports as: fuzzed against onnxruntime on random single-node graphs, and checked against
the ONNX specification's N-D rule through an independent direct loop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fpga_sim import Simulator, UnsupportedNodeError
from tests.test_sim_support import assert_identical, assert_matches_onnxruntime, int_values, one_node_model


@st.composite
def conv1d_cases(draw):
    group = draw(st.sampled_from([1, 1, 2]))
    c_in = group * draw(st.integers(1, 4))
    c_out = group * draw(st.integers(1, 4))
    k, s, d = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pads = [draw(st.integers(0, 3)), draw(st.integers(0, 3))]  # begin, end: ceil mode pads the end more
    length = draw(st.integers(1, 16))
    assume(length + sum(pads) >= d * (k - 1) + 1)
    x_dtype = draw(st.sampled_from([np.uint8, np.int8]))
    x = draw(hnp.arrays(x_dtype, (draw(st.integers(1, 3)), c_in, length), elements=int_values(x_dtype)))
    w = draw(hnp.arrays(np.int8, (c_out, c_in // group, k), elements=int_values(np.int8)))
    x_zp = np.array(draw(int_values(x_dtype)), x_dtype)
    attrs = {"group": group, "strides": [s], "dilations": [d], "pads": pads, "kernel_shape": [k]}
    return x, w, x_zp, attrs


def reference_conv1d(x, w, x_zp, group, pads, stride, dilation):
    """The specification's rule on one axis, in Python integers: out[o] sums (x[t] - x_zp) w over the
    taps t = o * s - pads[0] + i * d inside the input (padded taps hold x_zp: they add 0)."""
    n, c, length = x.shape
    out_c, c_g, k = w.shape
    out_len = (length + pads[0] + pads[1] - dilation * (k - 1) - 1) // stride + 1
    out = np.zeros((n, out_c, out_len), np.int64)
    for o in range(out_c):
        g = o // (out_c // group)
        for p in range(out_len):
            for ci in range(c_g):
                for i in range(k):
                    t = p * stride - pads[0] + i * dilation
                    if 0 <= t < length:
                        out[:, o, p] += (x[:, g * c_g + ci, t].astype(np.int64) - int(x_zp)) * int(w[o, ci, i])
    return out.astype(np.int32)


@settings(deadline=None, max_examples=100)
@given(case=conv1d_cases())
def test_conv_integer_1d_matches_onnxruntime_and_the_specification(case):
    x, w, x_zp, attrs = case
    model, feeds = one_node_model("ConvInteger", {"x": x, "w": w, "x_zp": x_zp}, np.int32, constants=("w", "x_zp"),
                                  attrs=attrs)
    got = assert_matches_onnxruntime(model, feeds)
    expected = reference_conv1d(x, w, x_zp, attrs["group"], attrs["pads"], attrs["strides"][0],
                                attrs["dilations"][0])
    assert_identical(got, expected)


@st.composite
def maxpool1d_cases(draw):
    k, s = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    begin = draw(st.integers(0, k - 1))
    end = draw(st.integers(0, k - 1))  # < kernel: the exporter's ceil-mode end padding is at most k - 1 - p
    length = draw(st.integers(1, 16))
    assume(length + begin + end >= k)
    dtype = draw(st.sampled_from([np.uint8, np.int8]))
    x = draw(hnp.arrays(dtype, (draw(st.integers(1, 3)), draw(st.integers(1, 4)), length), elements=int_values(dtype)))
    out = (length + begin + end - k) // s + 1
    # every window must hold a real element (the simulator refuses all-padding windows, see simulator.md)
    assume(all(any(0 <= o * s - begin + i < length for i in range(k)) for o in range(out)))
    return x, {"kernel_shape": [k], "strides": [s], "pads": [begin, end]}


@settings(deadline=None, max_examples=100)
@given(case=maxpool1d_cases())
def test_maxpool_1d_matches_onnxruntime_and_the_specification(case):
    x, attrs = case
    model, feeds = one_node_model("MaxPool", {"X": x}, x.dtype, attrs=attrs)
    got = assert_matches_onnxruntime(model, feeds)
    (k,), (s,), (begin, _) = attrs["kernel_shape"], attrs["strides"], attrs["pads"]
    expected = np.stack([np.max(x[:, :, [t for t in range(o * s - begin, o * s - begin + k) if 0 <= t < x.shape[2]]],
                                axis=2) for o in range(got.shape[2])], axis=2)
    assert_identical(got, expected)


def test_a_1d_attribute_of_the_wrong_length_is_refused_by_name():
    x = np.zeros((1, 1, 8), np.uint8)
    model, _ = one_node_model("MaxPool", {"X": x}, np.uint8, attrs={"kernel_shape": [2], "pads": [0, 0, 0, 0]})
    with pytest.raises(UnsupportedNodeError, match="pads must have 2 values for a 1-D window"):
        Simulator(model)
