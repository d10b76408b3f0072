"""MaxPool: the maximum over each window, on the integers directly (contract: same scale and
zero point in and out; padded taps never win), 1-D (``kernel`` of one value, input ``(C, L)``) or
2-D; ``ceil_mode`` as PyTorch's, i.e. extra end padding (:class:`~exporters.layers.window.Window`)."""

from __future__ import annotations

from dataclasses import dataclass

from exporters.errors import ModelError
from exporters.layers.base import SingleInput, pair
from exporters.layers.window import Window, Windowed, spatial, spatial_input


@dataclass(eq=False)
class MaxPool(Windowed, SingleInput):
    kernel: tuple[int, ...]
    stride: tuple[int, ...] | None = None
    padding: tuple[int, ...] = (0, 0)
    ceil_mode: bool = False

    def __post_init__(self) -> None:
        self.kernel = pair(self.kernel)
        rank = len(self.kernel)
        self.stride = spatial(self.stride, rank) if self.stride is not None else self.kernel
        self.padding = spatial(self.padding, rank)
        self.ceil_mode = bool(self.ceil_mode)

    def _window(self, size: tuple[int, ...]) -> Window:
        window = Window.over(self.name, size, self.kernel, self.stride, self.padding, ceil_mode=self.ceil_mode)
        if any(p >= k for p, k in zip(self.padding, self.kernel)):
            raise ModelError(f"layer '{self.name}': MaxPool padding {self.padding} must be smaller than the kernel "
                             f"{self.kernel}")
        return window

    def geometry(self, model) -> Window:
        return self._window(model.shape(self.input)[1:])

    def output_shape(self, in_shapes):
        shape = spatial_input(self, in_shapes, one_d=True)
        return (shape[0], *self._window(shape[1:]).output(shape[1:]))

    def window(self, model):
        return self.kernel
