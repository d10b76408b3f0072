"""Compute cost of a QuantNet: multiply-accumulates (MACs) and bit operations (BOPs).

For each MAC layer (QuantConv2d, QuantLinear):

* ``macs`` = output positions (``H_out * W_out``; 1 for a Linear) x weights that take
  part in the computation — weights of alive output channels reading alive input
  channels (channel masks count; ``weight_mask`` zeros do **not**: a dense engine still
  multiplies by them);
* ``nonzero_macs`` = the same, counting only weights that are not masked by
  ``weight_mask`` (what a zero-skipping engine would do);
* ``bops = macs * weight_bits * act_bits``, where ``act_bits`` is the bit width of the
  layer's **input** activation (the other multiplicand).

The formulas are the integer model's (``exporters.layers``: ``mac_count``,
``bit_operations``), counted here on the QuantNet mid-training. BOPs of the network = the
sum over its MAC layers (the measure of Wang, Lu and Blankevoort's DJPQ; pooling and
additions are not counted). Shapes come from one forward of a copy of the model in
eval mode with quantizers bypassed, so an uncalibrated model can be measured.

>>> from toolchain.models import build
>>> net = build("mlp", input_shape=(4,), hidden=(3,), weight_bits=4, act_bits=6, input_bits=8)
>>> [(c.name, c.macs, c.weight_bits, c.act_bits) for c in layer_costs(net)]
[('fc1', 12, 4, 8), ('head', 30, 4, 6)]
>>> bops(net) == 12 * 4 * 8 + 30 * 4 * 6
True
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from exporters.layers import bit_operations, mac_count, positions
from toolchain.nn import mac_layers, set_quantization
from toolchain.nn.net import QuantNet


@dataclass(frozen=True)
class LayerCost:
    name: str
    macs: int
    nonzero_macs: int
    weight_bits: int
    act_bits: int

    @property
    def bops(self) -> int:
        return bit_operations(self.macs, self.weight_bits, self.act_bits)

    @property
    def nonzero_bops(self) -> int:
        return bit_operations(self.nonzero_macs, self.weight_bits, self.act_bits)


def _structure(layer, in_mask: torch.Tensor | None) -> torch.Tensor:
    """0/1 tensor shaped like the weight: 1 where output and input channel are alive (which
    input channel a weight reads is the layer's own ``input_mask_view``, grouped convs included)."""
    w = torch.ones_like(layer.weight)
    out_alive = (layer.channel_mask != 0).to(w.dtype).reshape(-1, *([1] * (w.dim() - 1)))
    w = w * out_alive
    return w if in_mask is None else w * layer.input_mask_view(in_mask)


@torch.no_grad()
def float_trace(model: QuantNet) -> dict:
    """Every layer's output for one zero sample, from a copy of ``model`` in eval mode with its
    quantizers bypassed (shapes and alive-channel masks; works on an uncalibrated model)."""
    probe = copy.deepcopy(model)
    probe.eval()
    set_quantization(probe, False)
    return probe.trace(torch.zeros(1, *model.input_shape))


@torch.no_grad()
def layer_costs(model: QuantNet) -> list[LayerCost]:
    """Per-MAC-layer cost of ``model`` (see the module docstring)."""
    outs = float_trace(model)
    costs = []
    for name, layer in mac_layers(model):
        src = outs[model.layer_inputs[name][0]]
        out = outs[name].value
        at = positions(tuple(out.shape[1:]))
        structure = _structure(layer, src.channel_mask)
        costs.append(LayerCost(
            name=name,
            macs=mac_count(at, int(structure.sum())),
            nonzero_macs=mac_count(at, int((structure * (layer.weight_mask != 0)).sum())),
            weight_bits=int(layer.weight_bits),
            act_bits=int(src.bits),
        ))
    return costs


def bops(model: QuantNet, nonzero: bool = False) -> int:
    """Network BOPs: the sum of ``macs * weight_bits * act_bits`` over MAC layers."""
    return sum(c.nonzero_bops if nonzero else c.bops for c in layer_costs(model))


def macs(model: QuantNet, nonzero: bool = False) -> int:
    """Network multiply-accumulates per sample."""
    return sum(c.nonzero_macs if nonzero else c.macs for c in layer_costs(model))
