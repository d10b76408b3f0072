"""The interface every compression method implements (docs/methods.md).

A method is a class with a registered ``name``, built from a :class:`MethodConfig`
(shared knobs) whose ``options`` mapping fills the method's own ``Options``
dataclass. :meth:`Method.run` is a fixed template::

    bits      set_bits(model, config.layer_bits, weight_bits=config.weight_bits, act_bits=config.act_bits)
    prepare   self.prepare(ctx)          <- optional: checks before training (a budget's minimum)
    pretrain  config.pretrain_epochs of dense float training (quantizers latent)
    prune     self.prune(ctx)            <- the method: masks, schedules, retraining
    finish    self.finish(ctx)           <- optional: e.g. physical channel removal
    finetune  self.finetune(ctx)         <- config.epochs of quantization-aware training (quantizers on)
    finalize  self.finalize(ctx)         <- optional: e.g. meeting hardware budgets after fine-tuning
    measure   self.measure(model)        <- achieved sparsity, per-layer detail

Quantization is latent (statistics collected, floats passed) until fine-tuning: the
"prune, then quantize" order of Paupamah et al. and Zhang et al.. A method may add a loss term by
overriding :meth:`Method.regularizer` (DJPQ and IncReg need this) and may train inside
``prune`` with ``ctx.trainer``, which calls back after every step.

>>> cfg = MethodConfig(sparsity=0.5, options={"iterations": "2"})
>>> cfg.options["iterations"]
'2'
>>> try:
...     MethodConfig(sparsity=1.5)
... except MethodError as e:
...     print(e)
sparsity must be in [0, 1), got 1.5
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from exporters.errors import FoldlineError
from toolchain.data import Dataset
from toolchain.methods.hardware import HardwareTarget
from toolchain.nn import set_bits, set_quantization
from toolchain.nn.net import QuantNet
from toolchain.train import Callbacks, Trainer, configure_threads, evaluate, seed_everything


class MethodError(FoldlineError):
    """A method asked for something it cannot do (bad option, unreachable target)."""


@dataclass(frozen=True)
class MethodConfig:
    """Knobs every method shares. ``options`` holds method-specific settings (strings
    are accepted and converted to the option's declared type)."""

    sparsity: float = 0.5          #: target sparsity (channel or weight, per method)
    epochs: float = 1.0            #: quantization-aware fine-tuning epochs after pruning (T)
    pretrain_epochs: float = 0.0   #: dense float training before pruning starts
    lr: float = 1e-3               #: Adam learning rate
    batch_size: int = 64
    weight_bits: int | None = None  #: None: keep the model's widths
    act_bits: int | None = None
    #: per-layer widths ``{layer: {"weight": w, "act": a}}`` applied after weight_bits / act_bits
    #: (``toolchain.nn.set_bits``; ``fpga-compress --layer-bits``)
    layer_bits: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    round_to: int = 1              #: channel counts kept as multiples of this
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    hardware: HardwareTarget | None = None  #: FPGA target and budgets (structured methods)

    def __post_init__(self) -> None:
        if not 0.0 <= self.sparsity < 1.0:
            raise MethodError(f"sparsity must be in [0, 1), got {self.sparsity}")
        for name in ("epochs", "pretrain_epochs"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise MethodError(f"{name} must be >= 0, got {value}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise MethodError(f"lr must be > 0, got {self.lr}")
        if self.batch_size < 1:
            raise MethodError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.round_to < 1:
            raise MethodError(f"round_to must be >= 1, got {self.round_to}")
        for name in ("weight_bits", "act_bits"):
            bits = getattr(self, name)
            if bits is not None and not 2 <= bits <= 8:
                raise MethodError(f"{name} must be in 2..8, got {bits}")
        for layer, widths in self.layer_bits.items():
            for part, bits in widths.items():
                if not (isinstance(bits, int) and 2 <= bits <= 8):
                    raise MethodError(f"layer_bits {layer} {part} must be in 2..8, got {bits}")


@dataclass
class Result:
    """What a run produced. ``sparsity`` is measured on ``model``'s masks before any
    physical removal, by the method's own definition (``sparsity_kind``)."""

    model: QuantNet
    method: str
    sparsity_kind: str             #: "channels" or "weights"
    target_sparsity: float
    sparsity: float
    val_accuracy: float            #: float fake-quant top-1 on the validation data
    layers: dict[str, dict] = field(default_factory=dict)   #: per group / layer detail
    history: list[dict] = field(default_factory=list)       #: pruning events, in order
    steps: int = 0                 #: optimizer steps taken
    details: dict = field(default_factory=dict)             #: method-specific plain data

    @property
    def reached(self) -> bool:
        return self.sparsity >= self.target_sparsity - 1e-9

    def summary(self) -> dict:
        """Plain data (for checkpoint metadata)."""
        return {
            "method": self.method, "sparsity_kind": self.sparsity_kind,
            "target_sparsity": self.target_sparsity, "sparsity": self.sparsity,
            "val_accuracy": self.val_accuracy, "steps": self.steps,
            "layers": self.layers, "history": self.history, "details": self.details,
        }


@dataclass
class RunContext:
    """Everything a method's ``prune`` step works with."""

    model: QuantNet
    trainer: Trainer
    train_data: Dataset
    val_data: Dataset
    config: MethodConfig
    callbacks: Callbacks
    history: list[dict] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def event(self, phase: str, message: str, **record) -> None:
        """Record a pruning event (plain data) and show it to the callbacks."""
        self.history.append({"step": self.trainer.step, "phase": phase, **record})
        self.callbacks.on_event(phase, message)

    def replace_model(self, model: QuantNet) -> None:
        """Continue with ``model`` (e.g. physically pruned); the optimizer is rebuilt."""
        self.model = model
        self.trainer.replace_model(model)


@dataclass(frozen=True)
class NoOptions:
    """A method without options of its own."""


class Method:
    """Base class. Subclasses set ``name``, ``summary``, ``sparsity_kind``, optionally
    ``Options`` (a dataclass), and implement :meth:`prune` and :meth:`measure`."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    sparsity_kind: ClassVar[str] = "channels"
    Options: ClassVar[type] = NoOptions
    supports_budget: ClassVar[bool] = False  #: prunes to ``config.hardware``'s budgets

    def __init__(self, config: MethodConfig) -> None:
        self.config = config
        self.options = parse_options(self.Options, config.options, self.name)
        if config.hardware is not None and not self.supports_budget:
            raise MethodError(f"{self.name}: hardware targets and budgets need a structured (channel) method")

    # --- the template ---------------------------------------------------------------
    def run(self, model: QuantNet, train_data: Dataset, val_data: Dataset,
            callbacks: Sequence[object] = ()) -> Result:
        """Compress ``model`` (left untouched; the result holds a new or updated model)."""
        cfg = self.config
        if not isinstance(model, QuantNet):
            raise MethodError(f"{self.name}: needs a toolchain.nn.QuantNet, got {type(model).__name__}")
        configure_threads()
        seed_everything(cfg.seed)
        model = copy.deepcopy(model)
        set_bits(model, cfg.layer_bits, weight_bits=cfg.weight_bits, act_bits=cfg.act_bits)
        cb = Callbacks(callbacks)
        trainer = Trainer(model, train_data, lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed,
                          callbacks=cb, extra_loss=self.regularizer)
        ctx = RunContext(model, trainer, train_data, val_data, cfg, cb)
        set_quantization(ctx.model, False)
        self.prepare(ctx)
        if cfg.pretrain_epochs > 0:
            trainer.train_epochs(cfg.pretrain_epochs, "pretrain")
        self.prune(ctx)
        self.finish(ctx)
        set_quantization(ctx.model, True)
        self.finetune(ctx)
        self.finalize(ctx)
        sparsity, layers = self.measure(ctx)
        accuracy = evaluate(ctx.model, val_data)
        cb.on_phase_end("result", {"sparsity": sparsity, "val_accuracy": accuracy})
        return Result(ctx.model, self.name, self.sparsity_kind, cfg.sparsity, sparsity, accuracy,
                      layers, ctx.history, trainer.step, ctx.details)

    # --- what subclasses provide ------------------------------------------------------
    def prepare(self, ctx: RunContext) -> None:
        """Before any training: checks that need the model (default: nothing)."""

    def prune(self, ctx: RunContext) -> None:
        """Set masks to reach ``ctx.config.sparsity`` (may train with ``ctx.trainer``)."""
        raise NotImplementedError

    def finish(self, ctx: RunContext) -> None:
        """After pruning, before fine-tuning (default: nothing)."""

    def finetune(self, ctx: RunContext) -> None:
        """Quantization-aware training after pruning (default: ``config.epochs``)."""
        if ctx.config.epochs > 0:
            ctx.trainer.train_epochs(ctx.config.epochs, "finetune")

    def finalize(self, ctx: RunContext) -> None:
        """After fine-tuning, before measuring (default: nothing)."""

    def measure(self, ctx: RunContext) -> tuple[float, dict[str, dict]]:
        """Achieved sparsity and per-layer (or per-group) plain-data detail."""
        raise NotImplementedError

    def regularizer(self, model: QuantNet) -> torch.Tensor | None:
        """An extra loss term added at every training step (default: none)."""
        return None


# --- options ------------------------------------------------------------------------------

def parse_options(options_cls: type, values: Mapping[str, Any], method: str = "") -> Any:
    """Build ``options_cls`` from ``values``; strings are converted to the field types.

    >>> @dataclass(frozen=True)
    ... class Opts:
    ...     steps: int | None = None
    ...     ratios: tuple[float, ...] = (0.5,)
    ...     verbose: bool = False
    >>> parse_options(Opts, {"steps": "10", "ratios": "0.1,0.2", "verbose": "yes"})
    Opts(steps=10, ratios=(0.1, 0.2), verbose=True)
    >>> try:
    ...     parse_options(Opts, {"step": 1}, "demo")
    ... except MethodError as e:
    ...     print(e)
    demo: unknown option 'step' (options: ratios, steps, verbose)
    """
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    hints = typing.get_type_hints(options_cls)
    prefix = f"{method}: " if method else ""
    kwargs = {}
    for key, raw in values.items():
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise MethodError(f"{prefix}unknown option {key!r} (options: {known})")
        try:
            kwargs[key] = _convert(raw, hints[key])
        except (TypeError, ValueError) as e:
            raise MethodError(f"{prefix}option {key}={raw!r}: {e}") from None
    try:
        return options_cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise MethodError(f"{prefix}{e}") from None


def _convert(raw: Any, hint: Any) -> Any:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if raw is None or (isinstance(raw, str) and raw.lower() == "none"):
            if type(None) in args:
                return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(raw, inner)
    if typing.get_origin(hint) is tuple:
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        return tuple(_convert(i.strip() if isinstance(i, str) else i, args[0]) for i in items)
    if hint is bool:
        if isinstance(raw, str):
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        return bool(raw)
    if hint is int:
        if isinstance(raw, float) and not raw.is_integer():
            raise ValueError("expected an integer")
        return int(raw)
    if hint is float:
        return float(raw)
    if hint is str:
        return str(raw)
    raise TypeError(f"unsupported option type {hint}")
