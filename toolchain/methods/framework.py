"""The rule-driven joint framework and its two-stage baseline (Ding, Zhang, Jiang, Zhai and Li).

Paper: Qimin Ding, Ruonan Zhang, Yi Jiang, Daosen Zhai, Bin Li, "Regularized Training
Framework for Combining Pruning and Quantization to Compress Neural Networks".

**Compression steps** (the paper's set C, section III-B), written as ``--candidates``:

* ``P`` / ``P0.1`` — plug-in pruning: mask a further ``prune_step`` (or the given) fraction of
  all prunable channels, the least important first (activation L1 over training samples,
  relative to the group's mean, as :func:`toolchain.methods.budget.select_channels` ranks
  them; per unit of estimated saving when hardware budgets are set), never beyond
  ``--sparsity``;
* ``W4A8`` — plug-in quantization Q_{m,n}: weights at ``m`` bits, hidden activations at
  ``n`` bits, quantizers on (the network trains in float until its first Q step);
* ``train`` — no new compression (only the two-stage schedule uses it).

**Algorithm 1** (:class:`RuleFramework`): each epoch ``e``, collect S (:meth:`Trainer.snapshot`:
parameters, buffers, optimizer state and the batch stream); for every candidate c, restore S,
apply c, train one epoch, score it by the rule R (:mod:`toolchain.methods.rules`); keep the
best (ties: the first in ``--candidates`` order), record ``e -> c`` in Z. The winner's trained
state is kept rather than trained again, so an epoch costs ``k`` trial epochs for ``k``
candidates, not ``k + 1`` (docs/methods.md measures it).

**Where it departs from the paper**: the run must end at the targets (``--sparsity`` and the
target bits ``W{weight_bits}A{act_bits}``, which must be a candidate), so the comparison with
``two-stage`` is at equal targets: when the epochs left equal the steps still needed, only
those steps are offered. The paper prunes "until 30 % has been pruned" without saying what
happens when the rule never picks P. Scores use ``eval_samples`` validation samples; hardware
metrics of a network still in float are those of its declared bits (W8A8 until a Q step: the
widest grid of the integer contract).

**two-stage** (:class:`TwoStage`, the paper's "ordinary framework"): the same steps on a fixed
schedule: P every epoch until ``--sparsity`` (float training), then Q to the target bits, then
quantization-aware training for the epochs left.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import ClassVar

from toolchain.data import Dataset
from toolchain.methods.base import MethodError, RunContext
from toolchain.methods.budget import (BudgetPruner, StructuredMethod, channel_importance, mask_channels,
                                      select_channels)
from toolchain.methods.common import EPS, prunable_groups, with_bits
from toolchain.methods.costs import bops, macs
from toolchain.methods.hardware import HardwareTarget
from toolchain.methods.rules import HARDWARE_METRICS, parse_rule
from toolchain.nn import set_quantization
from toolchain.pruning import remove_channels
from toolchain.train import evaluate

FLOAT_BITS = (8, 8)  #: declared widths of a network before its first Q step (hardware metrics use them)


@dataclass(frozen=True)
class Step:
    """One compression step: ``kind`` P (prune ``fraction``), Q (to ``bits``) or T (train only)."""

    kind: str
    fraction: float = 0.0
    bits: tuple[int, int] = (0, 0)

    @property
    def label(self) -> str:
        if self.kind == "P":
            return f"P{self.fraction:g}"
        if self.kind == "Q":
            return f"W{self.bits[0]}A{self.bits[1]}"
        return "train"


TRAIN = Step("T")
_STEP = re.compile(r"^(?:P(?P<fraction>[0-9.eE+-]*)|W(?P<w>\d+)A(?P<a>\d+))$")


def parse_candidates(text: str, prune_step: float) -> tuple[Step, ...]:
    """``"P,W8A8,P0.2,W4A8"`` -> steps (duplicates dropped, order kept); one-line errors.

    >>> [s.label for s in parse_candidates("P, W8A8, P0.25", 0.1)]
    ['P0.1', 'W8A8', 'P0.25']
    """
    steps = []
    for item in (t.strip() for t in text.split(",")):
        match = _STEP.match(item)
        if not match:
            raise MethodError(f"candidate {item!r}: expected P, P<fraction> or W<bits>A<bits> (e.g. P0.1, W4A8)")
        if match["w"] is not None:
            bits = (int(match["w"]), int(match["a"]))
            if not all(2 <= b <= 8 for b in bits):
                raise MethodError(f"candidate {item!r}: bits must be in 2..8")
            step = Step("Q", bits=bits)
        else:
            try:
                fraction = float(match["fraction"]) if match["fraction"] else prune_step
            except ValueError:
                raise MethodError(f"candidate {item!r}: {match['fraction']!r} is not a number") from None
            if not 0.0 < fraction < 1.0:
                raise MethodError(f"candidate {item!r}: the pruning fraction must be in (0, 1)")
            step = Step("P", fraction=fraction)
        if step not in steps:
            steps.append(step)
    return tuple(steps)


@dataclass(frozen=True)
class FrameworkOptions:
    """Options of ``rule-framework`` (``two-stage`` uses ``prune_step`` and ``eval_samples``)."""

    candidates: str = ""          #: default "P,W{weight_bits}A{act_bits}"
    rule: str = "accuracy"        #: a preset or an expression (toolchain.methods.rules)
    prune_step: float = 0.1       #: fraction of all prunable channels a bare "P" removes
    eval_samples: int = 1000      #: validation samples each score is measured on

    def __post_init__(self) -> None:
        if not 0.0 < self.prune_step < 1.0:
            raise ValueError(f"prune_step must be in (0, 1), got {self.prune_step}")
        if self.eval_samples < 1:
            raise ValueError(f"eval_samples must be >= 1, got {self.eval_samples}")


@dataclass
class _State:
    """Where the network is: its declared bits and whether its quantizers are on."""

    bits: tuple[int, int]
    quantized: bool


@dataclass(frozen=True)
class _Run:
    """What one run's epochs share: the prunable channel count, the hardware pruner (None
    without hardware metrics or budgets) and the validation samples scores use."""

    total: int
    pruner: BudgetPruner | None
    eval_data: Dataset

    def sparsity(self, model) -> float:
        alive = sum(int((g.mask != 0).sum()) for g in prunable_groups(model))
        return 1.0 - alive / self.total if self.total else 0.0


def set_bits(ctx: RunContext, weight_bits: int, act_bits: int) -> None:
    """Give ``ctx.model`` new widths, keeping its state and the optimizer's moments.

    The one place the framework changes bits of a live network, through
    :func:`~toolchain.methods.common.with_bits` (a rebuilt QuantNet) rather than the in-place
    :func:`toolchain.nn.set_bits`: widths are architecture, not state dict, so a restored
    snapshot could not undo a candidate Q step made in place; each trial gets a network of its own.
    """
    new = with_bits(ctx.model, weight_bits, act_bits)
    if new is ctx.model:
        return
    state = ctx.trainer.optimizer.state_dict()
    ctx.replace_model(new)
    ctx.trainer.optimizer.load_state_dict(state)


class _EpochSteps(StructuredMethod):
    """One compression step per epoch over ``config.epochs`` epochs; subclasses choose it."""

    Options = FrameworkOptions
    sparsity_kind = "channels"
    searches: ClassVar[bool] = False

    def __init__(self, config) -> None:
        super().__init__(config)
        self.rule = parse_rule(self.options.rule)
        target = (config.weight_bits or FLOAT_BITS[0], config.act_bits or FLOAT_BITS[1])
        self.target_bits = target
        text = self.options.candidates or f"P,W{target[0]}A{target[1]}"
        self.candidates = parse_candidates(text, self.options.prune_step)
        if Step("Q", bits=target) not in self.candidates:
            raise MethodError(f"{self.name}: the candidates must include the target bits W{target[0]}A{target[1]} "
                              f"(got {', '.join(c.label for c in self.candidates)})")
        prunes = [c for c in self.candidates if c.kind == "P"]
        if config.sparsity > 0 and not prunes:
            raise MethodError(f"{self.name}: sparsity {config.sparsity} needs a P candidate")
        self.prune_fraction = max((c.fraction for c in prunes), default=self.options.prune_step)
        epochs = config.epochs
        needed = self._steps_needed(0.0, _State(FLOAT_BITS, False))
        if not float(epochs).is_integer() or epochs < needed:
            raise MethodError(f"{self.name}: needs a whole number of epochs, at least {needed} "
                              f"(P steps of {self.prune_fraction:g} to sparsity {config.sparsity:g}, "
                              f"then W{target[0]}A{target[1]}); got {epochs:g}")

    def _steps_needed(self, sparsity: float, state: _State) -> int:
        p = math.ceil((self.config.sparsity - sparsity) / self.prune_fraction - EPS) if \
            sparsity < self.config.sparsity - EPS else 0
        return p + (0 if state.quantized and state.bits == self.target_bits else 1)

    def offered(self, epoch: int, epochs: int, sparsity: float, state: _State) -> list[Step]:
        raise NotImplementedError

    # --- the template's steps --------------------------------------------------------------
    def finetune(self, ctx: RunContext) -> None:
        """None: the framework's epochs are the training (the paper drops fine-tuning)."""

    def finish(self, ctx: RunContext) -> None:
        ctx.replace_model(remove_channels(ctx.model, ctx.config.round_to))

    def prune(self, ctx: RunContext) -> None:
        groups = prunable_groups(ctx.model)
        self.record_groups(ctx, groups, "kept_before")
        set_bits(ctx, *FLOAT_BITS)
        state = _State(FLOAT_BITS, False)
        hardware = ctx.config.hardware or HardwareTarget()
        pruner = BudgetPruner(hardware, ctx.config.round_to) if self.rule.needs_hardware or hardware.limits else None
        run = _Run(sum(g.channels for g in groups), pruner, ctx.val_data.subset(self.options.eval_samples))
        epochs = int(ctx.config.epochs)
        choices = []
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            offered = self.offered(epoch, epochs, run.sparsity(ctx.model), state)
            state, record = self._epoch(ctx, run, epoch, epochs, offered, state)
            record["seconds"] = time.perf_counter() - start
            choices.append(record)
            ctx.event("choose", f"epoch {epoch}/{epochs}: {record['step']}"
                      + (f" (score {record['scores'][record['step']]:.4g})" if len(offered) > 1 else ""),
                      epoch=epoch, step=record["step"])
        self.record_groups(ctx, prunable_groups(ctx.model))
        ctx.details["framework"] = {"rule": self.rule.text, "expression": self.rule.expression,
                                    "searched": self.searches, "candidates": [c.label for c in self.candidates],
                                    "map": {str(r["epoch"]): r["step"] for r in choices}, "epochs": choices}

    def _epoch(self, ctx: RunContext, run: _Run, epoch: int, epochs: int, offered: list[Step], state: _State):
        trainer = ctx.trainer
        base_model, base = ctx.model, trainer.snapshot() if len(offered) > 1 else None
        best = None
        scores, metrics = {}, {}
        for step in offered:
            if base is not None:
                ctx.replace_model(base_model)
                trainer.restore(base)
            new_state = self._apply(ctx, run, step, state)
            trainer.train_epochs(1, f"epoch {epoch}/{epochs} {step.label}")
            values = self._metrics(ctx, run)
            score = self.rule.score(values)
            scores[step.label], metrics[step.label] = score, values
            if best is None or score > best[0]:
                best = (score, step, new_state, ctx.model, trainer.snapshot() if base is not None else None)
        _, step, new_state, model, trained = best
        if trained is not None:  # several trials: back to the winner's trained state
            ctx.replace_model(model)
            trainer.restore(trained)
        return new_state, {"epoch": epoch, "step": step.label, "offered": [s.label for s in offered],
                           "scores": scores, "metrics": metrics}

    def _apply(self, ctx: RunContext, run: _Run, step: Step, state: _State) -> _State:
        if step.kind == "Q":
            set_bits(ctx, *step.bits)
            set_quantization(ctx.model, True)
            return _State(step.bits, True)
        if step.kind == "P":
            groups = prunable_groups(ctx.model)
            need = min(run.sparsity(ctx.model) + step.fraction, ctx.config.sparsity) * run.total
            removed = [run.total - sum(int((g.mask != 0).sum()) for g in groups)]

            def enough(name, unit) -> bool:
                removed[0] += len(unit)
                return removed[0] >= need - EPS

            limits = ctx.config.hardware.limits if ctx.config.hardware is not None else {}
            savings = run.pruner.savings(ctx.model, groups, limits) if limits else None
            importance = channel_importance(ctx.model, groups, ctx.train_data)
            mask_channels(ctx, select_channels(groups, importance, savings, ctx.config.round_to, enough), "prune")
        return state

    def _metrics(self, ctx: RunContext, run: _Run) -> dict:
        """The rule's inputs for the network as it is (hardware and BOPs only when the rule reads them)."""
        values = {"accuracy": 100.0 * evaluate(ctx.model, run.eval_data), "sparsity": run.sparsity(ctx.model)}
        if "bops" in self.rule.metrics:
            values["bops"] = float(bops(ctx.model))
        if "macs" in self.rule.metrics:
            values["macs"] = float(macs(ctx.model))
        if self.rule.needs_hardware:
            totals = run.pruner.measure(ctx.model).totals
            values.update({k: float(totals[k]) for k in HARDWARE_METRICS})
        return values


