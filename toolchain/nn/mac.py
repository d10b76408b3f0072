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
  before quantization, and conversion folds it exactly the way eval does. The batch
  statistics come from one autograd node (:func:`toolchain.nn.batch_stats.batch_statistics`).
* ``Q`` is the per-channel symmetric weight quantizer, ``Qb`` the int32 bias on the grid
  ``s_x * s_w[c]`` (:func:`toolchain.quant.quant_bias`). ``weight_quant="learned"`` /
  ``act_quant="learned"`` put DJPQ's learned quantizers there (:mod:`toolchain.learned_quant`);
  ``weight_bits`` and ``act_bits`` are the quantizers' own widths (:class:`toolchain.quant.BitsOf`).
* ``gate`` (None unless a method attaches one, e.g. DJPQ's variational gates) is one more
  per-output-channel factor folded after batch norm: ``w_f * z``, ``b_f * z``, so the quantizer
  sees the gated weights and conversion exports them. It is a training-time part, not in the
  config: the method folds it into the weights and drops it before it returns.
* a masked channel has weight and bias exactly 0, so its accumulator is 0 and its output
  is the zero point (real zero): any consumer can drop it without changing an integer.
* ``act`` (ReLU) is fused into ``out_quant`` (``out_quant(y, relu=True)``), which quantizes
  ``relu(y)`` without materializing it; a clamp (``clamp=(0, 6)``: ReLU6, or hardtanh) clamps
  ``y`` first, so the statistics see the clamped values and conversion narrows the integer
  clamp to ``[Q(a), Q(b)]`` — the same integers (docs/integer-contract.md, "Clamp").

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

from exporters.errors import ModelError
from exporters.grid import check_bits
from toolchain.learned_quant import LearnedActQuant, LearnedWeightQuant
from toolchain.nn.batch_stats import batch_statistics
from toolchain.nn.functions import clamp_arg
from toolchain.quant import ActQuant, BitsOf, QuantTensor, SymQuant, WeightQuant, quant_bias

#: Quantizer families a MAC layer's config may name (``weight_quant=``, ``act_quant=``): the
#: min/max quantizers of :mod:`toolchain.quant`, or the learned ones of :mod:`toolchain.learned_quant`.
QUANTIZER_KINDS = ("minmax", "learned")


def _check_kind(kind: str, what: str, power_of_two: bool) -> None:
    if kind not in QUANTIZER_KINDS:
        raise ModelError(f"{what}: unknown quantizer {kind!r}; choose from {', '.join(QUANTIZER_KINDS)}")
    if kind == "learned" and power_of_two:
        raise ModelError(f"{what}: a learned quantizer's step is trained, it cannot be a power of two")


def weight_quantizer(bits: int, power_of_two: bool = False, kind: str = "minmax") -> nn.Module:
    """The weights' quantizer: per-channel min/max, or learned (per layer)."""
    _check_kind(kind, "weight_quant", power_of_two)
    return LearnedWeightQuant(bits) if kind == "learned" else WeightQuant(bits, power_of_two)


def output_quantizer(act_bits: int, signed_output: bool, momentum: float | None,
                     power_of_two: bool = False, kind: str = "minmax", relu: bool = True) -> nn.Module:
    """Hidden outputs: unsigned asymmetric; the network's output: signed symmetric narrow. A learned
    one (``kind="learned"``) only after a ReLU: its grid starts at real zero."""
    _check_kind(kind, "act_quant", power_of_two)
    if kind == "learned":
        if signed_output or not relu:
            raise ModelError("act_quant='learned' needs relu=True on a hidden layer (its grid starts at real "
                             "zero); the network output keeps its symmetric quantizer")
        return LearnedActQuant(act_bits)
    if signed_output:
        return SymQuant(act_bits, momentum, rounding="half_up", power_of_two=power_of_two)
    return ActQuant(act_bits, momentum, power_of_two=power_of_two)


class _QuantMac(nn.Module):
    """Shared weight/bias/mask/BN handling of the multiply-accumulate layers."""

    weight: torch.Tensor
    channel_mask: torch.Tensor
    weight_mask: torch.Tensor
    weight_bits = BitsOf("weight_quant")  #: the weight quantizer's width (``toolchain.nn.set_bits``)
    act_bits = BitsOf("out_quant")        #: the output quantizer's width

    def _setup(self, weight_shape, bias: bool, bn: bool, relu: bool, weight_bits: int, act_bits: int,
               signed_output: bool, momentum: float | None, power_of_two: bool, clamp=None,
               quantizers: tuple[str, str] = ("minmax", "minmax")) -> None:
        check_bits(weight_bits, f"{type(self).__name__} weight_bits")
        check_bits(act_bits, f"{type(self).__name__} act_bits")
        out = weight_shape[0]
        self.weight = nn.Parameter(torch.empty(weight_shape))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        fan_in = self.weight[0].numel()
        self.bias = nn.Parameter(torch.empty(out).uniform_(-fan_in ** -0.5, fan_in ** -0.5)) if bias else None
        self.bn = self._make_bn(out) if bn else None
        self.relu = bool(relu)
        self.clamp = clamp_arg(clamp)  # ReLU6 = (0, 6): clamps the output before its quantizer
        self.signed_output, self.momentum, self.power_of_two = bool(signed_output), momentum, bool(power_of_two)
        self.weight_quant = weight_quantizer(weight_bits, power_of_two, quantizers[0])
        self.out_quant = output_quantizer(act_bits, signed_output, momentum, power_of_two, quantizers[1], self.relu)
        self.gate: nn.Module | None = None  # a per-channel factor folded like batch norm (DJPQ's gates)
        self.register_buffer("channel_mask", torch.ones(out))
        self.register_buffer("weight_mask", torch.ones(weight_shape))

    # -- subclass hooks ----------------------------------------------------------
    def _make_bn(self, channels: int) -> nn.Module:
        raise NotImplementedError

    def _mac(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def input_mask_view(self, in_mask: torch.Tensor) -> torch.Tensor:
        """``in_mask`` (alive input channels) shaped to multiply the weight tensor: the
        QuantNet side's one home of which input channel each weight reads (grouped convs
        included; ``toolchain.methods.costs`` counts alive weights with it)."""
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
                y = self._mac(x, w)
                if self.bias is not None:
                    y = y.add_(self._bias_view(b))
                mean, var, var_unbiased = batch_statistics(y)
                self._update_running(mean, var_unbiased)
            else:
                mean, var = bn.running_mean, bn.running_var
            g = bn.weight / torch.sqrt(var + bn.eps)
            w = w * self._channel_view(g)
            b = (b - mean) * g + bn.bias
        if self.gate is not None:
            z = self.gate()
            w, b = w * self._channel_view(z), b * z
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
        y = self._mac(x.value, w).add_(self._bias_view(b))
        if self.clamp is not None:
            y = y.clamp(*self.clamp)
        out = self.out_quant(y, relu=self.relu)
        out.channel_mask = None if bool((self.channel_mask > 0).all()) else (self.channel_mask > 0)
        return out

    def _common_config(self) -> dict:
        return dict(bias=self.bias is not None, bn=self.bn is not None, relu=self.relu,
                    weight_bits=self.weight_bits, act_bits=self.act_bits, signed_output=self.signed_output,
                    momentum=self.momentum, power_of_two=self.power_of_two,
                    clamp=None if self.clamp is None else list(self.clamp),
                    weight_quant=self.weight_quant.kind, act_quant=self.out_quant.kind)


class QuantConv2d(_QuantMac):
    """2-D convolution (any groups, depthwise included; stride, padding, dilation) with folded BN and
    fused ReLU. :class:`toolchain.nn.one_d.QuantConv1d` is the same layer over ``(N, C, L)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, groups: int = 1,
                 bias: bool = True, bn: bool = False, relu: bool = False, weight_bits: int = 8, act_bits: int = 8,
                 signed_output: bool = False, momentum: float | None = 0.1, power_of_two: bool = False,
                 clamp=None, weight_quant: str = "minmax", act_quant: str = "minmax", dilation=1) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels {in_channels} and out_channels {out_channels} must divide groups {groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self._setup((out_channels, in_channels // groups, *self.kernel_size), bias, bn, relu, weight_bits,
                    act_bits, signed_output, momentum, power_of_two, clamp, (weight_quant, act_quant))

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels == self.out_channels

    def _make_bn(self, channels):
        return nn.BatchNorm2d(channels)

    def _mac(self, x, w):
        return F.conv2d(x, w, None, self.stride, self.padding, self.dilation, self.groups)

    def input_mask_view(self, in_mask):
        o, i_per_g = self.weight.shape[:2]
        g = self.groups
        m = in_mask.to(self.weight.dtype).reshape(g, 1, i_per_g).expand(g, o // g, i_per_g).reshape(o, i_per_g)
        return m.reshape(o, i_per_g, *([1] * (self.weight.dim() - 2)))

    def config(self) -> dict:
        return dict(in_channels=self.in_channels, out_channels=self.out_channels, kernel_size=list(self.kernel_size),
                    stride=list(self.stride), padding=list(self.padding), groups=self.groups,
                    dilation=list(self.dilation), **self._common_config())

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, relu={self.relu}")


class QuantLinear(_QuantMac):
    """Fully connected layer with optional folded BatchNorm1d and fused ReLU."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bn: bool = False,
                 relu: bool = False, weight_bits: int = 8, act_bits: int = 8, signed_output: bool = False,
                 momentum: float | None = 0.1, power_of_two: bool = False, clamp=None,
                 weight_quant: str = "minmax", act_quant: str = "minmax") -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._setup((out_features, in_features), bias, bn, relu, weight_bits, act_bits, signed_output, momentum,
                    power_of_two, clamp, (weight_quant, act_quant))

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
