"""Cast between the integer types, float32 and float64 (ONNX Cast semantics)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fpga_sim.numeric import NUMERIC_DTYPES, ONNX_TO_NUMPY, dtype_range, onnx_dtype_name
from fpga_sim.ops.base import Attr, Input, Known, Op


class Cast(Op):
    """Integer narrowing wraps (two's complement); float -> int truncates toward zero.

    A float -> int cast of NaN, +-inf or a value whose truncation lies outside
    the target's range is refused: the specification leaves it undefined (and
    onnxruntime's result is the C++ undefined behaviour of the host). Float ->
    float and int -> float round to nearest even; float64 -> float32 overflow
    gives +-inf (IEEE). ``saturate`` only concerns float8 types and is ignored.
    """

    op_type = "Cast"
    inputs = (Input("input", NUMERIC_DTYPES),)
    attributes = {"to": Attr("int"), "saturate": Attr("int", 1, choices=(0, 1))}

    def prepare(self, known: Sequence[Known | None], **attrs: Any) -> None:
        if attrs["to"] not in ONNX_TO_NUMPY:
            raise ValueError(f"cast to {onnx_dtype_name(attrs['to'])} is not supported")

    def _run(self, input, *, to, **_):
        target = ONNX_TO_NUMPY[to]
        if input.dtype.kind == "f" and target.kind in "iu":
            truncated = np.trunc(input)
            low, high = dtype_range(target)
            # low and high + 1 are powers of two (or 0), exact in any float type
            inside = (truncated >= low) & (truncated < float(high + 1))
            if not inside.all():
                bad = input.reshape(-1)[np.flatnonzero(~inside.reshape(-1))[0]]
                raise ValueError(f"cannot cast {bad!r} to {target}: undefined (NaN, inf or out of range)")
        if input.dtype == target:
            return input
        if input.dtype.kind in "iu" and target.kind in "iu" and input.dtype.itemsize == target.itemsize:
            return input.view(target)  # same width: the bits are the result
        return input.astype(target)
