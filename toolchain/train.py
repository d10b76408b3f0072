"""Training and evaluation loops shared by every compression method.

A :class:`Trainer` owns the optimizer and an endless, seeded stream of shuffled
mini-batches, so a method can train for a number of *steps* (Zhang et al. counts pruning
in steps) or *epochs* and be called back after every step with the step's loss and batch
accuracy; :class:`toolchain.progress.Progress` turns those calls into bars on a terminal
and plain lines in a log file.

Determinism: :func:`seed_everything` seeds Python, NumPy and torch; the batch order
comes from the trainer's own ``torch.Generator`` seeded with ``seed``, so two runs
with the same seed, data and thread count give the same weights.

>>> import torch
>>> from toolchain.data import synthetic
>>> data = synthetic(64, shape=(1, 8, 8), classes=2)
>>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
>>> t = Trainer(model, data, lr=1e-2, batch_size=16, seed=0)
>>> t.steps_per_epoch
4
>>> loss = t.train_steps(8)
>>> t.step, 0.0 <= evaluate(model, data) <= 1.0
(8, True)
>>> state = t.snapshot(); first = t.train_steps(3)
>>> t.restore(state); t.train_steps(3) == first and t.step == 11    # same point, same batches
True
"""

from __future__ import annotations

import copy
import math
import os
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from toolchain.data import Dataset

StepHook = Callable[["Trainer"], None]
LossHook = Callable[[nn.Module], "torch.Tensor | None"]


def configure_threads(max_threads: int | None = None) -> int:
    """Use at most ``max_threads`` (default: the CPUs this process may run on)."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    n = max(1, min(available, max_threads or available))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a fresh generator seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


class Callback(Protocol):
    """What a method reports while it runs. Every hook is optional (see :class:`Callbacks`)."""

    def on_phase_start(self, phase: str, total_steps: int) -> None: ...
    def on_step_end(self, phase: str, step: int, loss: float, accuracy: float) -> None: ...
    def on_phase_end(self, phase: str, metrics: dict) -> None: ...
    def on_event(self, phase: str, message: str) -> None: ...


class Callbacks:
    """Fan a hook call out to every callback that defines it.

    >>> class Log:
    ...     def on_event(self, phase, message): print(phase, message)
    >>> Callbacks([Log()]).on_event("prune", "conv1: 8 -> 4 channels")
    prune conv1: 8 -> 4 channels
    """

    def __init__(self, callbacks: Sequence[object] = ()):
        self._callbacks = tuple(callbacks)

    def _call(self, hook: str, *args) -> None:
        for cb in self._callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)

    def on_phase_start(self, phase: str, total_steps: int) -> None:
        self._call("on_phase_start", phase, total_steps)

    def on_step_end(self, phase: str, step: int, loss: float, accuracy: float) -> None:
        self._call("on_step_end", phase, step, loss, accuracy)

    def on_phase_end(self, phase: str, metrics: dict) -> None:
        self._call("on_phase_end", phase, metrics)

    def on_event(self, phase: str, message: str) -> None:
        self._call("on_event", phase, message)


def batches(data: Dataset, batch_size: int, generator: torch.Generator | None = None
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One pass over ``data``: shuffled with ``generator``, in order without one."""
    n = len(data)
    order = torch.randperm(n, generator=generator) if generator is not None else None
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size] if order is not None else slice(
            start, start + batch_size)
        yield data.x[idx], data.y[idx]


@torch.no_grad()
def predict(model: nn.Module, data: Dataset, batch_size: int = 256) -> torch.Tensor:
    """Logits of ``model`` (in eval mode; its mode is restored) for every sample."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x) for x, _ in batches(data, batch_size)])
    finally:
        model.train(was_training)


def evaluate(model: nn.Module, data: Dataset, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on ``data`` (a number in [0, 1])."""
    if len(data) == 0:
        return float("nan")
    logits = predict(model, data, batch_size)
    return float((logits.argmax(1) == data.y).float().mean())


@torch.no_grad()
def evaluate_integer(integer_model, data: Dataset, batch_size: int = 500) -> tuple[float, torch.Tensor]:
    """Top-1 accuracy of an :class:`~exporters.integer_model.IntegerModel` run in the
    bit-exact torch integer mode, and its predicted classes."""
    from toolchain.integer_mode import run_integer

    preds = torch.cat([run_integer(integer_model, x).argmax(1) for x, _ in batches(data, batch_size)])
    return float((preds == data.y).float().mean()) if len(data) else float("nan"), preds


