"""Iterative magnitude pruning with a sensitivity scan, then per-channel QAT (Paupamah, James and Klein 2020).

1. Sensitivity scan (:mod:`toolchain.methods.sensitivity`) on up to ``scan_samples``
   validation samples: each MAC layer pruned alone at the ``scan_ratios`` (and
   ``max_ratio``); per-layer ratios ``r_l`` are allocated so that the fraction of
   pruned weights over all MAC layers is exactly the target.
2. ``iterations`` rounds: round ``j`` prunes layer ``l`` to ``r_l * j / iterations`` of
   its weights by magnitude (the batch-norm-folded weight, the one export quantizes;
   zeros from earlier rounds stay zero), then retrains ``retrain_epochs`` (not after
   the last round: the template's quantization-aware fine-tuning follows).
3. Per-channel symmetric quantization is the toolchain's weight quantizer; the
   ``weight_mask`` multiplies the weight before folding and quantization, so a pruned
   weight is the integer 0 in the exported model.

Sparsity here is **weight sparsity**: the fraction of MAC-layer weights whose
``weight_mask`` is 0 (biases and batch-norm parameters excluded).

>>> from toolchain.models import build
>>> from toolchain.data import synthetic
>>> data = synthetic(64, shape=(1, 8, 8))
>>> cfg = MethodConfig(sparsity=0.6, epochs=0, options={"iterations": 2, "retrain_steps": 2})
>>> result = IterativeMagnitude(cfg).run(build("cnn", input_shape=(1, 8, 8)), data, data)
>>> result.sparsity >= 0.6
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from toolchain.methods.base import Method, MethodConfig, MethodError, RunContext
from toolchain.methods.common import weight_sparsity
from toolchain.methods.sensitivity import allocate, magnitude_mask, scan
from toolchain.nn import mac_layers
from toolchain.train import evaluate

__all__ = ["IterativeMagnitude", "MagnitudeOptions", "MethodConfig", "folded_magnitude"]


@dataclass(frozen=True)
class MagnitudeOptions:
    """Options of ``iterative-magnitude``."""

    iterations: int = 3                    #: pruning rounds
    retrain_epochs: float = 0.5            #: float training after each round but the last
    retrain_steps: int | None = None       #: overrides retrain_epochs when set
    scan_ratios: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 0.9)
    max_ratio: float = 0.95                #: no layer is pruned beyond this fraction
    scan_samples: int = 1000               #: validation samples the scan evaluates

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if not 0.0 < self.max_ratio < 1.0:
            raise ValueError(f"max_ratio must be in (0, 1), got {self.max_ratio}")
        if any(not 0.0 < r < 1.0 for r in self.scan_ratios):
            raise ValueError(f"scan_ratios must lie in (0, 1), got {self.scan_ratios}")
        if self.scan_samples < 1 or self.retrain_epochs < 0:
            raise ValueError("scan_samples must be >= 1 and retrain_epochs >= 0")
        if self.retrain_steps is not None and self.retrain_steps < 0:
            raise ValueError(f"retrain_steps must be >= 0, got {self.retrain_steps}")


def folded_magnitude(layer) -> torch.Tensor:
    """``|w_f|``: the weight after masks and batch-norm folding (running statistics)."""
    with torch.no_grad():
        w, _ = layer.folded()
        return w.abs()


class IterativeMagnitude(Method):
    name = "iterative-magnitude"
    summary = "Paupamah et al.: sensitivity scan, iterative weight magnitude pruning"
    sparsity_kind = "weights"
    Options = MagnitudeOptions

    def prune(self, ctx: RunContext) -> None:
        opts, target = self.options, ctx.config.sparsity
        layers = mac_layers(ctx.model)
        if not layers:
            raise MethodError(f"{self.name}: the model has no Conv/Linear layers")
        if target > opts.max_ratio:
            raise MethodError(f"{self.name}: sparsity {target} exceeds max_ratio {opts.max_ratio}")
        grid = tuple(sorted({r for r in opts.scan_ratios if r < opts.max_ratio} | {opts.max_ratio}))
        scan_data = ctx.val_data.subset(opts.scan_samples)
        sens = scan(layers, grid, folded_magnitude, lambda: evaluate(ctx.model, scan_data))
        ratios = allocate(sens, target, opts.max_ratio)
        ctx.details["sensitivity"] = {s.name: s.to_dict() for s in sens}
        ctx.details["ratios"] = dict(ratios)
        ctx.event("scan", "per-layer ratios " + ", ".join(f"{n} {r:.2f}" for n, r in ratios.items()),
                  ratios=dict(ratios))

        for j in range(1, opts.iterations + 1):
            for name, layer in layers:
                mask = magnitude_mask(folded_magnitude(layer), layer.weight_mask,
                                      ratios[name] * j / opts.iterations)
                layer.weight_mask.copy_(mask)
            sparsity = weight_sparsity(ctx.model)
            ctx.event("prune", f"round {j}/{opts.iterations}: weight sparsity {sparsity:.3f}",
                      round=j, sparsity=sparsity)
            if j < opts.iterations:
                steps = (opts.retrain_steps if opts.retrain_steps is not None
                         else round(opts.retrain_epochs * ctx.trainer.steps_per_epoch))
                if steps:
                    ctx.trainer.train_steps(steps, f"retrain {j}/{opts.iterations}")

    def measure(self, ctx: RunContext) -> tuple[float, dict[str, dict]]:
        layers = {}
        for name, layer in mac_layers(ctx.model):
            zeros = int((layer.weight_mask == 0).sum())
            layers[name] = {"weights": layer.weight_mask.numel(), "pruned": zeros,
                            "ratio": ctx.details.get("ratios", {}).get(name, 0.0)}
        return weight_sparsity(ctx.model), layers
