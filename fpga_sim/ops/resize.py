"""Resize, as the exporter emits it: nearest neighbour by integer scales (upsampling).

The specification maps output index ``x`` to the input coordinate ``x / scale``
(``coordinate_transformation_mode=asymmetric``), takes its floor (``nearest_mode=floor``)
and sizes the output ``floor(input * scale)``. For an integer scale ``s`` that is exactly
``x // s`` on an output ``s`` times as long: each element repeated ``s`` times, computed here
with ``np.repeat`` in integers, with no float coordinate at all. Every other mode, a
non-integer or non-positive scale, ``roi`` and ``sizes`` are refused by name.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fpga_sim.numeric import INT8_DTYPES
from fpga_sim.ops.base import Attr, Input, Known, Op

FLOAT32 = frozenset({np.dtype(np.float32)})


class Resize(Op):
    """Nearest-neighbour Resize by integer ``scales`` (an initializer, one per axis of X)."""

    op_type = "Resize"
    inputs = (
        Input("X", INT8_DTYPES),
        Input("roi", FLOAT32, optional=True),
        Input("scales", FLOAT32, optional=True, constant=True),
        Input("sizes", frozenset({np.dtype(np.int64)}), optional=True),
    )
    # defaults are the specification's; only the combination below is supported (checked in prepare)
    attributes = {
        "antialias": Attr("int", 0, choices=(0,)),
        "coordinate_transformation_mode": Attr("str", "half_pixel"),
        "exclude_outside": Attr("int", 0, choices=(0,)),
        "keep_aspect_ratio_policy": Attr("str", "stretch", choices=("stretch",)),
        "mode": Attr("str", "nearest"),
        "nearest_mode": Attr("str", "round_prefer_floor"),
    }
    SUPPORTED = {"mode": "nearest", "nearest_mode": "floor", "coordinate_transformation_mode": "asymmetric"}

    def prepare(self, known: Sequence[Known | None], **attrs: Any) -> None:
        for name, want in self.SUPPORTED.items():
            if attrs[name] != want:
                raise ValueError(f"{name}={attrs[name]!r} is not supported (supported: {want!r}; with integer "
                                 "scales this is nearest-neighbour upsampling)")
        x, roi, scales, sizes = known
        if roi is not None or sizes is not None:
            raise ValueError("only the scales input is supported (roi and sizes must be absent)")
        if scales is None:
            raise ValueError("the scales input is required")
        value = scales.value
        if value.ndim != 1 or not np.all(np.isfinite(value)) or (value != np.round(value)).any() or (value < 1).any():
            raise ValueError(f"scales {value.tolist()} must be integers >= 1 (nearest upsampling by integer factors)")
        if x is not None and x.shape is not None and len(x.shape) != value.size:
            raise ValueError(f"scales has {value.size} entries for a rank-{len(x.shape)} X")
        self.factors = tuple(int(v) for v in value)

    def _run(self, X, roi, scales, sizes, **_):
        if X.ndim != len(self.factors):
            raise ValueError(f"scales has {len(self.factors)} entries for a rank-{X.ndim} X")
        for axis, factor in enumerate(self.factors):
            if factor > 1:
                X = np.repeat(X, factor, axis=axis)
        return X
