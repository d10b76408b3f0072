"""Quantized multiply-accumulate layers: :class:`QuantConv2d` and :class:`QuantLinear`.

Forward (fake quantization, float): ``y = out_quant(act(conv(x, Q(w_f)) + Qb(b_f)))`` where

* ``w_f, b_f`` are the **folded** weight and bias (:meth:`_QuantMac.folded`):
  ``w_m = w * weight_mask * channel_mask * in_mask`` (``in_mask`` = the input tensor's
  alive channels, so weights reading a pruned channel count for nothing, not even in the
  scale), then batch norm folds in: ``w_f = w_m * g``, ``b_f = ((b - mu) * g + beta) *
  channel_mask`` with ``g = gamma / sqrt(var + eps)``. In training ``mu, var`` are the
  batch statistics of ``conv(x, w_m) + b`` (gradients flow through them, as in batch
  norm; the running statistics are updated as ``nn.BatchNorm`` does); in eval they are
  the running statistics. So BN stays a separate module during training and is folded
  before quantization, and conversion folds it exactly the way eval does.
* ``Q`` is the per-channel symmetric weight quantizer, ``Qb`` the int32 bias on the grid
  ``s_x * s_w[c]`` (:func:`toolchain.quant.quant_bias`).
* a masked channel has weight and bias exactly 0, so its accumulator is 0 and its output
  is the zero point (real zero): any consumer can drop it without changing an integer.

``quantized_weight`` / ``quantized_bias`` are what both the forward and
:func:`toolchain.convert.to_integer_model` call, so training and export share one code path.

>>> layer = QuantLinear(3, 2, weight_bits=4)
>>> layer.channel_mask[1] = 0
>>> w, s = layer.quantized_weight()
>>> w[1].tolist()
[0, 0, 0]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from exporters.grid import check_bits
from toolchain.quant import ActQuant, QuantTensor, SymQuant, WeightQuant, quant_bias


def output_quantizer(act_bits: int, signed_output: bool, momentum: float | None,
                     power_of_two: bool = False) -> nn.Module:
    """Hidden outputs: unsigned asymmetric; the network's output: signed symmetric narrow."""
    if signed_output:
        return SymQuant(act_bits, momentum, rounding="half_up", power_of_two=power_of_two)
    return ActQuant(act_bits, momentum, power_of_two=power_of_two)


