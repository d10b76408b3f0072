"""A multiply-accumulate module by constant weights, built from :mod:`.primitives`: the common core
of hls4ml's ``dense_latency`` (and of one output pixel of its ``conv_2d_latency_cl``) and of
Foldline's ``sparse_mac`` with its requantizer, so that both backends are estimated by one rule.

Both kernels unroll ``acc[o] = b[o] + sum_i w[o, i] * x[i]`` with literal weights inside a
function pipelined at ``II = reuse`` under ``ALLOCATION operation instances=mul limit``:

* the tool builds each distinct ``(input, weight)`` product once — equal products of one input
  are shared by every output using them — as :func:`.primitives.constant_products` says;
* each output's terms (and a nonzero bias) are summed by an adder tree scheduled as soon as
  possible into cycles (:func:`.primitives.adder_trees`);
* the output stage (hls4ml: the cast to ``res_t``; Foldline: the requantizer,
  :mod:`.requant_stage`) is chained operator by operator into the tree's last cycle while it
  fits (:func:`.primitives.chain_ops`), its inputs registered where it does not;
* registers: the partial sums that cross a cycle boundary, results that are ready early and wait
  for the slowest output, and at ``II = 1`` with latency >= 1 a registered output per live
  result behind a 2:1 enable mux (A's fc1: 64 x 16 FFs and 576 LUTs, docs/hls.md "Registers");
* at ``reuse > 1`` the ``mul`` operations beyond the limit share units: two ``(R + 1)``:1 operand
  muxes each, their products held a cycle, and the module's one-hot FSM (case B's output layer).

An output without nonzero weights is a constant: no tree, no output stage, nothing downstream.
Costs are also returned per output and per input, for the channel-cost pruning rule: a shared
product is split evenly between the outputs that use it. Everything is an estimate of what the
HLS tool reports, not a synthesis result.

>>> from hls_templates.estimate.primitives import part_for, cycle_budget
>>> m = mac_module(np.array([0, 0, 1]), np.array([0, 1, 1]), np.array([3, 1, 3]), 2, 2, 8,
...                np.array([11, 9, 11]), np.zeros(2, int), 12, OutputStage(), cycle_budget(5.0), part_for("xcu250"))
>>> m.stages, m.dsp, m.outputs, m.mul_ops
(0, 0, 2, 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hls_templates.estimate import arith
from hls_templates.estimate import primitives as prim


@dataclass(frozen=True)
class OutputStage:
    """What follows each output's adder tree inside the module: ``lut``, ``dsp`` and ``mul_ops``
    (operations under the ``mul`` limit) per output, scalars or ``(n_out,)`` arrays; ``delays``
    its operators in order (ns); ``width`` the result's bits. The default is no stage at all."""

    lut: object = 0
    dsp: object = 0
    mul_ops: object = 0
    delays: tuple = ()
    width: int = 0


@dataclass
class MacModule:
    """One pipelined module: ``stages`` its latency in cycles (0: combinational), ``delays`` the
    combinational delay of each of its ``stages + 1`` cycles; totals; ``out_*`` / ``in_*`` the
    same costs per output / per input; ``tree_*`` per output (what pruning recomputes)."""

    stages: int
    delays: list[float]
    lut: int
    dsp: int
    ff: int
    outputs: int
    out_width: int
    mul_ops: int
    dsp_products: int
    multiplier_limit: int | None
    products: dict
    out_lut: np.ndarray
    out_dsp: np.ndarray
    out_ff: np.ndarray
    in_lut: np.ndarray
    in_dsp: np.ndarray
    in_ff: np.ndarray
    live: np.ndarray
    trees: "ModuleTrees" = field(repr=False, default=None)


