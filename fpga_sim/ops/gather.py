"""Gather (opset 13+): entries of ``data`` along ``axis`` picked by integer ``indices``.

Output shape ``data.shape[:axis] + indices.shape + data.shape[axis + 1:]``. An index may be
negative (counted from the end, as the specification allows) and must lie in ``[-s, s - 1]``,
``s = data.shape[axis]``; one outside is refused (the specification calls it an error).
Foldline's exporter uses it for lookup tables: a 1-D table indexed by the integers.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fpga_sim.numeric import NUMERIC_DTYPES
from fpga_sim.ops.base import Attr, Input, Known, Op

INDEX_DTYPES = frozenset({np.dtype(np.int32), np.dtype(np.int64)})


def _axis(axis: int, rank: int) -> int:
    if rank < 1:
        raise ValueError("data must have rank >= 1")
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} out of range for data of rank {rank}")
    return axis % rank


def _check_indices(indices: np.ndarray, size: int) -> None:
    if indices.size and (int(indices.min()) < -size or int(indices.max()) >= size):
        bad = indices[(indices < -size) | (indices >= size)].ravel()[0]
        raise ValueError(f"index {int(bad)} is out of range [{-size}, {size - 1}]")


class Gather(Op):
    """``data`` taken along ``axis`` at ``indices`` (negative ones count from the end)."""

    op_type = "Gather"
    inputs = (Input("data", NUMERIC_DTYPES), Input("indices", INDEX_DTYPES))
    attributes = {"axis": Attr("int", 0)}

    def prepare(self, known: Sequence[Known | None], **attrs: Any) -> None:
        data, indices = known
        if data is None or data.shape is None:
            return
        axis = _axis(attrs["axis"], len(data.shape))
        if indices is not None and indices.value is not None and data.shape[axis] is not None:
            _check_indices(indices.value, data.shape[axis])

    def _run(self, data, indices, *, axis):
        axis = _axis(axis, data.ndim)
        size = data.shape[axis]
        _check_indices(indices, size)
        return np.take(data, indices, axis=axis)  # in range (checked): np.take counts negatives from the end
