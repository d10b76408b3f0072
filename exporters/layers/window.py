"""Sliding-window geometry shared by Conv, MaxPool, AvgPool and GlobalAvgPool.

* :func:`window_output` — the output size of a window over a padded plane (PyTorch's and
  ONNX's floor rule), with the checks every window layer makes;
* :class:`ConvolutionView` — a layer as the integer convolution it computes. The
  accumulating window layers all are one: a Conv is itself, average pooling is a depthwise
  convolution with all-ones weights (:mod:`exporters.layers.avg_pool`). The ONNX exporter
  and torch integer mode run that convolution; the accumulator analysis reads its rows.
* :func:`grouped_input_channels` — which input channel each tap of a grouped convolution
  reads (filter ``f`` of group ``f // (O / groups)`` reads channels
  ``group * (I / groups) + ci``): the one place the HLS tap tables, the estimator and the
  tests derive it from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exporters.errors import ModelError


def pool_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def spatial_input(layer, in_shapes: list[tuple[int, ...]]) -> tuple[int, int, int]:
    """The single ``(C, H, W)`` input of a window layer; refuses a vector input."""
    (shape,) = in_shapes
    if len(shape) != 3:
        raise ModelError(f"layer '{layer.name}': {type(layer).__name__} needs a (C, H, W) input, got {shape}")
    return shape


def check_window(name: str, kernel, stride, pad) -> None:
    if min(stride) < 1 or min(pad) < 0 or min(kernel) < 1:
        raise ModelError(f"layer '{name}': kernel {kernel}, stride {stride}, padding {pad} must be positive")


def window_output(name: str, plane: tuple[int, int], kernel, stride, pad) -> tuple[int, int]:
    """``(out_rows, out_columns)`` of a window over the padded ``plane``; refuses a window that does not fit."""
    h, w = plane
    oh, ow = (pool_output_size(s, k, st, p) for s, k, st, p in zip((h, w), kernel, stride, pad))
    if oh < 1 or ow < 1:
        raise ModelError(f"layer '{name}': window {kernel} does not fit the padded {h}x{w} input")
    return oh, ow


def grouped_input_channels(out_channels: int, in_per_group: int, groups: int) -> np.ndarray:
    """``(O, I / groups)`` int64: the input channel read by local channel ``ci`` of filter ``f``.

    >>> grouped_input_channels(4, 1, 2).ravel().tolist()      # 2 groups of 1 input channel
    [0, 0, 1, 1]
    """
    group = np.arange(out_channels) // (out_channels // groups)
    return group[:, None] * in_per_group + np.arange(in_per_group)[None, :]


@dataclass(frozen=True)
class ConvolutionView:
    """A layer as ``acc = sum w (x - z_x)`` over a grouped, strided, zero-point-padded window."""

    weight: np.ndarray  # (O, I / groups, kh, kw) integers
    groups: int
    stride: tuple[int, int]
    padding: tuple[int, int]

    @property
    def input_channel(self) -> np.ndarray:
        """``(O, I / groups)``: the input channel each filter's local channel reads."""
        o, i_local = self.weight.shape[:2]
        return grouped_input_channels(o, i_local, self.groups)

    def rows(self) -> np.ndarray:
        """The weights as ``(O, taps)``, taps C-major ``(ci, kh, kw)`` as ``weight.reshape``."""
        return self.weight.reshape(self.weight.shape[0], -1)
