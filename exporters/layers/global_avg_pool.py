"""GlobalAvgPool: the average over the whole plane, ``(C, H, W) -> (C,)`` — AvgPool with the
window ``H x W`` (:class:`exporters.layers.avg_pool.WindowAverage`)."""

from __future__ import annotations

from dataclasses import dataclass

from exporters.layers.avg_pool import WindowAverage
from exporters.layers.base import Requant, SingleInput
from exporters.layers.window import spatial_input


@dataclass(eq=False)
class GlobalAvgPool(WindowAverage, SingleInput):
    """Average over the whole plane: (C, H, W) -> (C,) — AvgPool with window H x W."""

    requant: Requant

    stride = (1, 1)  # the window covers the plane: one position, no padding
    padding = (0, 0)

    def window(self, model):
        return model.shape(self.input)[1:]

    def output_shape(self, in_shapes):
        return (spatial_input(self, in_shapes)[0],)
