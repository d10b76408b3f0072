"""Lookup: an elementwise function as a table over the input grid, ``y = table[x - lo_x]``
(contract, "Other layers").

A function of a ``b``-bit integer has at most ``2^b`` values, so any elementwise activation
(sigmoid, tanh, hardswish, GELU, ELU, LeakyReLU, ...) is exactly a table, one entry per input
integer, computed once (:func:`tabulate`) and stored as data: ONNX ``Gather``, the torch
integer mode's indexing and the HLS ROM all read the same integers, so they agree by
construction whatever the function. The layer writes its own output grid (``requantizes``):
the producer before it keeps its own grid, which sees the values before the function.

>>> tabulate(lambda v: 2 * v, Grid(0.5, 1, 2, False), Grid(0.25, 0, 3, False)).tolist()
[0, 0, 4, 7]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from exporters.errors import ModelError
from exporters.grid import Grid
from exporters.layers.base import INITIALIZER, SingleInput, Work


def tabulate(function, in_grid: Grid, out_grid: Grid) -> np.ndarray:
    """``table[q - lo_x] = clamp(z_y + floor(f(s_x (q - z_x)) / s_y + 1/2), lo_y, hi_y)`` for every
    integer ``q`` of ``in_grid``, in float64 (contract): ``function`` maps a float64 array of real
    inputs to a float64 array of real outputs. ``s_x (q - z_x)`` is exact; ties round half up."""
    q = np.arange(in_grid.lo, in_grid.hi + 1, dtype=np.int64)
    real = in_grid.scale * (q - in_grid.zero_point).astype(np.float64)
    value = np.asarray(function(real), dtype=np.float64)
    if value.shape != real.shape or not np.isfinite(value).all():
        bad = np.flatnonzero(~np.isfinite(value)) if value.shape == real.shape else None
        where = f" (at input {real[bad[0]]!r})" if bad is not None and bad.size else ""
        raise ModelError(f"the function gives {value.shape} values for {real.shape} inputs, or a non-finite "
                         f"value{where}; a lookup table needs one finite value per input integer")
    rounded = np.floor(value / out_grid.scale + 0.5)
    return np.clip(out_grid.zero_point + rounded, out_grid.lo, out_grid.hi).astype(np.int64)


@dataclass(eq=False)
class Lookup(SingleInput):
    """``y = table[x - lo_x]``: one output integer per input integer, into grid ``out``."""

    table: np.ndarray = field(metadata=INITIALIZER)
    out: Grid
    function: str = ""  # what the table holds, e.g. "sigmoid" or "leaky_relu(negative_slope=0.1)" (for readers)

    requantizes = True

    def __post_init__(self) -> None:
        self.table = np.asarray(self.table, dtype=np.int64).reshape(-1)

    def output_shape(self, in_shapes):
        return in_shapes[0]

    def output_grid(self, in_grids):
        return self.out

    def index_offset(self, model) -> int:
        """``-lo_x``: what the input integer gains to index the table (0 for a hidden input)."""
        return -model.grid(self.input).lo

    def check(self, model) -> None:
        g = model.grid(self.input)
        entries = g.hi - g.lo + 1
        if self.table.shape != (entries,):
            raise ModelError(f"layer '{self.name}': the lookup table has {self.table.size} entries; its input grid "
                             f"[{g.lo}, {g.hi}] needs {entries}")
        if self.table.size and (self.table.min() < self.out.lo or self.table.max() > self.out.hi):
            raise ModelError(f"layer '{self.name}': table values [{self.table.min()}, {self.table.max()}] leave the "
                             f"output grid [{self.out.lo}, {self.out.hi}]")

    def work(self, model) -> Work:
        """No MACs; the table is constant memory (a ROM of ``2^b`` entries of ``b_y`` bits)."""
        return Work(weight_memory_bits=int(self.table.size * self.out.bits))
