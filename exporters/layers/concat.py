"""Concat along channels: each input requantized onto the concatenation's own grid
(contract, "Other layers"):

    y = clamp(z_y + ((M_i (x_i - z_i) + 2^(n_i-1)) >> n_i), lo, hi)     for the channels of input i

Input 1's channels come first, then input 2's, and so on; ``[lo, hi]`` is the output grid's,
narrowed by a fused ReLU or clamp. An input whose rule is the identity (:meth:`Concat.copies`:
``M_i = 2^n_i``, ``z_i = z_y``, its grid inside ``[lo, hi]`` and of the same signedness) is copied
by every backend; the others are requantized, each term on its own shift. The range of each term
is derived once (:meth:`Concat.term_bounds`, shared with Add; :meth:`Concat.term_bits`): the HLS
kernel's term width and the estimator read it.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import numpy as np

from exporters.bounds import signed_width
from exporters.errors import ModelError
from exporters.grid import Grid
from exporters.layers.base import UNTRACKED, Layer, as_clamp, check_multipliers, check_shifts
from exporters.layers.joining import Joining


@dataclass(eq=False)
class Concat(Joining, Layer):
    """Channels of ``sources`` side by side, each requantized by ``(multipliers[i], shifts[i])`` onto ``out``
    (the term ranges, :meth:`term_bounds`, and the clamp are :class:`~exporters.layers.joining.Joining`'s)."""

    sources: tuple[str, ...]
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    out: Grid
    relu: bool = False
    clamp: tuple[int, int] | None = None  # a fused ReLU6 / hardtanh (integer bounds, as Requant.clamp)

    VARIADIC_INPUTS: typing.ClassVar[str] = "sources"

    def __post_init__(self) -> None:
        self.sources = tuple(self.sources)
        self.multipliers = tuple(int(m) for m in self.multipliers)
        self.shifts = tuple(int(n) for n in self.shifts)
        self.clamp = as_clamp(self.clamp)

    def output_shape(self, in_shapes):
        if len(in_shapes) < 2:
            raise ModelError(f"layer '{self.name}': a Concat needs at least two inputs, got {len(in_shapes)}")
        first = in_shapes[0]
        for src, shape in zip(self.sources, in_shapes):
            if len(shape) != len(first) or shape[1:] != first[1:]:
                raise ModelError(f"layer '{self.name}': Concat inputs must differ in channels only; "
                                 f"'{self.sources[0]}' is {first}, '{src}' is {shape}")
        return (sum(shape[0] for shape in in_shapes), *first[1:])

    def check(self, model) -> None:
        k = len(self.sources)
        if len(self.multipliers) != k or len(self.shifts) != k:
            raise ModelError(f"layer '{self.name}': {k} inputs need {k} multipliers and shifts, got "
                             f"{len(self.multipliers)} and {len(self.shifts)}")
        check_multipliers(self.name, np.array(self.multipliers))
        check_shifts(self.name, np.array(self.shifts))
        self.out.check_clamp(self.clamp, f"layer '{self.name}'")

    def copies(self, model) -> tuple[bool, ...]:
        """Per input: whether the rule is the identity on its grid, so the integers are copied (as they
        are stored too: an unsigned input of a signed output is requantized, if only by the identity)."""
        lo, hi = self.bounds
        result = []
        for src, m, n in zip(self.sources, self.multipliers, self.shifts):
            g = model.grid(src)
            result.append(m == 1 << n and g.zero_point == self.out.zero_point and lo <= g.lo and g.hi <= hi
                          and g.signed == self.out.signed)
        return tuple(result)

    def term_bits(self, model) -> list[int]:
        """Per input, the signed width holding its term and its raw integers (the HLS kernel
        widens ``x`` to it, subtracts ``z_i`` and multiplies by ``M_i`` in it)."""
        grids = [model.grid(s) for s in self.sources]
        return [max(signed_width(lo, hi), signed_width(g.lo, g.hi))
                for (lo, hi), g in zip(self.term_bounds(model), grids)]

    def channel_labels(self, model, labels, position=0):
        parts = [labels if i == position else np.full(model.shape(src)[0], UNTRACKED)
                 for i, src in enumerate(self.sources)]
        return np.concatenate(parts)
