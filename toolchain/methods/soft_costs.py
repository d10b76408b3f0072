"""Differentiable compute cost of a gated QuantNet: DJPQ's soft pruning ratios and BOPs (eqs. 14–19).

Wang, Lu and Blankevoort (DJPQ), section 3.3–3.4. For each MAC layer ``l``:

* soft keep of channel ``i`` of a gated group: ``1 - sigmoid((alpha_th - alpha_i) / tau)``, the
  complement of eq. 19's relaxed pruning indicator — as printed, eq. 19 relaxes
  ``1{alpha > alpha_th}`` (its sign is flipped against eq. 18, ``1{alpha < alpha_th}``); here it
  relaxes eq. 18, so the soft ratio ``p_l`` goes to the hard one as ``tau -> 0``;
* ``MACs_l`` (eq. 15), per channel rather than per layer: output positions times the sum over
  the layer's weights of ``keep_out[o] * keep_in[i]`` — for a plain convolution exactly
  ``(1 - p_{l-1}) c_{l-1} (1 - p_l) c_l m_w m_h k_w k_h``, and it also holds for a Linear after a
  flatten (each channel owns ``H*W`` columns), depthwise convolutions (one factor: the filter *is*
  the channel) and concatenations (which input channel a weight reads is the layer's
  ``input_mask_view``, the same map :mod:`toolchain.methods.costs` counts hard MACs with);
* ``BOPs_l = MACs_l b_{w,l} b_{a,l-1}`` (eq. 16), the widths from eqs. 3–4 (``soft_bits`` of a
  learned quantizer; a fixed one's width is a constant); ``b_{a,l-1}`` is the width of the
  quantizer that wrote the layer's input (through pooling, flatten and ReLU, which keep it).

:meth:`SoftCost.total` is eq. 17's ``sum_l w_l BOPs_l``: ``w_l = 1`` for BOPs, or — the FPGA
variant — :func:`estimate_weights`: the estimated metric of layer ``l``'s design (LUT, DSP, FF,
cycles; :mod:`hls_templates.estimate`) divided by its hard BOPs, a first-order model in which a
layer's estimated cost follows its bit operations, refreshed from a new estimate as training goes.

>>> from toolchain.models import build
>>> from toolchain.nn.gate import ChannelGate
>>> net = build("mlp", input_shape=(4,), hidden=(3,), weight_bits=4, act_bits=6)
>>> net.layers["fc1"].gate = gate = ChannelGate(3)
>>> cost = SoftCost(net, {"fc1": gate}, alpha_threshold=1e-3, tau=1e-3)
>>> round(float(cost.total().detach()))                                 # 12 * 4 * 8 + 30 * 4 * 6
1104
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from exporters.layers import positions
from toolchain.methods.costs import float_trace, layer_costs
from toolchain.methods.hardware import HardwareProbe
from toolchain.nn import mac_layers
from toolchain.nn.bits import layer_quantizers
from toolchain.nn.gate import ChannelGate
from toolchain.nn.net import QuantNet
from toolchain.pruning import channel_groups

#: What the FPGA variant may weight layers by: per-layer entries of the estimate.
ESTIMATE_METRICS = ("lut", "dsp", "ff", "latency_cycles")


def width(quantizer) -> torch.Tensor:
    """A quantizer's width as a tensor: eqs. 3–4 for a learned one, the fixed width otherwise."""
    soft = getattr(quantizer, "soft_bits", None)
    return soft() if soft is not None else torch.tensor(float(quantizer.bits))


def input_quantizer(net: QuantNet, name: str):
    """The quantizer that wrote layer ``name``'s (first) input: up through layers without one."""
    source = net.layer_inputs[name][0]
    while "act" not in layer_quantizers(net.layers[source]):
        source = net.layer_inputs[source][0]
    return layer_quantizers(net.layers[source])["act"]


