"""Cost of single operators: constant products, shared multipliers, adders, memories.

Every rule here is a documented model, not a synthesis result. The defaults follow
public behaviour of the Xilinx tools and of hls4ml; calibrate the thresholds in
:class:`~hls_templates.estimate.config.EstimateConfig` against real reports.

**Where a product goes.** Three classes, decided per product:

* ``shift``: a constant weight ``w`` with ``|w|`` a power of two (``±1`` included) is a
  wire shift (the sign folds into the adder that consumes it, as a subtraction): 0 LUT,
  0 DSP.
* ``lut``: both operands at most ``lut_mult_max_bits`` (10) bits, or one at most
  ``lut_mult_narrow_bits`` (4) bits. Small products are cheaper in fabric and the HLS
  binder maps them there (hls4ml's own DSP-aware pruning estimator, installed with it in
  ``optimization/dsp_aware_pruning/objectives/vivado_objectives.py``, counts 0 DSP for
  weights under 9 bits).
* ``dsp``: anything wider, tiled over the DSP slice's signed ports ``A x B`` (27 x 18 on
  UltraScale+, 25 x 18 on 7-series): ``ceil(wide / A) * ceil(narrow / B)`` slices.

How the HLS front end actually builds a product by a constant (canonical signed digits, then
DSP or LUT by width), calibrated on real reports, is
:func:`hls_templates.estimate.primitives.constant_products`; Foldline's MAC, requantizer, pooling
and Add kernels are costed with it (:mod:`.mac`, :mod:`.requant_stage`). This module keeps the
digit arithmetic, the widths and the memories they share, and the older product classes below
for the costs not yet moved onto the primitives.

**LUT cost of a product in fabric.**

* constant weight (reuse 1: the unrolled loop sees literal weights and constant-folds):
  shift-and-add over the weight's canonical signed digits (NAF), ``(naf(|w|) - 1)``
  adders of the product width ``b_x + b_w`` -> ``(naf(|w|) - 1) * (b_x + b_w)`` LUTs;
* shared multiplier (reuse > 1: weights come from a ROM, the operand is a variable):
  an array multiplier, ``b_x * b_w`` LUTs (one LUT6 per partial-product bit with its
  share of the carry chain).

**Adders** cost one LUT per bit (LUT6 + CARRY8 per bit), registered: one FF per bit.

**Memories.** A ROM or buffer of ``depth x width`` bits: depth < 64 -> LUTRAM/SRL,
``ceil(depth / 64) * width`` LUTs; otherwise BRAM18 blocks in 512 x 36 mode,
``ceil(width / 36) * ceil(depth / 512)``. A constant table read by many lookups at once
(a Lookup layer's, completely partitioned) is logic instead, one copy per lookup:
``ceil(depth / 64) * width`` LUTs up to 256 entries (:func:`rom_logic_cost`).

>>> naf_weight(np.array([0, 1, 3, 7, 5, 11, 127])).tolist()
[0, 1, 2, 2, 2, 3, 2]
>>> int(dsp_tiles(32, 17, (27, 18)))
2
>>> naf_span(np.array([9, 7, 4])).tolist(), constant_width(np.array([11, -11, -16])).tolist()
([3, 3, 0], [4, 5, 5])
"""

from __future__ import annotations

import numpy as np

ADDER_LUT_PER_BIT = 1
LUTRAM_MAX_DEPTH = 64  # shallower memories go to LUTRAM/SRL, deeper ones to BRAM
BRAM18_WIDTH, BRAM18_DEPTH = 36, 512
DSP_PIPELINE = 3  # DSP48 A/B, M and P registers
FABRIC_PIPELINE = 1


def is_power_of_two(a: np.ndarray) -> np.ndarray:
    """Elementwise ``a`` is 2^k for some k >= 0 (``a`` non-negative int64)."""
    a = np.asarray(a, dtype=np.int64)
    return (a > 0) & ((a & (a - 1)) == 0)