@dataclass(frozen=True)
class ModuleTrees:
    """What re-timing the module without some terms needs (the channel-cost rule): ``counts[o, g]``
    the terms of output ``o``'s tree (its bias included) arriving at ``arrivals[g]``; per weight
    entry its output, input channel and arrival group; ``weights[o]`` the weight entries of output
    ``o``; each tree's ``stage``, ``ready`` and ``head``; the output stage's delays, the cycle
    budget and the part."""

    counts: np.ndarray
    arrivals: np.ndarray
    entry_out: np.ndarray
    entry_channel: np.ndarray
    entry_group: np.ndarray
    weights: np.ndarray
    stage: np.ndarray
    ready: np.ndarray
    head: np.ndarray
    stage_delays: tuple
    budget: float
    part: prim.Part

    def without_output(self, o: int) -> list[float]:
        """The module's cycle delays once output ``o`` is gone (the other trees are unchanged)."""
        live = self.weights > 0
        live[o] = False
        return module_cycles(self.stage, self.head, self.ready, live, self.stage_delays, self.budget)

    def cycles(self, counts, weights) -> list[list[float]]:
        """The module's cycle delays for trees of ``counts`` (``(..., n_out, G)``) with ``weights``
        weight entries per output (``(..., n_out)``), one list per leading index."""
        counts = np.asarray(counts, dtype=np.float64)
        stage, ready = prim.tree_timing(counts, self.arrivals, self.budget, self.part)
        head = prim.tree_head(counts, self.arrivals, stage, ready, self.budget, self.part)
        live = np.asarray(weights) > 0
        lead = counts.shape[:-2]
        stage, ready, head, live = (a.reshape(-1, counts.shape[-2]) for a in np.broadcast_arrays(stage, ready, head, live))
        out = []
        for s, r, h, alive in zip(stage, ready, head, live):
            out.append(module_cycles(s, h, r, alive, self.stage_delays, self.budget))
        return out if lead else out[0]


def module_cycles(tree_stage, tree_head, tree_tail, live, stage_delays, budget: float) -> list[float]:
    """A module's cycle delays: its slowest tree's cycles, then the output stage's operators chained
    after the tree's last cycle (:func:`.primitives.chain_ops`)."""
    live = np.asarray(live, dtype=bool)
    stages = int(np.asarray(tree_stage)[live].max(initial=0))
    head = float(np.asarray(tree_head)[live].max(initial=0.0))
    tail = float(np.asarray(tree_tail)[live & (np.asarray(tree_stage) == stages)].max(initial=0.0))
    cycles = prim.chain_ops(tail, stage_delays, budget)
    return ([head] + [budget] * (stages - 1) if stages else []) + cycles


def term_width(x_bits: int, x_signed: bool, values, acc_width: int, drop: int = 0) -> np.ndarray:
    """Bits of the term ``x * v`` as the adder tree receives it: ``x_bits + bits(|v|)`` (one more for
    an unsigned ``x``: the product is signed), less the ``drop`` LSBs a cast to the accumulator
    discards (hls4ml), at most the accumulator's width and at least 1."""
    bits = x_bits + arith.bit_length(np.abs(np.asarray(values, dtype=np.int64))) + (0 if x_signed else 1)
    return np.minimum(acc_width, np.maximum(bits - drop, 1))


def constant_width(values, acc_width: int) -> np.ndarray:
    """Bits of a constant term (a bias) in the tree; 0 where the constant is 0 (no term)."""
    v = np.asarray(values, dtype=np.int64)
    return np.where(v != 0, np.minimum(acc_width, arith.constant_width(v) + 1), 0)


