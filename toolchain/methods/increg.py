"""``increg``: structured pruning by incremental regularization (Wang, Zhang, Wang and Hu 2018).

Every output channel ``g`` of a prunable channel group (:func:`toolchain.pruning.channel_groups`;
coupled producers count as one channel) has its own factor ``lambda_g``, 0 at first. The pruning
phase minimises ``E(W) = L(W) + (lambda / 2) ||W||^2 + sum_g (lambda_g / 2) ||W_g||^2`` with SGD
(momentum 0.9, the paper's Caffe setting; ``lambda`` = ``weight_decay``), and after every
iteration:

1. ``r_g`` = the rank of channel ``g`` in its group by ``mean |W_g|``, ascending from 0, averaged
   over all iterations so far (the paper's smoothing);
2. ``lambda_g <- max(lambda_g + Delta lambda(r_g), 0)`` with eq. 1's piecewise-linear punishment,
   ``RG`` the number of channels the group must lose (``R`` its ratio, ``G`` its channels):
   ``A - (A / RG) r`` for ``r <= RG``, ``-(A / (G - RG - 1)) (r - RG)`` above — a reward (negative)
   for the channels meant to stay; ``A`` = ``increment``, by default half the weight decay;
3. a channel whose magnitude falls below ``threshold`` (1e-6) is masked for good (at most the
   ``RG`` weakest: a group never loses more than its ratio);
4. a group that has lost its ``RG`` channels stops structured regularization.

When every group is done (or ``max_steps`` are spent: the missing channels then go by magnitude,
recorded as ``forced``), the template removes the masked channels (``ChannelPruning.finish``)
and retrains with quantization on for ``config.epochs`` ("followed by a retraining process").

Departures, and why:

* ``W_g`` is every parameter of the channel — the producers' weight rows, their biases and batch-norm
  scale and shift — not only the convolution filter: batch norm makes the loss blind to a filter's
  scale, so regularizing the filter alone shrinks it without ever removing the channel (tried: its
  mean |w| stalled near 1e-3 with ``lambda_g`` above 10). Ranking by mean |W_g| ranks as the L1
  norm would, every channel of a group having the same number of parameters.
* ``lambda_g`` is kept at most ``1 / prune_lr``, where one plain SGD step of the term alone would
  zero the channel: beyond it the iteration would diverge.
* Per-group ratios (``ratios``, e.g. ``conv1=0.3,conv2=0.6``; others ``config.sparsity``) and
  ``round_to`` as for the other channel methods (:func:`~toolchain.methods.common.keep_count`).

>>> from toolchain.models import build
>>> from toolchain.data import synthetic
>>> cfg = MethodConfig(sparsity=0.5, epochs=0, batch_size=32, options={
...     "increment": 0.05, "prune_lr": 0.02, "ratios": "conv1=0.25", "max_steps": 2000})
>>> data, _ = synthetic(256, shape=(1, 8, 8)), torch.manual_seed(0)
>>> result = IncReg(cfg).run(build("cnn", input_shape=(1, 8, 8)), data, data)
>>> {g: d["kept"] for g, d in result.layers.items()}, result.details["forced"]
({'conv1': 12, 'conv2': 16}, {'conv1': 0, 'conv2': 0})
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from toolchain.methods.base import MethodConfig, MethodError, RunContext
from toolchain.methods.budget import mask_channels
from toolchain.methods.channel import ChannelPruning
from toolchain.methods.common import keep_count, prunable_groups
from toolchain.pruning import ChannelGroup
from toolchain.train import make_optimizer

MAX_EPOCHS = 20  #: default step cap of the pruning phase, in epochs


@dataclass(frozen=True)
class IncRegOptions:
    """Options of ``increg`` (``--option KEY=VALUE``)."""

    ratios: str = ""                 #: per-group ratios "conv1=0.3,conv2=0.6" (others: --sparsity)
    weight_decay: float = 5e-4       #: lambda of E(W) in the pruning phase (Caffe's usual value)
    increment: float | None = None   #: A of eq. 1, the largest step of lambda_g; None: weight_decay / 2
    threshold: float = 1e-6          #: a channel whose mean |W_g| falls below this is removed
    prune_lr: float = 0.01           #: SGD learning rate of the pruning phase
    max_steps: int | None = None     #: cap of the pruning phase (None: 20 epochs of steps)
    remove: bool = True              #: physically remove pruned channels before retraining

    def __post_init__(self) -> None:
        for name, label in (("weight_decay", "weight_decay"), ("increment", "increment (A of eq. 1)")):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{label} must be >= 0, got {value}")
        for name in ("threshold", "prune_lr"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        parse_ratios(self.ratios)

    @property
    def a(self) -> float:
        return self.weight_decay / 2 if self.increment is None else self.increment


def parse_ratios(text: str) -> dict[str, float]:
    """``"conv1=0.3,conv2=0.6"`` -> ``{"conv1": 0.3, "conv2": 0.6}``; each ratio in [0, 1).

    >>> parse_ratios("conv1=0.3, conv2=0.6")
    {'conv1': 0.3, 'conv2': 0.6}
    """
    ratios = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            ratio = float(value)
        except ValueError:
            raise ValueError(f"ratio {item!r}: expected GROUP=RATIO, e.g. conv1=0.5") from None
        if not sep or not name.strip() or not 0.0 <= ratio < 1.0:
            raise ValueError(f"ratio {item!r}: expected GROUP=RATIO with the ratio in [0, 1)")
        ratios[name.strip()] = ratio
    return ratios


def punishment(rank: torch.Tensor, channels: int, to_prune: int, a: float) -> torch.Tensor:
    """Eq. 1: ``Delta lambda(r)`` for averaged ranks ``r`` (0-based) of a group of ``channels``
    that must lose ``to_prune`` (= R G): ``A`` at rank 0, 0 at ``RG``, ``-A`` at the top rank.

    >>> punishment(torch.tensor([0.0, 2.0, 4.0, 7.0]), channels=8, to_prune=4, a=1.0).tolist()
    [1.0, 0.5, 0.0, -1.0]
    """
    below = a - a / to_prune * rank
    above = -a / max(channels - to_prune - 1, 1) * (rank - to_prune)
    return torch.where(rank <= to_prune, below, above)


class _Group:
    """One group's IncReg state: its parameters per channel, lambda_g, the rank sum, its target."""

    def __init__(self, group: ChannelGroup, ratio: float, round_to: int) -> None:
        self.group, self.ratio = group, ratio
        self.to_prune = group.channels - keep_count(group.channels, ratio, round_to)
        self.lam = torch.zeros(group.channels)
        self.rank_sum = torch.zeros(group.channels)
        self.forced = 0

    def rows(self) -> list[torch.Tensor]:
        """Every parameter of the channels, one ``(channels, k)`` view each."""
        rows = []
        for name in self.group.producers:
            layer = self.group.modules[name]
            rows.append(layer.weight.reshape(layer.weight.shape[0], -1))
            for p in (layer.bias, *((layer.bn.weight, layer.bn.bias) if layer.bn is not None else ())):
                if p is not None:
                    rows.append(p[:, None])
        return rows

    def magnitude(self) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([r.abs() for r in self.rows()], dim=1).mean(dim=1)

    @property
    def pruned(self) -> int:
        return int((self.group.mask == 0).sum())

    @property
    def done(self) -> bool:
        return self.pruned >= self.to_prune

    def penalty(self) -> torch.Tensor:
        """``sum_g lambda_g / 2 ||W_g||^2`` of the group."""
        return sum(((self.lam[:, None] / 2) * r.pow(2)).sum() for r in self.rows())


