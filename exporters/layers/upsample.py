"""Upsample: nearest-neighbour upsampling by integer factors (contract, "Other layers"),
``y[c, h, w] = x[c, h // f_h, w // f_w]`` — the integers replicated, the grid unchanged.

With integer factors the usual nearest rules agree: PyTorch's ``nearest`` (``floor(dst / f)``)
and ``nearest-exact`` (``floor((dst + 1/2) / f)``, which for ``dst = k f + r``, ``0 <= r < f``, is
``k``), and ONNX ``Resize`` with ``mode=nearest``, ``nearest_mode=floor``,
``coordinate_transformation_mode=asymmetric`` and the scales ``(1, 1, f_h, f_w)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporters.errors import ModelError
from exporters.layers.base import SingleInput
from exporters.layers.window import spatial_input


def integer_factors(factor, what: str) -> tuple[int, int]:
    """``2 -> (2, 2)``, ``(1, 3) -> (1, 3)``; a :class:`ModelError` naming ``what`` unless both are
    integers >= 1 (any other factor interpolates; nearest upsampling by an integer factor is exact).

    >>> integer_factors(2, "x"), integer_factors([1.0, 3], "x")
    ((2, 2), (1, 3))
    """
    values = tuple(factor) if isinstance(factor, (tuple, list)) else (factor,) * 2
    if len(values) != 2 or any(float(v) != int(v) or int(v) < 1 for v in values):
        raise ModelError(f"{what}: upsampling factor {list(values)} must be integers >= 1 (e.g. 2); nearest "
                         "upsampling by an integer factor is the supported kind")
    return int(values[0]), int(values[1])


@dataclass(eq=False)
class Upsample(SingleInput):
    """Nearest-neighbour upsampling of a (C, H, W) map by the integer ``factor`` ``(f_h, f_w)``."""

    factor: tuple[int, int]

    def __post_init__(self) -> None:
        self.factor = integer_factors(self.factor, f"layer '{self.name}'")

    def output_shape(self, in_shapes):
        c, h, w = spatial_input(self, in_shapes)
        return (c, h * self.factor[0], w * self.factor[1])
