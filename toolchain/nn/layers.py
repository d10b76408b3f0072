"""The quantized layers without weights: input, ReLU and clamps, residual add, pooling, flatten,
elementwise activations.

Each takes and returns a :class:`toolchain.quant.QuantTensor`, so the scale, zero point,
bit width and alive-channel mask travel with the values. Pass-through layers (MaxPool2d,
Flatten, QuantReLU, QuantClamp, Upsample) keep the input's grid; requantizing layers (AvgPool2d,
GlobalAvgPool, QuantAdd, QuantConcat, QuantActivation) own an output quantizer, as the contract's layers do.

>>> x = QuantInput(bits=8)(torch.tensor([[0.5, -1.0, 0.25]]))
>>> x.int_repr().tolist(), float(x.scale) == float(torch.tensor(1 / 127))   # float32 scale
([[64, -127, 32]], True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from exporters.layers.upsample import integer_factors
from toolchain.nn.functions import clamp_arg, describe, evaluate, resolve
from toolchain.nn.mac import _pair, output_quantizer
from toolchain.quant import BitsOf, QuantTensor, SymQuant


class QuantInput(nn.Module):
    """Network input: signed narrow symmetric grid, zero point 0, rounding half to even.

    ``q = clamp(torch.round(x / s), -(2^(b-1)-1), 2^(b-1)-1)`` in float32 with a float32
    scale — exactly what ONNX QuantizeLinear + Clip compute on the host.
    """

    bits = BitsOf("quant")  #: the input grid's width: its quantizer's part (``toolchain.nn.set_bits``)

    def __init__(self, bits: int = 8, momentum: float | None = 0.1, power_of_two: bool = False) -> None:
        super().__init__()
        self.momentum, self.power_of_two = momentum, bool(power_of_two)
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


class _Joining(nn.Module):
    """A layer joining several quantized tensors onto its own grid (QuantAdd, QuantConcat): its
    activation quantizer, with a fused ReLU and a fused clamp as on the MAC layers."""

    act_bits = BitsOf("out_quant")

    def __init__(self, act_bits: int = 8, relu: bool = False, signed_output: bool = False,
                 momentum: float | None = 0.1, power_of_two: bool = False, clamp=None) -> None:
        super().__init__()
        self.relu, self.signed_output, self.momentum = bool(relu), bool(signed_output), momentum
        self.power_of_two = bool(power_of_two)
        self.clamp = clamp_arg(clamp)  # a fused ReLU6 / hardtanh, as on the MAC layers
        self.out_quant = output_quantizer(act_bits, signed_output, momentum, power_of_two)

    def requantize(self, y: torch.Tensor) -> QuantTensor:
        if self.clamp is not None:
            y = y.clamp(*self.clamp)
        return self.out_quant(y, relu=self.relu)

    def config(self) -> dict:
        return dict(act_bits=self.act_bits, relu=self.relu, signed_output=self.signed_output, momentum=self.momentum,
                    power_of_two=self.power_of_two, clamp=None if self.clamp is None else list(self.clamp))


class QuantAdd(_Joining):
    """Residual add of two quantized tensors, re-quantized by its own activation quantizer."""

    def forward(self, a: QuantTensor, b: QuantTensor) -> QuantTensor:
        out = self.requantize(a.value + b.value)
        out.channel_mask = _union(a.channel_mask, b.channel_mask)
        return out


def _union(m1, m2):
    if m1 is None or m2 is None:
        return None
    return m1 | m2


class MaxPool2d(nn.Module):
    """Max pooling on the grid (monotone, so integers and metadata pass through; padding never wins);
    ``ceil_mode`` as torch's. :class:`toolchain.nn.one_d.MaxPool1d` is the same over ``(N, C, L)``."""

    pool = staticmethod(F.max_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride) if stride is not None else self.kernel_size
        self.padding = _pair(padding)
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x: QuantTensor) -> QuantTensor:
        y = self.pool(x.value, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode)
        return x.with_value(y, x.channel_mask)

    def config(self) -> dict:
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride), padding=list(self.padding),
                    ceil_mode=self.ceil_mode)


class AvgPool2d(nn.Module):
    """Average pooling with its own output quantizer; ``ceil_mode`` and ``count_include_pad`` as torch's
    (an edge window divides by the taps it counts: docs/integer-contract.md, "AvgPool's divisor").
    :class:`toolchain.nn.one_d.AvgPool1d` is the same over ``(N, C, L)``."""

    act_bits = BitsOf("out_quant")
    pool = staticmethod(F.avg_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, act_bits: int = 8, momentum: float | None = 0.1,
                 power_of_two: bool = False, ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride) if stride is not None else self.kernel_size
        self.padding = _pair(padding)
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        self.momentum, self.power_of_two = momentum, bool(power_of_two)
        self.out_quant = output_quantizer(act_bits, False, momentum, power_of_two)

    def forward(self, x: QuantTensor) -> QuantTensor:
        y = self.pool(x.value, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
                      count_include_pad=self.count_include_pad)
        out = self.out_quant(y)
        out.channel_mask = x.channel_mask
        return out

    def config(self) -> dict:
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride), padding=list(self.padding),
                    act_bits=self.act_bits, momentum=self.momentum, power_of_two=self.power_of_two,
                    ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad)


