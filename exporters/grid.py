"""Integer grids: what a tensor's integers mean as real numbers.

A :class:`Grid` is the quantization metadata of one activation tensor — scale, zero
point, bit width and signedness — travelling with the tensor from training to export,
so nothing downstream re-derives it (see ``docs/integer-contract.md``).

Design choices (written down here, next to the code that enforces them):

* Hidden activations are **unsigned**, ``[0, 2^b - 1]``, with an integer zero point
  inside the grid.
* The network input and output are **signed, symmetric and narrow**:
  ``[-(2^(b-1) - 1), 2^(b-1) - 1]`` with zero point 0. Narrow keeps the grid symmetric
  about zero, the same convention as the weights, so a sign flip never saturates.
* Every grid has 2..8 bits, so its integers are stored in ``uint8``/``int8`` tensors.

>>> g = Grid(scale=0.5, zero_point=3, bits=4, signed=False)
>>> (g.lo, g.hi, g.dtype)
(0, 15, 'uint8')
>>> Grid(scale=0.1, zero_point=0, bits=8, signed=True).lo
-127
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from exporters.errors import ModelError

MIN_BITS = 2
MAX_BITS = 8


def signed_narrow_range(bits: int) -> tuple[int, int]:
    """The symmetric narrow grid ``[-(2^(b-1)-1), 2^(b-1)-1]`` shared by weights and I/O."""
    top = (1 << (bits - 1)) - 1
    return -top, top


def check_bits(bits: int, what: str) -> None:
    if not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ModelError(f"{what}: bit width {bits!r} is outside {MIN_BITS}..{MAX_BITS}")


@dataclass(frozen=True)
class Grid:
    """Quantization of one activation tensor: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int
    bits: int
    signed: bool

    def __post_init__(self) -> None:
        check_bits(self.bits, "grid")
        if not (isinstance(self.scale, float) and math.isfinite(self.scale) and self.scale > 0):
            raise ModelError(f"grid scale must be a positive finite float, got {self.scale!r}")
        if self.signed and self.zero_point != 0:
            raise ModelError(f"signed (symmetric) grids have zero point 0, got {self.zero_point}")
        if not self.lo <= self.zero_point <= self.hi:
            raise ModelError(
                f"zero point {self.zero_point} outside the {self.bits}-bit grid [{self.lo}, {self.hi}]"
            )

    @property
    def lo(self) -> int:
        return signed_narrow_range(self.bits)[0] if self.signed else 0

    @property
    def hi(self) -> int:
        return signed_narrow_range(self.bits)[1] if self.signed else (1 << self.bits) - 1

    @property
    def dtype(self) -> str:
        """The numpy/ONNX storage type of the integers."""
        return "int8" if self.signed else "uint8"

    def output_bounds(self, relu: bool, clamp: tuple[int, int] | None = None) -> tuple[int, int]:
        """Clamp bounds of a layer writing this grid; a fused ReLU raises lo to the zero point, a
        fused clamp (integer bounds, :meth:`clamp_bounds`) narrows both."""
        lo, hi = (max(self.lo, self.zero_point) if relu else self.lo), self.hi
        if clamp is not None:
            lo, hi = max(lo, int(clamp[0])), min(hi, int(clamp[1]))
        return lo, hi

    def quantize_value(self, value: float) -> int:
        """``Q(v) = clamp(z + floor(fl32(fl32(v) / s) + 1/2), lo, hi)``: what an output quantizer
        (half up, float32 as the fake-quant forward computes) makes of the one real value ``v``;
        ``Q(-inf) = lo``, ``Q(+inf) = hi``.

        >>> Grid(0.5, 3, 4, False).quantize_value(6.0), Grid(0.5, 3, 4, False).quantize_value(-0.25)
        (15, 3)
        """
        rounded = np.floor(np.float32(value) / np.float32(self.scale) + np.float32(0.5))
        return int(np.clip(rounded + self.zero_point, self.lo, self.hi))

    def clamp_bounds(self, min_val: float | None, max_val: float | None) -> tuple[int, int]:
        """Integer bounds ``[Q(a), Q(b)]`` of the real clamp ``[a, b]`` (None: unbounded) on this grid
        (contract, "Other layers": ReLU6 is ``[0, 6]``). Monotone ``Q`` makes quantizing the clamped
        value equal clamping the quantized one. The clamp must contain 0, so that
        ``Q(a) <= z <= Q(b)``; one away from zero is an elementwise function (a Lookup)."""
        a, b = real_clamp(min_val, max_val)
        return self.quantize_value(a), self.quantize_value(b)

    def check_clamp(self, clamp: tuple[int, int] | None, what: str) -> None:
        """A fused integer clamp must satisfy ``lo <= clamp_lo <= z <= clamp_hi <= hi``."""
        if clamp is None:
            return
        c_lo, c_hi = clamp
        if not self.lo <= c_lo <= self.zero_point <= c_hi <= self.hi:
            raise ModelError(f"{what}: clamp [{c_lo}, {c_hi}] must lie in [{self.lo}, {self.hi}] and contain "
                             f"the zero point {self.zero_point}")

    def to_dict(self) -> dict:
        return {"scale": self.scale, "zero_point": self.zero_point, "bits": self.bits, "signed": self.signed}

    @classmethod
    def from_dict(cls, d: dict) -> "Grid":
        return cls(float(d["scale"]), int(d["zero_point"]), int(d["bits"]), bool(d["signed"]))


def real_clamp(min_val: float | None, max_val: float | None) -> tuple[float, float]:
    """The real bounds ``[a, b]`` of a clamp that fuses into a requantizer (None: unbounded, +-inf):
    ``a <= 0 <= b`` is required, else a one-line :class:`ModelError`.

    >>> real_clamp(0, 6), real_clamp(None, 1.0)
    ((0.0, 6.0), (-inf, 1.0))
    """
    a = -math.inf if min_val is None else float(min_val)
    b = math.inf if max_val is None else float(max_val)
    if not a <= 0.0 <= b:  # NaN fails too
        raise ModelError(f"clamp [{a}, {b}] must contain 0 (ReLU6: [0, 6], hardtanh: [-1, 1]); a clamp away "
                         "from zero is an elementwise function: a lookup (QuantActivation('hardtanh', ...))")
    return a, b


def quantize_host(x, grid: Grid) -> np.ndarray:
    """The host's input quantization (contract, "Quantizers"): ``clamp(round_half_to_even(x / s))``
    with the division in float32, exactly what ONNX ``QuantizeLinear`` + ``Clip`` compute; int64.

    >>> quantize_host([0.25, 0.75, -9.0], Grid(0.5, 0, 4, True)).tolist()    # ties to even
    [0, 2, -7]
    """
    q = np.rint(np.asarray(x, dtype=np.float32) / np.float32(grid.scale))
    return np.clip(q, grid.lo, grid.hi).astype(np.int64)
