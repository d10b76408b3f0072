"""The integer model: the one representation every Foldline stage agrees on.

An :class:`IntegerModel` is an ordered list of layers (topological order; each layer's
output tensor is named after the layer). Each layer carries exact integers only —
weights, int32 biases, per-channel requantization ``(M, n)`` — plus the real scales
they came from, for reporting and dequantization. The PyTorch toolchain produces it,
the ONNX exporter writes it (and reads it back), the HLS generator consumes it.

Layer set (``docs/integer-contract.md``; catalogue in docs/layers.md): :class:`Input`,
:class:`Conv` (1-D or 2-D; any groups, depthwise included; stride, padding, dilation), :class:`Linear`,
:class:`MaxPool`, :class:`AvgPool` (ceil mode, ``count_include_pad``), :class:`GlobalAvgPool`, :class:`Add` (residual),
:class:`Flatten`, :class:`Concat` (along channels), :class:`Upsample` (nearest, integer
factors), :class:`Lookup` (an elementwise function as a table). ReLU and clamps (ReLU6,
hardtanh) are fused into the requantization of the layer before it. Each type
lives in its own module of :mod:`exporters.layers` (fields, shape and grid inference,
checks, serialization, MAC counts); this module keeps the graph and re-exports them.

Shapes exclude the batch dimension: ``(C, H, W)`` for feature maps, ``(C, L)`` for 1-D maps (a time
series), ``(F,)`` for vectors.
Biases are stored in the **subtract-first** form (``acc = b + sum w (x - z_x)``); the
folded form ``b'`` is derived by :func:`folded_bias`.

>>> import numpy as np
>>> from exporters.grid import Grid
>>> x = Input("x", shape=(4,), grid=Grid(0.1, 0, 8, True))
>>> fc = Linear("fc", "x", weight=np.ones((2, 4), np.int64), bias=np.zeros(2, np.int64),
...     weight_bits=4, weight_scale=np.full(2, 0.01),
...     requant=Requant(np.full(2, 32768), np.full(2, 16), Grid(0.2, 0, 8, True)))
>>> m = IntegerModel([x, fc]); m.validate(); m.shape("fc")
(2,)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from exporters.errors import ModelError
from exporters.grid import Grid
from exporters.layers import *  # noqa: F401,F403  -- re-exported: im.Conv, im.Requant, im.accumulator_analysis, ...
from exporters.layers import Input, Layer, accumulator_analysis


@dataclass(eq=False)
class IntegerModel:
    layers: list[Layer]
    name: str = "foldline_model"
    _shapes: dict = field(default=None, init=False, repr=False)
    _grids: dict = field(default=None, init=False, repr=False)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def input(self) -> Input:
        return self.layers[0]

    @property
    def output(self) -> Layer:
        return self.layers[-1]

    def grid(self, tensor: str) -> Grid:
        self._infer()
        return self._grids[tensor]

    def shape(self, tensor: str) -> tuple[int, ...]:
        self._infer()
        return self._shapes[tensor]

    def invalidate(self) -> None:
        """Call after editing layers in place (shapes and grids are cached)."""
        self._shapes = self._grids = None

    def _infer(self) -> None:
        if self._shapes is not None:
            return
        shapes, grids = {}, {}
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Input) != (i == 0):
                raise ModelError(f"layer '{layer.name}': the first layer, and only it, must be an Input")
            if layer.name in shapes:
                raise ModelError(f"layer name '{layer.name}' is used twice")
            for src in layer.inputs:
                if src not in shapes:
                    raise ModelError(f"layer '{layer.name}': input '{src}' is not produced by an earlier layer")
            shapes[layer.name] = layer.output_shape([shapes[s] for s in layer.inputs])
            grids[layer.name] = layer.output_grid([grids[s] for s in layer.inputs])
        self._shapes, self._grids = shapes, grids

    def validate(self) -> None:
        """Check every rule of the integer contract; raises :class:`ModelError` naming the layer."""
        self.invalidate()
        self._infer()
        if not self.grid(self.output.name).signed:
            raise ModelError(f"the output layer '{self.output.name}' must write a signed symmetric grid")
        for layer in self.layers:
            if layer.requantizes and layer is not self.output and self.grid(layer.name).signed:
                raise ModelError(f"layer '{layer.name}': hidden activations must use an unsigned grid")
            layer.check(self)
        for layer in self.layers:
            if layer.accumulates:
                accumulator_analysis(self, layer)

    def __repr__(self) -> str:
        return f"IntegerModel({self.name!r}, {len(self.layers)} layers)"


def live_layers(model: IntegerModel) -> list[Layer]:
    """The layers the output depends on, in model order (generators leave the others out)."""
    needed = {model.output.name}
    for layer in reversed(model.layers):
        if layer.name in needed:
            needed.update(layer.inputs)
    return [layer for layer in model.layers if layer.name in needed]


def pool_window(model: IntegerModel, layer: Layer) -> tuple[int, int]:
    """The ``(rows, columns)`` window of a window layer (a global pool's is its input plane)."""
    return layer.window(model)
