"""Proven accumulator bounds, and the narrowest signed width that holds them.

For one output channel with integer weights ``w_k`` and inputs ``x_k`` in a grid
``[x_lo, x_hi]``, each product ``w_k * x_k`` lies in ``[min(w_k x_lo, w_k x_hi),
max(w_k x_lo, w_k x_hi)]``. Both grids contain 0 (``x_lo <= 0 <= x_hi``), so every
product's minimum is ``<= 0`` and its maximum ``>= 0``; therefore **every partial sum, in
any summation order**, lies in ``[start + sum(min_k), start + sum(max_k)]``. With
``S+``/``S-`` the sums of positive weights and of negative-weight magnitudes this is the
contract's ``[b' - S- * x_max, b' + S+ * x_max]`` for an unsigned grid.

Two forms are computed (see the contract):

* **subtract-first** (``x - z_x`` per tap, start 0, then ``+ b``) — what the exported
  ONNX computes with ConvInteger/MatMulInteger followed by an int32 Add;
* **folded** (``x`` per tap, start ``b' = b - z_x * sum(w)``) — what the HLS kernels
  compute, with padded taps holding ``z_x``.

A layer is refused (:class:`AccumulatorOverflowError`, naming the layer and the bound)
when either form needs more than :data:`MAX_ACC_BITS`.

>>> b = mac_bounds(np.array([[2, -3]]), np.array([10]), x_lo=0, x_hi=15)
>>> (int(b.lo[0]), int(b.hi[0]), b.bits)
(-35, 40, 7)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exporters.errors import AccumulatorOverflowError

MAX_ACC_BITS = 32


def signed_width(lo: int, hi: int) -> int:
    """Narrowest two's-complement width P with ``-2^(P-1) <= lo`` and ``hi < 2^(P-1)``."""
    lo, hi = int(lo), int(hi)
    need_lo = (-lo - 1).bit_length() if lo < 0 else 0  # 2^(P-1) >= -lo
    need_hi = hi.bit_length() if hi > 0 else 0  # 2^(P-1) > hi
    return max(need_lo, need_hi) + 1


@dataclass(frozen=True)
class Bounds:
    """Per-channel inclusive bounds of every partial sum of an accumulator."""

    lo: np.ndarray
    hi: np.ndarray

    @property
    def bits(self) -> int:
        return signed_width(int(self.lo.min()), int(self.hi.max()))

    @property
    def magnitude(self) -> np.ndarray:
        """Per-channel ``max(|lo|, |hi|)`` (int64)."""
        return np.maximum(-self.lo, self.hi)

    def union(self, other: "Bounds") -> "Bounds":
        return Bounds(np.minimum(self.lo, other.lo), np.maximum(self.hi, other.hi))


def mac_bounds(weight_rows: np.ndarray, start: np.ndarray, x_lo: int, x_hi: int) -> Bounds:
    """Bounds of ``start[c] + sum_k w[c, k] * x_k`` over all partial sums, ``x_k`` in [x_lo, x_hi]."""
    w = np.asarray(weight_rows, dtype=np.int64)
    assert x_lo <= 0 <= x_hi, "both forms' grids contain zero"
    low = np.minimum(w * x_lo, w * x_hi).sum(axis=1)
    high = np.maximum(w * x_lo, w * x_hi).sum(axis=1)
    start = np.asarray(start, dtype=np.int64)
    return Bounds(start + low, start + high)


def check_width(layer: str, form: str, bounds: Bounds, max_bits: int = MAX_ACC_BITS) -> None:
    if bounds.bits > max_bits:
        raise AccumulatorOverflowError(
            f"layer '{layer}': {form} accumulator needs {bounds.bits} bits "
            f"(bound [{int(bounds.lo.min())}, {int(bounds.hi.max())}]), more than {max_bits}"
        )
