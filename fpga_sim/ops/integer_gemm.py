"""Exact integer dot products computed with float GEMMs where that is provably exact.

ConvInteger and MatMulInteger both reduce to ``sum_k (x_k - x_zp) * (w_k - w_zp)``.
The weights are centred once (in int64, exact) and the worst case of every dot
product is bounded before choosing the arithmetic:

    bound = max over output channels c of  sum_k |w[c,k] - w_zp[c]|
            * max over every value v of x's dtype of |v - x_zp|

Every partial sum a GEMM can form, in any order or blocking, is a sum of a subset
of the terms, so its magnitude is <= bound. :func:`fpga_sim.numeric.exact_accumulator_dtype`
picks float32 when bound < 2**24, float64 when bound < 2**53 (every such integer
is exactly representable, so no operation rounds), else int64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpga_sim.numeric import exact_accumulator_dtype, max_abs_centered

CHUNK_BYTES = 32 * 2**20
"""Upper bound of the im2col / row-block buffer per chunk (memory stays bounded)."""


@dataclass(frozen=True)
class CentredWeights:
    """Integer weights minus their zero point, laid out as ``(..., Cout, K)``."""

    matrix: np.ndarray
    """int64, ``(..., Cout, K)``: one row of K taps per output channel."""
    abs_sum: int
    """max over output channels of sum_k |w - w_zp| (0 for all-zero weights)."""

    @classmethod
    def from_rows(cls, rows: np.ndarray, zero_point: np.ndarray | None) -> "CentredWeights":
        """``rows`` is ``(..., Cout, K)``; ``zero_point`` is scalar or ``(..., Cout)``."""
        matrix = rows.astype(np.int64)
        if zero_point is not None:
            matrix -= np.asarray(zero_point, np.int64)[..., None]
        abs_sum = int(np.abs(matrix).sum(axis=-1).max(initial=0))
        return cls(matrix, abs_sum)

    def accumulator(self, x_dtype: np.dtype, x_zero_point: int) -> tuple[np.dtype, int]:
        """The exact arithmetic dtype for inputs of ``x_dtype`` and the bound proving it."""
        bound = self.abs_sum * max_abs_centered(x_dtype, x_zero_point)
        return exact_accumulator_dtype(bound), bound


def scalar_int(value: np.ndarray | None) -> int:
    """The integer in a scalar (0-d or one-element) tensor; 0 for an absent input."""
    return 0 if value is None else int(value.reshape(-1)[0])


def store_int32(destination: np.ndarray, exact: np.ndarray, bound: int) -> None:
    """Write exact integer sums into an int32 array, wrapping modulo 2**32 as ONNX does."""
    if bound >= 2**31:
        exact = exact.astype(np.int64).astype(np.int32)
    np.copyto(destination, exact, casting="unsafe")
