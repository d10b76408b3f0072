"""AvgPool: ``acc = sum (x - z_x)`` over each window (padded taps are real zero, i.e.
count_include_pad), requantized with ``S = s_x / (s_y * window)``.

This is the one home of "average pooling is a depthwise convolution with all-ones
weights": :class:`WindowAverage.convolution` — the ONNX exporter (ConvInteger), torch
integer mode, the accumulator analysis and the MAC counts all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exporters.layers.accumulator import Accumulating
from exporters.layers.base import Requant, SingleInput, pair
from exporters.layers.window import ConvolutionView, check_window, spatial_input, window_output


class WindowAverage(Accumulating):
    """Mixin of the average-pooling layers: a per-channel window sum with weight 1."""

    def convolution(self, model) -> ConvolutionView:
        c = model.shape(self.input)[0]
        kh, kw = self.window(model)
        return ConvolutionView(np.ones((c, 1, kh, kw), np.int64), c, self.stride, self.padding)

    def check(self, model) -> None:
        self.requant.check(self.name, model.shape(self.input)[0])


@dataclass(eq=False)
class AvgPool(WindowAverage, SingleInput):
    """Average pooling: ``acc = sum (x - z_x)`` over the window (padded taps are real zero,
    i.e. count_include_pad), requantized with ``S = s_x / (s_y * window)``."""

    kernel: tuple[int, int]
    stride: tuple[int, int] | None
    padding: tuple[int, int]
    requant: Requant

    def __post_init__(self) -> None:
        self.kernel = pair(self.kernel)
        self.stride = pair(self.stride) if self.stride is not None else self.kernel
        self.padding = pair(self.padding)

    def window(self, model):
        return self.kernel

    def output_shape(self, in_shapes):
        c, h, w = spatial_input(self, in_shapes)
        check_window(self.name, self.kernel, self.stride, self.padding)
        return (c, *window_output(self.name, (h, w), self.kernel, self.stride, self.padding))
