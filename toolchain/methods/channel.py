"""Channel pruning by activation importance, three schedules (Zhang, Colbert and Das 2022).

Importance of a channel = the mean L1 norm of its output activations (``|h|`` averaged
over batch, positions and every layer whose output carries the group's channels),
gathered by forward hooks (:class:`toolchain.pruning.ActivationRecorder`) during
training steps since the last mask decision (the moving average of Algorithm 1).
A mask keeps the :func:`~toolchain.methods.common.keep_count` most important channels;
channels already pruned (mask 0) are never revived.

Registered names, one implementation (:class:`ChannelPruning`), differing only in
``schedule`` (:mod:`toolchain.methods.schedules`):

* ``layerwise`` — Zhang et al.'s Algorithm 1: one group at a time, in topological order;
* ``stepwise`` — Zhu & Gupta's cubic ramp, all groups together;
* ``one-shot`` — dense training, then every group to the target at once.

Each spends ``L * t_p`` training steps pruning (``L`` prunable groups), then the
template fine-tunes with quantization on. By default pruned channels are then
physically removed (:func:`toolchain.pruning.remove_channels`, with ``round_to``)
before fine-tuning, so the result is a smaller network.

>>> from toolchain.models import build
>>> from toolchain.data import synthetic
>>> data = synthetic(64, shape=(1, 8, 8))
>>> method = Layerwise(MethodConfig(sparsity=0.5, epochs=0, options={"steps_per_group": 2}))
>>> result = method.run(build("cnn", input_shape=(1, 8, 8)), data, data)
>>> result.sparsity, [h["group"] for h in result.history if h["phase"] == "prune"]
(0.5, ['conv1', 'conv2'])
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import ClassVar

import torch

from toolchain.methods.base import MethodConfig, MethodError, RunContext
from toolchain.methods.budget import BudgetPruner, StructuredMethod
from toolchain.methods.common import keep_count, prunable_groups, top_k_mask
from toolchain.methods.schedules import Budget, cubic_sparsity, is_update_step, layerwise_update
from toolchain.pruning import ActivationRecorder, ChannelGroup, remove_channels

__all__ = ["ChannelOptions", "ChannelPruning", "Layerwise", "OneShot", "Stepwise", "MethodConfig"]


@dataclass(frozen=True)
class ChannelOptions:
    """Options of the channel-pruning methods."""

    steps_per_group: int | None = None  #: t_p; None: one epoch of steps
    update_every: int | None = None     #: dp; None: max(1, t_p // 4)
    remove: bool = True                 #: physically remove pruned channels before fine-tuning

    def __post_init__(self) -> None:
        for name in ("steps_per_group", "update_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")


class ChannelPruning(StructuredMethod):
    """Activation-importance channel pruning; subclasses pick the schedule.

    With hardware budgets (``config.hardware.limits``) the budgets replace the sparsity
    target: each mask update prunes, by importance per unit of estimated cost saved
    (:class:`~toolchain.methods.budget.BudgetPruner`), until the network meets the budgets
    interpolated from the dense design's cost by the schedule's progress ``f`` (stepwise:
    ``f = s_t / s_T`` of the cubic ramp; layerwise: in group ``i``'s window that group alone, with
    ``f`` = the share of all prunable channels in groups ``0..i``, and ``f = 1`` over every group
    at the very end; one-shot: ``f = 1``).
    """

    sparsity_kind = "channels"
    Options = ChannelOptions
    schedule: ClassVar[str] = ""
    budget_replaces_sparsity = True

    def __init__(self, config: MethodConfig) -> None:
        super().__init__(config)
        if config.hardware is not None and config.hardware.limits and config.sparsity > 0:
            raise MethodError(f"{self.name}: a hardware budget replaces the sparsity target; "
                              f"leave sparsity at 0 (got {config.sparsity})")

    @property
    def removes_channels(self) -> bool:
        return self.options.remove

    def prune(self, ctx: RunContext) -> None:
        groups = prunable_groups(ctx.model)
        if not groups:
            raise MethodError(f"{self.name}: the model has no prunable channel groups")
        tp = self.options.steps_per_group or ctx.trainer.steps_per_epoch
        budget = Budget(len(groups), tp, min(tp, self.options.update_every or max(1, tp // 4)))
        ctx.details.update(schedule=self.schedule, steps_per_group=budget.steps_per_group,
                           update_every=budget.update_every)
        self.record_groups(ctx, groups, "kept_before")
        hardware = ctx.config.hardware
        hw = _TowardBudget(ctx, hardware) if hardware is not None and hardware.limits else None
        run = {"layerwise": self._layerwise, "stepwise": self._stepwise,
               "one-shot": self._one_shot}[self.schedule]
        run(ctx, groups, budget, hw)
        self.record_groups(ctx, groups)

    # --- schedules -----------------------------------------------------------------------
    def _layerwise(self, ctx: RunContext, groups: list[ChannelGroup], budget: Budget, hw) -> None:
        start, target = ctx.trainer.step, ctx.config.sparsity
        with ExitStack() as stack:
            recorder = [stack.enter_context(ActivationRecorder(ctx.model, [groups[0]]))]

            def on_step(trainer) -> None:
                t = trainer.step - start
                index = layerwise_update(t, budget.steps_per_group, budget.update_every)
                if index is not None and hw is not None:
                    group = groups[index]
                    share = sum(g.channels for g in groups[:index + 1]) / sum(g.channels for g in groups)
                    hw.update([group], {group.name: recorder[0].importance(group)}, share)
                    if t == budget.total:
                        hw.update(groups, {}, 1.0)
                elif index is not None:
                    self._set(ctx, groups[index], recorder[0].importance(groups[index]), target)
                if t % budget.steps_per_group == 0 and t // budget.steps_per_group < len(groups):
                    recorder[0].__exit__(None, None, None)
                    recorder[0] = stack.enter_context(
                        ActivationRecorder(ctx.model, [groups[t // budget.steps_per_group]]))

            ctx.trainer.train_steps(budget.total, "prune (layerwise)", on_step=[on_step])

    def _stepwise(self, ctx: RunContext, groups: list[ChannelGroup], budget: Budget, hw) -> None:
        start, target = ctx.trainer.step, ctx.config.sparsity
        with ExitStack() as stack:
            recorder = [stack.enter_context(ActivationRecorder(ctx.model, groups))]

            def on_step(trainer) -> None:
                t = trainer.step - start
                if not is_update_step(t, budget.total, budget.update_every):
                    return
                if hw is not None:
                    hw.update(groups, {g.name: recorder[0].importance(g) for g in groups},
                              cubic_sparsity(t, budget.total, 1.0))
                else:
                    sparsity = cubic_sparsity(t, budget.total, target)
                    for g in groups:
                        self._set(ctx, g, recorder[0].importance(g), sparsity)
                recorder[0].__exit__(None, None, None)
                recorder[0] = stack.enter_context(ActivationRecorder(ctx.model, groups))

            ctx.trainer.train_steps(budget.total, "prune (stepwise)", on_step=[on_step])

    def _one_shot(self, ctx: RunContext, groups: list[ChannelGroup], budget: Budget, hw) -> None:
        start, target = ctx.trainer.step, ctx.config.sparsity
        window_start = budget.total - budget.steps_per_group
        with ExitStack() as stack:
            recorder: list[ActivationRecorder] = []
            if window_start == 0:
                recorder.append(stack.enter_context(ActivationRecorder(ctx.model, groups)))

            def on_step(trainer) -> None:
                t = trainer.step - start
                if t == window_start:
                    recorder.append(stack.enter_context(ActivationRecorder(ctx.model, groups)))
                if t == budget.total and hw is not None:
                    hw.update(groups, {g.name: recorder[0].importance(g) for g in groups}, 1.0)
                elif t == budget.total:
                    for g in groups:
                        self._set(ctx, g, recorder[0].importance(g), target)

            ctx.trainer.train_steps(budget.total, "prune (one-shot)", on_step=[on_step])

    # --- masks ---------------------------------------------------------------------------
    def _set(self, ctx: RunContext, group: ChannelGroup, importance: torch.Tensor,
             sparsity: float) -> None:
        """Keep the most important channels of ``group`` at ``sparsity`` (no revival)."""
        mask = group.mask
        alive = int((mask != 0).sum())
        keep = min(alive, keep_count(group.channels, sparsity, ctx.config.round_to))
        score = torch.where(mask != 0, importance.to(torch.float32), torch.full_like(mask, -1.0))
        new = top_k_mask(score, keep)
        if torch.equal(new, (mask != 0).to(new.dtype)):
            return
        group.set_mask(new)
        ctx.event("prune", f"{group.name}: {alive} -> {keep} of {group.channels} channels",
                  group=group.name, kept=keep, channels=group.channels)

    def finish(self, ctx: RunContext) -> None:
        if not self.options.remove:
            return
        before = sum(p.numel() for p in ctx.model.parameters())
        ctx.replace_model(remove_channels(ctx.model, ctx.config.round_to))
        after = sum(p.numel() for p in ctx.model.parameters())
        ctx.event("remove", f"removed pruned channels: {before} -> {after} parameters",
                  parameters_before=before, parameters_after=after)


class _TowardBudget:
    """The budget mode's mask update: prune until the design meets the budgets moved from the
    dense design's cost towards them by the schedule's progress ``f`` in [0, 1]."""

    def __init__(self, ctx: RunContext, hardware) -> None:
        self.ctx, self.limits = ctx, hardware.limits
        self.pruner = BudgetPruner(hardware, ctx.config.round_to)
        self.dense: dict | None = None  # measured at the first update: a fresh model has no statistics before
        self.importance: dict[str, torch.Tensor] = {}  # the latest seen per group (layerwise sees one at a time)

    def update(self, groups: list[ChannelGroup], importance: dict[str, torch.Tensor], fraction: float) -> None:
        if self.dense is None:
            self.dense = self.pruner.measure(self.ctx.model).totals
        self.importance.update(importance)
        limits = {k: self.dense[k] - fraction * (self.dense[k] - v) if self.dense[k] > v else v
                  for k, v in self.limits.items()}
        self.pruner.prune(self.ctx, groups, self.importance, limits)


class Layerwise(ChannelPruning):
    name = "layerwise"
    summary = "Zhang et al. Alg. 1: one channel group at a time, by activation L1"
    schedule = "layerwise"


class Stepwise(ChannelPruning):
    name = "stepwise"
    summary = "Zhu & Gupta cubic ramp over all channel groups at once"
    schedule = "stepwise"


class OneShot(ChannelPruning):
    name = "one-shot"
    summary = "train dense, then prune every channel group at once"
    schedule = "one-shot"
