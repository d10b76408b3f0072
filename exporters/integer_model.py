"""The integer model: the one representation every Foldline stage agrees on.

An :class:`IntegerModel` is an ordered list of layers (topological order; each layer's
output tensor is named after the layer). Each layer carries exact integers only —
weights, int32 biases, per-channel requantization ``(M, n)`` — plus the real scales
they came from, for reporting and dequantization. The PyTorch toolchain produces it,
the ONNX exporter writes it (and reads it back), the HLS generator consumes it.

Layer set (``docs/integer-contract.md``): :class:`Input`, :class:`Conv`
(any groups, depthwise included; stride, padding; dilation 1), :class:`Linear`,
:class:`MaxPool`, :class:`AvgPool`, :class:`GlobalAvgPool`, :class:`Add` (residual),
:class:`Flatten`. ReLU is fused into the requantization of the layer before it.

Shapes exclude the batch dimension: ``(C, H, W)`` for feature maps, ``(F,)`` for vectors.
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

import numpy as np

from exporters.bounds import MAX_ACC_BITS, Bounds, check_width, mac_bounds
from exporters.errors import ModelError
from exporters.grid import Grid, check_bits, signed_narrow_range
from exporters.requant import MAX_SHIFT, MULTIPLIER_BITS

INT32 = (-(1 << 31), (1 << 31) - 1)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else tuple(int(x) for x in v)


@dataclass(eq=False)
class Requant:
    """``y[c] = clamp(z + ((acc[c] * M[c] + 2^(n[c]-1)) >> n[c]), lo, hi)`` into grid ``out``."""

    multiplier: np.ndarray
    shift: np.ndarray
    out: Grid
    relu: bool = False

    def __post_init__(self) -> None:
        self.multiplier = np.asarray(self.multiplier, dtype=np.int64).reshape(-1)
        self.shift = np.asarray(self.shift, dtype=np.int64).reshape(-1)

    @property
    def bounds(self) -> tuple[int, int]:
        return self.out.output_bounds(self.relu)

    def check(self, layer: str, channels: int) -> None:
        for what, arr in (("multiplier", self.multiplier), ("shift", self.shift)):
            if arr.shape != (channels,):
                raise ModelError(f"layer '{layer}': {what} has shape {arr.shape}, expected ({channels},)")
        check_multipliers(layer, self.multiplier)
        check_shifts(layer, self.shift)

    def to_dict(self) -> dict:
        return {"multiplier": self.multiplier.tolist(), "shift": self.shift.tolist(),
                "out": self.out.to_dict(), "relu": self.relu}

    @classmethod
    def from_dict(cls, d: dict) -> "Requant":
        return cls(d["multiplier"], d["shift"], Grid.from_dict(d["out"]), bool(d["relu"]))


def check_multipliers(layer: str, m: np.ndarray) -> None:
    if ((m < 1) | (m >= 1 << MULTIPLIER_BITS)).any():
        raise ModelError(f"layer '{layer}': multipliers must lie in [1, 2^{MULTIPLIER_BITS}), got {m.tolist()}")


def check_shifts(layer: str, n: np.ndarray) -> None:
    if ((n < 0) | (n > MAX_SHIFT)).any():
        raise ModelError(f"layer '{layer}': shifts must lie in [0, {MAX_SHIFT}], got {n.tolist()}")


@dataclass(eq=False)
class Layer:
    name: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return ()

    def output_grid(self, in_grids: list[Grid]) -> Grid:
        """Grid of this layer's output given its inputs' grids (pass-through by default)."""
        return in_grids[0]


@dataclass(eq=False)
class Input(Layer):
    """The float network input, quantized on the host to a signed symmetric grid."""

    shape: tuple[int, ...]
    grid: Grid

    def output_grid(self, in_grids):
        return self.grid


@dataclass(eq=False)
class SingleInput(Layer):
    input: str

    @property
    def inputs(self):
        return (self.input,)


@dataclass(eq=False)
class MacLayer(SingleInput):
    """Shared fields of the multiply-accumulate layers (Conv, Linear)."""

    weight: np.ndarray
    bias: np.ndarray
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

    def weight_rows(self) -> np.ndarray:
        """Weights as (out_channels, taps): the taps one output channel sums over."""
        return self.weight.reshape(self.out_channels, -1)

    def output_grid(self, in_grids):
        return self.requant.out


@dataclass(eq=False)
class Conv(MacLayer):
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        self.stride, self.padding = _pair(self.stride), _pair(self.padding)

    @property
    def kernel(self) -> tuple[int, int]:
        return tuple(self.weight.shape[2:])


@dataclass(eq=False)
class Linear(MacLayer):
    pass


@dataclass(eq=False)
class MaxPool(SingleInput):
    kernel: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        self.kernel = _pair(self.kernel)
        self.stride = _pair(self.stride) if self.stride is not None else self.kernel
        self.padding = _pair(self.padding)


@dataclass(eq=False)
class AvgPool(SingleInput):
    """Average pooling: ``acc = sum (x - z_x)`` over the window (padded taps are real zero,
    i.e. count_include_pad), requantized with ``S = s_x / (s_y * window)``."""

    kernel: tuple[int, int]
    stride: tuple[int, int] | None
    padding: tuple[int, int]
    requant: Requant

    def __post_init__(self) -> None:
        self.kernel = _pair(self.kernel)
        self.stride = _pair(self.stride) if self.stride is not None else self.kernel
        self.padding = _pair(self.padding)

    def output_grid(self, in_grids):
        return self.requant.out


@dataclass(eq=False)
class GlobalAvgPool(SingleInput):
    """Average over the whole plane: (C, H, W) -> (C,) — AvgPool with window H x W."""

    requant: Requant

    def output_grid(self, in_grids):
        return self.requant.out


@dataclass(eq=False)
class Add(Layer):
    """Residual add: ``y = clamp(z_y + ((M1 (x1 - z1) + M2 (x2 - z2) + 2^(n-1)) >> n))``."""

    a: str
    b: str
    multipliers: tuple[int, int]
    shift: int
    out: Grid
    relu: bool = False

    def __post_init__(self) -> None:
        self.multipliers = tuple(int(m) for m in self.multipliers)
        self.shift = int(self.shift)

    @property
    def inputs(self):
        return (self.a, self.b)

    def output_grid(self, in_grids):
        return self.out


@dataclass(eq=False)
class Flatten(SingleInput):
    """(C, H, W) -> (C*H*W,) in C-major order, as torch.flatten and ONNX Flatten do."""


def pool_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def folded_bias(layer: MacLayer, x_zero_point: int) -> np.ndarray:
    """``b' = b - z_x * sum_k w[c, k]`` (the folded form the HLS kernels start from)."""
    return layer.bias - x_zero_point * layer.weight_rows().sum(axis=1)


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
            in_shapes = [shapes[s] for s in layer.inputs]
            shapes[layer.name] = _output_shape(layer, in_shapes)
            grids[layer.name] = layer.output_grid([grids[s] for s in layer.inputs])
        self._shapes, self._grids = shapes, grids

    def validate(self) -> None:
        """Check every rule of the integer contract; raises :class:`ModelError` naming the layer."""
        self.invalidate()
        self._infer()
        if not self.grid(self.output.name).signed:
            raise ModelError(f"the output layer '{self.output.name}' must write a signed symmetric grid")
        for layer in self.layers:
            requantizes = isinstance(layer, (MacLayer, AvgPool, GlobalAvgPool, Add))
            if requantizes and layer is not self.output and self.grid(layer.name).signed:
                raise ModelError(f"layer '{layer.name}': hidden activations must use an unsigned grid")
            _check_layer(self, layer)
        for layer in self.layers:
            if isinstance(layer, (MacLayer, AvgPool, GlobalAvgPool)):
                accumulator_analysis(self, layer)

    def __repr__(self) -> str:
        return f"IntegerModel({self.name!r}, {len(self.layers)} layers)"


