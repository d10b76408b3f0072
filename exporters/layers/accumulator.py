"""Layers with a proven accumulator: the multiply-accumulate layers and average pooling.

An accumulating layer computes, per output channel ``c``, ``acc[c] = b[c] + sum_k w[c, k]
(x[k] - z_x)`` over its :meth:`~Accumulating.weight_rows` (``b = 0`` for pooling), then
requantizes. :func:`accumulator_analysis` proves both forms of that sum fit (contract,
"Accumulator width"); :meth:`Accumulating.work` counts its MACs from the same rows — one
definition of what a layer multiplies, whichever backend asks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from exporters.bounds import MAX_ACC_BITS, Bounds, check_width, mac_bounds
from exporters.errors import ModelError
from exporters.grid import check_bits, signed_narrow_range
from exporters.layers.base import (INITIALIZER, INT32, Requant, SingleInput, Work, bit_operations, mac_count,
                                   narrow_clamp, positions)


class Accumulating:
    """Mixin of the accumulating layers: a ``requant`` field and weight rows over the input.

    Subclasses give ``weight_rows(model)`` (or ``convolution(model)``, whose rows it is) and,
    when they have a bias, ``accumulator_bias(model)``.
    """

    requantizes = True
    accumulates = True
    requant: Requant

    def output_grid(self, in_grids):
        return self.requant.out

    def weight_rows(self, model) -> np.ndarray:
        """Weights as (out_channels, taps): the taps one output channel sums over."""
        return self.convolution(model).rows()

    def accumulator_bias(self, model) -> np.ndarray:
        """Subtract-first bias ``b`` per output channel (int64); pooling has none."""
        return np.zeros(self.weight_rows(model).shape[0], dtype=np.int64)

    def work(self, model) -> Work:
        rows = self.weight_rows(model)
        at = positions(model.shape(self.name))
        return Work(macs=mac_count(at, rows.size), nonzero_macs=mac_count(at, np.count_nonzero(rows)))

    def fuse_relu(self) -> bool:
        self.requant.relu = True
        return True

    def fuse_clamp(self, bounds) -> bool:
        self.requant.clamp = narrow_clamp(self.requant.clamp, bounds)
        return True

    @property
    def output_clamp(self):
        return self.requant.clamp

    def to_dict(self, model) -> dict:
        d = super().to_dict(model)
        d["acc_bits"] = accumulator_analysis(model, self).bits
        return d


@dataclass(eq=False)
class MacLayer(Accumulating, SingleInput):
    """Shared fields of the multiply-accumulate layers (Conv, Linear)."""

    weight: np.ndarray = field(metadata=INITIALIZER)
    bias: np.ndarray = field(metadata=INITIALIZER)
    weight_bits: int
    weight_scale: np.ndarray
    requant: Requant

    def __post_init__(self) -> None:
        self.weight = np.asarray(self.weight, dtype=np.int64)
        self.bias = np.asarray(self.bias, dtype=np.int64).reshape(-1)
        self.weight_scale = np.asarray(self.weight_scale, dtype=np.float64).reshape(-1)

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    def weight_rows(self, model=None) -> np.ndarray:
        """Weights as (out_channels, taps) (``model`` is not needed: the weights are stored)."""
        return self.weight.reshape(self.out_channels, -1)

    def accumulator_bias(self, model=None) -> np.ndarray:
        return self.bias

    def check(self, model) -> None:
        name = self.name
        check_bits(self.weight_bits, f"layer '{name}' weights")
        lo, hi = signed_narrow_range(self.weight_bits)
        if self.weight.size and (self.weight.min() < lo or self.weight.max() > hi):
            raise ModelError(
                f"layer '{name}': weights [{self.weight.min()}, {self.weight.max()}] "
                f"leave the {self.weight_bits}-bit grid [{lo}, {hi}]"
            )
        o = self.out_channels
        if self.bias.shape != (o,) or self.weight_scale.shape != (o,):
            raise ModelError(f"layer '{name}': bias and weight_scale need shape ({o},)")
        if self.bias.min() < INT32[0] or self.bias.max() > INT32[1]:
            raise ModelError(f"layer '{name}': bias leaves int32")
        self.requant.check(name, o)

    def work(self, model) -> Work:
        counted = super().work(model)
        bits = (self.weight_bits, model.grid(self.input).bits)
        return dataclasses.replace(
            counted, bops=bit_operations(counted.macs, *bits), nonzero_bops=bit_operations(counted.nonzero_macs, *bits),
            params=int(self.weight.size + self.bias.size),
            weight_memory_bits=int(self.weight.size * self.weight_bits + self.bias.size * 32))


def folded_bias(layer, x_zero_point: int, model=None) -> np.ndarray:
    """``b' = b - z_x * sum_k w[c, k]`` (the folded form the HLS kernels start from).

    ``model`` is needed only for layers whose rows depend on it (average pooling)."""
    return layer.accumulator_bias(model) - x_zero_point * layer.weight_rows(model).sum(axis=1)


@dataclass(frozen=True)
class AccumulatorAnalysis:
    """Proven bounds of a layer's accumulator in both forms (see :mod:`exporters.bounds`)."""

    subtract_first: Bounds
    folded: Bounds
    requant_input: np.ndarray  # per-channel bound of |acc| fed to the requantizer (int64)

    @property
    def bits(self) -> int:
        """Width of the folded form: what the HLS kernels' ap_int<P> accumulators hold."""
        return self.folded.bits


def accumulator_analysis(model, layer) -> AccumulatorAnalysis:
    """Prove both accumulator forms of a MAC or average-pool layer fit; refuse otherwise."""
    if not layer.accumulates:
        raise TypeError(f"{type(layer).__name__} has no accumulator")
    g = model.grid(layer.inputs[0])
    rows, bias = layer.weight_rows(model), layer.accumulator_bias(model)
    products = mac_bounds(rows, np.zeros_like(bias), g.lo - g.zero_point, g.hi - g.zero_point)
    subtract_first = products.union(Bounds(products.lo + bias, products.hi + bias))
    folded = mac_bounds(rows, folded_bias(layer, g.zero_point, model), g.lo, g.hi)
    check_width(layer.name, "subtract-first (ONNX)", subtract_first, MAX_ACC_BITS)
    check_width(layer.name, "folded (HLS)", folded, MAX_ACC_BITS)
    final = Bounds(products.lo + bias, products.hi + bias)
    return AccumulatorAnalysis(subtract_first, folded, final.magnitude)
