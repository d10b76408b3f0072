"""Concat: inputs of one dtype and rank, equal except along ``axis``, joined in order."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fpga_sim.numeric import NUMERIC_DTYPES
from fpga_sim.ops.base import Attr, Input, Known, Op


def _axis(axis: int, rank: int) -> int:
    """The specification's ``axis`` in ``[-r, r-1]``, counted from the front."""
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


class Concat(Op):
    """``np.concatenate`` along ``axis`` (required; negative counts from the end). Every input
    has the same rank and the same dimensions except along ``axis``; a rank-0 input is refused."""

    op_type = "Concat"
    inputs = (Input("inputs", NUMERIC_DTYPES),)
    variadic = True
    attributes = {"axis": Attr("int")}

    def prepare(self, known: Sequence[Known | None], **attrs: Any) -> None:
        shapes = [k.shape for k in known if k is not None and k.shape is not None]
        if shapes:
            self._check_shapes(shapes, attrs["axis"], unknown_ok=True)

    @staticmethod
    def _check_shapes(shapes, axis: int, unknown_ok: bool = False) -> int:
        rank = len(shapes[0])
        if rank == 0:
            raise ValueError("inputs must have rank >= 1")
        if any(len(s) != rank for s in shapes):
            raise ValueError(f"inputs must share one rank, got shapes {[list(s) for s in shapes]}")
        axis = _axis(axis, rank)
        for d in range(rank):
            sizes = {s[d] for s in shapes} - ({None} if unknown_ok else set())
            if d != axis and len(sizes) > 1:
                raise ValueError(f"inputs differ in dimension {d} (not the axis {axis}): "
                                 f"shapes {[list(s) for s in shapes]}")
        return axis

    def _run(self, *inputs, axis):
        return np.concatenate(inputs, axis=self._check_shapes([x.shape for x in inputs], axis))
