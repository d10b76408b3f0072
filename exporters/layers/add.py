"""Add (residual): ``y = clamp(z_y + ((M1 (x1 - z1) + M2 (x2 - z2) + 2^(n-1)) >> n))``, one
shift ``n`` for both inputs (contract, "Other layers").

The range of the sum is derived here once (:meth:`Add.term_bounds`, :meth:`Add.sum_bounds`,
:meth:`Add.sum_bits`): the ONNX exporter's offset, the HLS kernel's ``sum_bits``, the
estimator and the hls4ml bridge's accumulator type all read it.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import numpy as np

from exporters.bounds import signed_width
from exporters.errors import ModelError
from exporters.grid import Grid
from exporters.layers.base import Layer, as_clamp, check_multipliers, check_shifts
from exporters.layers.joining import Joining


@dataclass(eq=False)
class Add(Joining, Layer):
    """Residual add: ``y = clamp(z_y + ((M1 (x1 - z1) + M2 (x2 - z2) + 2^(n-1)) >> n))``."""

    a: str
    b: str
    multipliers: tuple[int, int]
    shift: int
    out: Grid
    relu: bool = False
    clamp: tuple[int, int] | None = None  # a fused ReLU6 / hardtanh (integer bounds, as Requant.clamp)

    INPUT_FIELDS: typing.ClassVar[tuple[str, ...]] = ("a", "b")

    def __post_init__(self) -> None:
        self.multipliers = tuple(int(m) for m in self.multipliers)
        self.shift = int(self.shift)
        self.clamp = as_clamp(self.clamp)

    def output_shape(self, in_shapes):
        if in_shapes[0] != in_shapes[1]:
            raise ModelError(f"layer '{self.name}': Add inputs have shapes {in_shapes[0]} and {in_shapes[1]}")
        return in_shapes[0]

    def check(self, model) -> None:
        check_multipliers(self.name, np.array(self.multipliers))
        check_shifts(self.name, np.array([self.shift]))
        self.out.check_clamp(self.clamp, f"layer '{self.name}'")

    def sum_bounds(self, model) -> tuple[int, int]:
        """Exact ``[lo, hi]`` of ``M1 (x1 - z1) + M2 (x2 - z2)`` (each term's range contains 0)."""
        terms = self.term_bounds(model)
        return sum(lo for lo, _ in terms), sum(hi for _, hi in terms)

    def sum_bits(self, model) -> int:
        """Signed width of the HLS kernel's sum: holds the exact sum range and each raw input
        (``sum_t(x) - z`` is how the kernel subtracts)."""
        lo, hi = self.sum_bounds(model)
        ga, gb = (model.grid(s) for s in self.inputs)
        return max(signed_width(lo, hi), signed_width(min(ga.lo, gb.lo), max(ga.hi, gb.hi)))
