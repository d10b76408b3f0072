"""Pruning to hardware budgets: latency, DSP and LUT of the estimated FPGA design (docs/methods.md).

Every structured method (:class:`StructuredMethod`: the channel schedules, ``two-stage``,
``rule-framework``) accepts a :class:`~toolchain.methods.hardware.HardwareTarget` with budgets:

1. **before training** (:func:`check_reachable`): the smallest legal network (every prunable
   group at ``min(round_to, C)`` channels) is estimated; a budget it cannot meet — for area at
   the reuse factors that minimise it under ``--reuse-factor auto``, for latency at the lowest
   reuse that fits the area budgets — is refused with that minimum in the message;
2. **while pruning** (:class:`BudgetPruner`): channels go in order of *importance lost per unit
   of estimated cost saved* — ``(I_c / mean I of its group) / sum_m (saving_m(c) / budget_m)``
   over the budgets still missed (``saving_m`` from the estimator's per-channel costs, via
   :meth:`HardwareProbe.savings`) — until the network's estimate meets every budget.
   Latency and area trade through the reuse factor: at a fixed factor a channel saves area but
   hardly any cycles (only when an adder tree loses a level), so under ``auto`` a missed
   latency budget is paid for with area (the area budgets' savings rank the channels) and the
   reuse factors are re-chosen (:func:`~toolchain.methods.hardware.choose_reuse`) after every
   pruning step. Channels go one ``round_to`` block at a time while latency is missed (its
   response is not additive), otherwise in batches whose first-order savings close the gap;
3. **after fine-tuning** (:func:`enforce`): fine-tuning moves weights, hence nonzero counts,
   multipliers and accumulator widths; a budget missed then is pruned for again, from
   activation importance over the training data, followed by ``epochs / 2`` of fine-tuning, at
   most ``repair_rounds`` times. The final estimate, the budgets met or missed (and by how
   much) and the chosen per-layer reuse factors go into ``Result.details["hardware"]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import numpy as np
import torch

from toolchain.data import Dataset
from toolchain.methods.base import Method, RunContext
from toolchain.methods.common import prunable_groups
from toolchain.methods.hardware import (AREA, LIMITS, BudgetError, HardwareProbe, HardwareTarget, Measurement,
                                        calibrated_copy, choose_reuse, least_area, smallest)
from toolchain.nn.net import QuantNet
from toolchain.pruning import ActivationRecorder, ChannelGroup, remove_channels
from toolchain.train import predict

CALIBRATION_SAMPLES = 256   #: samples that calibrate the smallest network's quantizers before training
IMPORTANCE_SAMPLES = 512    #: training samples the repair rounds measure channel importance on
REPORTED = ("latency_cycles", "latency_us", "ii_cycles", "dsp", "lut", "ff", "bram")


class BudgetPruner:
    """Masks channels, least important per unit of saving first, until the estimate meets limits."""

    def __init__(self, target: HardwareTarget, round_to: int = 1) -> None:
        self.target, self.round_to = target, round_to
        self.probe = HardwareProbe(target)

    def measure(self, net: QuantNet) -> Measurement:
        """The design of ``net`` at the target (reuse factors chosen under ``auto``)."""
        model = self.probe.integer_model(net)
        if self.target.reuse == "auto":
            return choose_reuse(self.probe, model, self.target.area_limits)
        return self.probe.measure(None, None, model)

    def prune(self, ctx: RunContext, groups: Sequence[ChannelGroup], importance: Mapping[str, torch.Tensor],
              limits: Mapping[str, float]) -> Measurement:
        """Mask channels of ``groups`` until ``ctx.model``'s design meets ``limits`` (or nothing
        more may go); returns the last measurement."""
        while True:
            m = self.measure(ctx.model)
            over = m.excess(limits)
            if not over:
                return m
            picks = self._pick(ctx.model, m, groups, importance, over, limits)
            if not picks:
                return m
            mask_channels(ctx, picks, "budget",
                          f" ({', '.join(f'{LIMITS[k]} over by {v:.4g}' for k, v in over.items())})")

    def _rank_metrics(self, over: Mapping[str, float]) -> list[str]:
        """What a channel's saving is measured in while ``over``'s budgets are missed."""
        metrics = [k for k in over if k in AREA]
        if "latency_us" in over:
            paid_with_area = self.target.reuse == "auto" and self.target.area_limits
            metrics += list(self.target.area_limits) if paid_with_area else ["latency_us"]
        return list(dict.fromkeys(metrics))

    def _combined(self, savings: Mapping[str, dict], groups, limits, totals) -> dict[str, np.ndarray]:
        """``sum_m saving_m(c) / budget_m`` per group (a metric without a budget: its current total)."""
        scales = {k: max(float(limits.get(k, totals[k])), 1e-9) for k in savings}
        return {g.name: sum(savings[k][g.name] / scales[k] for k in savings) for g in groups}

    def savings(self, net: QuantNet, groups: Sequence[ChannelGroup], limits: Mapping[str, float]
                ) -> dict[str, np.ndarray]:
        """Each channel's combined saving over every budget in ``limits`` (for ranking alone)."""
        m = self.measure(net)
        per_metric = {k: self.probe.savings(m, net, groups, k) for k in self._rank_metrics(limits)}
        return self._combined(per_metric, groups, limits, m.totals)

    def _pick(self, net, m: Measurement, groups, importance, over, limits) -> list[tuple[ChannelGroup, list[int]]]:
        savings = {k: self.probe.savings(m, net, groups, k) for k in self._rank_metrics(over)}
        combined = self._combined(savings, groups, limits, m.totals)
        gaps = {k: v for k, v in over.items() if k in AREA}
        predicted = dict.fromkeys(gaps, 0.0)

        def enough(name: str, unit: np.ndarray) -> bool:
            for k in predicted:
                predicted[k] += float(savings[k][name][unit].sum())
            return "latency_us" in over or all(predicted[k] >= gaps[k] for k in gaps)

        return select_channels(groups, importance, combined, self.round_to, enough)


