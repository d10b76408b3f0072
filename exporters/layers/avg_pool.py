"""AvgPool: ``acc = sum (x - z_x)`` over each window (taps outside the input are real zero),
requantized with ``S = s_x / (s_y * count)`` where ``count`` is the number of taps the window
counts (contract, "AvgPool's divisor"): the whole kernel, except at the edges of a layer in ceil
mode or with ``count_include_pad=False``, which divide each edge window by its own count.

This is the one home of "average pooling is a depthwise convolution with all-ones
weights": :class:`WindowAverage.convolution` — the ONNX exporter (ConvInteger), torch
integer mode, the accumulator analysis and the MAC counts all read it — and of the divisor per
output position (:meth:`AvgPool.counts`, :meth:`AvgPool.position_requant`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exporters.errors import ModelError
from exporters.layers.accumulator import Accumulating
from exporters.layers.base import Requant, SingleInput, check_multipliers, check_shifts, pair
from exporters.layers.window import ConvolutionView, Window, Windowed, spatial, spatial_input
from exporters.requant import quantize_multiplier


class WindowAverage(Windowed, Accumulating):
    """Mixin of the average-pooling layers: a per-channel window sum with weight 1."""

    def convolution(self, model) -> ConvolutionView:
        c = model.shape(self.input)[0]
        window = self.geometry(model)
        return ConvolutionView(np.ones((c, 1, *window.kernel), np.int64), c, window)

    def check(self, model) -> None:
        self.requant.check(self.name, model.shape(self.input)[0])


def count_requant(x_scale: float, y_scale: float, counts) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(M_k, n_k) = quantize_multiplier(s_x / k / s_y)`` for each tap count ``k`` of ``counts``: the
    requantizer of a window that divides by ``k`` (computed in the order the full window's is)."""
    pairs = [quantize_multiplier(float(x_scale) / int(k) / float(y_scale)) for k in counts]
    return tuple(m for m, _ in pairs), tuple(n for _, n in pairs)


def axis_counts(size: int, out: int, kernel: int, stride: int, pad: int, include_pad: bool) -> np.ndarray:
    """Taps each window counts along one axis: inside ``[-pad, size + pad)`` (``include_pad``) or
    ``[0, size)``; PyTorch's ``avg_pool2d`` divisor, one factor of it."""
    start = np.arange(out) * stride - pad
    lo, hi = (-pad, size + pad) if include_pad else (0, size)
    return np.minimum(start + kernel, hi) - np.maximum(start, lo)


@dataclass(eq=False)
class AvgPool(WindowAverage, SingleInput):
    """Average pooling, 1-D or 2-D: ``acc = sum (x - z_x)`` over the window, requantized by the
    per-channel ``requant`` (``S = s_x / (s_y * K)``, ``K`` the kernel's taps) where the window counts
    all ``K`` taps and, at edge windows counting ``k < K`` (ceil mode, ``count_include_pad=False``),
    by ``(partial_multipliers[k - 1], partial_shifts[k - 1])``, shared by the channels."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...] | None
    padding: tuple[int, ...]
    requant: Requant
    ceil_mode: bool = False
    count_include_pad: bool = True
    partial_multipliers: tuple[int, ...] = ()
    partial_shifts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self.kernel = pair(self.kernel)
        rank = len(self.kernel)
        self.stride = spatial(self.stride, rank) if self.stride is not None else self.kernel
        self.padding = spatial(self.padding, rank)
        self.ceil_mode, self.count_include_pad = bool(self.ceil_mode), bool(self.count_include_pad)
        self.partial_multipliers = tuple(int(v) for v in self.partial_multipliers)
        self.partial_shifts = tuple(int(v) for v in self.partial_shifts)

    def _window(self, size: tuple[int, ...]) -> Window:
        window = Window.over(self.name, size, self.kernel, self.stride, self.padding, ceil_mode=self.ceil_mode)
        if not self.count_include_pad and any(p >= k for p, k in zip(self.padding, self.kernel)):
            raise ModelError(f"layer '{self.name}': AvgPool padding {self.padding} must be smaller than the kernel "
                             f"{self.kernel} with count_include_pad=False (a window of padding only counts nothing)")
        return window

    def geometry(self, model) -> Window:
        return self._window(model.shape(self.input)[1:])

    def window(self, model):
        return self.kernel

    def output_shape(self, in_shapes):
        shape = spatial_input(self, in_shapes, one_d=True)
        return (shape[0], *self._window(shape[1:]).output(shape[1:]))

    # -- the divisor per output position -----------------------------------------------------
    def counts_over(self, size: tuple[int, ...]) -> np.ndarray:
        """The taps each output position's window counts over an input of spatial ``size``; shape = the
        output's spatial shape."""
        out = self._window(size).output(size)
        per_axis = [axis_counts(s, o, k, st, p, self.count_include_pad)
                    for s, o, k, st, p in zip(size, out, self.kernel, self.stride, self.padding)]
        return per_axis[0] if len(per_axis) == 1 else np.multiply.outer(*per_axis)

    def counts(self, model) -> np.ndarray:
        return self.counts_over(model.shape(self.input)[1:])

    def divides_by_count_over(self, size: tuple[int, ...]) -> bool:
        """Whether some window counts fewer than the kernel's taps (its edges need their own requantizer)."""
        return bool((self.counts_over(size) < int(np.prod(self.kernel))).any())

    def divides_by_count(self, model) -> bool:
        return self.divides_by_count_over(model.shape(self.input)[1:])

    def count_rule(self, count: int) -> tuple[int, int]:
        """``(M, n)`` of a window counting ``count`` taps (the whole kernel: the requant's first channel)."""
        if count == int(np.prod(self.kernel)):
            return int(self.requant.multiplier[0]), int(self.requant.shift[0])
        return self.partial_multipliers[count - 1], self.partial_shifts[count - 1]

    def position_requant(self, model) -> tuple[np.ndarray, np.ndarray] | None:
        """``(M, n)`` per output position (arrays of the output's spatial shape), or None when every
        window counts the whole kernel (the per-channel ``requant`` alone applies)."""
        if not self.divides_by_count(model):
            return None
        counts = self.counts(model)
        rules = np.array([self.count_rule(int(k)) for k in counts.ravel()], dtype=np.int64).reshape(*counts.shape, 2)
        return rules[..., 0], rules[..., 1]

    def check(self, model) -> None:
        super().check(model)
        taps = int(np.prod(self.kernel))
        want = taps - 1 if self.divides_by_count(model) else 0
        if len(self.partial_multipliers) != want or len(self.partial_shifts) != want:
            raise ModelError(
                f"layer '{self.name}': AvgPool needs {want} partial-window (M, n) pairs (counts 1 .. {taps - 1}) "
                f"{'for its edge windows' if want else 'none: every window counts the whole kernel'}, got "
                f"{len(self.partial_multipliers)} multipliers and {len(self.partial_shifts)} shifts")
        if want:
            check_multipliers(self.name, np.array(self.partial_multipliers))
            check_shifts(self.name, np.array(self.partial_shifts))
            rq = self.requant
            if len(set(rq.multiplier.tolist())) != 1 or len(set(rq.shift.tolist())) != 1:
                raise ModelError(f"layer '{self.name}': an AvgPool whose edge windows divide by their own count "
                                 "needs one (M, n) for all its channels")
