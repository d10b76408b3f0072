"""Elementwise activation functions by name: what ``QuantActivation`` computes and what
conversion tabulates into a Lookup layer (docs/integer-contract.md, "Lookup").

A function is a name with plain-data parameters (``"leaky_relu"``, ``{"negative_slope": 0.1}``),
so a QuantNet spec stays data. :data:`ACTIVATIONS` maps each name to torch's implementation
and the parameters it takes; the fake-quant forward runs it on float32 tensors, the table is
computed with the same function on float64 ones. Clamps (ReLU6, hardtanh with bounds around 0)
are not here: they fuse into the requantizing layer before them (``clamp=(a, b)``,
:class:`~toolchain.nn.layers.QuantClamp`); ``hardtanh`` is here for the clamps that cannot fuse.

>>> resolve("leaky_relu", {"negative_slope": 0.1})
{'negative_slope': 0.1}
>>> describe("gelu", {"approximate": "tanh"}), evaluate("hardsigmoid", {}, torch.tensor([-3.0, 0.0, 3.0])).tolist()
('gelu(approximate=tanh)', [0.0, 0.5, 1.0])
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from exporters.errors import ModelError
from exporters.grid import real_clamp


def _elu(x, alpha=1.0, scale=1.0, input_scale=1.0):
    """ATen's elu, with the ``scale`` / ``input_scale`` a ``.pt2`` may carry (F.elu has only alpha)."""
    return torch.ops.aten.elu.default(x, alpha, scale, input_scale)


@dataclass(frozen=True)
class Activation:
    """torch's implementation ``fn(x, **params)`` and its parameters with their defaults."""

    fn: Callable
    defaults: tuple[tuple[str, object], ...] = ()


#: Every function a Lookup layer can hold, by the name a spec uses (explicit: a typo fails at import).
ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(torch.sigmoid),
    "tanh": Activation(torch.tanh),
    "hardsigmoid": Activation(F.hardsigmoid),
    "hardswish": Activation(F.hardswish),
    "silu": Activation(F.silu),
    "gelu": Activation(F.gelu, (("approximate", "none"),)),
    "elu": Activation(_elu, (("alpha", 1.0), ("scale", 1.0), ("input_scale", 1.0))),
    "selu": Activation(F.selu),
    "celu": Activation(F.celu, (("alpha", 1.0),)),
    "leaky_relu": Activation(F.leaky_relu, (("negative_slope", 0.01),)),
    "softplus": Activation(F.softplus, (("beta", 1.0), ("threshold", 20.0))),
    "mish": Activation(F.mish),
    "logsigmoid": Activation(F.logsigmoid),
    "softsign": Activation(F.softsign),
    "hardtanh": Activation(F.hardtanh, (("min_val", -1.0), ("max_val", 1.0))),
    "clamp": Activation(torch.clamp, (("min", None), ("max", None))),  # None: open; for clamps that cannot fuse
}

#: Not elementwise (or not a table's job), with the nearest supported alternative.
NOT_A_LOOKUP = {
    "softmax": "not exported; the integer logits' argmax equals softmax's (drop it and read the logits)",
    "log_softmax": "not exported; the integer logits' argmax equals log_softmax's (drop it and read the logits)",
    "relu": "fused into the layer before it: relu=True (or QuantReLU), no lookup needed",
    "relu6": "fused into the layer before it as a clamp: clamp=(0, 6) (or QuantClamp(0, 6)), no lookup needed",
}


def _unknown(name: str) -> str:
    if name in NOT_A_LOOKUP:
        return f"{name}: {NOT_A_LOOKUP[name]}"
    near = difflib.get_close_matches(name, list(ACTIVATIONS), n=1)
    hint = f"; nearest: '{near[0]}'" if near else ""
    return f"activation '{name}' is not supported{hint}; supported: {', '.join(ACTIVATIONS)}"


def resolve(name: str, params: dict | None = None) -> dict:
    """The parameters of function ``name`` with defaults filled in; a one-line ModelError for an
    unknown function (naming the nearest supported one) or parameter, or a non-finite value."""
    if name not in ACTIVATIONS:
        raise ModelError(_unknown(str(name)))
    defaults = dict(ACTIVATIONS[name].defaults)
    given = dict(params or {})
    extra = sorted(set(given) - set(defaults))
    if extra:
        raise ModelError(f"activation '{name}' takes {sorted(defaults) or 'no parameters'}, not {extra}")
    for key, value in given.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ModelError(f"activation '{name}': parameter {key}={value} must be finite")
    return {**defaults, **given}


def describe(name: str, params: dict) -> str:
    """``name(key=value, ...)`` for the parameters that differ from the defaults, e.g. for reports."""
    defaults = dict(ACTIVATIONS[name].defaults)
    changed = [f"{k}={v}" for k, v in params.items() if defaults.get(k) != v]
    return f"{name}({', '.join(changed)})" if changed else name


def evaluate(name: str, params: dict, x: torch.Tensor) -> torch.Tensor:
    """``f(x)`` in ``x``'s dtype (float32 in the fake-quant forward, float64 for the table)."""
    return ACTIVATIONS[name].fn(x, **params)


def float64_function(name: str, params: dict):
    """``f`` on float64 numpy arrays, as :func:`exporters.layers.lookup.tabulate` takes it."""
    return lambda v: evaluate(name, params, torch.from_numpy(v)).numpy()


def clamp_arg(clamp) -> tuple[float | None, float | None] | None:
    """A layer's ``clamp=(min_val, max_val)`` as plain data (ReLU6: ``(0, 6)``; None: that side is
    unbounded), checked to contain 0 (:func:`exporters.grid.real_clamp`); None: no clamp."""
    if clamp is None:
        return None
    min_val, max_val = clamp
    if min_val is None and max_val is None:
        raise ModelError("a clamp needs at least one bound (ReLU6: (0, 6))")
    real_clamp(min_val, max_val)
    return (None if min_val is None else float(min_val), None if max_val is None else float(max_val))
