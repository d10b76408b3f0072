"""Sliding-window geometry shared by Conv, MaxPool, AvgPool and GlobalAvgPool, in 1-D and 2-D.

* :class:`Window` — a window's geometry per spatial axis (kernel, stride, padding, dilation and
  the ceil-mode end padding ``extra``), the one home of the contract's window rule ("Window
  geometry", docs/integer-contract.md): :func:`output_length` is PyTorch's output size (ceil
  mode's "the last window starts inside the input or its left padding" included), and ceil mode
  is extra end padding (:func:`ceil_extra`). A 1-D window (input ``(C, L)``) is the 2-D one with
  one row: :meth:`Window.plane` is what the 2-D backends (HLS kernels, estimator, torch integer
  mode) read, :meth:`Window.onnx` what the exporter writes (ONNX ops take either rank).
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

#: Spatial ranks of a feature map: ``(C, L)`` is 1-D, ``(C, H, W)`` 2-D; ``(F,)`` is a vector.
SPATIAL_RANKS = (1, 2)


def spatial(value, rank: int) -> tuple[int, ...]:
    """A kernel, stride, padding or dilation field as one integer per spatial axis: a number is
    repeated (``3 -> (3, 3)`` in 2-D, ``(3,)`` in 1-D), a sequence kept; a square pair on a 1-D
    layer is its value (so the 2-D defaults ``(1, 1)`` / ``(0, 0)`` mean the same in 1-D)."""
    if np.isscalar(value):
        return (int(value),) * rank
    v = tuple(int(x) for x in value)
    if rank == 1 and len(v) == 2 and v[0] == v[1]:
        return v[:1]
    return v


def output_length(size: int, kernel: int, stride: int, pad: int, dilation: int = 1, ceil_mode: bool = False) -> int:
    """PyTorch's (and ONNX's) output length of a window along one axis; below 1 when it does not fit.

    >>> output_length(5, 2, 2, 0), output_length(5, 2, 2, 0, ceil_mode=True)
    (2, 3)
    >>> output_length(3, 2, 2, 1, ceil_mode=True)    # a 3rd window would start in the right padding
    2
    """
    span = dilation * (kernel - 1) + 1
    room = size + 2 * pad - span
    if room < 0:
        return 0
    out = (room + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def pool_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """The floor-mode output length (:func:`output_length` without dilation or ceil mode)."""
    return output_length(size, kernel, stride, pad)


def ceil_extra(size: int, out: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """End padding beyond ``pad`` that makes the floor rule give ``out`` windows (ceil mode's overhang)."""
    return max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - size - 2 * pad)


def spatial_input(layer, in_shapes: list[tuple[int, ...]], one_d: bool = False) -> tuple[int, ...]:
    """The single feature-map input of a window layer, ``(C, H, W)`` (or ``(C, L)`` when ``one_d``);
    refuses a vector input."""
    (shape,) = in_shapes
    ranks = (2, 3) if one_d else (3,)
    if len(shape) not in ranks:
        want = "(C, L) or (C, H, W)" if one_d else "(C, H, W)"
        raise ModelError(f"layer '{layer.name}': {type(layer).__name__} needs a {want} input, got {shape}")
    return shape


