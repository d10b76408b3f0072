"""Foldline's requantizer, residual sum and max window (``foldline_requant.h``, ``foldline_add.h``,
``foldline_pool.h``) as operators of :mod:`.primitives`, with the same constants as the hls4ml
estimate (docs/hls.md, "Foldline's kernels under the primitives").

``shift_round_clamp`` on a ``W``-bit value ``v`` with the channel's ``(M, n)`` — literals wherever
the tool builds it, because the channel loop around it is unrolled at every reuse factor:

* the product ``v = acc * M`` of a ``P``-bit accumulator by the constant ``M``:
  :func:`.primitives.constant_products` (a shift when ``M`` is a power of two, which is every
  ``M`` of a power-of-two model: ``M = 2^15``; otherwise usually a DSP, 16-bit constants having
  three or more signed digits);
* ``q = v >> (n - 1)``: wiring;
* two comparisons of ``q`` (``Q = W - max(shift_min, 1) + 1`` bits) with constants, in parallel
  with the ``(b + 1)``-bit adder ``q + 1 + 2 z``, then a 3:1 select of the ``b`` result bits,
  costed as a saturating cast's select (``select_lut(b)``, two gates and a 1-bit select);
* ``n == 0`` (no rounding): the comparisons on ``W`` bits and a ``b``-bit adder for ``z != 0``;
  ``n >= W``: the constant ``z``, no logic.

Delays in order: the product, ``max(comparison, adder)``, the select.

>>> from hls_templates.estimate.primitives import part_for
>>> s = requant_stage(np.array([1 << 15, 40000]), np.array([20, 20]), 13, 8, 0, part_for("xcu250"))
>>> s.dsp.tolist(), s.mul_ops.tolist(), len(s.delays)
([0, 1], [0, 1], 3)
"""

from __future__ import annotations

import numpy as np

from hls_templates.estimate import primitives as prim
from hls_templates.estimate.mac import OutputStage

MULTIPLIER_BITS = 16  # foldline::multiplier_t: ap_uint<16>


def _select_lut(bits: int) -> int:
    """The 3:1 select of a clamp: as the select of a saturating cast (primitives.cast_cost)."""
    return prim.select_lut(bits) + 2 * prim.GATE_LUT + prim.select_lut(1)


def round_clamp(width, shift, shift_min: int, out_bits: int, out_zero: int, part: prim.Part):
    """(LUT per element, delays) of ``shift_round_clamp`` on a ``width``-bit value (``shift`` per
    element, an array)."""
    shift = np.asarray(shift, dtype=np.int64)
    q = width - max(int(shift_min), 1) + 1
    rounding = 2 * prim.icmp_lut(q) + prim.add_lut(out_bits + 1) + _select_lut(out_bits)
    exact = 2 * prim.icmp_lut(width) + (prim.add_lut(out_bits) if out_zero else 0) + _select_lut(out_bits)
    lut = np.where(shift == 0, exact, np.where(shift >= width, 0, rounding))
    live = shift < width
    compare = max(prim.icmp_delay(q, part), prim.add_delay(out_bits + 1, part)) if live.any() else 0.0
    return lut, (compare, prim.SELECT_DELAY_NS * part.delay_scale if live.any() else 0.0)


def requant_stage(multiplier, shift, acc_bits: int, out_bits: int, out_zero: int, part: prim.Part,
                  thresholds: tuple[int, int] = prim.LUT_MULT_THRESHOLDS) -> OutputStage:
    """The requantizer after a ``P``-bit accumulator, per channel (``multiplier``, ``shift`` arrays)."""
    m = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    width = acc_bits + MULTIPLIER_BITS
    p = prim.constant_products(m, acc_bits, part, *thresholds)
    used = shift < width                       # n >= W: the output is the constant z
    lut, (compare, select) = round_clamp(width, shift, int(shift.min()) if shift.size else 0, out_bits, out_zero, part)
    mul_ops = np.isin(p.kind, ("dsp", "lut_mul")) & used
    return OutputStage(np.where(used, p.lut, 0) + lut, np.where(used, p.dsp, 0), mul_ops.astype(np.int64),
                       (float(np.where(used, p.delay, 0.0).max(initial=0.0)), compare, select), out_bits)


def add_element(sum_bits: int, zeros, multipliers, shift: int, out_bits: int, out_zero: int, part: prim.Part,
                thresholds: tuple[int, int] = prim.LUT_MULT_THRESHOLDS) -> tuple[float, float, float, list[float]]:
    """(LUT, DSP, mul ops, delays) of one element of ``add_one``: per input ``sum_t(x) - z`` (an adder
    when ``z != 0``) times the constant ``M_i`` on ``sum_bits``, their sum, ``shift_round_clamp``."""
    p = prim.constant_products(np.asarray(multipliers, dtype=np.int64), sum_bits, part, *thresholds)
    subtract = [prim.add_lut(sum_bits) if z else 0 for z in zeros]
    sub_ns = max(prim.add_delay(sum_bits, part) if z else 0.0 for z in zeros)
    rc_lut, (compare, select) = round_clamp(sum_bits, np.array([shift]), shift, out_bits, out_zero, part)
    lut = float(p.lut.sum() + sum(subtract) + prim.add_lut(sum_bits) + rc_lut[0])
    mul = float(np.isin(p.kind, ("dsp", "lut_mul")).sum())
    delays = [sub_ns, float(p.delay.max()), prim.add_delay(sum_bits, part), compare, select]
    return lut, float(p.dsp.sum()), mul, delays


def max_window(window: int, bits: int, part: prim.Part) -> tuple[int, list[float]]:
    """(LUT, operator delays) of ``max_window`` for one channel: ``best = x > best ? x : best`` over
    the window, a chain of ``window - 1`` compare-selects (the tool does not rebalance it: each
    select depends on the last)."""
    step = prim.icmp_delay(bits, part) + prim.SELECT_DELAY_NS * part.delay_scale
    return (window - 1) * (prim.icmp_lut(bits) + prim.select_lut(bits)), [step] * (window - 1)


__all__ = ["add_element", "max_window", "requant_stage", "round_clamp"]