def _output_shape(layer: Layer, in_shapes: list[tuple]) -> tuple[int, ...]:
    name = layer.name
    if isinstance(layer, Input):
        if not layer.shape or any(int(d) < 1 for d in layer.shape) or len(layer.shape) not in (1, 3):
            raise ModelError(f"input '{name}': shape {layer.shape} must be (C, H, W) or (F,), all >= 1")
        return tuple(int(d) for d in layer.shape)
    if isinstance(layer, Linear):
        (shape,) = in_shapes
        if len(shape) != 1:
            raise ModelError(f"layer '{name}': Linear needs a flat (F,) input, got {shape}; add a Flatten")
        if layer.weight.ndim != 2 or layer.weight.shape[1] != shape[0]:
            raise ModelError(f"layer '{name}': weight shape {layer.weight.shape} does not fit input {shape}")
        return (layer.out_channels,)
    if isinstance(layer, Flatten):
        return (int(np.prod(in_shapes[0])),)
    if isinstance(layer, Add):
        if in_shapes[0] != in_shapes[1]:
            raise ModelError(f"layer '{name}': Add inputs have shapes {in_shapes[0]} and {in_shapes[1]}")
        return in_shapes[0]
    (shape,) = in_shapes
    if len(shape) != 3:
        raise ModelError(f"layer '{name}': {type(layer).__name__} needs a (C, H, W) input, got {shape}")
    c, h, w = shape
    if isinstance(layer, GlobalAvgPool):
        return (c,)
    if isinstance(layer, Conv):
        if layer.weight.ndim != 4:
            raise ModelError(f"layer '{name}': Conv weight must be 4-D (O, I/groups, kh, kw)")
        o, i, kh, kw = layer.weight.shape
        g = layer.groups
        if g < 1 or c % g or o % g or i * g != c:
            raise ModelError(
                f"layer '{name}': weight {layer.weight.shape} with groups={g} does not fit {c} input channels"
            )
        kernel, stride, pad = (kh, kw), layer.stride, layer.padding
    else:
        o, kernel, stride, pad = c, layer.kernel, layer.stride, layer.padding
    if min(stride) < 1 or min(pad) < 0 or min(kernel) < 1:
        raise ModelError(f"layer '{name}': kernel {kernel}, stride {stride}, padding {pad} must be positive")
    if isinstance(layer, MaxPool) and (pad[0] >= kernel[0] or pad[1] >= kernel[1]):
        raise ModelError(f"layer '{name}': MaxPool padding {pad} must be smaller than the kernel {kernel}")
    oh, ow = (pool_output_size(s, k, st, p) for s, k, st, p in zip((h, w), kernel, stride, pad))
    if oh < 1 or ow < 1:
        raise ModelError(f"layer '{name}': window {kernel} does not fit the padded {h}x{w} input")
    return (o, oh, ow)