@dataclass
class _Reads:
    """A gated group a layer consumes: its channel ``c`` is input columns ``offset + c*repeat + r``."""

    gate: ChannelGate
    repeat: int
    offset: int


class SoftCost:
    """Soft pruning ratios and BOPs of ``net`` whose prunable groups carry ``gates`` (by group name)."""

    def __init__(self, net: QuantNet, gates: Mapping[str, ChannelGate], alpha_threshold: float, tau: float) -> None:
        self.net, self.gates = net, dict(gates)
        self.alpha_threshold, self.tau = alpha_threshold, tau
        groups = channel_groups(net, include_fixed=True)
        outs = float_trace(net)
        self.positions, self.out_gate, self.reads = {}, {}, {}
        for name, _ in mac_layers(net):
            self.positions[name] = positions(tuple(outs[name].value.shape[1:]))
            self.out_gate[name] = next((self.gates[g.name] for g in groups
                                        if name in g.producers and g.name in self.gates), None)
            self.reads[name] = [_Reads(self.gates[g.name], repeat, offset) for g in groups if g.name in self.gates
                                for layer, repeat, offset in g.consumers if layer == name]

    def keep(self, gate: ChannelGate) -> torch.Tensor:
        """Soft keep per channel, ``1 - sigmoid((alpha_th - alpha) / tau)`` (eq. 19, see above)."""
        return 1.0 - torch.sigmoid((self.alpha_threshold - gate.alpha()) / self.tau)

    def pruning_ratios(self) -> dict[str, torch.Tensor]:
        """Eq. 19's ``p`` per gated group."""
        return {name: 1.0 - self.keep(gate).mean() for name, gate in self.gates.items()}

    def _keep_in(self, layer, reads: list[_Reads]) -> torch.Tensor:
        keep = torch.ones(getattr(layer, "in_channels", None) or layer.in_features)
        for read in reads:
            k = self.keep(read.gate)
            index = read.offset + torch.arange(k.numel())[:, None] * read.repeat + torch.arange(read.repeat)
            keep = keep.index_put((index.reshape(-1),), k[:, None].expand(-1, read.repeat).reshape(-1))
        return keep

    def macs(self, name: str) -> torch.Tensor:
        """Eq. 15 for layer ``name``, per channel (see the module docstring)."""
        layer = self.net.layers[name]
        alive = torch.ones_like(layer.weight)
        gate = self.out_gate[name]
        if gate is not None:
            alive = alive * self.keep(gate).reshape(-1, *([1] * (alive.dim() - 1)))
        if self.reads[name]:
            alive = alive * layer.input_mask_view(self._keep_in(layer, self.reads[name]))
        return alive.sum() * self.positions[name]

    def layer_bops(self) -> dict[str, torch.Tensor]:
        """Eq. 16 per MAC layer."""
        return {name: self.macs(name) * width(layer.weight_quant) * width(input_quantizer(self.net, name))
                for name, layer in mac_layers(self.net)}

    def total(self, weights: Mapping[str, float] | None = None) -> torch.Tensor:
        """Eq. 17's sum, each layer's BOPs times ``weights[layer]`` (1 when not given)."""
        return sum((bops * (1.0 if weights is None else weights[name]) for name, bops in self.layer_bops().items()),
                   torch.zeros(()))


def estimate_weights(net: QuantNet, probe: HardwareProbe, metric: str) -> dict[str, float]:
    """Per MAC layer: the estimated ``metric`` of its design divided by its hard BOPs (the
    integer widths and alive channels now), so ``sum_l w_l BOPs_l`` is the estimated total."""
    measurement = probe.measure(net)
    names = probe.names(net, measurement.integer_model)
    weights = {}
    for cost in layer_costs(net):
        value = float(measurement.estimate.layer(names[cost.name])[metric])
        weights[cost.name] = value / cost.bops if cost.bops else 0.0
    return weights


__all__ = ["ESTIMATE_METRICS", "SoftCost", "estimate_weights", "input_quantizer", "width"]