def plane_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """A tensor as the 2-D backends hold it, ``(C, H, W)``: a 1-D map ``(C, L)`` is ``(C, 1, L)``,
    a vector ``(F,)`` is ``(F, 1, 1)``."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 3:
        return shape
    return (shape[0], 1, shape[1]) if len(shape) == 2 else (shape[0], 1, 1)


def check_window(name: str, kernel, stride, pad, dilation=None) -> None:
    dilation = dilation or (1,) * len(kernel)
    if min(stride) < 1 or min(pad) < 0 or min(kernel) < 1 or min(dilation) < 1:
        raise ModelError(f"layer '{name}': kernel {kernel}, stride {stride}, padding {pad}, dilation {dilation} "
                         "must be positive")


@dataclass(frozen=True)
class Window:
    """A window's geometry, one entry per spatial axis (1 or 2): ``kernel``, ``stride``,
    ``padding`` (each side), ``dilation`` and ``extra`` (ceil mode's end padding, after the
    right/bottom ``padding``)."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    extra: tuple[int, ...]

    @classmethod
    def over(cls, name: str, size: tuple[int, ...], kernel, stride, padding, dilation=None,
             ceil_mode: bool = False) -> "Window":
        """The window over an input of spatial ``size``, checked (the output fits, one number per axis)."""
        rank = len(size)
        dilation = dilation if dilation is not None else (1,) * rank
        if not len(kernel) == len(stride) == len(padding) == len(dilation) == rank:
            raise ModelError(f"layer '{name}': kernel {kernel}, stride {stride}, padding {padding}, dilation "
                             f"{dilation} need one value per axis of a {rank}-D input")
        check_window(name, kernel, stride, padding, dilation)
        out = [output_length(*a, ceil_mode) for a in zip(size, kernel, stride, padding, dilation)]
        if min(out) < 1:
            raise ModelError(f"layer '{name}': window {tuple(kernel)} (dilation {tuple(dilation)}) does not fit the "
                             f"padded {'x'.join(map(str, size))} input")
        extra = tuple(ceil_extra(s, o, k, st, p, d) for s, o, k, st, p, d in
                      zip(size, out, kernel, stride, padding, dilation))
        return cls(tuple(kernel), tuple(stride), tuple(padding), tuple(dilation), extra)

    @property
    def rank(self) -> int:
        return len(self.kernel)

    @property
    def span(self) -> tuple[int, ...]:
        """Input positions one window covers per axis: ``d (k - 1) + 1``."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))

    def output(self, size: tuple[int, ...]) -> tuple[int, ...]:
        """Output positions per axis over an input of spatial ``size`` (the floor rule on the padded plane)."""
        return tuple((s + 2 * p + e - sp) // st + 1
                     for s, p, e, sp, st in zip(size, self.padding, self.extra, self.span, self.stride))

    def plane(self) -> "Window":
        """The 2-D form: a 1-D window gains a first axis of one row (kernel, stride, dilation 1, no padding)."""
        if self.rank == 2:
            return self
        return Window((1, *self.kernel), (1, *self.stride), (0, *self.padding), (1, *self.dilation),
                      (0, *self.extra))

    def onnx(self) -> dict:
        """ConvInteger / MaxPool attributes: ``pads`` are the begins then the ends (``padding + extra``);
        ``dilations`` only when some is not 1 (files of undilated layers are as before)."""
        attrs = dict(kernel_shape=list(self.kernel), strides=list(self.stride),
                     pads=[*self.padding, *(p + e for p, e in zip(self.padding, self.extra))])
        if any(d != 1 for d in self.dilation):
            attrs["dilations"] = list(self.dilation)
        return attrs


class Windowed:
    """Mixin of the window layers: their operator name says 1-D (``Conv1d``, ``MaxPool1d``, ...)
    when they slide over a ``(C, L)`` input, as the user's PyTorch model does."""

    def op_name(self, model) -> str:
        one_d = len(model.shape(self.input)) == 2
        return type(self).__name__ + ("1d" if one_d else "")


def grouped_input_channels(out_channels: int, in_per_group: int, groups: int) -> np.ndarray:
    """``(O, I / groups)`` int64: the input channel read by local channel ``ci`` of filter ``f``.

    >>> grouped_input_channels(4, 1, 2).ravel().tolist()      # 2 groups of 1 input channel
    [0, 0, 1, 1]
    """
    group = np.arange(out_channels) // (out_channels // groups)
    return group[:, None] * in_per_group + np.arange(in_per_group)[None, :]


@dataclass(frozen=True)
class ConvolutionView:
    """A layer as ``acc = sum w (x - z_x)`` over a grouped, strided, dilated, zero-point-padded window."""

    weight: np.ndarray  # (O, I / groups, *kernel) integers, kernel of the window's rank
    groups: int
    window: Window

    @property
    def input_channel(self) -> np.ndarray:
        """``(O, I / groups)``: the input channel each filter's local channel reads."""
        o, i_local = self.weight.shape[:2]
        return grouped_input_channels(o, i_local, self.groups)

    def rows(self) -> np.ndarray:
        """The weights as ``(O, taps)``, taps C-major ``(ci, kh, kw)`` as ``weight.reshape``."""
        return self.weight.reshape(self.weight.shape[0], -1)

    def plane(self) -> "ConvolutionView":
        """The 2-D form (a 1-D weight ``(O, I, k)`` as ``(O, I, 1, k)``); the taps keep their order."""
        if self.window.rank == 2:
            return self
        return ConvolutionView(self.weight[:, :, None, :], self.groups, self.window.plane())