def _check_layer(model: IntegerModel, layer: Layer) -> None:
    name = layer.name
    if isinstance(layer, MacLayer):
        check_bits(layer.weight_bits, f"layer '{name}' weights")
        lo, hi = signed_narrow_range(layer.weight_bits)
        if layer.weight.size and (layer.weight.min() < lo or layer.weight.max() > hi):
            raise ModelError(
                f"layer '{name}': weights [{layer.weight.min()}, {layer.weight.max()}] "
                f"leave the {layer.weight_bits}-bit grid [{lo}, {hi}]"
            )
        o = layer.out_channels
        if layer.bias.shape != (o,) or layer.weight_scale.shape != (o,):
            raise ModelError(f"layer '{name}': bias and weight_scale need shape ({o},)")
        if layer.bias.min() < INT32[0] or layer.bias.max() > INT32[1]:
            raise ModelError(f"layer '{name}': bias leaves int32")
        layer.requant.check(name, o)
    elif isinstance(layer, (AvgPool, GlobalAvgPool)):
        layer.requant.check(name, model.shape(layer.input)[0])
    elif isinstance(layer, Add):
        check_multipliers(name, np.array(layer.multipliers))
        check_shifts(name, np.array([layer.shift]))


def live_layers(model: IntegerModel) -> list[Layer]:
    """The layers the output depends on, in model order (generators leave the others out)."""
    needed = {model.output.name}
    for layer in reversed(model.layers):
        if layer.name in needed:
            needed.update(layer.inputs)
    return [layer for layer in model.layers if layer.name in needed]


def pool_window(model: IntegerModel, layer: AvgPool | GlobalAvgPool) -> tuple[int, int]:
    return model.shape(layer.input)[1:] if isinstance(layer, GlobalAvgPool) else layer.kernel


def accumulator_analysis(model: IntegerModel, layer: Layer) -> AccumulatorAnalysis:
    """Prove both accumulator forms of a MAC or average-pool layer fit; refuse otherwise."""
    g = model.grid(layer.inputs[0])
    if isinstance(layer, MacLayer):
        rows, bias = layer.weight_rows(), layer.bias
    elif isinstance(layer, (AvgPool, GlobalAvgPool)):
        kh, kw = pool_window(model, layer)
        rows = np.ones((model.shape(layer.input)[0], kh * kw), dtype=np.int64)
        bias = np.zeros(rows.shape[0], dtype=np.int64)
    else:
        raise TypeError(f"{type(layer).__name__} has no accumulator")
    products = mac_bounds(rows, np.zeros_like(bias), g.lo - g.zero_point, g.hi - g.zero_point)
    subtract_first = products.union(Bounds(products.lo + bias, products.hi + bias))
    folded = mac_bounds(rows, bias - g.zero_point * rows.sum(axis=1), g.lo, g.hi)
    check_width(layer.name, "subtract-first (ONNX)", subtract_first, MAX_ACC_BITS)
    check_width(layer.name, "folded (HLS)", folded, MAX_ACC_BITS)
    final = Bounds(products.lo + bias, products.hi + bias)
    return AccumulatorAnalysis(subtract_first, folded, final.magnitude)