def mac_module(out_idx, in_idx, weights, n_out: int, n_in: int, x_bits: int, term_widths, bias_widths,
               acc_width: int, stage: OutputStage, budget: float, part: prim.Part, reuse: int = 1,
               limit: int | None = None, thresholds: tuple[int, int] = prim.LUT_MULT_THRESHOLDS,
               in_channel=None) -> MacModule:
    """Estimate one module from its nonzero weights (entry ``k``: ``weights[k]`` from input
    ``in_idx[k]`` into output ``out_idx[k]``, term ``term_widths[k]`` bits), ``bias_widths``
    (``(n_out,)``: the width of each output's constant term, 0 for none), the accumulator width,
    the output stage and the ``mul`` limit (None: unlimited); ``thresholds`` the DSP-or-LUT rule's
    (:func:`.primitives.constant_products`); ``in_channel[i]`` the channel input ``i`` belongs to,
    for re-timing without a channel (default: each input its own). See the module docstring."""
    out_idx, in_idx = np.asarray(out_idx, dtype=np.int64), np.asarray(in_idx, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.int64)
    half = int(np.abs(weights).max(initial=0))
    distinct, inverse = np.unique(in_idx * (2 * half + 1) + weights + half, return_inverse=True)
    inverse = inverse.reshape(-1)
    values = distinct % (2 * half + 1) - half
    p = prim.constant_products(values, x_bits, part, *thresholds)
    users = np.bincount(inverse, minlength=distinct.size)
    share = 1.0 / np.maximum(users, 1)[inverse]

    def per(index, cost, n):
        return np.bincount(index, weights=np.asarray(cost, dtype=np.float64)[inverse] * share, minlength=n)

    live = np.bincount(out_idx, minlength=n_out) > 0
    n_live = int(live.sum())
    bias_widths = np.where(live, np.asarray(bias_widths, dtype=np.int64), 0)
    has_bias = np.flatnonzero(bias_widths > 0)
    trees = prim.adder_trees(np.concatenate([p.delay[inverse], np.zeros(has_bias.size)]),
                             np.concatenate([np.asarray(term_widths, dtype=np.float64), bias_widths[has_bias]]),
                             np.concatenate([out_idx, has_bias]), n_out, acc_width, budget, part)
    stages = int(trees.stage[live].max(initial=0))
    delays = module_cycles(trees.stage, trees.head_ns, trees.tail_ns, live, stage.delays, budget)
    total = len(delays) - 1
    extra = total - stages

    def outputs(value):
        return np.where(live, np.broadcast_to(np.asarray(value, dtype=np.float64), (n_out,)), 0.0)

    out_lut = per(out_idx, p.lut, n_out) + np.where(live, trees.lut, 0) + outputs(stage.lut)
    out_dsp = per(out_idx, p.dsp, n_out) + outputs(stage.dsp)
    out_ff = np.where(live, trees.reg_bits + (stages - trees.stage) * stage.width + extra * acc_width, 0.0)
    is_mul = np.isin(p.kind, ("dsp", "lut_mul"))
    mul_ops = int(is_mul.sum() + outputs(stage.mul_ops).sum())
    dsp_total = float(out_dsp.sum())
    if reuse > 1 and limit is not None:
        shared = max(mul_ops - limit, 0)     # units serving more than one product
        if shared:
            dsp_total = min(dsp_total, max(limit, 0))
        spread = outputs(1.0) / max(n_live, 1)
        out_lut = out_lut + spread * (2 * shared * prim.mux_lut(reuse + 1) + prim.mux_lut(3))   # operand muxes, FSM
        out_ff = out_ff + spread * (shared * acc_width + reuse)                                  # held products, FSM
        out_dsp = out_dsp * (dsp_total / max(float(out_dsp.sum()), 1.0))
    elif total >= 1:                         # registered outputs behind an enable mux
        out_lut = out_lut + outputs(prim.mux_lut(2))
        out_ff = out_ff + outputs(stage.width)
    term_lut = np.where(trees.terms > 0, trees.lut / np.maximum(trees.terms, 1), 0.0)[out_idx]
    kinds = {str(k): int(v) for k, v in zip(*np.unique(p.kind[values != 0], return_counts=True))}
    channel = in_idx if in_channel is None else np.asarray(in_channel, dtype=np.int64)[in_idx]
    retime = ModuleTrees(trees.counts, trees.arrivals, out_idx, channel, trees.group[:out_idx.size],
                         np.bincount(out_idx, minlength=n_out), trees.stage, trees.ready_ns, trees.head_ns,
                         tuple(stage.delays), budget, part)
    return MacModule(total, delays, int(round(out_lut.sum())), int(round(dsp_total)), int(round(out_ff.sum())),
                     n_live, stage.width, mul_ops, int((p.kind == "dsp").sum()), limit, kinds,
                     out_lut, out_dsp, out_ff,
                     per(in_idx, p.lut, n_in) + np.bincount(in_idx, weights=term_lut, minlength=n_in),
                     per(in_idx, p.dsp, n_in), np.zeros(n_in), live, retime)


# A pipelined top function (hls4ml's io_parallel top; Foldline's parallel top at reuse 1): the
# input port's register and valid bit, an enable bit per pipeline stage, 4 handshake muxes (2:1)
# and 3 gates; at II > 1 a 3:1 FSM mux and two more 2:1 muxes (A, C: 36 LUTs; B: 69).
TOP_HANDSHAKE_MUXES = 4
TOP_GATES = 3


def pipelined_top(input_bits: int, states: int, ii: int) -> tuple[int, int]:
    """(LUT, FF) of a pipelined top function's own control (the registers of values crossing its
    cycle boundaries are the caller's: they depend on what crosses)."""
    ff = int(input_bits) + 1 + ii + (states - 1 if ii == 1 else ceil_div(states, ii))
    lut = prim.GATE_LUT * TOP_GATES + TOP_HANDSHAKE_MUXES * prim.mux_lut(2)
    if ii > 1:
        lut += prim.mux_lut(3) + 2 * prim.mux_lut(2)
    return lut, max(ff, 0)


def module_latency(stages: int) -> int:
    """Cycles one iteration of a pipelined module spans (its depth in a loop): ``stages + 1``."""
    return int(stages) + 1


def ceil_div(a: int, b: int) -> int:
    return -(-int(a) // int(b))


__all__ = ["MacModule", "OutputStage", "ceil_div", "constant_width", "mac_module", "module_latency", "pipelined_top",
           "term_width"]
