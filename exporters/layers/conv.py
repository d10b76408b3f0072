"""Conv: a 2-D convolution, any groups (depthwise included), stride, zero-point padding,
dilation 1; ``acc = b + sum w (x - z_x)`` then requantization (contract, "Multiply-accumulate
layers"). Which input channel each tap reads is :attr:`ConvolutionView.input_channel`."""

from __future__ import annotations

from dataclasses import dataclass

from exporters.errors import ModelError
from exporters.layers.accumulator import MacLayer
from exporters.layers.base import pair
from exporters.layers.window import ConvolutionView, check_window, spatial_input, window_output


@dataclass(eq=False)
class Conv(MacLayer):
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        self.stride, self.padding = pair(self.stride), pair(self.padding)

    @property
    def kernel(self) -> tuple[int, int]:
        return tuple(self.weight.shape[2:])

    def convolution(self, model=None) -> ConvolutionView:
        return ConvolutionView(self.weight, self.groups, self.stride, self.padding)

    def window(self, model):
        return self.kernel

    def output_shape(self, in_shapes):
        c, h, w = spatial_input(self, in_shapes)
        if self.weight.ndim != 4:
            raise ModelError(f"layer '{self.name}': Conv weight must be 4-D (O, I/groups, kh, kw)")
        o, i, kh, kw = self.weight.shape
        g = self.groups
        if g < 1 or c % g or o % g or i * g != c:
            raise ModelError(
                f"layer '{self.name}': weight {self.weight.shape} with groups={g} does not fit {c} input channels"
            )
        check_window(self.name, (kh, kw), self.stride, self.padding)
        return (o, *window_output(self.name, (h, w), (kh, kw), self.stride, self.padding))
