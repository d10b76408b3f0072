"""The quantized layers without weights: input, ReLU, residual add, pooling, flatten.

Each takes and returns a :class:`toolchain.quant.QuantTensor`, so the scale, zero point,
bit width and alive-channel mask travel with the values. Pass-through layers (MaxPool2d,
Flatten, QuantReLU) keep the input's grid; requantizing layers (AvgPool2d,
GlobalAvgPool, QuantAdd) own an output quantizer, as the contract's layers do.

>>> x = QuantInput(bits=8)(torch.tensor([[0.5, -1.0, 0.25]]))
>>> x.int_repr().tolist(), float(x.scale) == float(torch.tensor(1 / 127))   # float32 scale
([[64, -127, 32]], True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from toolchain.nn.mac import _pair, output_quantizer
from toolchain.quant import QuantTensor, SymQuant


class QuantInput(nn.Module):
    """Network input: signed narrow symmetric grid, zero point 0, rounding half to even.

    ``q = clamp(torch.round(x / s), -(2^(b-1)-1), 2^(b-1)-1)`` in float32 with a float32
    scale — exactly what ONNX QuantizeLinear + Clip compute on the host.
    """

    def __init__(self, bits: int = 8, momentum: float | None = 0.1, power_of_two: bool = False) -> None:
        super().__init__()
        self.bits, self.momentum, self.power_of_two = bits, momentum, bool(power_of_two)
        self.quant = SymQuant(bits, momentum, rounding="half_even", power_of_two=power_of_two)

    def forward(self, x: torch.Tensor) -> QuantTensor:
        return self.quant(x.to(torch.float32))

    def config(self) -> dict:
        return dict(bits=self.bits, momentum=self.momentum, power_of_two=self.power_of_two)


class QuantReLU(nn.Module):
    """ReLU on a quantized tensor: ``q -> max(q, z)``, exact. Conversion fuses it into the
    requantization of the layer before it (prefer ``relu=True`` on that layer: then the
    output quantizer's statistics are taken after the ReLU and no grid range is wasted)."""

    def forward(self, x: QuantTensor) -> QuantTensor:
        return x.with_value(F.relu(x.value), x.channel_mask)

    def config(self) -> dict:
        return {}


class QuantAdd(nn.Module):
    """Residual add of two quantized tensors, re-quantized by its own activation quantizer."""

    def __init__(self, act_bits: int = 8, relu: bool = False, signed_output: bool = False,
                 momentum: float | None = 0.1, power_of_two: bool = False) -> None:
        super().__init__()
        self.act_bits, self.relu, self.signed_output, self.momentum = act_bits, bool(relu), bool(signed_output), momentum
        self.power_of_two = bool(power_of_two)
        self.out_quant = output_quantizer(act_bits, signed_output, momentum, power_of_two)

    def forward(self, a: QuantTensor, b: QuantTensor) -> QuantTensor:
        y = a.value + b.value
        out = self.out_quant(F.relu(y) if self.relu else y)
        out.channel_mask = _union(a.channel_mask, b.channel_mask)
        return out

    def config(self) -> dict:
        return dict(act_bits=self.act_bits, relu=self.relu, signed_output=self.signed_output, momentum=self.momentum,
                    power_of_two=self.power_of_two)


def _union(m1, m2):
    if m1 is None or m2 is None:
        return None
    return m1 | m2


class MaxPool2d(nn.Module):
    """Max pooling on the grid (monotone, so integers and metadata pass through; padding ignored)."""

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride) if stride is not None else self.kernel_size
        self.padding = _pair(padding)

    def forward(self, x: QuantTensor) -> QuantTensor:
        return x.with_value(F.max_pool2d(x.value, self.kernel_size, self.stride, self.padding), x.channel_mask)

    def config(self) -> dict:
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride), padding=list(self.padding))


class AvgPool2d(nn.Module):
    """Average pooling (padded taps are real zero: count_include_pad) with its own output quantizer."""

    def __init__(self, kernel_size, stride=None, padding=0, act_bits: int = 8, momentum: float | None = 0.1,
                 power_of_two: bool = False) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride) if stride is not None else self.kernel_size
        self.padding = _pair(padding)
        self.act_bits, self.momentum, self.power_of_two = act_bits, momentum, bool(power_of_two)
        self.out_quant = output_quantizer(act_bits, False, momentum, power_of_two)

    def forward(self, x: QuantTensor) -> QuantTensor:
        y = F.avg_pool2d(x.value, self.kernel_size, self.stride, self.padding, count_include_pad=True)
        out = self.out_quant(y)
        out.channel_mask = x.channel_mask
        return out

    def config(self) -> dict:
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride), padding=list(self.padding),
                    act_bits=self.act_bits, momentum=self.momentum, power_of_two=self.power_of_two)


class GlobalAvgPool(nn.Module):
    """Mean over the whole plane, (N, C, H, W) -> (N, C), with its own output quantizer."""

    def __init__(self, act_bits: int = 8, momentum: float | None = 0.1, power_of_two: bool = False) -> None:
        super().__init__()
        self.act_bits, self.momentum, self.power_of_two = act_bits, momentum, bool(power_of_two)
        self.out_quant = output_quantizer(act_bits, False, momentum, power_of_two)

    def forward(self, x: QuantTensor) -> QuantTensor:
        out = self.out_quant(x.value.mean(dim=(2, 3)))
        out.channel_mask = x.channel_mask
        return out

    def config(self) -> dict:
        return dict(act_bits=self.act_bits, momentum=self.momentum, power_of_two=self.power_of_two)


class Flatten(nn.Module):
    """(N, C, H, W) -> (N, C*H*W), C-major; a channel's mask repeats over its H*W positions."""

    def forward(self, x: QuantTensor) -> QuantTensor:
        mask = x.channel_mask
        if mask is not None and x.value.dim() > 2:
            mask = mask.repeat_interleave(x.value[0, 0].numel())
        return x.with_value(x.value.flatten(1), mask)

    def config(self) -> dict:
        return {}
