"""MatMulInteger (2-D): int32 (N, C) = sum_k (a - a_zp) * (b - b_zp)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fpga_sim.numeric import INT8_DTYPES
from fpga_sim.ops.base import Input, Known, Op, is_scalar_shape
from fpga_sim.ops.integer_gemm import CHUNK_BYTES, CentredWeights, scalar_int, store_int32


def _matmul_weights(b: np.ndarray, b_zero_point: np.ndarray | None) -> CentredWeights:
    columns = b.shape[1]
    zero_point = None
    if b_zero_point is not None:
        if b_zero_point.size not in (1, columns) or b_zero_point.ndim > 1:
            raise ValueError(f"b_zero_point must be a scalar or have {columns} elements")
        zero_point = np.broadcast_to(b_zero_point.reshape(-1), (columns,))
    return CentredWeights.from_rows(b.T, zero_point)


class MatMulInteger(Op):
    """2-D MatMulInteger, exact (see ``integer_gemm``); a_zero_point must be a scalar.

    b_zero_point may be a scalar or per column (1-D of C). Rows of a are
    processed in blocks so the float copy of a stays bounded.
    """

    op_type = "MatMulInteger"
    inputs = (
        Input("A", INT8_DTYPES),
        Input("B", INT8_DTYPES),
        Input("a_zero_point", INT8_DTYPES, optional=True, scalar=True),
        Input("b_zero_point", INT8_DTYPES, optional=True),
    )
    same_dtype = (("A", "a_zero_point"), ("B", "b_zero_point"))

    def prepare(self, known: Sequence[Known | None], **attrs: Any) -> None:
        a, b, _, b_zp = known
        for name, info in (("A", a), ("B", b)):
            if info is not None and info.shape is not None and len(info.shape) != 2:
                raise ValueError(f"only 2-D MatMulInteger is supported ({name} has rank {len(info.shape)})")
        if b_zp is not None and b_zp.shape is not None and not (is_scalar_shape(b_zp.shape) or len(b_zp.shape) == 1):
            raise ValueError("b_zero_point must be a scalar or 1-D (per column)")
        self.weights = None
        if b.value is not None and (b_zp is None or b_zp.value is not None):
            self.weights = _matmul_weights(b.value, None if b_zp is None else b_zp.value)

    def _run(self, A, B, a_zero_point=None, b_zero_point=None):
        if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
            raise ValueError(f"need 2-D (N, K) x (K, C), got {A.shape} x {B.shape}")
        weights = self.weights or _matmul_weights(B, b_zero_point)
        a_zp = scalar_int(a_zero_point)
        acc, bound = weights.accumulator(A.dtype, a_zp)
        right = weights.matrix.T.astype(acc)  # (K, C)
        out = np.empty((A.shape[0], B.shape[1]), np.int32)
        rows = max(1, CHUNK_BYTES // (max(1, A.shape[1]) * acc.itemsize))
        for start in range(0, A.shape[0], rows):
            left = np.subtract(A[start : start + rows], acc.type(a_zp), dtype=acc)
            store_int32(out[start : start + rows], left @ right, bound)
        return out
