"""Compression methods behind one interface (docs/methods.md).

``METHODS`` maps each registered name to its class, built from an explicit list of
classes (a misspelt class name fails at import; two classes claiming one name fail too).

>>> sorted(METHODS)
['djpq', 'increg', 'iterative-magnitude', 'layerwise', 'one-shot', 'rule-framework', 'stepwise', 'two-stage']
>>> METHODS["layerwise"].sparsity_kind, METHODS["iterative-magnitude"].sparsity_kind
('channels', 'weights')
"""

from __future__ import annotations

from toolchain.methods.base import Method, MethodConfig, MethodError, Result, RunContext
from toolchain.methods.channel import ChannelPruning, Layerwise, OneShot, Stepwise
from toolchain.methods.djpq import Djpq
from toolchain.methods.framework import RuleFramework, TwoStage
from toolchain.methods.increg import IncReg
from toolchain.methods.magnitude import IterativeMagnitude


def _registry(classes: list[type[Method]]) -> dict[str, type[Method]]:
    table: dict[str, type[Method]] = {}
    for cls in classes:
        if not cls.name or cls.name in table:
            raise ImportError(f"method class {cls.__name__} has an empty or duplicate name {cls.name!r}")
        table[cls.name] = cls
    return table


#: Registered methods, name -> class.
METHODS: dict[str, type[Method]] = _registry([Layerwise, Stepwise, OneShot, IterativeMagnitude, TwoStage,
                                              RuleFramework, IncReg, Djpq])


def get_method(name: str) -> type[Method]:
    """The class registered as ``name``; :class:`MethodError` naming the choices otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise MethodError(f"unknown method {name!r}; available: {', '.join(METHODS)}") from None


__all__ = ["METHODS", "ChannelPruning", "Djpq", "IncReg", "IterativeMagnitude", "Layerwise", "Method", "MethodConfig",
           "MethodError", "OneShot", "Result", "RuleFramework", "RunContext", "Stepwise", "TwoStage", "get_method"]
