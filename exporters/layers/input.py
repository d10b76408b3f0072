"""Input: the float network input, quantized on the host to a signed symmetric grid.

The host rule (contract, "Quantizers") is :func:`exporters.grid.quantize_host`.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporters.errors import ModelError
from exporters.grid import Grid
from exporters.layers.base import Layer


@dataclass(eq=False)
class Input(Layer):
    """The float network input, quantized on the host to a signed symmetric grid."""

    shape: tuple[int, ...]
    grid: Grid

    def output_shape(self, in_shapes):
        if not self.shape or any(int(d) < 1 for d in self.shape) or len(self.shape) not in (1, 2, 3):
            raise ModelError(f"input '{self.name}': shape {self.shape} must be (C, H, W), (C, L) or (F,), all >= 1")
        return tuple(int(d) for d in self.shape)

    def output_grid(self, in_grids):
        return self.grid
