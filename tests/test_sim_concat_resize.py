"""Concat and Resize (nearest, integer scales) against onnxruntime on random single-node graphs,
and the refusals of everything else, by name."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import helper

from tests.test_sim_support import assert_matches_onnxruntime, int_values, one_node_model, value_info

from fpga_sim import Simulator, UnsupportedNodeError

CONCAT_DTYPES = [np.int8, np.uint8, np.int32, np.int64, np.uint64, np.float32, np.float64]


def _elements(dtype):
    if np.dtype(dtype).kind == "f":
        return st.floats(-1e6, 1e6, width=np.dtype(dtype).itemsize * 8)
    return int_values(dtype)


@st.composite
def concat_cases(draw):
    dtype = draw(st.sampled_from(CONCAT_DTYPES))
    rank = draw(st.integers(1, 4))
    shape = [draw(st.integers(1, 4)) for _ in range(rank)]
    axis = draw(st.integers(-rank, rank - 1))
    arrays = {}
    for i in range(draw(st.integers(1, 4))):
        shape_i = list(shape)
        shape_i[axis] = draw(st.integers(1, 4))
        arrays[f"x{i}"] = draw(hnp.arrays(dtype, tuple(shape_i), elements=_elements(dtype)))
    return arrays, axis


@settings(deadline=None, max_examples=100)
@given(case=concat_cases())
def test_concat_matches_onnxruntime(case):
    arrays, axis = case
    dtype = next(iter(arrays.values())).dtype
    model, feeds = one_node_model("Concat", arrays, dtype, attrs={"axis": axis})
    out = assert_matches_onnxruntime(model, feeds)
    assert np.array_equal(out, np.concatenate(list(arrays.values()), axis=axis))  # and the plain definition


def test_concat_with_an_initializer_and_a_repeated_input():
    x = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    model, feeds = one_node_model("Concat", {"x": x, "c": np.full((1, 1, 3), 7, np.uint8)}, np.uint8,
                                  constants=("c",), attrs={"axis": 1})
    model.graph.node[0].input.append("x")  # x twice
    out = assert_matches_onnxruntime(model, feeds)
    assert out[0, :, 0].tolist() == [0, 3, 7, 0, 3]


@pytest.mark.parametrize("inputs, attrs, match", [
    ({"a": np.zeros((2, 3), np.uint8), "b": np.zeros((2, 3), np.int8)}, {"axis": 1}, "one dtype"),
    ({"a": np.zeros((2, 3), np.uint8), "b": np.zeros((3, 3), np.uint8)}, {"axis": 1}, "differ in dimension 0"),
    ({"a": np.zeros((2, 3), np.uint8), "b": np.zeros((2, 3, 1), np.uint8)}, {"axis": 1}, "one rank"),
    ({"a": np.zeros((2, 3), np.uint8)}, {"axis": 2}, "axis 2 is out of range"),
    ({"a": np.zeros((2, 3), np.uint8)}, {}, "missing required attribute 'axis'"),
])
def test_concat_refused_at_load_by_name(inputs, attrs, match):
    model, _ = one_node_model("Concat", inputs, np.uint8, attrs=attrs)
    with pytest.raises(UnsupportedNodeError, match=f"concat_node.*Concat.*{match}"):
        Simulator(model)


def resize_model(x: np.ndarray, scales, **attrs):
    nearest = dict(mode="nearest", nearest_mode="floor", coordinate_transformation_mode="asymmetric")
    model, feeds = one_node_model("Resize", {"x": x, "roi": None, "scales": np.asarray(scales, np.float32)}, x.dtype,
                                  constants=("scales",), attrs={**nearest, **attrs})
    return model, feeds


@st.composite
def resize_cases(draw):
    dtype = draw(st.sampled_from([np.int8, np.uint8]))
    x = draw(hnp.arrays(dtype, tuple(draw(st.integers(1, 5)) for _ in range(4)), elements=int_values(dtype)))
    scales = [draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 5))]
    return x, scales


@settings(deadline=None, max_examples=100)
@given(case=resize_cases())
def test_nearest_resize_matches_onnxruntime(case):
    x, scales = case
    model, feeds = resize_model(x, scales)
    out = assert_matches_onnxruntime(model, feeds)
    expected = x
    for axis, s in enumerate(scales):  # hand-written: y[..., i, ...] = x[..., i // s, ...]
        expected = np.take(expected, np.arange(expected.shape[axis] * s) // s, axis=axis)
    assert np.array_equal(out, expected)


def test_resize_large_odd_factor_is_exact():
    x = np.arange(250, dtype=np.uint8).reshape(1, 1, 2, 125)
    model, feeds = resize_model(x, [1, 1, 7, 13])
    assert assert_matches_onnxruntime(model, feeds).shape == (1, 1, 14, 1625)


@pytest.mark.parametrize("scales, attrs, match", [
    ([1, 1, 1.5, 2], {}, "must be integers >= 1"),
    ([1, 1, 0.5, 1], {}, "must be integers >= 1"),
    ([1, 1, 2], {}, "3 entries for a rank-4 X"),
    ([1, 1, 2, 2], {"mode": "linear"}, "mode='linear' is not supported"),
    ([1, 1, 2, 2], {"nearest_mode": "round_prefer_floor"}, "nearest_mode='round_prefer_floor'"),
    ([1, 1, 2, 2], {"coordinate_transformation_mode": "half_pixel"}, "coordinate_transformation_mode='half_pixel'"),
    ([1, 1, 2, 2], {"antialias": 1}, "antialias"),
])
def test_resize_refused_at_load_by_name(scales, attrs, match):
    model, _ = resize_model(np.zeros((1, 1, 2, 2), np.uint8), scales, **attrs)
    with pytest.raises(UnsupportedNodeError, match=f"resize_node.*Resize.*{match}"):
        Simulator(model)


def test_resize_defaults_are_the_specifications_and_refused():
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="r")  # half_pixel, round_prefer_floor
    model, _ = resize_model(np.zeros((1, 1, 2, 2), np.uint8), [1, 1, 2, 2])
    model.graph.node[0].CopyFrom(node)
    with pytest.raises(UnsupportedNodeError, match="node 'r' .*nearest_mode='round_prefer_floor'"):
        Simulator(model)


def test_resize_sizes_and_roi_refused():
    x = np.zeros((1, 1, 2, 2), np.uint8)
    model, _ = one_node_model("Resize", {"x": x, "roi": None, "scales": None, "sizes": np.array([1, 1, 4, 4])},
                              np.uint8, constants=("sizes",),
                              attrs=dict(mode="nearest", nearest_mode="floor",
                                         coordinate_transformation_mode="asymmetric"))
    with pytest.raises(UnsupportedNodeError, match="roi and sizes must be absent"):
        Simulator(model)
    model, _ = resize_model(x, [1, 1, 2, 2])
    model.graph.node[0].input[1] = "roi"
    model.graph.input.append(value_info("roi", np.float32, [8]))
    with pytest.raises(UnsupportedNodeError, match="roi and sizes must be absent"):
        Simulator(model)