class RuleFramework(_EpochSteps):
    """Algorithm 1: every epoch, the candidate step the rule scores highest after a trial epoch."""

    name = "rule-framework"
    summary = "Ding et al. Alg. 1: per epoch, the prune/quantize step a rule scores best"
    searches = True

    def offered(self, epoch: int, epochs: int, sparsity: float, state: _State) -> list[Step]:
        prune_left = sparsity < self.config.sparsity - EPS
        steps = [c for c in self.candidates if c.kind == "Q" or prune_left]
        if self._steps_needed(sparsity, state) >= epochs - epoch + 1:  # the deadline: only progress
            on_target = state.quantized and state.bits == self.target_bits
            steps = [c for c in steps if c.kind == "P" or (c.bits == self.target_bits and not on_target)]
        return steps


class TwoStage(_EpochSteps):
    """The paper's ordinary framework: prune (float) to the target, then quantize, then train."""

    name = "two-stage"
    summary = "Ding et al.'s baseline: prune fully (float), then quantize and train"

    def offered(self, epoch: int, epochs: int, sparsity: float, state: _State) -> list[Step]:
        if sparsity < self.config.sparsity - EPS:
            return [Step("P", fraction=self.prune_fraction)]
        if not (state.quantized and state.bits == self.target_bits):
            return [Step("Q", bits=self.target_bits)]
        return [TRAIN]


__all__ = ["FrameworkOptions", "RuleFramework", "Step", "TwoStage", "parse_candidates", "set_bits"]
