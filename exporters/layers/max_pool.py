"""MaxPool: the maximum over each window, on the integers directly (contract: same scale and
zero point in and out; padded taps never win)."""

from __future__ import annotations

from dataclasses import dataclass

from exporters.errors import ModelError
from exporters.layers.base import SingleInput, pair
from exporters.layers.window import check_window, spatial_input, window_output


@dataclass(eq=False)
class MaxPool(SingleInput):
    kernel: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        self.kernel = pair(self.kernel)
        self.stride = pair(self.stride) if self.stride is not None else self.kernel
        self.padding = pair(self.padding)

    def output_shape(self, in_shapes):
        c, h, w = spatial_input(self, in_shapes)
        kernel, pad = self.kernel, self.padding
        check_window(self.name, kernel, self.stride, pad)
        if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
            raise ModelError(f"layer '{self.name}': MaxPool padding {pad} must be smaller than the kernel {kernel}")
        return (c, *window_output(self.name, (h, w), kernel, self.stride, pad))

    def window(self, model):
        return self.kernel
