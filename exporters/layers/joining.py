"""What the layers joining inputs onto a grid of their own share (Add, Concat): the output grid
``out``, a fused ReLU (``relu``) and clamp (``clamp``) narrowing its bounds, as a requantizer's,
and the range of each input's term ``M_i (x_i - z_i)``."""

from __future__ import annotations

from exporters.layers.base import narrow_clamp


class Joining:
    """Mixin of Add and Concat (fields ``out``, ``relu``, ``clamp`` and ``multipliers``, one per input)."""

    requantizes = True

    def output_grid(self, in_grids):
        return self.out

    @property
    def bounds(self) -> tuple[int, int]:
        """The output clamp ``[lo, hi]``: the grid's, a fused ReLU's and a fused clamp's."""
        return self.out.output_bounds(self.relu, self.clamp)

    def fuse_relu(self) -> bool:
        self.relu = True
        return True

    def fuse_clamp(self, bounds) -> bool:
        self.clamp = narrow_clamp(self.clamp, bounds)
        return True

    @property
    def output_clamp(self):
        return self.clamp

    def term_bounds(self, model) -> list[tuple[int, int]]:
        """``[lo_i, hi_i]`` of each term ``M_i (x_i - z_i)`` over its input grid (each contains 0)."""
        grids = [model.grid(s) for s in self.inputs]
        return [(m * (g.lo - g.zero_point), m * (g.hi - g.zero_point)) for g, m in zip(grids, self.multipliers)]