class IncReg(ChannelPruning):
    """IncReg: per-channel regularization factors that grow for unimportant channels."""

    name = "increg"
    summary = "Wang et al. IncReg: per-channel L2 factors raised by rank (eq. 1) until channels vanish"
    Options = IncRegOptions

    def __init__(self, config: MethodConfig) -> None:
        super().__init__(config)
        self.ratios = parse_ratios(self.options.ratios)
        self.state: list[_Group] = []

    def prepare(self, ctx: RunContext) -> None:
        super().prepare(ctx)
        names = {g.name for g in prunable_groups(ctx.model)}
        unknown = sorted(set(self.ratios) - names)
        if unknown:
            raise MethodError(f"{self.name}: ratios name {', '.join(unknown)}, which are not prunable channel groups "
                              f"(groups: {', '.join(sorted(names)) or 'none'})")

    def regularizer(self, model) -> torch.Tensor | None:
        active = [s for s in self.state if not s.done]
        return sum((s.penalty() for s in active), torch.zeros(())) if active else None

    def prune(self, ctx: RunContext) -> None:
        groups = prunable_groups(ctx.model)
        if not groups:
            raise MethodError(f"{self.name}: the model has no prunable channel groups")
        self.record_groups(ctx, groups, "kept_before")
        opts = self.options
        self.state = [_Group(g, self.ratios.get(g.name, ctx.config.sparsity), ctx.config.round_to) for g in groups]
        adam = ctx.trainer.optimizer
        ctx.trainer.optimizer = make_optimizer(ctx.model, "sgd", opts.prune_lr, opts.weight_decay)
        cap = opts.max_steps or MAX_EPOCHS * ctx.trainer.steps_per_epoch
        iterations = [0]

        def on_step(trainer) -> None:
            iterations[0] += 1
            for s in self.state:
                if not s.done:
                    self._update(ctx, s, iterations[0])

        steps = 0
        while steps < cap and not all(s.done for s in self.state):
            chunk = min(ctx.trainer.steps_per_epoch, cap - steps)
            ctx.trainer.train_steps(chunk, "prune (increg)", on_step=[on_step])
            steps += chunk
        for s in self.state:
            s.forced = max(0, s.to_prune - s.pruned)
            self._remove(ctx, s, s.magnitude(), s.forced, "forced at the step cap")
        ctx.trainer.optimizer = adam
        ctx.details.update(prune_steps=steps, increment=opts.a, weight_decay=opts.weight_decay,
                           ratios={s.group.name: s.ratio for s in self.state},
                           forced={s.group.name: s.forced for s in self.state})
        self.record_groups(ctx, groups)
        self.state = []

    def _update(self, ctx: RunContext, s: _Group, iteration: int) -> None:
        """One iteration of eq. 1 and the threshold for group ``s``."""
        magnitude = s.magnitude()
        order = torch.argsort(magnitude, stable=True)
        rank = torch.empty_like(magnitude)
        rank[order] = torch.arange(len(order), dtype=rank.dtype)
        s.rank_sum += rank
        alive = s.group.mask != 0
        delta = punishment(s.rank_sum / iteration, s.group.channels, s.to_prune, self.options.a)
        s.lam = torch.where(alive, (s.lam + delta).clamp(0.0, 1.0 / self.options.prune_lr), s.lam)
        below = alive & (magnitude < self.options.threshold)
        if below.any():
            self._remove(ctx, s, torch.where(below, magnitude, torch.full_like(magnitude, math.inf)),
                         min(int(below.sum()), s.to_prune - s.pruned), f"below {self.options.threshold:g}")

    def _remove(self, ctx: RunContext, s: _Group, score: torch.Tensor, count: int, why: str) -> None:
        """Mask the ``count`` alive channels of lowest ``score`` (for good)."""
        if count <= 0:
            return
        score = torch.where(s.group.mask != 0, score, torch.full_like(score, math.inf))
        channels = torch.argsort(score, stable=True)[:count].tolist()
        mask_channels(ctx, [(s.group, channels)], "prune", f" ({why})")


__all__ = ["IncReg", "IncRegOptions", "parse_ratios", "punishment"]
