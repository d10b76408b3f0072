"""The primitives every HLS design is built from, with the cost the HLS tool assigns them.

Calibrated on Vivado HLS 2019.2 for ``xcu250-figd2104-2L-e`` (UltraScale+), from the reports
of ``tests/data/calibration/hls4ml-jet-mlp`` and the per-module reports of the same runs
(their public source, ``Hector-Plata/hls4ml-tutorial`` at 9f451d8: ``*_csynth.rpt`` tables
of every expression, ``*.verbose.sched.rpt`` with the delay of every operation). Each
constant below names the data point that fixes it; docs/hls.md "The primitive model and its
calibration" has the tables. Nothing here knows about hls4ml: an operator is a width (and,
for a constant product, a value), so Foldline's own kernels can be costed with the same
functions.

What the numbers are: the HLS tool's *estimates* (delays it schedules with, LUTs it reports
before logic synthesis), which is what the reports hold. Post-synthesis LUT counts are
typically lower; nothing here is a synthesis result.

>>> FixedType.parse("ufixed<6,0,RND_CONV,SAT>")
FixedType(width=6, integer=0, signed=False, rounding='RND_CONV', saturation='SAT')
>>> p = constant_products(np.array([0, 4, -4, 5, 45]), 16, part_for("xcu250"))
>>> p.kind.tolist(), p.dsp.tolist(), p.lut.tolist()
(['zero', 'shift', 'shift', 'adder', 'dsp'], [0, 0, 0, 0, 1], [0, 0, 19, 19, 5])
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from exporters.errors import FoldlineError
from hls_templates.estimate import arith
from hls_templates.estimate.config import EstimateConfig


class PrimitiveError(FoldlineError):
    """A type or part the primitive model cannot read (names the culprit)."""


# ----------------------------------------------------------------------------- fixed-point types

_TYPE_RE = re.compile(r"^\s*(?:ap_)?(u?)(fixed|int)\s*<\s*([^>]*)>\s*$")


@dataclass(frozen=True)
class FixedType:
    """``ap_fixed<width, integer, rounding, saturation>`` (``signed=False``: ``ap_ufixed``);
    an ``ap_int<W>`` is ``FixedType(W, W)``. ``rounding``/``saturation`` use the ap_types
    names without the ``AP_`` prefix (``TRN``, ``RND``, ``RND_CONV``...; ``WRAP``, ``SAT``...)."""

    width: int
    integer: int
    signed: bool = True
    rounding: str = "TRN"
    saturation: str = "WRAP"

    @property
    def frac(self) -> int:
        return self.width - self.integer

    @classmethod
    def parse(cls, text: str) -> "FixedType":
        """hls4ml precision strings: ``fixed<16,6>``, ``ap_ufixed<6,0,AP_RND_CONV,AP_SAT>``, ``int<8>``."""
        m = _TYPE_RE.match(str(text))
        if not m:
            raise PrimitiveError(f"precision '{text}': expected fixed<W,I>, ufixed<W,I,...> or int<W>")
        unsigned, kind, args = m.groups()
        fields = [a.strip() for a in args.split(",") if a.strip()]
        try:
            width = int(fields[0])
            integer = width if kind == "int" else int(fields[1])
        except (IndexError, ValueError):
            raise PrimitiveError(f"precision '{text}': width and integer bits must be integers") from None
        modes = [f.upper().removeprefix("AP_") for f in fields[1 if kind == "int" else 2:]]
        return cls(width, integer, not unsigned, modes[0] if modes else "TRN", modes[1] if len(modes) > 1 else "WRAP")

    def quantize(self, values) -> np.ndarray:
        """Integers ``q`` (value ``q * 2^-frac``) of real ``values`` converted to this type as
        ap_fixed converts a double: ``TRN`` floors, ``RND`` rounds half up, ``RND_CONV`` half to
        even; ``WRAP`` wraps, ``SAT`` clamps, ``SAT_SYM`` clamps to ``±(2^(W-1) - 1)``."""
        rounding = {"TRN": np.floor, "RND": lambda v: np.floor(v + 0.5), "RND_CONV": np.round}.get(self.rounding)
        if rounding is None or self.saturation not in ("WRAP", "SAT", "SAT_SYM"):
            raise PrimitiveError(f"quantize: {self.rounding}/{self.saturation} is not implemented "
                                 "(TRN, RND, RND_CONV; WRAP, SAT, SAT_SYM are)")
        q = rounding(np.asarray(values, dtype=np.float64) * 2.0 ** self.frac).astype(np.int64)
        lo, hi = (-(1 << (self.width - 1)), (1 << (self.width - 1)) - 1) if self.signed else (0, (1 << self.width) - 1)
        if self.saturation == "WRAP":
            return (q - lo) % (hi - lo + 1) + lo
        return np.clip(q, lo + (1 if self.saturation == "SAT_SYM" and self.signed else 0), hi)


# ----------------------------------------------------------------------------- target parts

@dataclass(frozen=True)
class Part:
    """What the primitive model knows of a device family.

    ``dsp_ports``: signed multiplier ports of its DSP slice. ``delay_scale`` multiplies every
    calibrated delay. ``calibrated`` is False where the delays are an assumption, not a fit.
    """

    name: str
    family: str
    dsp_ports: tuple[int, int]
    delay_scale: float
    calibrated: bool


ULTRASCALE_PLUS = "UltraScale+"
SERIES7 = "7-series"
# 7-series against UltraScale+: the ratio of the DSP slices' Fmax in the data sheets, about 464 MHz
# for a -1 Zynq-7000 (DS187) against 775 MHz for a -2 UltraScale+ (DS923), as recalled, not checked
# here: 1.67. An assumption, never compared with a 7-series report.
SERIES7_DELAY_SCALE = 1.67


def part_for(name: str) -> Part:
    """The :class:`Part` of a Xilinx part number: ``xc7*`` is 7-series (uncalibrated); the
    UltraScale/UltraScale+/Versal families use the UltraScale+ calibration (``xcu250`` fitted)."""
    lower = str(name).lower()
    if lower.startswith("xc7"):
        return Part(str(name), SERIES7, (25, 18), SERIES7_DELAY_SCALE, calibrated=False)
    if not lower.startswith(("xc", "xa", "xq")):
        raise PrimitiveError(f"part '{name}': expected a Xilinx part number such as xcu250-figd2104-2L-e or xc7z020")
    return Part(str(name), ULTRASCALE_PLUS, (27, 18), 1.0, calibrated=lower.startswith("xcu250"))


# HLS's default clock uncertainty is 12.5 % of the period: every report says 0.62 ns at 5 ns.
CLOCK_UNCERTAINTY_FRACTION = 0.125


def cycle_budget(clock_ns: float, uncertainty_ns: float | None = None) -> float:
    """Combinational delay the scheduler chains into one cycle: period minus uncertainty."""
    return clock_ns - (clock_ns * CLOCK_UNCERTAINTY_FRACTION if uncertainty_ns is None else uncertainty_ns)


# ----------------------------------------------------------------------------- operators
# Delays (ns) are those of the sched reports (UltraScale+ -2L); LUTs those of the csynth
# "Expression" tables. Binary AddSub: 0.40-0.43 ns up to 8 bits, 0.48-0.55 at 9-15 bits,
# 0.58-0.60 at 16 bits (880 adds) and 0.55-0.62 above.
ADD_DELAY_NS = ((8, 0.43), (15, 0.53), (10 ** 9, 0.60))
# The 'Mul' core: 1.23 ns for a 10-12-bit product (6-bit x constant, case C fc2/fc3/output),
# 1.94 ns for 21-26 bits (16-bit x constant, every A/B module and C fc1); linear in between.
MUL_DELAY_NS = ((12, 1.23), (21, 1.94))
# icmp: 0.50 ns on 3 bits (C relu, sticky bits), 0.676 ns on 16 bits (A relu, x > 0).
ICMP_DELAY_NS = ((3, 0.50), (16, 0.676))
# One level of an accumulation tree: 0.65 ns. The tool mixes binary adds (0.54-0.60 ns) and
# ternary adders (0.675 ns, 1,721 of them at 16 bits) in trees that are not quite
# arrival-optimal; 0.65 is the value that best predicts, with :func:`adder_trees`, the critical
# path of all 12 dense modules of the sched reports (rms error 0.18 ns, mean +0.004 ns; 0.60
# gives rms 0.28, 0.675 gives 0.22). Calibrated on 16-bit accumulators only.
TREE_LEVEL_NS = 0.65
SELECT_DELAY_NS = 0.29   # every select in the relu sched reports: 0.292-0.293 ns
GATE_LUT = 2             # a 1-bit and/or/xor: 2 LUTs in every Expression table
DSP_MUL_LUT = 5          # a product bound to a DSP48E2 still reports 5 LUTs (all 1,444 A/B DSP products)


def _scaled(part: Part, ns: float) -> float:
    return ns * part.delay_scale


def add_delay(width, part: Part):
    """Delay of a ``width``-bit adder/subtractor (carry chain); elementwise on an array of widths."""
    width = np.asarray(width)
    ns = np.select([width <= w for w, _ in ADD_DELAY_NS], [d for _, d in ADD_DELAY_NS])
    return _scaled(part, float(ns) if ns.ndim == 0 else ns)


def add_lut(width: int) -> int:
    """LUTs of a ``width``-bit adder: one per bit (``+``/``-`` rows of every Expression table)."""
    return int(width)


def mul_delay(product_bits, part: Part):
    """Delay of a multiplier with a ``product_bits``-bit result, bound to a DSP or to LUTs
    (elementwise on an array)."""
    (b0, d0), (b1, d1) = MUL_DELAY_NS
    t = np.clip((np.asarray(product_bits, dtype=np.float64) - b0) / (b1 - b0), 0.0, 1.0)
    ns = d0 + t * (d1 - d0)
    return _scaled(part, float(ns) if ns.ndim == 0 else ns)


def icmp_delay(width: int, part: Part) -> float:
    (w0, d0), (w1, d1) = ICMP_DELAY_NS
    slope = (d1 - d0) / math.log2(w1 / w0)
    return _scaled(part, max(d0 + slope * math.log2(max(width, 1) / w0), 0.0))


def icmp_lut(width: int) -> int:
    """LUTs of a ``width``-bit comparison: ``5 + 2 ceil(log2 width)`` (a LUT6 reduction tree):
    13 at 16 bits (relu ``x > 0``), 11 at 6 bits and 9 at 3 bits (C's rounding relu)."""
    return 5 + 2 * math.ceil(math.log2(max(width, 2)))


def select_lut(width: int) -> int:
    """LUTs of a 2:1 select of ``width`` bits: one per bit, at least 2 (1-bit selects report 2)."""
    return max(int(width), 2)


def mux_lut(inputs: int) -> int:
    """HLS's estimate of an ``inputs``:1 multiplexer, whatever its width: 9 for 2 inputs, 15 for 3
    (every Multiplexer table: handshake muxes 9; B's shared multipliers' operand muxes 15)."""
    return 6 * int(inputs) - 3


# ----------------------------------------------------------------------------- products

# The DSP-or-LUT thresholds are the estimator's (EstimateConfig): one place for the fact.
LUT_MULT_MAX_BITS = EstimateConfig.lut_mult_max_bits
LUT_MULT_NARROW_BITS = EstimateConfig.lut_mult_narrow_bits
LUT_MULT_THRESHOLDS = (LUT_MULT_MAX_BITS, LUT_MULT_NARROW_BITS)

PRODUCT_KINDS = np.array(["zero", "shift", "adder", "lut_mul", "dsp"])


@dataclass(frozen=True)
class Products:
    """Cost of products by constants, one entry per constant (arrays of equal shape).

    ``kind``: ``zero`` (folds away), ``shift`` (wiring; a negative one adds a negation),
    ``adder`` (two canonical signed digits: one add/sub), ``lut_mul`` / ``dsp`` (a multiplier
    the binder puts in fabric or on DSP slices). ``delay`` in ns; ``bits`` the full product width.
    """

    kind: np.ndarray
    lut: np.ndarray
    dsp: np.ndarray
    delay: np.ndarray
    bits: np.ndarray


def constant_products(values, x_bits: int, part: Part, lut_mult_max_bits: int = LUT_MULT_MAX_BITS,
                      lut_mult_narrow_bits: int = LUT_MULT_NARROW_BITS) -> Products:
    """How the HLS tool builds ``x * v`` for a ``x_bits``-bit variable and integer constants ``v``.

    The front end rewrites a constant product by its canonical signed digits (NAF) before
    binding: one nonzero digit is a shift (a negative one a negation), two are one adder of
    ``x_bits + span + 1`` bits (``-(2^i + 2^j)`` adds a negation); three or more stay a
    multiplier. That rule reproduces every ``mul`` operation of the 12 modules of the
    calibration runs, one for one (A fc1: 476). A multiplier goes to a DSP unless it is small
    (:func:`arith.goes_to_lut`): the data fix the narrow threshold exactly (16 x 4-bit
    constants are in LUTs, 16 x 5-bit on DSPs, in A, B and C fc1) and bracket the other (6 x 6
    bits in LUTs, C; 16 x 5 on DSPs), so ``lut_mult_max_bits`` = 10 is within the data, not
    fitted. A multiplier in LUTs costs its shift-and-add, ``(naf - 1)`` adders of the product
    width (23 LUTs reported for C's 6 x 6-bit ones; this gives 20-24).
    """
    v = np.asarray(values, dtype=np.int64)
    mag = np.abs(v)
    digits = arith.naf_weight(mag)
    const_bits = arith.constant_width(v)
    bits = x_bits + arith.bit_length(mag)                     # x * 2^k: x_bits + k + 1
    on_lut = arith.goes_to_lut(x_bits, const_bits, lut_mult_max_bits, lut_mult_narrow_bits)
    adder_bits = x_bits + arith.naf_span(mag) + 1
    double_negation = (v < 0) & (arith.naf_negative_digits(mag) == 0)
    code = np.where(digits < 3, digits, np.where(on_lut, 3, 4))       # index into PRODUCT_KINDS
    lut = np.choose(code, [0, np.where(v < 0, bits, 0), adder_bits * (1 + double_negation),
                           (digits - 1) * (x_bits + const_bits), DSP_MUL_LUT])
    dsp = np.where(code == 4, arith.dsp_tiles(x_bits, const_bits, part.dsp_ports), 0)
    delay = np.choose(np.minimum(code, 3), [0.0, np.where(v < 0, add_delay(bits, part), 0.0), add_delay(adder_bits, part),
                                            mul_delay(bits + 1, part)])
    return Products(PRODUCT_KINDS[code], lut.astype(np.int64), dsp.astype(np.int64), delay, bits + 1)


def variable_product(a_bits: int, b_bits: int, part: Part, lut_mult_max_bits: int = LUT_MULT_MAX_BITS,
                     lut_mult_narrow_bits: int = LUT_MULT_NARROW_BITS) -> tuple[int, int, float]:
    """(LUT, DSP, delay ns) of a multiplier of two variables (a shared multiplier at reuse > 1):
    a DSP product unless small (same rule as :func:`constant_products`), else an array of
    ``a_bits * b_bits`` LUTs (uncalibrated: no variable product in the calibration runs)."""
    if bool(arith.goes_to_lut(a_bits, b_bits, lut_mult_max_bits, lut_mult_narrow_bits)):
        return a_bits * b_bits, 0, mul_delay(a_bits + b_bits, part)
    return DSP_MUL_LUT, int(arith.dsp_tiles(a_bits, b_bits, part.dsp_ports)), mul_delay(a_bits + b_bits, part)


# ----------------------------------------------------------------------------- adder trees

_EPS = 1e-9


@dataclass
class TreeSchedules:
    """Adder trees scheduled as soon as possible into cycles of ``budget`` ns, one entry per tree.

    ``stage``: the cycle (0-based) a tree's result is ready in, at ``ready_ns`` into that cycle;
    ``head_ns`` / ``tail_ns``: the longest chain in its first / in its last cycle; ``adds``: its
    adders (one per term beyond the first), ``lut`` their LUTs; ``reg_bits``: flip-flops of the
    partial sums that cross a cycle boundary. Arrays of one shape (the trees'); ``counts``,
    ``arrivals`` and ``group`` describe the terms as :func:`tree_timing` reads them."""

    stage: np.ndarray
    ready_ns: np.ndarray
    head_ns: np.ndarray
    tail_ns: np.ndarray
    terms: np.ndarray
    adds: np.ndarray
    lut: np.ndarray
    reg_bits: np.ndarray
    counts: np.ndarray = None     # (trees, groups): terms of each tree arriving at ``arrivals[g]``
    arrivals: np.ndarray = None
    group: np.ndarray = None      # the arrival group of each term


def _levels(budget: float, part: Part) -> tuple[float, int]:
    """One tree level (ns) and the levels a whole cycle holds."""
    level = _scaled(part, TREE_LEVEL_NS)
    return level, max(int(math.floor(budget / level + _EPS)), 1)


def tree_timing(counts, arrivals, budget: float, part: Part) -> tuple[np.ndarray, np.ndarray]:
    """(stage, ready ns) of trees given by ``counts[..., g]``, the number of their terms arriving at
    ``arrivals[g]`` ns (cycle 0); any leading shape, so a caller can schedule many variants at once.

    This is the schedule of the tool's timing-driven balancing, "add the two earliest values
    first" (each add one :data:`TREE_LEVEL_NS` level, chained while it ends within ``budget``,
    otherwise started in the next cycle from registered inputs), computed in closed form: that
    greedy order is optimal (Golumbic, "Combinatorial merging", IEEE Trans. Computers 1976, for
    ``max(a, b) + L``; the cycle cut keeps the cost monotone), so its result is the earliest
    point ``(stage, t)`` at which a binary tree exists whose term ``g`` has at most
    ``D_g(stage, t)`` levels above it: Kraft's inequality ``sum_g counts_g 2^-D_g <= 1``.
    A term arriving at ``u`` has ``D = floor((t - u) / L)`` levels by ``t`` in cycle 0, and
    ``floor((budget - u) / L) + (stage - 1) K + j`` by level ``j`` of a later cycle (``K``
    levels per cycle). Checked against the greedy itself on the calibration modules' 381 trees
    and on random ones (tests/test_estimate_trees.py): the same stage and ready time.
    """
    counts = np.asarray(counts, dtype=np.float64)
    u = np.asarray(arrivals, dtype=np.float64)
    level, per_cycle = _levels(budget, part)
    first_cycle = np.maximum(np.floor((budget - u) / level + _EPS), 0)             # levels left in cycle 0
    k = np.arange(per_cycle + 1)
    t0 = u[:, None] + k[None, :] * level
    t0 = np.unique(np.round(t0[(t0 <= budget + _EPS) | (k == 0)[None, :]], 9))
    depth0 = np.floor((t0[None, :] - u[:, None]) / level + _EPS)
    kraft0 = counts @ np.where(depth0 >= 0, np.exp2(-np.maximum(depth0, 0)), 2.0 ** 60)
    terms = counts.sum(axis=-1)
    cycles = int(math.ceil((math.log2(max(float(terms.max(initial=1)), 1.0)) + 1) / per_cycle)) + 1
    stage = np.repeat(np.arange(1, cycles + 1), per_cycle)
    j = np.tile(np.arange(1, per_cycle + 1), cycles)
    kraft1 = counts @ np.exp2(-(first_cycle[:, None] + (stage - 1)[None, :] * per_cycle + j[None, :]))
    first = np.argmax(np.concatenate([kraft0, kraft1], axis=-1) <= 1 + 1e-12, axis=-1)
    later = np.maximum(first - t0.size, 0)
    out_stage = np.where(first < t0.size, 0, stage[later])
    ready = np.where(first < t0.size, t0[np.minimum(first, t0.size - 1)], j[later] * level)
    return out_stage, np.where(terms > 0, ready, 0.0)


def adder_trees(arrivals, widths, tree, n_trees: int, acc_width, budget: float, part: Part) -> TreeSchedules:
    """Schedule and cost ``n_trees`` adder trees at once: term ``i`` arrives at ``arrivals[i]`` ns
    with ``widths[i]`` bits into tree ``tree[i]``; ``acc_width`` caps every adder (per tree or one).

    Timing: :func:`tree_timing` (exact for the greedy schedule). Area, in closed form: a tree of
    ``n`` terms has ``n - 1`` adders, ``floor(m / 2)`` at each level of a balanced reduction of
    the ``m`` values left, each ``min(acc, w + level)`` bits wide, ``w`` the terms' mean width plus
    half a bit when their widths differ (an add is as wide as its wider input); on the 381 trees of
    the calibration modules this is the greedy's LUT sum within +0.7 % (+-12.5 % per tree). At a
    cycle boundary the ``ceil(sum counts 2^-levels)`` partial sums that cycle 0 leaves (its levels
    per term, as in :func:`tree_timing`) are registered at ``min(acc, w + log2(n / m))`` bits, and
    ``ceil(m / 2^K)`` accumulator-wide ones at each later boundary (-9 % against the greedy's).
    """
    arrivals = np.round(np.asarray(arrivals, dtype=np.float64), 9)
    widths = np.asarray(widths, dtype=np.float64)
    tree = np.asarray(tree, dtype=np.int64)
    u, group = np.unique(arrivals, return_inverse=True)
    u = u if u.size else np.zeros(1)
    counts = np.bincount(tree * u.size + group.reshape(-1), minlength=n_trees * u.size).reshape(n_trees, u.size)
    counts = counts.astype(np.float64)
    stage, ready = tree_timing(counts, u, budget, part)
    n = counts.sum(axis=1)
    acc = np.broadcast_to(np.asarray(acc_width, dtype=np.float64), (n_trees,))
    w_sum = np.bincount(tree, weights=widths, minlength=n_trees)
    w_square = np.bincount(tree, weights=widths * widths, minlength=n_trees)
    varied = n * w_square - w_sum * w_sum > 0.5          # n * sum(w^2) - (sum w)^2 = 0 iff all widths are equal
    w = w_sum / np.maximum(n, 1) + 0.5 * varied
    lut, left, lvl = np.zeros(n_trees), n.copy(), 0
    while (left > 1).any():
        lvl += 1
        adds = np.floor(left / 2)
        lut += adds * np.minimum(acc, w + lvl)
        left -= adds
    level, per_cycle = _levels(budget, part)
    first_cycle = np.maximum(np.floor((budget - u) / level + _EPS), 0)
    crossing = np.ceil(counts @ np.exp2(-first_cycle) - 1e-12)
    reg = np.where(stage >= 1, crossing * np.minimum(acc, w + np.log2(np.maximum(n, 1) / np.maximum(crossing, 1))), 0)
    for boundary in range(1, int(stage.max(initial=0))):
        crossing = np.ceil(crossing / 2 ** per_cycle)
        reg += np.where(stage > boundary, crossing * acc, 0)
    head = tree_head(counts, u, stage, ready, budget, part)
    return TreeSchedules(stage.astype(np.int64), ready, head, ready, n.astype(np.int64),
                         np.maximum(n - 1, 0).astype(np.int64), np.round(lut), np.round(reg), counts, u,
                         group.reshape(-1))


def tree_head(counts, arrivals, stage, ready, budget: float, part: Part) -> np.ndarray:
    """The longest chain in a tree's first cycle: its result when it ends there, otherwise the
    latest a term group can reach in cycle 0 (a group of one term merges no further there).
    Within 0.05 ns of the greedy's on the calibration trees. Leading shapes as :func:`tree_timing`."""
    counts = np.asarray(counts, dtype=np.float64)
    u = np.asarray(arrivals, dtype=np.float64)
    level, _ = _levels(budget, part)
    first_cycle = np.maximum(np.floor((budget - u) / level + _EPS), 0)
    latest = np.where(counts > 0, u + first_cycle * level * (counts >= 2), 0.0).max(axis=-1)
    return np.where(stage == 0, ready, latest)


# ----------------------------------------------------------------------------- casts

def cast_cost(src: FixedType, dst: FixedType, part: Part) -> tuple[int, float]:
    """(LUT, delay ns) of converting ``src`` to ``dst`` as ap_fixed does.

    Truncation and wrapping are wiring. Rounding (any mode but ``TRN``) drops
    ``d = src.frac - dst.frac`` bits: a comparison of the ``d - 1`` sticky bits, two gates and
    a ``dst.width``-bit incrementer; ``RND`` (half up) needs no sticky bits, only the bit below
    the new LSB (``quantization_adjust`` in ap_fixed_base.h), so it is the incrementer alone
    (the calibration saw ``RND_CONV`` only). Saturation, when ``dst`` holds fewer integer bits (or
    drops the sign): two comparisons of the dropped high bits (all zeros / all ones), a
    ``dst.width``-bit select, two gates and a 1-bit select. On case C's relu
    (``fixed<16,6>`` -> ``ufixed<6,0,RND_CONV,SAT>``) this is the report's 72 - 19 LUTs, op
    for op, and its 0.93 ns before the final select.
    """
    lut, delay = 0, 0.0
    drop = src.frac - dst.frac
    if drop > 0 and dst.rounding == "RND":
        lut += add_lut(dst.width)
        delay += add_delay(dst.width, part)
    elif drop > 0 and dst.rounding != "TRN":
        sticky = drop - 1
        lut += (icmp_lut(sticky) if sticky else 0) + 2 * GATE_LUT + add_lut(dst.width)
        delay += (icmp_delay(sticky, part) if sticky else 0.0) + add_delay(dst.width, part)
    if _saturates(src, dst):
        high = src.integer - dst.integer + (1 if src.signed and not dst.signed else 0)
        lut += 2 * icmp_lut(high) + select_lut(dst.width) + 2 * GATE_LUT + select_lut(1)
        delay = max(delay, icmp_delay(high, part)) + _scaled(part, SELECT_DELAY_NS)
    return lut, delay


def _saturates(src: FixedType, dst: FixedType) -> bool:
    return dst.saturation != "WRAP" and src.integer - dst.integer + (1 if src.signed and not dst.signed else 0) > 0


def relu_cost(src: FixedType, dst: FixedType, part: Part) -> tuple[int, float]:
    """(LUT, delay ns) of one ``y = x > 0 ? cast(x) : 0``: a ``src.width``-bit comparison in
    parallel with the cast, then a select of the result's magnitude bits (``dst.width``, less
    the sign bit of a signed result, which is known 0). A: 13 + 15 = 28 LUTs, 0.968 ns;
    C: 72 LUTs, 1.227 ns (both exactly as reported: the saturating select of the cast and the
    final select are one LUT level, 0 ns apart in the sched report)."""
    cast_lut, cast_ns = cast_cost(src, dst, part)
    if _saturates(src, dst):
        cast_ns -= _scaled(part, SELECT_DELAY_NS)
    magnitude = dst.width - (1 if dst.signed else 0)
    delay = max(icmp_delay(src.width, part), cast_ns) + _scaled(part, SELECT_DELAY_NS)
    return icmp_lut(src.width) + cast_lut + select_lut(magnitude), delay


# ----------------------------------------------------------------------------- composition

@dataclass(frozen=True)
class Chain:
    """Blocks chained into cycles: ``states`` cycles in all; ``starts[i]`` the cycle block ``i``
    begins in; ``registered[i]`` whether block ``i``'s inputs cross a cycle boundary (a
    register between its inputs and block ``i``); ``waits[i][k]`` the cycles block ``i``'s
    ``k``-th input waits in registers (0 when it is chained in the same cycle)."""

    states: int
    starts: tuple[int, ...]
    registered: tuple[bool, ...]
    waits: tuple[tuple[int, ...], ...] = ()


def chain_graph(blocks, inputs, budget: float) -> Chain:
    """Compose blocks as a pipelined caller does: ``blocks[i]`` is the list of the delays of
    block ``i``'s cycles (one entry for a combinational block), ``inputs[i]`` the indices of the
    earlier blocks it reads (none: the caller's input). A block starts when its last input is
    ready; its first cycle shares that input's last cycle when the two delays fit in ``budget``
    together, otherwise it starts a new cycle behind a register. The calibration tops follow
    this exactly (C: 3.29 | 1.22 | 3.92 | 1.22 | 3.59 | 1.22 + 2.83 | softmax)."""
    ends, starts, registered, waits = [], [], [], []
    for delays, before in zip(blocks, inputs):
        delays = list(delays) or [0.0]
        now = max((ends[k] for k in before), default=None)      # (cycle, ns): the latest input
        if now is not None and now[1] + delays[0] <= budget:
            start, ns = now[0], now[1] + delays[0]
        else:
            start, ns = (0 if now is None else now[0] + 1), delays[0]
        starts.append(start)
        registered.append(now is not None and start > now[0])
        waits.append(tuple(start - ends[k][0] for k in before))
        ends.append((start + len(delays) - 1, delays[-1] if len(delays) > 1 else ns))
    return Chain(max((e[0] for e in ends), default=-1) + 1, tuple(starts), tuple(registered), tuple(waits))


def chain_ops(start_ns: float, delays, budget: float) -> list[float]:
    """The cycles of operators chained after a value ready ``start_ns`` into its cycle: each
    operator joins the current cycle while it ends within ``budget``, else starts the next
    (its input registered). Returns the delay of every cycle used, the first included."""
    cycles = [float(start_ns)]
    for d in delays:
        if cycles[-1] + d <= budget + _EPS:
            cycles[-1] += d
        else:
            cycles.append(float(d))
    return cycles
