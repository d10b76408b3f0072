"""Compression methods behind one interface (docs/methods.md).

``METHODS`` maps each registered name to its class, built from an explicit list of
classes (a misspelt class name fails at import; two classes claiming one name fail too).

>>> sorted(METHODS)
['iterative-magnitude', 'layerwise', 'one-shot', 'stepwise']
>>> METHODS["layerwise"].sparsity_kind, METHODS["iterative-magnitude"].sparsity_kind
('channels', 'weights')
"""

from __future__ import annotations

from toolchain.methods.base import Method, MethodConfig, MethodError, Result, RunContext
from toolchain.methods.channel import ChannelPruning, Layerwise, OneShot, Stepwise
from toolchain.methods.magnitude import IterativeMagnitude


def _registry(classes: list[type[Method]]) -> dict[str, type[Method]]:
    table: dict[str, type[Method]] = {}
    for cls in classes:
        if not cls.name or cls.name in table:
            raise ImportError(f"method class {cls.__name__} has an empty or duplicate name {cls.name!r}")
        table[cls.name] = cls
    return table


#: Registered methods, name -> class.
METHODS: dict[str, type[Method]] = _registry([Layerwise, Stepwise, OneShot, IterativeMagnitude])


def get_method(name: str) -> type[Method]:
    """The class registered as ``name``; :class:`MethodError` naming the choices otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise MethodError(f"unknown method {name!r}; available: {', '.join(METHODS)}") from None


__all__ = ["METHODS", "ChannelPruning", "IterativeMagnitude", "Layerwise", "Method", "MethodConfig",
           "MethodError", "OneShot", "Result", "RunContext", "Stepwise", "get_method"]
