"""The contract's requantization rule and how a real multiplier becomes (M, n).

    y = clamp(z_y + ((acc * M + 2^(n-1)) >> n), lo, hi)        (>> is floor; n = 0: no rounding term)

This module is the one place the rule is written in Python. The PyTorch integer mode,
the exporter's ONNX graph and the HLS kernels each restate it in their own language and
are tested against the simulator, element for element.

Choice of the multiplier width: ``M`` is an **unsigned 16-bit** integer, normalised to
``[2^15, 2^16)`` whenever the shift allows. The relative error of ``M / 2^n`` against the
real multiplier ``S`` is then at most ``2^-16``; since a requantized value that is not
clamped has ``|acc * S| < 2^8``, the absolute error before rounding is below ``2^-8`` of
one output step. 16 bits also fit a DSP48's 18-bit signed port beside a 27-bit
accumulator operand, and keep ``|acc| * M < 2^47`` for any 32-bit accumulator.

Choice of the shift range: ``0 <= n <= MAX_SHIFT`` (60), so that the ONNX graph's
offset trick (see :func:`nonnegative_offset`) stays inside int64/uint64.

>>> quantize_multiplier(0.25)
(32768, 17)
>>> requantize(np.array([-3, -2, 2, 3]), 1, 1, zero_point=0, lo=-127, hi=127).tolist()
[-1, -1, 1, 2]
"""

from __future__ import annotations

import math

import numpy as np

from exporters.errors import ModelError

MULTIPLIER_BITS = 16
MAX_SHIFT = 60


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Turn a real multiplier ``S > 0`` into ``(M, n)`` with ``M / 2^n ~= S``.

    ``M = floor(S * 2^n + 1/2)`` (half up), computed exactly: frexp gives ``S = f * 2^e``
    with ``f`` in [0.5, 1), and scaling a double by a power of two is exact.
    """
    if not (math.isfinite(real) and real > 0):
        raise ModelError(f"requantization multiplier must be positive and finite, got {real!r}")
    f, e = math.frexp(real)
    shift = MULTIPLIER_BITS - e  # S * 2^shift = f * 2^16 in [2^15, 2^16)
    if shift > MAX_SHIFT:
        shift = MAX_SHIFT
    if shift < 0:
        raise ModelError(
            f"requantization multiplier {real!r} is >= 2^{MULTIPLIER_BITS}; "
            "the output scale is far too small for its input"
        )
    m = math.floor(math.ldexp(real, shift) + 0.5)
    if m == 1 << MULTIPLIER_BITS:  # rounding carried into bit 16: renormalise
        if shift == 0:
            raise ModelError(f"requantization multiplier {real!r} does not fit {MULTIPLIER_BITS} bits")
        m, shift = m >> 1, shift - 1
    if m == 0:
        raise ModelError(f"requantization multiplier {real!r} is below 2^-{MAX_SHIFT + 1}; it rounds to 0")
    return m, shift


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of :func:`quantize_multiplier`: int64 arrays ``M`` and ``n``."""
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, dtype=np.float64).ravel()]
    m = np.array([p[0] for p in pairs], dtype=np.int64)
    n = np.array([p[1] for p in pairs], dtype=np.int64)
    return m, n


def quantize_shared_shift(reals) -> tuple[np.ndarray, int]:
    """Multipliers that share one shift (residual Add): the largest is normalised."""
    reals = np.asarray(reals, dtype=np.float64)
    _, shift = quantize_multiplier(float(reals.max()))
    m = np.floor(np.ldexp(reals, shift) + 0.5).astype(np.int64)
    if (m <= 0).any() or (m >= 1 << MULTIPLIER_BITS).any():
        raise ModelError(f"multipliers {reals.tolist()} cannot share one {MULTIPLIER_BITS}-bit shift")
    return m, shift


def rounding_term(shift):
    """``2^(n-1)`` for ``n > 0``, else 0 — the half-up rounding constant (int64)."""
    shift = np.asarray(shift, dtype=np.int64)
    return np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)


def round_shift(value, shift):
    """``(value + 2^(n-1)) >> n`` with an arithmetic (floor) shift: round half up."""
    value = np.asarray(value, dtype=np.int64)
    return np.right_shift(value + rounding_term(shift), np.asarray(shift, dtype=np.int64))


def requantize(acc, multiplier, shift, zero_point, lo, hi):
    """The contract's rule on int64 numpy arrays (multiplier/shift broadcast like acc)."""
    scaled = np.asarray(acc, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64)
    return np.clip(zero_point + round_shift(scaled, shift), lo, hi)


def nonnegative_offset(bound, shift):
    """``K`` such that ``v + 2^(n-1) + K * 2^n >= 0`` for every ``|v| <= bound``.

    onnxruntime's BitShift exists only for unsigned types, so the exported graph shifts
    ``v + 2^(n-1) + K*2^n`` as uint64 and subtracts ``K`` afterwards. That equals the
    floor shift exactly because adding a multiple of ``2^n`` commutes with ``floor(./2^n)``.
    ``K = floor(bound / 2^n) + 1`` gives ``K * 2^n > bound``.
    """
    bound = np.asarray(bound, dtype=np.int64)
    return np.right_shift(bound, np.asarray(shift, dtype=np.int64)) + 1