class Trainer:
    """Adam (or SGD) on cross-entropy over an endless stream of shuffled batches.

    ``extra_loss`` (optional) adds a regularisation term computed from the model (it
    may return ``None`` for "nothing this step");
    ``on_step`` hooks run after every optimizer step (``trainer.step`` is already
    incremented). Both can also be passed per call to :meth:`train_steps`.
    """

    def __init__(self, model: nn.Module, data: Dataset, *, lr: float = 1e-3,
                 batch_size: int = 64, seed: int = 0, optimizer: str = "adam",
                 weight_decay: float = 0.0, callbacks: Sequence[object] | Callbacks = (),
                 extra_loss: LossHook | None = None):
        if len(data) == 0:
            raise ValueError("cannot train on an empty dataset")
        self.model = model
        self.data = data
        self.batch_size = min(batch_size, len(data))
        self.generator = torch.Generator().manual_seed(seed)
        self.callbacks = callbacks if isinstance(callbacks, Callbacks) else Callbacks(
            list(callbacks))
        self.extra_loss = extra_loss
        self.step = 0
        self._optimizer_name = optimizer
        self.optimizer = make_optimizer(model, optimizer, lr, weight_decay)
        self._order = torch.empty(0, dtype=torch.int64)  # this pass's shuffled sample indices
        self._position = 0                                # the next batch starts here

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)

    def set_lr(self, lr: float) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] = lr

    def replace_model(self, model: nn.Module) -> None:
        """Train ``model`` from now on (e.g. after physical channel removal): a fresh
        optimizer with the same hyperparameters; batch stream and step count go on."""
        group = self.optimizer.param_groups[0]
        self.model = model
        self.optimizer = make_optimizer(model, self._optimizer_name, group["lr"],
                                        group["weight_decay"])

    def reset_optimizer(self) -> None:
        """Forget optimizer moments (after the parameter set or its meaning changes)."""
        self.optimizer.state.clear()

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The endless stream: passes over the data, each shuffled with ``generator`` (the
        batches :func:`batches` gives), kept as plain state so :meth:`snapshot` can hold it."""
        if self._position >= len(self._order):
            self._order = torch.randperm(len(self.data), generator=self.generator)
            self._position = 0
        idx = self._order[self._position:self._position + self.batch_size]
        self._position += self.batch_size
        return self.data.x[idx], self.data.y[idx]

    def snapshot(self) -> "TrainerState":
        """Everything training depends on, copied: the model's state (parameters and buffers:
        BN and quantizer statistics, masks), the optimizer's state (moments, learning rate),
        the step count and the position in the batch stream. :meth:`restore` returns to it, so
        several candidates can each train from the same point on the same batches (the set
        S of Ding et al.'s Algorithm 1)."""
        return TrainerState(copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.optimizer.state_dict()),
                            self.step, self.generator.get_state(), self._order.clone(), self._position)

    def restore(self, state: "TrainerState") -> None:
        """Return model, optimizer, step and batch stream to ``state`` (taken by :meth:`snapshot`
        on a model with the same parameters and buffers; ``replace_model`` first if the model
        object changed, e.g. after new bit widths)."""
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(copy.deepcopy(state.optimizer))
        self.step = state.step
        self.generator.set_state(state.generator)
        self._order, self._position = state.order.clone(), state.position

    def train_steps(self, steps: int, phase: str = "train",
                    on_step: Sequence[StepHook] = (), extra_loss: LossHook | None = None,
                    report: bool = True) -> float:
        """Run ``steps`` optimizer steps; return the mean training loss."""
        extra = extra_loss or self.extra_loss
        self.model.train()
        if report:
            self.callbacks.on_phase_start(phase, steps)
        total = 0.0
        for _ in range(steps):
            x, y = self._next_batch()
            logits = self.model(x)
            loss = nn.functional.cross_entropy(logits, y)
            term = extra(self.model) if extra is not None else None
            if term is not None:
                loss = loss + term
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            value = float(loss.detach())
            total += value
            for hook in on_step:
                hook(self)
            if report:
                accuracy = float((logits.detach().argmax(1) == y).float().mean())
                self.callbacks.on_step_end(phase, self.step, value, accuracy)
        mean = total / max(steps, 1)
        if report:
            self.callbacks.on_phase_end(phase, {"loss": mean})
        return mean

    def train_epochs(self, epochs: float, phase: str = "train",
                     on_step: Sequence[StepHook] = (), extra_loss: LossHook | None = None
                     ) -> float:
        """Train for ``epochs`` passes (fractions allowed; rounded to whole steps)."""
        return self.train_steps(round(epochs * self.steps_per_epoch), phase, on_step,
                                extra_loss)


@dataclass(frozen=True)
class TrainerState:
    """A :meth:`Trainer.snapshot`: plain copies, independent of the live objects."""

    model: dict
    optimizer: dict
    step: int
    generator: torch.Tensor
    order: torch.Tensor
    position: int


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float = 0.0
                   ) -> torch.optim.Optimizer:
    """``"adam"`` or ``"sgd"`` (momentum 0.9) over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r} (expected adam or sgd)")