def naf_weight(a: np.ndarray) -> np.ndarray:
    """Number of non-zero digits of the non-adjacent form of ``a >= 0`` (vectorised).

    ``xh = a >> 1, x3 = a + xh, c = xh ^ x3``: the NAF's +1 digits are ``x3 & c`` and its
    -1 digits ``xh & c`` (Prodinger's formula), so the weight is their two popcounts.
    """
    a = np.asarray(a, dtype=np.int64)
    xh = a >> 1
    x3 = a + xh
    c = xh ^ x3
    return (np.bitwise_count(x3 & c) + np.bitwise_count(xh & c)).astype(np.int64)


def naf_negative_digits(a: np.ndarray) -> np.ndarray:
    """Number of -1 digits in the non-adjacent form of ``a >= 0`` (vectorised, as :func:`naf_weight`).

    ``a = 2^i + 2^j`` has none, so ``-a`` needs a negation besides its adder; ``a = 2^i - 2^j``
    has one, so ``-a = 2^j - 2^i`` is a single subtraction.
    """
    a = np.asarray(a, dtype=np.int64)
    xh = a >> 1
    return np.bitwise_count(xh & (xh ^ (a + xh))).astype(np.int64)


def naf_span(a: np.ndarray) -> np.ndarray:
    """Distance between the highest and the lowest nonzero NAF digit of ``a >= 0`` (0 for 0 and 2^k).

    A product by a two-digit constant ``±2^i ± 2^j`` is one adder of ``b_x + span + 1`` bits.
    """
    a = np.asarray(a, dtype=np.int64)
    xh = a >> 1
    x3 = a + xh
    digits = (x3 | xh) & (xh ^ x3)
    low = np.where(a > 0, a & -a, 1)
    return np.where(a > 0, bit_length(digits) - bit_length(low), 0).astype(np.int64)


def constant_width(v: np.ndarray) -> np.ndarray:
    """Bits of the narrowest field holding the integer constant ``v`` as the HLS tools size it: a
    positive constant unsigned (``11`` -> 4 bits), a negative one two's complement (``-11`` -> 5)."""
    v = np.asarray(v, dtype=np.int64)
    return np.where(v >= 0, bit_length(np.abs(v)), bit_length(np.abs(v) - 1) + 1).astype(np.int64)


def bit_length(a: np.ndarray) -> np.ndarray:
    """Elementwise ``int.bit_length`` of non-negative int64 values below 2^53."""
    a = np.asarray(a, dtype=np.int64)
    out = np.zeros(a.shape, dtype=np.int64)
    pos = a > 0
    out[pos] = np.floor(np.log2(a[pos].astype(np.float64))).astype(np.int64) + 1
    return out


def goes_to_lut(bits_a, bits_b, max_bits: int, narrow_bits: int):
    """The product of a ``bits_a``- and a ``bits_b``-bit operand is built from LUTs."""
    bits_a, bits_b = np.asarray(bits_a), np.asarray(bits_b)
    return (np.maximum(bits_a, bits_b) <= max_bits) | (np.minimum(bits_a, bits_b) <= narrow_bits)


def dsp_tiles(bits_a, bits_b, ports: tuple[int, int]):
    """DSP slices for one ``bits_a x bits_b`` product: the wider operand on the wider port."""
    wide, narrow = np.maximum(bits_a, bits_b), np.minimum(bits_a, bits_b)
    return -(-wide // ports[0]) * -(-narrow // ports[1])


def memory_cost(depth: int, width: int) -> tuple[int, int]:
    """(LUT, BRAM18) of a ``depth x width``-bit memory."""
    if depth <= 0 or width <= 0:
        return 0, 0
    if depth < LUTRAM_MAX_DEPTH:
        return -(-depth // 64) * width, 0
    return 0, -(-width // BRAM18_WIDTH) * -(-depth // BRAM18_DEPTH)


def rom_logic_cost(depth: int, width: int) -> int:
    """LUTs of a constant ``depth x width``-bit table built as logic (completely partitioned, one per
    lookup): a LUT6 is a 64 x 1 ROM and a slice's F7/F8 muxes join four of them for free, so
    ``ceil(depth / 64) * width``, plus one LUT per bit for each further 256 entries."""
    if depth <= 0 or width <= 0:
        return 0
    return (-(-depth // 64) + max(0, -(-depth // 256) - 1)) * width
