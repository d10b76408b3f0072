"""The 1-D layers: :class:`QuantConv1d`, :class:`MaxPool1d`, :class:`AvgPool1d`, over ``(N, C, L)``
tensors (a time series: channels by samples).

Each is its 2-D counterpart with one spatial axis — the same folding, masks, quantizers and
conversion (the integer model's Conv, MaxPool and AvgPool take a ``(C, L)`` input: a window of one
row, docs/integer-contract.md, "Window geometry") — and speaks 1-D to the user: ``kernel_size=5``
is five samples, the weight is ``(O, I/groups, k)``, a batch norm is ``BatchNorm1d``, and the report
names them ``Conv1d``, ``MaxPool1d``, ``AvgPool1d``. The global pool and Flatten are shared
(``GlobalAvgPool`` averages over every axis after the channels).

>>> conv = QuantConv1d(2, 4, 5, dilation=2)
>>> tuple(conv.weight.shape), conv.kernel_size, conv.dilation
((4, 2, 5), (5,), (2,))
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from exporters.layers.window import spatial
from toolchain.nn.layers import AvgPool2d, MaxPool2d
from toolchain.nn.mac import QuantConv2d


def _one(v) -> tuple[int]:
    """A 1-D layer's kernel, stride, padding or dilation: one integer."""
    return spatial(v, 1)


class QuantConv1d(QuantConv2d):
    """1-D convolution (any groups, depthwise included; stride, padding, dilation) with folded BatchNorm1d
    and fused ReLU / clamp: :class:`~toolchain.nn.mac.QuantConv2d` over ``(N, C, L)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, groups: int = 1,
                 bias: bool = True, bn: bool = False, relu: bool = False, weight_bits: int = 8, act_bits: int = 8,
                 signed_output: bool = False, momentum: float | None = 0.1, power_of_two: bool = False,
                 clamp=None, weight_quant: str = "minmax", act_quant: str = "minmax", dilation=1) -> None:
        super().__init__(in_channels, out_channels, _one(kernel_size), _one(stride), _one(padding), groups, bias, bn,
                         relu, weight_bits, act_bits, signed_output, momentum, power_of_two, clamp, weight_quant,
                         act_quant, _one(dilation))

    def _make_bn(self, channels):
        return nn.BatchNorm1d(channels)

    def _mac(self, x, w):
        return F.conv1d(x, w, None, self.stride, self.padding, self.dilation, self.groups)


class MaxPool1d(MaxPool2d):
    """Max pooling over ``(N, C, L)`` on the grid (integers pass through; ``ceil_mode`` as torch's)."""

    pool = staticmethod(F.max_pool1d)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> None:
        super().__init__(_one(kernel_size), None if stride is None else _one(stride), _one(padding), ceil_mode)


class AvgPool1d(AvgPool2d):
    """Average pooling over ``(N, C, L)`` with its own output quantizer (``ceil_mode``, ``count_include_pad``)."""

    pool = staticmethod(F.avg_pool1d)

    def __init__(self, kernel_size, stride=None, padding=0, act_bits: int = 8, momentum: float | None = 0.1,
                 power_of_two: bool = False, ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(_one(kernel_size), None if stride is None else _one(stride), _one(padding), act_bits,
                         momentum, power_of_two, ceil_mode, count_include_pad)
