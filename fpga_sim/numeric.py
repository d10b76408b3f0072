"""Shared integer helpers: dtype tables, rounding, saturation, exact GEMM dtype.

The names follow the integer contract (``round_half_to_even``, ``saturate``) so
that the simulator, the exporter and the C++ kernels talk about the same rules.

>>> import numpy as np
>>> round_half_to_even(np.array([0.5, 1.5, -2.5], np.float32))
array([ 0.,  2., -2.], dtype=float32)
>>> saturate(np.array([-300.0, 7.0, 300.0]), np.dtype(np.int8))
array([-128,    7,  127], dtype=int8)
>>> exact_accumulator_dtype(9 * 128 * 255)
dtype('float32')
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

INT_DTYPES = frozenset(
    np.dtype(t)
    for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64)
)
UNSIGNED_DTYPES = frozenset(d for d in INT_DTYPES if d.kind == "u")
FLOAT_DTYPES = frozenset({np.dtype(np.float32), np.dtype(np.float64)})
NUMERIC_DTYPES = INT_DTYPES | FLOAT_DTYPES
INT8_DTYPES = frozenset({np.dtype(np.int8), np.dtype(np.uint8)})

# ONNX TensorProto element types the simulator handles, both ways.
ONNX_TO_NUMPY = {
    TensorProto.INT8: np.dtype(np.int8),
    TensorProto.UINT8: np.dtype(np.uint8),
    TensorProto.INT16: np.dtype(np.int16),
    TensorProto.UINT16: np.dtype(np.uint16),
    TensorProto.INT32: np.dtype(np.int32),
    TensorProto.UINT32: np.dtype(np.uint32),
    TensorProto.INT64: np.dtype(np.int64),
    TensorProto.UINT64: np.dtype(np.uint64),
    TensorProto.FLOAT: np.dtype(np.float32),
    TensorProto.DOUBLE: np.dtype(np.float64),
}
NUMPY_TO_ONNX = {v: k for k, v in ONNX_TO_NUMPY.items()}

# Largest integer magnitude M such that every integer in [-M, M] is exact.
_EXACT_INT_LIMIT = {np.dtype(np.float32): 2**24, np.dtype(np.float64): 2**53}


def onnx_dtype_name(elem_type: int) -> str:
    """A readable name for an ONNX element type, e.g. ``'uint8'`` or ``'FLOAT16'``."""
    if elem_type in ONNX_TO_NUMPY:
        return ONNX_TO_NUMPY[elem_type].name
    return TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() else str(elem_type)


def dtype_range(dtype: np.dtype) -> tuple[int, int]:
    """The inclusive ``(min, max)`` of an integer dtype, as Python ints."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def round_half_to_even(values: np.ndarray) -> np.ndarray:
    """Round to the nearest integer, ties to even (IEEE default, ``std::nearbyint``)."""
    return np.rint(values)


def saturate(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Clamp integral ``values`` to the range of integer ``dtype`` and convert.

    ``values`` must already hold integers (float arrays from
    :func:`round_half_to_even` included); NaN is not allowed.
    """
    low, high = dtype_range(dtype)
    return np.clip(values, low, high).astype(dtype)


def max_abs_centered(dtype: np.dtype, zero_point: int | None) -> int:
    """``max |x - zero_point|`` over every value ``x`` of integer ``dtype``.

    With ``zero_point=None`` (unknown at load time) the worst zero point of the
    dtype is assumed, i.e. the full span of the dtype.
    """
    low, high = dtype_range(dtype)
    if zero_point is None:
        return high - low
    return max(zero_point - low, high - zero_point)


def exact_accumulator_dtype(bound: int) -> np.dtype:
    """The cheapest dtype in which a sum of integer products is computed exactly.

    ``bound`` must be an upper bound of ``sum_k |a_k| * |b_k|`` over the terms of
    every dot product. Proof of exactness, for float32 (p = 24) and float64
    (p = 53): each term a_k * b_k is an integer with |a_k * b_k| <= bound; every
    partial sum formed by the GEMM, *in any order and any blocking* (BLAS may
    reorder, split and use FMA), is a sum over a subset of the terms, hence an
    integer of magnitude <= bound. If bound < 2**p, every such integer (and every
    operand, product and FMA result) is representable exactly, so no operation
    ever rounds and the float result equals the exact integer sum. Otherwise
    int64 is used; it is exact while bound < 2**63.
    """
    for dtype, limit in _EXACT_INT_LIMIT.items():
        if bound < limit:
            return dtype
    if bound < 2**63:
        return np.dtype(np.int64)
    raise ValueError(f"integer dot product bound {bound} does not fit in int64")

