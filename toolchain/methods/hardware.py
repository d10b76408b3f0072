"""The seam between a training QuantNet and the FPGA estimate (docs/methods.md, "Hardware in the loop").

A pruning method asks two questions of the hardware, many times per epoch:

* what does the design of this network cost *now* (latency, DSP, LUT, ...)? —
  :meth:`HardwareProbe.measure`: the QuantNet (mid-training, masks applied, quantizers
  latent or not) -> the integer model export-fpga would build (masked channels removed,
  :func:`toolchain.export_pipeline.integer_model_of`, quantizers on) -> the estimate
  (:func:`hls_templates.estimate`) for the target's part, clock, architecture and per-layer
  reuse factors;
* how much would removing each channel save? — :meth:`HardwareProbe.savings`: the
  estimator's per-output-channel costs (:func:`hls_templates.estimate.channel_costs`, keyed
  by integer-model layer and indexed by the channels left after removal) mapped back onto
  the pruner's channel groups (:func:`toolchain.pruning.channel_groups`, keyed by QuantNet
  producer and indexed by original channel). Coupled producers (a residual group) add
  their costs, as the estimator's docs ask.

The integer model names a MAC layer followed by a fused activation (a QuantReLU) after the
activation (``toolchain.convert``: it takes over its producer's name, so the integer model
names the tensor the network outputs); :func:`integer_names` finds each layer's name.

``HardwareTarget`` also carries the budgets (``latency_us``, ``dsp``, ``lut``) a structured
method prunes to (:mod:`toolchain.methods.budget`), and the reuse policy: a fixed factor, or
``"auto"`` — per MAC layer the lowest factor of :data:`REUSE_CHOICES` that keeps the design
within the area budgets (:func:`choose_reuse`).

>>> from toolchain.models import build
>>> net = build("cnn", input_shape=(1, 8, 8))
>>> _ = net(torch.rand(8, 1, 8, 8))                        # quantizer statistics
>>> probe = HardwareProbe(HardwareTarget(clock_ns=4.0))
>>> m = probe.measure(net)
>>> m.totals["latency_us"] == m.totals["latency_cycles"] * 4.0 / 1000
True
>>> groups = [g for g in channel_groups(net) if g.prunable]
>>> {g: s.shape for g, s in probe.savings(m, net, groups, "lut").items()}
{'conv1': (16,), 'conv2': (32,)}
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from exporters import integer_model as im
from exporters.errors import FoldlineError
from hls_templates import HlsConfig
from hls_templates.estimate import Estimate, channel_costs, estimate
from toolchain.convert import to_integer_model
from toolchain.nn import mac_layers, set_quantization
from toolchain.nn.net import QuantNet
from toolchain.pruning import ChannelGroup, channel_groups, kept_channels, remove_channels

#: Reuse factors ``--reuse-factor auto`` chooses from, per MAC layer (powers of two, as hls4ml
#: users pick them; 64 folds even the widest layer of the built-in models to a few multipliers).
REUSE_CHOICES = (1, 2, 4, 8, 16, 32, 64)
#: Budgeted metrics: the estimate's ``totals`` key -> what the user calls it.
LIMITS = {"latency_us": "latency", "dsp": "DSP", "lut": "LUT"}
AREA = ("dsp", "lut")


class BudgetError(FoldlineError):
    """A hardware budget or target that cannot be used (negative, unreachable, unknown part)."""


@dataclass(frozen=True)
class HardwareTarget:
    """The design being estimated (as ``fpga-hls`` / ``export-fpga`` build it) and its budgets.

    ``reuse``: a reuse factor for every layer, or ``"auto"`` (:func:`choose_reuse`).
    ``latency_us`` / ``dsp`` / ``lut``: budgets (None: no budget). ``repair_rounds``: after
    fine-tuning, how many times a method that missed a budget prunes further and fine-tunes
    again (:func:`toolchain.methods.budget.enforce`).
    """

    part: str = HlsConfig.part
    clock_ns: float = HlsConfig.clock_ns
    architecture: str = HlsConfig.architecture
    reuse: int | str = 1
    latency_us: float | None = None
    dsp: int | None = None
    lut: int | None = None
    repair_rounds: int = 2

    def __post_init__(self) -> None:
        if self.reuse != "auto" and (isinstance(self.reuse, bool) or not isinstance(self.reuse, int)
                                     or self.reuse < 1):
            raise BudgetError(f"reuse factor must be an integer >= 1 or 'auto', got {self.reuse!r}")
        self.hls_config()  # part, clock and architecture checked as the generator checks them
        if self.latency_us is not None and not (math.isfinite(self.latency_us) and self.latency_us > 0):
            raise BudgetError(f"latency budget must be a positive number of microseconds, got {self.latency_us}")
        for name in AREA:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise BudgetError(f"{LIMITS[name]} budget must be a non-negative integer, got {value!r}")
        if self.repair_rounds < 0:
            raise BudgetError(f"repair_rounds must be >= 0, got {self.repair_rounds}")

    @property
    def limits(self) -> dict[str, float]:
        """The budgets given, ``{totals key: value}``."""
        return {k: getattr(self, k) for k in LIMITS if getattr(self, k) is not None}

    @property
    def area_limits(self) -> dict[str, float]:
        return {k: v for k, v in self.limits.items() if k in AREA}

    def hls_config(self, layer_reuse: Mapping[str, int] | None = None) -> HlsConfig:
        """The generator's config for this target (``reuse_factor`` 1 under ``auto``, the
        chosen factors in ``layer_reuse``)."""
        return HlsConfig(part=self.part, clock_ns=self.clock_ns, architecture=self.architecture,
                         reuse_factor=1 if self.reuse == "auto" else self.reuse,
                         layer_reuse=dict(layer_reuse or {}))

    def to_dict(self) -> dict:
        return {"part": self.part, "clock_ns": self.clock_ns, "architecture": self.architecture,
                "reuse": self.reuse, "budgets": self.limits}


@dataclass
class Measurement:
    """One network's integer model and estimate for one HLS config."""

    integer_model: im.IntegerModel
    config: HlsConfig
    estimate: Estimate

    @property
    def totals(self) -> dict:
        return self.estimate.totals

    def excess(self, limits: Mapping[str, float]) -> dict[str, float]:
        """``{metric: amount over its limit}`` for every limit missed (empty: all met)."""
        return {k: self.totals[k] - v for k, v in limits.items() if self.totals[k] > v + 1e-9}

    def reuse_record(self) -> dict:
        """What export-fpga needs to build this design (checkpoint metadata ``hardware``)."""
        c = self.config
        return {"part": c.part, "clock_ns": c.clock_ns, "architecture": c.architecture,
                "reuse_factor": c.reuse_factor, "layer_reuse": dict(c.layer_reuse)}


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread for the duration. Conversion traces one sample through small
    layers: a second thread buys nothing, and on a loaded machine waiting for it made a call
    take 90 ms instead of 6 (``benchmarks/hardware_seam.py``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def without_hooks(net: nn.Module) -> None:
    """Drop the forward hooks a deep copy inherited: the copy's conversion pass must not feed
    the original's hooks (an :class:`~toolchain.pruning.ActivationRecorder` gathering importance)."""
    for module in net.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()


def integer_names(net: QuantNet, integer_model: im.IntegerModel) -> dict[str, str]:
    """QuantNet MAC layer -> the name of its layer in ``integer_model`` (converted from ``net``).

    ``toolchain.convert`` fuses an activation that is the only reader of a layer (a QuantReLU,
    a clamp) into that layer, which then takes the activation's name. So the name is the
    first, along the chain of only readers starting at the layer itself, that the integer
    model holds as a MAC layer — whatever set of layers conversion fuses.
    """
    readers: dict[str, list[str]] = {name: [] for name in net.layers}
    for name, sources in net.layer_inputs.items():
        for s in sources:
            readers[s].append(name)
    macs = {layer.name for layer in integer_model.layers if isinstance(layer, im.MacLayer)}
    names = {}
    for name, _ in mac_layers(net):
        out = name
        while out not in macs and len(readers[out]) == 1:
            out = readers[out][0]
        if out not in macs:
            raise BudgetError(f"layer '{name}': no MAC layer of that name (or of a fused activation after it) "
                              "in the integer model")
        names[name] = out
    return names


def calibrated_copy(net: QuantNet, x: torch.Tensor) -> QuantNet:
    """A copy of ``net`` whose quantizers have seen ``x`` (one train-mode pass, no gradient):
    what a fresh, never-trained network needs before it has an integer model to estimate."""
    import copy

    probe = copy.deepcopy(net)
    without_hooks(probe)
    probe.train()
    with torch.no_grad():
        probe(x)
    return probe


class HardwareProbe:
    """QuantNet -> integer model -> estimate, for one :class:`HardwareTarget`.

    Cheap enough to call every few training steps (``benchmarks/hardware_seam.py``); what
    does not change between calls (the layer-name map of an architecture) is cached.
    """

    def __init__(self, target: HardwareTarget) -> None:
        self.target = target
        self._names: dict[tuple, dict[str, str]] = {}

    def integer_model(self, net: QuantNet) -> im.IntegerModel:
        """The integer model export-fpga builds from ``net``: masked channels removed, quantizers
        on (in a copy: ``net``, its quantizer switches and its masks are left as they are)."""
        with one_thread():
            removed = remove_channels(net)  # a copy, even when nothing is masked
            without_hooks(removed)
            set_quantization(removed, True)
            return to_integer_model(removed)

    def measure(self, net: QuantNet | None, layer_reuse: Mapping[str, int] | None = None,
                integer_model: im.IntegerModel | None = None) -> Measurement:
        """The estimate of ``net``'s design at the target (and ``layer_reuse``, if given);
        pass ``integer_model`` (then ``net`` may be None) to re-cost a model already converted."""
        model = integer_model if integer_model is not None else self.integer_model(net)
        config = self.target.hls_config(layer_reuse)
        return Measurement(model, config, estimate(model, config))

    def names(self, net: QuantNet, integer_model: im.IntegerModel) -> dict[str, str]:
        """:func:`integer_names`, cached per architecture (channel counts do not change names)."""
        key = tuple((n, tuple(net.layer_inputs[n]), type(m).__name__) for n, m in net.layers.items())
        if key not in self._names:
            self._names[key] = integer_names(net, integer_model)
        return self._names[key]

    def savings(self, measurement: Measurement, net: QuantNet, groups: Sequence[ChannelGroup],
                metric: str) -> dict[str, np.ndarray]:
        """``{group: (channels,) array}``: the estimated fall of ``metric`` if that original
        channel of ``net`` is removed (0 for a channel already masked), for the design
        ``measurement`` (of ``net``)."""
        per_layer = channel_costs(measurement.integer_model, measurement.config, metric)
        names = self.names(net, measurement.integer_model)
        result = {}
        for group in groups:
            kept = kept_channels(group.mask).numpy()
            total = np.zeros(group.channels)
            for producer in group.producers:
                costs = per_layer.get(names.get(producer, producer))
                if costs is None or len(costs) != len(kept):
                    raise BudgetError(f"channel group '{group.name}': no per-channel cost for producer "
                                      f"'{producer}' in the integer model (layers {sorted(per_layer)})")
                total[kept] += costs
            result[group.name] = total
        return result


def choose_reuse(probe: HardwareProbe, integer_model: im.IntegerModel,
                 area_limits: Mapping[str, float]) -> Measurement:
    """Per MAC layer, the lowest reuse factor of :data:`REUSE_CHOICES` that fits ``area_limits``.

    Every MAC layer at 1 when that fits. Otherwise start from the smallest design
    (:func:`least_area`) and lower, one step at a time, the factor of the layer whose step cuts
    most latency per unit of area it adds (area normalised by each limit), as long as the
    design stays within the limits. Layers without multipliers stay at 1 (a higher factor
    saves them no area, only adds cycles). Returns the chosen design's measurement (over the
    limits when even the smallest design is).
    """
    macs = [layer.name for layer in integer_model.layers if isinstance(layer, im.MacLayer)]
    at = _memo(probe, integer_model, macs)
    current = dict.fromkeys(macs, 1)
    if not at(current).excess(area_limits):
        return at(current)
    current = least_area(probe, integer_model, area_limits, at)
    if at(current).excess(area_limits):
        return at(current)
    while True:
        now = at(current)
        best, best_key = None, None
        for n in macs:
            index = REUSE_CHOICES.index(current[n])
            if index == 0:
                continue
            trial = dict(current, **{n: REUSE_CHOICES[index - 1]})
            m = at(trial)
            if m.excess(area_limits):
                continue
            gain = now.totals["latency_cycles"] - m.totals["latency_cycles"]
            added = _area(m, area_limits) - _area(now, area_limits)
            key = (math.inf if added <= 0 else gain / added, gain)
            if best_key is None or key > best_key:
                best, best_key = trial, key
        if best is None:
            return now
        current = best


def least_area(probe: HardwareProbe, integer_model: im.IntegerModel, area_limits: Mapping[str, float],
               at=None) -> dict[str, int]:
    """Per MAC layer, the reuse factor of :data:`REUSE_CHOICES` giving the least area (normalised
    by ``area_limits``; ties: the lower factor), one layer at a time from every layer at 1.

    Area is not monotone in the factor: fewer multipliers, but wider operand multiplexers
    (the estimator charges ``ceil(R / 4)`` LUTs per operand bit), so the smallest design need
    not be the most folded one."""
    macs = [layer.name for layer in integer_model.layers if isinstance(layer, im.MacLayer)]
    at = at or _memo(probe, integer_model, macs)
    current = dict.fromkeys(macs, 1)
    for n in macs:
        current[n] = min(REUSE_CHOICES, key=lambda r: (_area(at(dict(current, **{n: r})), area_limits), r))
    return current


def _area(m: Measurement, area_limits: Mapping[str, float]) -> float:
    limits = area_limits or {"lut": 1.0}
    return sum(m.totals[k] / max(v, 1) for k, v in limits.items())


def _memo(probe: HardwareProbe, integer_model: im.IntegerModel, macs: list[str]):
    """``reuse dict -> Measurement`` of ``integer_model``, each design estimated once."""
    seen: dict[tuple, Measurement] = {}

    def at(reuse: dict[str, int]) -> Measurement:
        key = tuple(reuse[n] for n in macs)
        if key not in seen:
            seen[key] = probe.measure(None, reuse, integer_model)
        return seen[key]

    return at


def smallest(net: QuantNet, round_to: int = 1) -> QuantNet:
    """A copy of ``net`` with every prunable group cut to its fewest legal channels
    (``min(round_to, C)``, the lowest indices): the cheapest network pruning can reach."""
    import copy

    small = copy.deepcopy(net)
    for group in channel_groups(small):
        if group.prunable:
            keep = torch.zeros(group.channels)
            keep[:max(1, min(round_to, group.channels))] = 1.0
            group.set_mask(keep)
    return small


__all__ = ["AREA", "BudgetError", "HardwareProbe", "HardwareTarget", "LIMITS", "Measurement", "REUSE_CHOICES",
           "calibrated_copy", "choose_reuse", "integer_names", "least_area", "smallest"]