def select_channels(groups: Sequence[ChannelGroup], importance: Mapping[str, torch.Tensor],
                    savings: Mapping[str, np.ndarray] | None, round_to: int,
                    enough: Callable[[str, np.ndarray], bool]) -> list[tuple[ChannelGroup, list[int]]]:
    """Channels to mask, one block at a time, lowest ``relative importance / saving`` first
    (``savings`` None, or no channel saving anything: lowest relative importance first), until
    ``enough(group name, block)`` says so or no group may lose more. Masks are not touched."""
    alive = {g.name: (g.mask != 0).numpy().copy() for g in groups}
    relative = {g.name: _relative(importance.get(g.name), alive[g.name]) for g in groups}
    if savings is None or not math.isfinite(_argmin_unit(groups, alive, relative, savings, round_to)[0]):
        savings = {g.name: np.ones(g.channels) for g in groups}
    picks: dict[str, list[int]] = {}
    while True:
        score, name, unit = _argmin_unit(groups, alive, relative, savings, round_to)
        if name is None or not math.isfinite(score):
            break
        alive[name][unit] = False
        picks.setdefault(name, []).extend(int(c) for c in unit)
        if enough(name, unit):
            break
    by_name = {g.name: g for g in groups}
    return [(by_name[n], sorted(c)) for n, c in picks.items()]


def mask_channels(ctx: RunContext, picks: list[tuple[ChannelGroup, list[int]]], phase: str, why: str = "") -> None:
    """Set the masks :func:`select_channels` chose, one event per group."""
    for group, channels in picks:
        alive = int((group.mask != 0).sum())
        mask = group.mask
        mask[channels] = 0
        group.set_mask(mask)
        ctx.event(phase, f"{group.name}: {alive} -> {alive - len(channels)} of {group.channels} channels{why}",
                  group=group.name, kept=alive - len(channels), channels=group.channels)


