"""What the estimator needs to know about the target: part, clock, architecture, reuse.

:func:`resolve_config` accepts ``None`` (defaults), an :class:`EstimateConfig`, a dict
with any of its field names, or any object carrying them as attributes (the HLS
generator's ``HlsConfig``), so the same config drives generation and estimation.

>>> cfg = resolve_config({"reuse_factor": 2, "layer_reuse": {"conv1": 4}})
>>> cfg.reuse("conv1"), cfg.reuse("fc3")
(4, 2)
>>> resolve_config(None).dsp_ports
(27, 18)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Mapping

import numpy as np

from exporters.errors import FoldlineError

ARCHITECTURES = ("auto", "dataflow", "parallel")


class EstimateConfigError(FoldlineError):
    """An estimator setting that makes no sense (names the setting)."""


@dataclass(frozen=True)
class EstimateConfig:
    """Target and folding of the design being estimated (the fields of the generator's
    ``HlsConfig``, plus the product-binding thresholds).

    ``lut_mult_max_bits`` / ``lut_mult_narrow_bits``: a non-constant product goes to LUTs
    when both operands have at most ``lut_mult_max_bits`` bits, or either has at most
    ``lut_mult_narrow_bits`` (see :mod:`hls_templates.estimate.arith`); calibrate them
    against your tool's reports.
    """

    part: str = "xcu250-figd2104-2L-e"
    clock_ns: float = 5.0
    architecture: str = "auto"
    reuse_factor: int = 1
    layer_reuse: Mapping[str, int] = field(default_factory=dict)
    lut_mult_max_bits: int = 10
    lut_mult_narrow_bits: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer_reuse", dict(self.layer_reuse or {}))
        if self.architecture not in ARCHITECTURES:
            raise EstimateConfigError(f"architecture '{self.architecture}': expected one of {ARCHITECTURES}")
        if not self.clock_ns > 0:
            raise EstimateConfigError(f"clock_ns {self.clock_ns!r} must be positive")
        for name, r in [("reuse_factor", self.reuse_factor), *self.layer_reuse.items()]:
            if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
                raise EstimateConfigError(f"reuse factor of '{name}' is {r!r}; it must be an integer >= 1")
        for name in ("lut_mult_max_bits", "lut_mult_narrow_bits"):
            if not isinstance(getattr(self, name), (int, np.integer)) or getattr(self, name) < 0:
                raise EstimateConfigError(f"{name} must be a non-negative integer, got {getattr(self, name)!r}")

    def reuse(self, layer: str) -> int:
        return int(self.layer_reuse.get(layer, self.reuse_factor))

    def resolve_architecture(self, input_shape: tuple[int, ...]) -> str:
        """As the generator does: ``auto`` is parallel for a vector input, dataflow for a map."""
        if self.architecture != "auto":
            return self.architecture
        return "parallel" if len(input_shape) == 1 else "dataflow"

    def check_layers(self, names) -> None:
        unknown = sorted(set(self.layer_reuse) - set(names))
        if unknown:
            raise EstimateConfigError(f"reuse factor given for unknown layer(s) {', '.join(unknown)}")

    @property
    def dsp_ports(self) -> tuple[int, int]:
        """Signed multiplier port widths of the part's DSP slice: DSP48E1 (7-series) 25x18,
        DSP48E2 (UltraScale/UltraScale+, Versal's DSP58 treated alike) 27x18."""
        return (25, 18) if self.part.lower().startswith("xc7") else (27, 18)


_FIELDS = tuple(f.name for f in fields(EstimateConfig))
_ALIASES = {"clock_period_ns": "clock_ns", "clock_period": "clock_ns", "reuse": "reuse_factor",
            "per_layer_reuse": "layer_reuse", "reuse_per_layer": "layer_reuse"}


def resolve_config(config=None) -> EstimateConfig:
    """``None``, an :class:`EstimateConfig`, a dict, or an HlsConfig-like object -> EstimateConfig."""
    if config is None:
        return EstimateConfig()
    if isinstance(config, EstimateConfig):
        return config
    if isinstance(config, dict):
        unknown = sorted(set(config) - set(_FIELDS) - set(_ALIASES))
        if unknown:
            raise EstimateConfigError(f"unknown estimator settings {unknown}; known: {list(_FIELDS)}")
        items = config.items()
    else:  # an object with attributes (the generator's HlsConfig): take what it has
        items = [(n, getattr(config, n)) for n in (*_FIELDS, *_ALIASES) if hasattr(config, n)]
    values = {}
    for key, value in items:
        if value is not None:
            values.setdefault(_ALIASES.get(key, key), value)
    return EstimateConfig(**values)