class _QuantMac(nn.Module):
    """Shared weight/bias/mask/BN handling of the multiply-accumulate layers."""

    weight: torch.Tensor
    channel_mask: torch.Tensor
    weight_mask: torch.Tensor

    def _setup(self, weight_shape, bias: bool, bn: bool, relu: bool, weight_bits: int, act_bits: int,
               signed_output: bool, momentum: float | None, power_of_two: bool) -> None:
        check_bits(weight_bits, f"{type(self).__name__} weight_bits")
        check_bits(act_bits, f"{type(self).__name__} act_bits")
        out = weight_shape[0]
        self.weight = nn.Parameter(torch.empty(weight_shape))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        fan_in = self.weight[0].numel()
        self.bias = nn.Parameter(torch.empty(out).uniform_(-fan_in ** -0.5, fan_in ** -0.5)) if bias else None
        self.bn = self._make_bn(out) if bn else None
        self.relu = bool(relu)
        self.weight_bits, self.act_bits = weight_bits, act_bits
        self.signed_output, self.momentum, self.power_of_two = bool(signed_output), momentum, bool(power_of_two)
        self.weight_quant = WeightQuant(weight_bits, power_of_two)
        self.out_quant = output_quantizer(act_bits, signed_output, momentum, power_of_two)
        self.register_buffer("channel_mask", torch.ones(out))
        self.register_buffer("weight_mask", torch.ones(weight_shape))

    # -- subclass hooks ----------------------------------------------------------
    def _make_bn(self, channels: int) -> nn.Module:
        raise NotImplementedError

    def _mac(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def input_mask_view(self, in_mask: torch.Tensor) -> torch.Tensor:
        """``in_mask`` shaped to multiply the weight tensor."""
        raise NotImplementedError

    # -- folding and quantization ---------------------------------------------------
    def _channel_view(self, v: torch.Tensor) -> torch.Tensor:
        return v.reshape(-1, *([1] * (self.weight.dim() - 1)))

    def masked_weight(self, in_mask: torch.Tensor | None = None) -> torch.Tensor:
        w = self.weight * self.weight_mask * self._channel_view(self.channel_mask)
        return w if in_mask is None else w * self.input_mask_view(in_mask)

    def folded(self, in_mask: torch.Tensor | None = None, x: torch.Tensor | None = None):
        """Folded float ``(w_f, b_f)``. ``x`` given and training: BN uses (and updates) batch statistics."""
        w = self.masked_weight(in_mask)
        b = self.bias if self.bias is not None else torch.zeros_like(self.channel_mask)
        if self.bn is not None:
            bn = self.bn
            if self.training and x is not None:
                y = self._mac(x, w) + self._bias_view(b)
                dims = [d for d in range(y.dim()) if d != 1]
                mean, var = y.mean(dims), y.var(dims, unbiased=False)
                self._update_running(mean, y.var(dims, unbiased=True) if y.numel() > y.shape[1] else var)
            else:
                mean, var = bn.running_mean, bn.running_var
            g = bn.weight / torch.sqrt(var + bn.eps)
            w = w * self._channel_view(g)
            b = (b - mean) * g + bn.bias
        return w, b * self.channel_mask

    def _update_running(self, mean: torch.Tensor, var: torch.Tensor) -> None:
        bn = self.bn
        with torch.no_grad():
            bn.num_batches_tracked += 1
            m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.mul_(1 - m).add_(m * mean.detach())
            bn.running_var.mul_(1 - m).add_(m * var.detach())

    def _bias_view(self, b: torch.Tensor) -> torch.Tensor:
        return b.reshape(1, -1, *([1] * (self.weight.dim() - 2)))

    def quantized_weight(self, in_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Export view (eval statistics): ``(int64 weights, float32 per-channel scale)``."""
        with torch.no_grad():
            w, _ = self.folded(in_mask)
            q = self.weight_quant(w)
            return q.int_repr(), q.scale

    def quantized_bias(self, x_scale: torch.Tensor, in_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Export view: the int32 bias ``round(b_f / (s_x s_w[c]))`` as int64."""
        with torch.no_grad():
            w, b = self.folded(in_mask)
            return quant_bias(b, x_scale, self.weight_quant(w).scale)[0]

    def forward(self, x: QuantTensor) -> QuantTensor:
        w, b = self.folded(x.channel_mask, x.value)
        if bool(self.weight_quant.enabled):
            wq = self.weight_quant(w)
            w = wq.value
            if x.quantized:
                b = quant_bias(b, x.scale, wq.scale)[1]
        y = self._mac(x.value, w) + self._bias_view(b)
        if self.relu:
            y = F.relu(y)
        out = self.out_quant(y)
        out.channel_mask = None if bool((self.channel_mask > 0).all()) else (self.channel_mask > 0)
        return out

    def _common_config(self) -> dict:
        return dict(bias=self.bias is not None, bn=self.bn is not None, relu=self.relu,
                    weight_bits=self.weight_bits, act_bits=self.act_bits, signed_output=self.signed_output,
                    momentum=self.momentum, power_of_two=self.power_of_two)


class QuantConv2d(_QuantMac):
    """2-D convolution (any groups, depthwise included; dilation 1) with folded BN and fused ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, groups: int = 1,
                 bias: bool = True, bn: bool = False, relu: bool = False, weight_bits: int = 8, act_bits: int = 8,
                 signed_output: bool = False, momentum: float | None = 0.1, power_of_two: bool = False) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels {in_channels} and out_channels {out_channels} must divide groups {groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding = _pair(stride), _pair(padding)
        self._setup((out_channels, in_channels // groups, *self.kernel_size), bias, bn, relu, weight_bits,
                    act_bits, signed_output, momentum, power_of_two)

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels == self.out_channels

    def _make_bn(self, channels):
        return nn.BatchNorm2d(channels)

    def _mac(self, x, w):
        return F.conv2d(x, w, None, self.stride, self.padding, 1, self.groups)

    def input_mask_view(self, in_mask):
        o, i_per_g = self.weight.shape[:2]
        g = self.groups
        m = in_mask.to(self.weight.dtype).reshape(g, 1, i_per_g).expand(g, o // g, i_per_g).reshape(o, i_per_g)
        return m[:, :, None, None]

    def config(self) -> dict:
        return dict(in_channels=self.in_channels, out_channels=self.out_channels, kernel_size=list(self.kernel_size),
                    stride=list(self.stride), padding=list(self.padding), groups=self.groups, **self._common_config())

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, groups={self.groups}, relu={self.relu}")


class QuantLinear(_QuantMac):
    """Fully connected layer with optional folded BatchNorm1d and fused ReLU."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bn: bool = False,
                 relu: bool = False, weight_bits: int = 8, act_bits: int = 8, signed_output: bool = False,
                 momentum: float | None = 0.1, power_of_two: bool = False) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._setup((out_features, in_features), bias, bn, relu, weight_bits, act_bits, signed_output, momentum,
                    power_of_two)

    def _make_bn(self, channels):
        return nn.BatchNorm1d(channels)

    def _mac(self, x, w):
        return F.linear(x, w)

    def input_mask_view(self, in_mask):
        return in_mask.to(self.weight.dtype).reshape(1, -1)

    def config(self) -> dict:
        return dict(in_features=self.in_features, out_features=self.out_features, **self._common_config())

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, relu={self.relu}"


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(a) for a in v)