def _relative(importance: torch.Tensor | None, alive: np.ndarray) -> np.ndarray:
    """Importance divided by its group's mean over alive channels (groups' activations differ in scale)."""
    if importance is None:
        return np.ones(alive.size)
    values = importance.detach().double().numpy()
    mean = values[alive].mean() if alive.any() else 0.0
    return values / mean if mean > 0 else np.ones(alive.size)


def _best_unit(group: ChannelGroup, alive, relative, combined, round_to: int):
    """``(score, channels)`` of the next block this group may lose: down to the next multiple
    of ``round_to`` (never below ``min(round_to, C)`` nor 1), least important per saving first."""
    live = np.flatnonzero(alive[group.name])
    floor = max(1, min(round_to, group.channels))
    keep = max(floor, ((len(live) - 1) // round_to) * round_to)
    if keep >= len(live):
        return math.inf, None
    saving, imp = combined[group.name][live], relative[group.name][live]
    per = np.where(saving > 0, imp / np.where(saving > 0, saving, 1.0), math.inf)
    order = np.lexsort((live, per))[: len(live) - keep]
    total = saving[order].sum()
    return (imp[order].sum() / total if total > 0 else math.inf), live[order]


def _argmin_unit(groups, alive, relative, combined, round_to):
    """``(score, group name, channels)`` of the cheapest block over ``groups`` (ties: first group)."""
    best = (math.inf, None, None)
    for g in groups:
        score, unit = _best_unit(g, alive, relative, combined, round_to)
        if score < best[0]:
            best = (score, g.name, unit)
    return best


def channel_importance(net: QuantNet, groups: Sequence[ChannelGroup], data: Dataset) -> dict[str, torch.Tensor]:
    """Mean |activation| per channel (Zhang et al.'s importance) over up to
    :data:`IMPORTANCE_SAMPLES` samples of ``data``, in eval mode."""
    with ActivationRecorder(net, groups) as recorder:
        predict(net, data.subset(IMPORTANCE_SAMPLES))
    return {g.name: recorder.importance(g) for g in groups}


def check_reachable(net: QuantNet, data: Dataset, target: HardwareTarget, round_to: int) -> None:
    """Refuse (:class:`BudgetError`) a budget the smallest legal network cannot meet, naming that minimum."""
    probe = HardwareProbe(target)
    small = calibrated_copy(smallest(net, round_to), data.x[:CALIBRATION_SAMPLES])
    model = probe.integer_model(small)
    auto = target.reuse == "auto"
    cheapest = probe.measure(None, least_area(probe, model, target.area_limits) if auto else None, model)
    where = (f"every prunable channel group at {max(1, round_to)} channel(s), "
             + (f"reuse factors {_reuse_text(cheapest)}" if auto else f"reuse factor {target.reuse}"))
    for key, limit in target.area_limits.items():
        if cheapest.totals[key] > limit:
            raise BudgetError(f"{LIMITS[key]} budget {limit:,} is below the {cheapest.totals[key]:,} {LIMITS[key]} "
                              f"of the smallest legal network ({where}; estimate)")
    if target.latency_us is not None:
        fastest = choose_reuse(probe, model, target.area_limits) if auto else cheapest
        if fastest.totals["latency_us"] > target.latency_us:
            reuse = _reuse_text(fastest)
            raise BudgetError(f"latency budget {target.latency_us:g} us is below the {fastest.totals['latency_us']:.4g} "
                              f"us of the smallest legal network (every prunable channel group at "
                              f"{max(1, round_to)} channel(s), reuse factors {reuse}; estimate)")


def _reuse_text(m: Measurement) -> str:
    return ", ".join(f"{k} {v}" for k, v in m.config.layer_reuse.items()) or f"{m.config.reuse_factor} everywhere"


def report(m: Measurement, target: HardwareTarget, repairs: list[dict]) -> dict:
    """Plain data for ``Result.details["hardware"]`` and the checkpoint's metadata."""
    excess = m.excess(target.limits)
    budgets = {k: {"limit": v, "estimate": m.totals[k], "met": k not in excess, "missed_by": excess.get(k, 0.0)}
               for k, v in target.limits.items()}
    return {"target": target.to_dict(), "design": m.reuse_record(),
            "estimate": {k: m.totals[k] for k in REPORTED}, "budgets": budgets, "met": not excess,
            "repairs": repairs}


def enforce(ctx: RunContext, target: HardwareTarget, remove: bool) -> dict:
    """After fine-tuning: prune again for any missed budget (at most ``repair_rounds`` times,
    each followed by ``epochs / 2`` of fine-tuning); returns :func:`report`'s record."""
    pruner = BudgetPruner(target, ctx.config.round_to)
    m = pruner.measure(ctx.model)
    repairs: list[dict] = []
    for round_ in range(1, target.repair_rounds + 1):
        over = m.excess(target.limits)
        if not over:
            break
        groups = prunable_groups(ctx.model)
        before = {g.name: int((g.mask != 0).sum()) for g in groups}
        m = pruner.prune(ctx, groups, channel_importance(ctx.model, groups, ctx.train_data), target.limits)
        after = {g.name: int((g.mask != 0).sum()) for g in groups}
        if after == before:
            break
        for name, kept in after.items():
            ctx.details.get("groups", {}).get(name, {})["kept"] = kept
        if remove:
            ctx.replace_model(remove_channels(ctx.model, ctx.config.round_to))
        epochs = ctx.config.epochs / 2
        if epochs > 0:
            ctx.trainer.train_epochs(epochs, f"budget repair {round_}")
        m = pruner.measure(ctx.model)
        repairs.append({"round": round_, "missed_before": over, "kept": after, "epochs": epochs})
    return report(m, target, repairs)


class StructuredMethod(Method):
    """A method that prunes whole channels: hardware budgets, channel sparsity, removal.

    Subclasses record ``ctx.details["groups"]`` (``{name: {"channels", "kept", ...}}``) as they
    prune; :meth:`measure` reads it.
    """

    supports_budget = True
    #: budgets replace the sparsity target (else the method prunes to its sparsity, then to the budgets)
    budget_replaces_sparsity: ClassVar[bool] = False

    @property
    def removes_channels(self) -> bool:
        """Whether pruned channels are physically removed before fine-tuning."""
        return True

    def prepare(self, ctx: RunContext) -> None:
        hardware = ctx.config.hardware
        if hardware is not None and hardware.limits:
            check_reachable(ctx.model, ctx.train_data, hardware, ctx.config.round_to)

    def finalize(self, ctx: RunContext) -> None:
        hardware = ctx.config.hardware
        if hardware is None:
            return
        if hardware.limits:
            ctx.details["hardware"] = enforce(ctx, hardware, self.removes_channels)
        else:
            ctx.details["hardware"] = report(BudgetPruner(hardware).measure(ctx.model), hardware, [])

    def record_groups(self, ctx: RunContext, groups: Sequence[ChannelGroup], key: str = "kept") -> None:
        """Store each group's channel count and alive channels under ``key`` in ``details["groups"]``."""
        table = ctx.details.setdefault("groups", {})
        for g in groups:
            entry = table.setdefault(g.name, {"channels": g.channels, "producers": list(g.producers)})
            entry[key] = int((g.mask != 0).sum())

    def measure(self, ctx: RunContext) -> tuple[float, dict[str, dict]]:
        groups = ctx.details["groups"]
        total = sum(g["channels"] for g in groups.values())
        kept = sum(g["kept"] for g in groups.values())
        return (1.0 - kept / total if total else 0.0), groups


__all__ = ["BudgetError", "BudgetPruner", "StructuredMethod", "channel_importance", "check_reachable", "enforce",
           "mask_channels", "report", "select_channels"]