class GlobalAvgPool(nn.Module):
    """Mean over the whole plane, (N, C, H, W) or (N, C, L) -> (N, C), with its own output quantizer
    (``signed_output=True``: the network's output, as a global pool ending a network is)."""

    act_bits = BitsOf("out_quant")

    def __init__(self, act_bits: int = 8, momentum: float | None = 0.1, power_of_two: bool = False,
                 signed_output: bool = False) -> None:
        super().__init__()
        self.momentum, self.power_of_two, self.signed_output = momentum, bool(power_of_two), bool(signed_output)
        self.out_quant = output_quantizer(act_bits, self.signed_output, momentum, power_of_two)

    def forward(self, x: QuantTensor) -> QuantTensor:
        out = self.out_quant(x.value.mean(dim=tuple(range(2, x.value.dim()))))
        out.channel_mask = x.channel_mask
        return out

    def config(self) -> dict:
        return dict(act_bits=self.act_bits, momentum=self.momentum, power_of_two=self.power_of_two,
                    signed_output=self.signed_output)


class Flatten(nn.Module):
    """(N, C, H, W) -> (N, C*H*W) (or (N, C, L) -> (N, C*L)), C-major; a channel's mask repeats over its
    H*W (L) positions."""

    def forward(self, x: QuantTensor) -> QuantTensor:
        mask = x.channel_mask
        if mask is not None and x.value.dim() > 2:
            mask = mask.repeat_interleave(x.value[0, 0].numel())
        return x.with_value(x.value.flatten(1), mask)

    def config(self) -> dict:
        return {}


class QuantClamp(nn.Module):
    """ReLU6 (``QuantClamp(0, 6)``) or hardtanh on a quantized tensor, exact on its grid:
    ``q -> clamp(q, Q(a), Q(b))`` (``Grid.clamp_bounds``; a bound None is open). Conversion fuses
    it into the requantization of the layer before it, like QuantReLU (prefer ``clamp=(a, b)``
    on that layer: then its output statistics are taken after the clamp)."""

    def __init__(self, min_val: float | None = None, max_val: float | None = None) -> None:
        super().__init__()
        self.min_val, self.max_val = clamp_arg((min_val, max_val))

    def bounds(self, x: QuantTensor) -> tuple[int, int]:
        """The integer bounds on ``x``'s grid."""
        return x.grid().clamp_bounds(self.min_val, self.max_val)

    def forward(self, x: QuantTensor) -> QuantTensor:
        if not x.quantized:
            return x.with_value(x.value.clamp(self.min_val, self.max_val), x.channel_mask)
        lo, hi = self.bounds(x)
        z, s = x.zero_point, x.scale.detach()
        # (q - z) * s in float32: the very values the quantizer that wrote x produces for q
        return x.with_value(x.value.clamp((lo - z) * s, (hi - z) * s), x.channel_mask)

    def config(self) -> dict:
        return dict(min_val=self.min_val, max_val=self.max_val)


class QuantActivation(nn.Module):
    """An elementwise function by name (``toolchain.nn.functions.ACTIVATIONS``: sigmoid, tanh,
    hardswish, gelu, elu, leaky_relu, ...) with its own output quantizer: fake-quant
    ``out_quant(f(x))``; conversion makes it a Lookup table over the input grid, which the
    fake-quant forward may differ from by one step near rounding ties (docs/integer-contract.md).
    ``params`` are the function's (``{"negative_slope": 0.1}``), plain data like the name."""

    act_bits = BitsOf("out_quant")

    def __init__(self, function: str, params: dict | None = None, act_bits: int = 8, signed_output: bool = False,
                 momentum: float | None = 0.1, power_of_two: bool = False) -> None:
        super().__init__()
        self.function, self.params = str(function), resolve(function, params)
        self.signed_output, self.momentum = bool(signed_output), momentum
        self.power_of_two = bool(power_of_two)
        self.out_quant = output_quantizer(act_bits, signed_output, momentum, power_of_two)

    def forward(self, x: QuantTensor) -> QuantTensor:
        out = self.out_quant(evaluate(self.function, self.params, x.value))
        out.channel_mask = x.channel_mask
        return out

    def describe(self) -> str:
        return describe(self.function, self.params)

    def config(self) -> dict:
        return dict(function=self.function, params=dict(self.params), act_bits=self.act_bits,
                    signed_output=self.signed_output, momentum=self.momentum, power_of_two=self.power_of_two)

    def extra_repr(self) -> str:
        return f"{self.describe()}, act_bits={self.act_bits}"


class QuantConcat(_Joining):
    """Concatenation along channels (dim 1) of two or more quantized tensors, re-quantized by its
    own activation quantizer: each input onto that grid (the contract's Concat). The alive-channel
    masks are concatenated too, so a consumer's weights on a pruned input channel count for nothing."""

    def forward(self, *xs: QuantTensor) -> QuantTensor:
        out = self.requantize(torch.cat([x.value for x in xs], dim=1))
        if any(x.channel_mask is not None for x in xs):
            out.channel_mask = torch.cat([x.value.new_ones(x.value.shape[1]) if x.channel_mask is None
                                          else x.channel_mask for x in xs])
        return out


class Upsample(nn.Module):
    """Nearest-neighbour upsampling by integer factors (``scale_factor=2`` or ``(f_h, f_w)``): each
    value repeated, so the integers and the grid pass through exactly (``nearest`` and
    ``nearest-exact`` agree for integer factors)."""

    def __init__(self, scale_factor=2) -> None:
        super().__init__()
        self.scale_factor = integer_factors(scale_factor, "Upsample")

    def forward(self, x: QuantTensor) -> QuantTensor:
        fh, fw = self.scale_factor
        return x.with_value(x.value.repeat_interleave(fh, dim=2).repeat_interleave(fw, dim=3), x.channel_mask)

    def config(self) -> dict:
        return dict(scale_factor=list(self.scale_factor))
