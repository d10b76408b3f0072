"""Flatten, Reshape (shape from an initializer) and Identity: no integer changes."""

from __future__ import annotations

from math import prod
from typing import Any, Sequence

import numpy as np

from fpga_sim.numeric import NUMERIC_DTYPES
from fpga_sim.ops.base import Attr, Input, Known, Op


class Flatten(Op):
    """(d0..d{axis-1}, d{axis}..) -> 2-D; a negative axis counts from the end."""

    op_type = "Flatten"
    inputs = (Input("input", NUMERIC_DTYPES),)
    attributes = {"axis": Attr("int", 1)}

    def _run(self, input, *, axis):
        if not -input.ndim <= axis <= input.ndim:
            raise ValueError(f"axis {axis} out of range for rank {input.ndim}")
        if axis < 0:
            axis += input.ndim
        return input.reshape(prod(input.shape[:axis]), prod(input.shape[axis:]))


class Reshape(Op):
    """Reshape with allowzero=0: a 0 copies the input's dimension, one -1 is inferred."""

    op_type = "Reshape"
    inputs = (Input("data", NUMERIC_DTYPES), Input("shape", frozenset({np.dtype(np.int64)}), constant=True))
    attributes = {"allowzero": Attr("int", 0, choices=(0,))}

    def prepare(self, known: Sequence[Known | None], **attrs: Any) -> None:
        shape = known[1].value
        if shape.ndim != 1:
            raise ValueError(f"shape must be 1-D, got {shape.ndim}-D")
        if (shape == -1).sum() > 1 or (shape < -1).any():
            raise ValueError(f"invalid target shape {shape.tolist()}")

    def _run(self, data, shape, **_):
        target = [int(d) for d in shape]
        for i, dim in enumerate(target):
            if dim == 0:
                if i >= data.ndim:
                    raise ValueError(f"shape {target} copies dimension {i} of a rank-{data.ndim} input")
                target[i] = data.shape[i]
        return data.reshape(target)


class Identity(Op):
    """The input itself (no copy)."""

    op_type = "Identity"
    inputs = (Input("input", NUMERIC_DTYPES),)

    def _run(self, input):
        return input
