"""GlobalAvgPool: the average over the whole plane, ``(C, H, W) -> (C,)`` (or ``(C, L) -> (C,)``) —
AvgPool with the window ``H x W`` (``L``) (:class:`exporters.layers.avg_pool.WindowAverage`)."""

from __future__ import annotations

from dataclasses import dataclass

from exporters.layers.avg_pool import WindowAverage
from exporters.layers.base import Requant, SingleInput
from exporters.layers.window import Window, spatial_input


@dataclass(eq=False)
class GlobalAvgPool(WindowAverage, SingleInput):
    """Average over the whole plane: (C, H, W) or (C, L) -> (C,) — AvgPool with window H x W (L)."""

    requant: Requant

    def geometry(self, model) -> Window:
        """One window covering the plane: stride 1, no padding."""
        size = tuple(model.shape(self.input)[1:])
        ones = (1,) * len(size)
        return Window(size, ones, (0,) * len(size), ones, (0,) * len(size))

    def window(self, model):
        return model.shape(self.input)[1:]

    def output_shape(self, in_shapes):
        return (spatial_input(self, in_shapes, one_d=True)[0],)
