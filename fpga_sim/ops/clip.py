"""Clip (opset 13+): optional scalar min and max inputs."""

from __future__ import annotations

import numpy as np

from fpga_sim.numeric import NUMERIC_DTYPES
from fpga_sim.ops.base import Input, Op
from fpga_sim.ops.elementwise import result_buffer


class Clip(Op):
    """min(max(x, lo), hi); lo > hi gives hi everywhere; NaN in x propagates.

    An absent bound is the dtype's lowest / largest finite value, as the
    specification says, so float +-inf are clipped to +-max even then. A NaN
    bound is refused (the specification does not define it).
    """

    op_type = "Clip"
    inputs = (
        Input("input", NUMERIC_DTYPES),
        Input("min", NUMERIC_DTYPES, optional=True, scalar=True),
        Input("max", NUMERIC_DTYPES, optional=True, scalar=True),
    )
    same_dtype = (("input", "min", "max"),)
    reuses_input = 0

    def _run(self, input, min=None, max=None, out=None):
        info = np.finfo(input.dtype) if input.dtype.kind == "f" else np.iinfo(input.dtype)
        low = np.array(info.min, input.dtype) if min is None else min.reshape(())
        high = np.array(info.max, input.dtype) if max is None else max.reshape(())
        if np.isnan(low) or np.isnan(high):
            raise ValueError("a NaN bound is not supported")
        return np.clip(input, low, high, out=result_buffer(out, input))  # = minimum(maximum(x, low), high)
