"""Add, Sub, Mul, BitShift, Clip and Cast against onnxruntime (and hand-computed values)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto

from tests.test_sim_support import assert_matches_onnxruntime, int_values, one_node_model

from fpga_sim import NodeExecutionError, Simulator, UnsupportedNodeError
from fpga_sim.numeric import NUMPY_TO_ONNX

INT_TYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
NUMERIC_TYPES = INT_TYPES + [np.float32, np.float64]
UNSIGNED = [np.uint8, np.uint16, np.uint32, np.uint64]


def values(dtype):
    if np.dtype(dtype).kind == "f":
        return st.floats(width=np.dtype(dtype).itemsize * 8, allow_nan=True, allow_infinity=True)
    return int_values(dtype)


# -- Add / Sub / Mul ------------------------------------------------------------


@settings(deadline=None, max_examples=100)
@given(data=st.data(), op=st.sampled_from(["Add", "Sub", "Mul"]), dtype=st.sampled_from(NUMERIC_TYPES),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4))
def test_arithmetic_matches_onnxruntime(data, op, dtype, shapes):
    a = data.draw(hnp.arrays(dtype, shapes.input_shapes[0], elements=values(dtype)))
    b = data.draw(hnp.arrays(dtype, shapes.input_shapes[1], elements=values(dtype)))
    constants = data.draw(st.sampled_from([(), ("b",)]))
    model, feeds = one_node_model(op, {"a": a, "b": b}, dtype, constants=constants)
    assert_matches_onnxruntime(model, feeds)


@pytest.mark.parametrize("op, a, b, expected", [
    ("Add", np.array([127, -128], np.int8), np.array([1, -1], np.int8), [-128, 127]),
    ("Sub", np.array([0], np.uint8), np.array([1], np.uint8), [255]),
    ("Mul", np.array([2**62], np.int64), np.array([4], np.int64), [0]),
    ("Mul", np.array([2**32 + 3], np.uint64), np.array([2**32], np.uint64), [3 * 2**32]),
])
def test_arithmetic_wraps_hand_computed(op, a, b, expected):
    model, feeds = one_node_model(op, {"a": a, "b": b}, a.dtype)
    assert assert_matches_onnxruntime(model, feeds).tolist() == expected


def test_mixed_dtypes_refused_at_load():
    model, _ = one_node_model("Add", {"a": np.zeros(2, np.int32), "b": np.zeros(2, np.int64)}, np.int64)
    with pytest.raises(UnsupportedNodeError, match="add_node.*share one dtype"):
        Simulator(model)


# -- BitShift -------------------------------------------------------------------


@settings(deadline=None, max_examples=80)
@given(data=st.data(), dtype=st.sampled_from(UNSIGNED), direction=st.sampled_from(["LEFT", "RIGHT"]),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4))
def test_bit_shift_matches_onnxruntime(data, dtype, direction, shapes):
    bits = np.dtype(dtype).itemsize * 8
    x = data.draw(hnp.arrays(dtype, shapes.input_shapes[0], elements=int_values(dtype)))
    y = data.draw(hnp.arrays(dtype, shapes.input_shapes[1], elements=st.integers(0, bits + 2)))
    model, feeds = one_node_model("BitShift", {"x": x, "s": y}, dtype, attrs={"direction": direction})
    assert_matches_onnxruntime(model, feeds)


def test_bit_shift_hand_computed():
    x = np.array([2**63 + 5, 1, 255], np.uint64)
    y = np.array([1, 63, 64], np.uint64)
    model, feeds = one_node_model("BitShift", {"x": x, "s": y}, np.uint64, attrs={"direction": "RIGHT"})
    assert assert_matches_onnxruntime(model, feeds).tolist() == [2**62 + 2, 0, 0]


def test_bit_shift_signed_refused_and_direction_checked():
    model, _ = one_node_model("BitShift", {"x": np.zeros(2, np.int64), "s": np.zeros(2, np.int64)}, np.int64,
                              attrs={"direction": "RIGHT"})
    with pytest.raises(UnsupportedNodeError, match="dtype int64"):
        Simulator(model)
    model, _ = one_node_model("BitShift", {"x": np.zeros(2, np.uint8), "s": np.zeros(2, np.uint8)}, np.uint8,
                              attrs={"direction": "UP"})
    with pytest.raises(UnsupportedNodeError, match="direction"):
        Simulator(model)


# -- Clip -----------------------------------------------------------------------

CLIP_TYPES = [np.int8, np.uint8, np.int32, np.uint32, np.int64, np.uint64, np.float32, np.float64]


@settings(deadline=None, max_examples=100)
@given(data=st.data(), dtype=st.sampled_from(CLIP_TYPES), which=st.sampled_from(["both", "min", "max", "none"]),
       constants=st.booleans())
def test_clip_matches_onnxruntime(data, dtype, which, constants):
    finite = (st.floats(width=np.dtype(dtype).itemsize * 8, allow_nan=False) if np.dtype(dtype).kind == "f"
              else int_values(dtype))
    x = data.draw(hnp.arrays(dtype, st.integers(1, 20), elements=values(dtype)))
    low = np.array(data.draw(finite), dtype) if which in ("both", "min") else None
    high = np.array(data.draw(finite), dtype) if which in ("both", "max") else None
    model, feeds = one_node_model("Clip", {"x": x, "min": low, "max": high}, dtype,
                                  constants=("min", "max") if constants else ())
    assert_matches_onnxruntime(model, feeds)


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int64])
def test_clip_hand_computed(dtype):
    # onnxruntime has no int16 Clip; the expectation is written out.
    x = np.array([0, 5, 100, 7], dtype)
    model, feeds = one_node_model("Clip", {"x": x, "min": np.array(3, dtype), "max": np.array(9, dtype)}, dtype)
    assert Simulator(model).run(None, feeds)[0].tolist() == [3, 5, 9, 7]
    model, feeds = one_node_model("Clip", {"x": x, "min": np.array(9, dtype), "max": np.array(3, dtype)}, dtype)
    assert Simulator(model).run(None, feeds)[0].tolist() == [3, 3, 3, 3]  # min > max: all max


def test_clip_non_scalar_bound_refused():
    model, _ = one_node_model("Clip", {"x": np.zeros(3, np.int64), "min": np.zeros(3, np.int64)}, np.int64,
                              constants=("min",))
    with pytest.raises(UnsupportedNodeError, match="scalar"):
        Simulator(model)


# -- Cast -----------------------------------------------------------------------

CAST_TYPES = INT_TYPES + [np.float32, np.float64]


def inner_bound(limit: int, dtype: np.dtype, lower: bool) -> tuple[float, bool]:
    """The float of ``dtype`` closest to the integer ``limit`` on the inside, and whether to exclude it."""
    value = np.array(float(limit), dtype)
    if float(value) == limit:
        return float(value), True
    if (float(value) > limit) != lower:  # rounded outwards: step back inside
        value = np.nextafter(value, np.array(np.inf if lower else -np.inf, dtype))
    return float(value), False


def cast_sources(source, target):
    """Values of ``source`` whose cast to ``target`` the specification defines."""
    source, target = np.dtype(source), np.dtype(target)
    if source.kind != "f" or target.kind == "f":
        return values(source)
    info = np.iinfo(target)  # the truncation must land in [min, max]: x in (min - 1, max + 1)
    low, exclude_low = inner_bound(int(info.min) - 1, source, lower=True)
    high, exclude_high = inner_bound(int(info.max) + 1, source, lower=False)
    return st.floats(low, high, exclude_min=exclude_low, exclude_max=exclude_high, width=source.itemsize * 8)


@settings(deadline=None, max_examples=100)
@given(data=st.data(), source=st.sampled_from(CAST_TYPES), target=st.sampled_from(CAST_TYPES))
def test_cast_matches_onnxruntime(data, source, target):
    x = data.draw(hnp.arrays(source, st.integers(1, 20), elements=cast_sources(source, target)))
    model, feeds = one_node_model("Cast", {"x": x}, target, attrs={"to": NUMPY_TO_ONNX[np.dtype(target)]})
    assert_matches_onnxruntime(model, feeds)


@pytest.mark.parametrize("source, target, x, expected", [
    (np.int32, np.int8, [200, -129, 383], [-56, 127, 127]),
    (np.int64, np.uint8, [-1, 256, 257], [255, 0, 1]),
    (np.float32, np.int32, [-2.9, 2.9, -0.5], [-2, 2, 0]),
    (np.float64, np.uint8, [255.9, -0.9], [255, 0]),
    (np.int64, np.float32, [2**24 + 1, 2**24 + 3], [2**24, 2**24 + 4]),
])
def test_cast_hand_computed(source, target, x, expected):
    model, feeds = one_node_model("Cast", {"x": np.array(x, source)}, target,
                                  attrs={"to": NUMPY_TO_ONNX[np.dtype(target)]})
    assert assert_matches_onnxruntime(model, feeds).tolist() == expected


@pytest.mark.parametrize("x, target", [
    (np.nan, np.int32), (np.inf, np.int64), (-1.0, np.uint8), (128.0, np.int8), (2.0**63, np.int64),
])
def test_cast_undefined_float_to_int_refused(x, target):
    model, feeds = one_node_model("Cast", {"x": np.array([1.0, x], np.float32)}, target,
                                  attrs={"to": NUMPY_TO_ONNX[np.dtype(target)]})
    with pytest.raises(NodeExecutionError, match="cast_node.*undefined"):
        Simulator(model).run(None, feeds)


def test_cast_to_unsupported_type_refused():
    model, _ = one_node_model("Cast", {"x": np.zeros(2, np.float32)}, np.float32, attrs={"to": TensorProto.FLOAT16})
    with pytest.raises(UnsupportedNodeError, match="FLOAT16"):
        Simulator(model)
