"""Add, Sub, Mul and BitShift: numpy broadcasting, same-dtype inputs, wrap-around."""

from __future__ import annotations

import numpy as np

from fpga_sim.numeric import NUMERIC_DTYPES, UNSIGNED_DTYPES
from fpga_sim.ops.base import Attr, Input, Op


def result_buffer(out: np.ndarray | None, *operands: np.ndarray) -> np.ndarray | None:
    """``out`` if the broadcast result has exactly its shape (dtypes already match), else None."""
    if out is None or np.broadcast_shapes(*(o.shape for o in operands)) != out.shape:
        return None
    return out


class Add(Op):
    """a + b; integers wrap modulo 2**bits, floats follow IEEE."""

    op_type = "Add"
    inputs = (Input("A", NUMERIC_DTYPES), Input("B", NUMERIC_DTYPES))
    same_dtype = (("A", "B"),)
    reuses_input = 0

    def _run(self, A, B, out=None):
        return np.add(A, B, out=result_buffer(out, A, B))


class Sub(Op):
    """a - b; integers wrap modulo 2**bits, floats follow IEEE."""

    op_type = "Sub"
    inputs = (Input("A", NUMERIC_DTYPES), Input("B", NUMERIC_DTYPES))
    same_dtype = (("A", "B"),)
    reuses_input = 0

    def _run(self, A, B, out=None):
        return np.subtract(A, B, out=result_buffer(out, A, B))


class Mul(Op):
    """a * b; integers wrap modulo 2**bits, floats follow IEEE."""

    op_type = "Mul"
    inputs = (Input("A", NUMERIC_DTYPES), Input("B", NUMERIC_DTYPES))
    same_dtype = (("A", "B"),)
    reuses_input = 0

    def _run(self, A, B, out=None):
        return np.multiply(A, B, out=result_buffer(out, A, B))


class BitShift(Op):
    """Logical shift of unsigned integers; a shift by >= the bit width gives 0.

    (The specification does not say; 0 is what onnxruntime and numpy produce.)
    """

    op_type = "BitShift"
    inputs = (Input("X", UNSIGNED_DTYPES), Input("Y", UNSIGNED_DTYPES))
    attributes = {"direction": Attr("str", choices=("LEFT", "RIGHT"))}
    same_dtype = (("X", "Y"),)
    reuses_input = 0

    def _run(self, X, Y, *, direction, out=None):
        shift = np.left_shift if direction == "LEFT" else np.right_shift
        return shift(X, Y, out=result_buffer(out, X, Y))
