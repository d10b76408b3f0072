"""``djpq``: differentiable joint pruning and quantization (Wang, Lu and Blankevoort 2020).

One training pass learns, per layer, the quantizers' step, range and exponent — hence the
bit widths — and, per channel, variational information bottleneck gates — hence which channels
survive — under one loss (eq. 17):

    L = CE + gamma * sum_groups sum_i log(1 + mu_i^2 / sigma_i^2) + beta * sum_l w_l BOPs_l

* quantizers: :mod:`toolchain.learned_quant` (eqs. 1–7), installed on every MAC layer's weights
  and on every hidden ReLU output (:func:`toolchain.nn.use_learned_quantizers`), calibrated after
  pretraining at the network's widths (``--weight-bits`` / ``--act-bits`` / ``--layer-bits``:
  the paper's "initial bit-width"); ``restrict``: Algorithm 2's power-of-two widths, {2, 4, 8};
* gates: :class:`toolchain.nn.gate.ChannelGate` (eqs. 9–13), one per prunable channel group
  (coupled producers share it), sampled in training, ``mu`` in eval;
* cost: :class:`toolchain.methods.soft_costs.SoftCost` — soft pruning ratios (eq. 19, sign as
  eq. 18), MACs (eq. 15) and BOPs (eq. 16); ``cost=lut|dsp|ff|latency_cycles`` weights each
  layer's BOPs by its estimated FPGA cost per bit operation (:func:`~toolchain.methods.soft_costs.estimate_weights`,
  refreshed every ``cost_every`` steps), so the loss trades accuracy against the estimate;
* annealing (Algorithm 1, "anneal strength gamma and beta after each epoch"): in epoch ``e``
  (from 0) both are scaled by ``min(1, (e + 1) / anneal_epochs)`` — a linear warm-up, since the
  paper does not say how;
* learning rates (Appendix B.3): gates at ``lr * gate_lr_scale`` (paper: 5–10), quantizer
  parameters at ``lr * quant_lr_scale`` (paper: 0.05), the rest at ``lr``; Adam, as for VGG7.

``config.epochs`` is the joint pass (the paper trains once; there is no separate fine-tuning).
At its end each channel with ``alpha < alpha_threshold`` is masked (eq. 18; a group keeps at
least its channel of largest ``alpha``), ``mu`` is folded into the layers
(:func:`~toolchain.nn.gate.fold_gate`), the gates are dropped and the masked channels removed:
the result is a plain QuantNet with learned quantizers, which export-fpga converts unchanged.

>>> from toolchain.models import build
>>> from toolchain.data import synthetic
>>> data = synthetic(64, shape=(1, 8, 8))
>>> result = Djpq(MethodConfig(sparsity=0.0, epochs=1, options={"beta": 1e-6})).run(build("cnn", input_shape=(1, 8, 8)), data, data)
>>> sorted(result.details["continuous_bits"])                   # eq. 3 per layer, learned
['conv1', 'conv2', 'head']
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from toolchain.learned_quant import POWER_OF_TWO_BITS, _LearnedQuant
from toolchain.methods.base import MethodConfig, MethodError, RunContext
from toolchain.methods.budget import CALIBRATION_SAMPLES, StructuredMethod
from toolchain.methods.common import prunable_groups
from toolchain.methods.hardware import HardwareProbe, HardwareTarget, calibrated_copy
from toolchain.methods.soft_costs import ESTIMATE_METRICS, SoftCost, estimate_weights
from toolchain.nn import bit_widths, check_learnable, mac_layers, set_quantization, use_learned_quantizers
from toolchain.nn.gate import INIT_LOG_SIGMA2, ChannelGate, fold_gate
from toolchain.pruning import remove_channels
from toolchain.train import make_optimizer

COSTS = ("bops",) + ESTIMATE_METRICS


@dataclass(frozen=True)
class DjpqOptions:
    """Options of ``djpq`` (``--option KEY=VALUE``)."""

    gamma: float = 1e-3            #: gamma of eq. 13 (information term), after annealing
    beta: float = 1e-8             #: beta of eq. 17 (cost term; per bit operation, or per unit of ``cost``)
    alpha_threshold: float = 1e-3  #: alpha_th: a channel with mu^2 / sigma^2 below it is pruned (paper: 1e-3)
    tau: float = 1e-3              #: temperature of the soft pruning ratio (eq. 19)
    anneal_epochs: float = 1.0     #: gamma, beta reach full strength at the end of this many epochs
    restrict: bool = False         #: power-of-two bit widths (Algorithm 2), {2, 4, 8}
    cost: str = "bops"             #: bops, or an estimate metric: lut, dsp, ff, latency_cycles
    cost_every: int | None = None  #: steps between estimate refreshes (None: one epoch)
    gate_lr_scale: float = 10.0    #: learning-rate factor of the gates (paper B.3: 5-10)
    quant_lr_scale: float = 0.05   #: learning-rate factor of d, q_m, t (paper B.3: 0.05)
    init_log_sigma2: float = INIT_LOG_SIGMA2  #: initial log sigma^2 of every gate (mu starts at 1)
    remove: bool = True            #: physically remove pruned channels at the end

    def __post_init__(self) -> None:
        for name in ("gamma", "beta", "anneal_epochs"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, got {value}")
        for name in ("alpha_threshold", "tau", "gate_lr_scale", "quant_lr_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.cost not in COSTS:
            raise ValueError(f"cost must be one of {', '.join(COSTS)}, got {self.cost!r}")
        if self.cost_every is not None and self.cost_every < 1:
            raise ValueError(f"cost_every must be >= 1, got {self.cost_every}")


class Djpq(StructuredMethod):
    """DJPQ: learned per-layer bit widths and VIB channel gates in one loss."""

    name = "djpq"
    summary = "Wang, Lu and Blankevoort: learned bits + VIB channel gates, one loss with BOPs"
    sparsity_kind = "channels"
    Options = DjpqOptions
    learns_sparsity = True  #: its gates decide the pruning ratio: fpga-compress takes no --sparsity

    def __init__(self, config: MethodConfig) -> None:
        super().__init__(config)
        if config.sparsity > 0:
            raise MethodError(f"{self.name} learns its pruning ratios (gates and gamma/beta); sparsity must be 0, "
                              f"got {config.sparsity}")
        if self.options.restrict:
            widths = [("weight_bits", config.weight_bits), ("act_bits", config.act_bits)] + [
                (f"layer_bits {layer} {part}", bits) for layer, parts in config.layer_bits.items()
                for part, bits in parts.items()]
            for what, bits in widths:
                if bits is not None and bits not in POWER_OF_TWO_BITS:
                    raise MethodError(f"{self.name}: {what} = {bits} is not one of {POWER_OF_TWO_BITS} "
                                      "(restrict: power-of-two widths)")
        self.gates: dict[str, ChannelGate] = {}
        self.cost: SoftCost | None = None
        self.weights: dict[str, float] | None = None
        self.strength = 1.0

    @property
    def removes_channels(self) -> bool:
        return self.options.remove

    def prepare(self, ctx: RunContext) -> None:
        super().prepare(ctx)
        check_learnable(ctx.model, self.options.restrict)
        if not prunable_groups(ctx.model):
            raise MethodError(f"{self.name}: the model has no prunable channel groups")

    # --- the joint pass ---------------------------------------------------------------------
    def prune(self, ctx: RunContext) -> None:
        opts, model = self.options, ctx.model
        groups = prunable_groups(model)
        self.record_groups(ctx, groups, "kept_before")
        set_quantization(model, True)
        use_learned_quantizers(model, opts.restrict)
        for group in groups:
            gate = ChannelGate(group.channels, opts.init_log_sigma2)
            self.gates[group.name] = gate
            for producer in group.producers:
                model.layers[producer].gate = gate
        self.cost = SoftCost(model, self.gates, opts.alpha_threshold, opts.tau)
        ctx.trainer.optimizer = self._optimizer(model, ctx.config.lr)
        probe = HardwareProbe(ctx.config.hardware or HardwareTarget()) if opts.cost != "bops" else None
        per_epoch = ctx.trainer.steps_per_epoch
        refresh = opts.cost_every or per_epoch
        start = ctx.trainer.step

        def on_step(trainer) -> None:
            t = trainer.step - start
            epoch = t // per_epoch
            self.strength = min(1.0, (epoch + 1) / opts.anneal_epochs) if opts.anneal_epochs > 0 else 1.0
            if probe is not None and t % refresh == 0:
                self.weights = estimate_weights(model, probe, opts.cost)
            if t % per_epoch == 0:
                self._epoch_event(ctx, epoch)

        self.strength = min(1.0, 1.0 / opts.anneal_epochs) if opts.anneal_epochs > 0 else 1.0
        if probe is not None:  # on a calibrated copy: a fresh model has no grids to estimate yet
            self.weights = estimate_weights(calibrated_copy(model, ctx.train_data.x[:CALIBRATION_SAMPLES]), probe,
                                            opts.cost)
        ctx.trainer.train_steps(round(ctx.config.epochs * per_epoch), "djpq", on_step=[on_step])
        self._harden(ctx, groups)
        ctx.trainer.optimizer = make_optimizer(model, "adam", ctx.config.lr)  # the template's, for what follows

    def _optimizer(self, model, lr: float) -> torch.optim.Optimizer:
        """Adam with the paper's learning-rate scaling for gates and quantizer parameters."""
        gates = {id(p) for gate in self.gates.values() for p in gate.parameters()}
        quant = {id(p) for m in model.modules() if isinstance(m, _LearnedQuant) for p in m.parameters()}
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [([p for p in params if id(p) in gates], lr * self.options.gate_lr_scale),
                  ([p for p in params if id(p) in quant], lr * self.options.quant_lr_scale),
                  ([p for p in params if id(p) not in gates | quant], lr)]
        return torch.optim.Adam([{"params": ps, "lr": rate} for ps, rate in groups if ps])

    def regularizer(self, model) -> torch.Tensor | None:
        if self.cost is None:
            return None
        information = sum((gate.kl() for gate in self.gates.values()), torch.zeros(()))
        return self.strength * (self.options.gamma * information + self.options.beta * self.cost.total(self.weights))

    def _epoch_event(self, ctx: RunContext, epoch: int) -> None:
        with torch.no_grad():
            ratios = {name: round(float(p), 4) for name, p in self.cost.pruning_ratios().items()}
            pruned = {name: int(gate.pruned(self.options.alpha_threshold).sum()) for name, gate in self.gates.items()}
        ctx.event("djpq", f"after epoch {epoch}: bits {bit_widths(ctx.model)}, alpha < threshold {pruned}",
                  epoch=epoch, bits=bit_widths(ctx.model), soft_pruning_ratio=ratios, below_threshold=pruned)

    def _harden(self, ctx: RunContext, groups) -> None:
        """Eq. 18's hard pruning, then ``mu`` folded into the layers and the gates dropped."""
        for group in groups:
            gate = self.gates[group.name]
            with torch.no_grad():
                alpha = gate.alpha()
                keep = ~gate.pruned(self.options.alpha_threshold) & (group.mask != 0)
                if not keep.any():
                    keep[int(torch.argmax(torch.where(group.mask != 0, alpha, torch.full_like(alpha, -1.0))))] = True
            alive = int((group.mask != 0).sum())
            if int(keep.sum()) < alive:
                group.set_mask(keep.to(torch.float32))
                ctx.event("prune", f"{group.name}: {alive} -> {int(keep.sum())} of {group.channels} channels "
                                   f"(alpha < {self.options.alpha_threshold:g})",
                          group=group.name, kept=int(keep.sum()), channels=group.channels)
            for producer in group.producers:
                fold_gate(ctx.model.layers[producer])
        self.record_groups(ctx, groups)
        self.cost, self.gates = None, {}
        with torch.no_grad():
            soft = {name: {"weight": round(float(layer.weight_quant.soft_bits()), 3)}
                    for name, layer in mac_layers(ctx.model) if isinstance(layer.weight_quant, _LearnedQuant)}
        ctx.details.update(bits=bit_widths(ctx.model), continuous_bits=soft, restricted=self.options.restrict,
                           cost=self.options.cost, gamma=self.options.gamma, beta=self.options.beta)

    def finetune(self, ctx: RunContext) -> None:
        """None: the joint pass is the training (the paper trains once)."""

    def finish(self, ctx: RunContext) -> None:
        if self.options.remove:
            ctx.replace_model(remove_channels(ctx.model, ctx.config.round_to))


__all__ = ["Djpq", "DjpqOptions"]
