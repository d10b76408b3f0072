"""Conv: a 1-D or 2-D convolution, any groups (depthwise included), stride, zero-point padding,
dilation; ``acc = b + sum w (x - z_x)`` then requantization (contract, "Multiply-accumulate
layers" and "Window geometry"). The weight's rank says which: ``(O, I/groups, kh, kw)`` on a
``(C, H, W)`` input, ``(O, I/groups, k)`` on a ``(C, L)`` input (``Conv1d``). Which input channel
each tap reads is :attr:`ConvolutionView.input_channel`."""

from __future__ import annotations

from dataclasses import dataclass

from exporters.errors import ModelError
from exporters.layers.accumulator import MacLayer
from exporters.layers.window import SPATIAL_RANKS, ConvolutionView, Window, Windowed, spatial, spatial_input


@dataclass(eq=False)
class Conv(Windowed, MacLayer):
    stride: tuple[int, ...] = (1, 1)
    padding: tuple[int, ...] = (0, 0)
    groups: int = 1
    dilation: tuple[int, ...] = (1, 1)

    def __post_init__(self) -> None:
        super().__post_init__()
        rank = self.rank
        self.stride, self.padding, self.dilation = (spatial(v, rank) for v in (self.stride, self.padding,
                                                                                self.dilation))

    @property
    def rank(self) -> int:
        """Spatial axes: 2 for a ``(O, I, kh, kw)`` weight, 1 for ``(O, I, k)``."""
        return self.weight.ndim - 2 if self.weight.ndim - 2 in SPATIAL_RANKS else 2

    @property
    def kernel(self) -> tuple[int, ...]:
        return tuple(self.weight.shape[2:])

    def geometry(self, model=None) -> Window:
        return Window(self.kernel, self.stride, self.padding, self.dilation, (0,) * self.rank)

    def convolution(self, model=None) -> ConvolutionView:
        return ConvolutionView(self.weight, self.groups, self.geometry())

    def window(self, model):
        return self.kernel

    def output_shape(self, in_shapes):
        shape = spatial_input(self, in_shapes, one_d=True)
        if self.weight.ndim - 2 not in SPATIAL_RANKS or self.weight.ndim != len(shape) + 1:
            raise ModelError(f"layer '{self.name}': Conv weight {self.weight.shape} must be (O, I/groups, kh, kw) "
                             f"on a (C, H, W) input or (O, I/groups, k) on a (C, L) input, got input {shape}")
        o, i = self.weight.shape[:2]
        c, g = shape[0], self.groups
        if g < 1 or c % g or o % g or i * g != c:
            raise ModelError(
                f"layer '{self.name}': weight {self.weight.shape} with groups={g} does not fit {c} input channels"
            )
        window = Window.over(self.name, shape[1:], self.kernel, self.stride, self.padding, self.dilation)
        return (o, *window.output(shape[1:]))
