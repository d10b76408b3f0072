"""Random but valid integer models, for tests, benchmarks and demos.

Every builder takes a ``numpy.random.Generator`` and returns an :class:`IntegerModel`
that passes :meth:`IntegerModel.validate`. Requantization multipliers are chosen so the
outputs spread over the grid (``shift`` from the accumulator's typical size) unless the
caller asks for fully random ``(M, n)``; zero points can be pinned to the grid's extremes
to stress the subtract-first and folded forms.

>>> m = cnn(np.random.default_rng(0))
>>> [type(l).__name__ for l in m.layers][:3]
['Input', 'Conv', 'MaxPool']
"""

from __future__ import annotations

import numpy as np

from exporters import integer_model as im
from exporters.grid import Grid, signed_narrow_range
from exporters.requant import MULTIPLIER_BITS, quantize_multiplier, quantize_multipliers


class Builder:
    """Appends layers with random integers to a growing model.

    ``zero_points``: "random" (anywhere in the grid), "extreme" (0 or 2^b-1), "zero".
    ``random_requant``: draw (M, n) uniformly instead of scaling to the accumulator.
    ``power_of_two``: every scale a power of two and every zero point 0 (hls4ml-exact mode).
    """

    def __init__(self, rng: np.random.Generator, shape, input_bits: int = 8, zero_points: str = "random",
                 random_requant: bool = False, power_of_two: bool = False) -> None:
        self.rng = rng
        self.zero_points = "zero" if power_of_two else zero_points
        self.random_requant = random_requant
        self.power_of_two = power_of_two
        self.layers: list[im.Layer] = [im.Input("input_q", tuple(shape), Grid(self._scale(), 0, input_bits, True))]
        self._model = im.IntegerModel(self.layers)

    # -- helpers -------------------------------------------------------------------
    def _scale(self) -> float:
        if self.power_of_two:
            return float(2.0 ** self.rng.integers(-8, 0))
        return float(self.rng.uniform(0.01, 0.2))

    def grid(self, bits: int, signed: bool = False, relu: bool = False) -> Grid:
        if signed:
            return Grid(self._scale(), 0, bits, True)
        hi = (1 << bits) - 1
        if relu and self.zero_points == "extreme":  # a ReLU grid with z = 2^b-1 would be constant
            return Grid(self._scale(), 0, bits, False)
        zp = {"random": lambda: int(self.rng.integers(0, hi + 1)),
              "extreme": lambda: int(self.rng.choice([0, hi])),
              "zero": lambda: 0}[self.zero_points]()
        return Grid(self._scale(), zp, bits, False)

    def shape(self, name: str) -> tuple[int, ...]:
        self._model.invalidate()
        return self._model.shape(name)

    def in_grid(self, name: str) -> Grid:
        self._model.invalidate()
        return self._model.grid(name)

    def _name(self, kind: str) -> str:
        return f"{kind}{len(self.layers)}"

    def _requant(self, rows: np.ndarray, x: Grid, out: Grid, relu: bool) -> im.Requant:
        c = rows.shape[0]
        if self.random_requant:
            m = self.rng.integers(1, 1 << MULTIPLIER_BITS, c)
            n = self.rng.integers(0, 40, c)
            return im.Requant(m, n, out, relu)
        # typical |acc| ~ sqrt(sum w^2) * spread of (x - z); aim its image at a quarter of the grid
        spread = max(x.hi - x.lo, 1) / 2
        typical = np.sqrt((rows.astype(np.float64) ** 2).sum(axis=1)) * spread + 1
        m = self.rng.integers(1 << (MULTIPLIER_BITS - 1), 1 << MULTIPLIER_BITS, c)
        target = max(out.hi - out.lo, 1) / 4
        n = np.ceil(np.log2(typical * m / target)).astype(np.int64) + self.rng.integers(-1, 2, c)
        return im.Requant(m, np.clip(n, 0, 60), out, relu)

    def _weights(self, shape, bits: int, density: float = 1.0) -> np.ndarray:
        lo, hi = signed_narrow_range(bits)
        w = self.rng.integers(lo, hi + 1, shape)
        if density < 1.0:
            w = w * (self.rng.random(shape) < density)
        if self.rng.random() < 0.3:  # sometimes pin weights at the grid's extremes
            w = np.where(self.rng.random(shape) < 0.5, lo, hi) * (w != 0)
        return w

    def add(self, layer: im.Layer) -> str:
        self.layers.append(layer)
        return layer.name

    # -- layers --------------------------------------------------------------------
    def _rank(self, src: str) -> int:
        """Spatial axes of a map: 2 for (C, H, W), 1 for (C, L)."""
        return len(self.shape(src)) - 1

    def conv(self, src: str, out_channels: int, kernel: int = 3, stride: int = 1, padding: int = 1,
             groups: int = 1, weight_bits: int = 8, act_bits: int = 8, relu: bool = True, signed_out: bool = False,
             density: float = 1.0, dilation: int = 1) -> str:
        """A square (2-D) or 1-D convolution, by the rank of ``src``."""
        c = self.shape(src)[0]
        w = self._weights((out_channels, c // groups, *(kernel,) * self._rank(src)), weight_bits, density)
        x = self.in_grid(src)
        bias = self.rng.integers(-(1 << 12), 1 << 12, out_channels)
        out = self.grid(act_bits, signed_out, relu)
        rq = self._requant(w.reshape(out_channels, -1), x, out, relu)
        return self.add(im.Conv(self._name("conv"), src, w, bias, weight_bits, self.rng.uniform(0.001, 0.05, out_channels),
                                rq, stride=stride, padding=padding, groups=groups, dilation=dilation))

    def linear(self, src: str, out_features: int, weight_bits: int = 8, act_bits: int = 8, relu: bool = True,
               signed_out: bool = False, density: float = 1.0) -> str:
        (f,) = self.shape(src)
        w = self._weights((out_features, f), weight_bits, density)
        x = self.in_grid(src)
        out = self.grid(act_bits, signed_out, relu)
        rq = self._requant(w, x, out, relu)
        return self.add(im.Linear(self._name("fc"), src, w, self.rng.integers(-(1 << 12), 1 << 12, out_features),
                                  weight_bits, self.rng.uniform(0.001, 0.05, out_features), rq))

    def maxpool(self, src: str, kernel: int = 2, stride: int | None = None, padding: int = 0,
                ceil_mode: bool = False) -> str:
        rank = self._rank(src)
        stride = None if stride is None else (stride,) * rank
        return self.add(im.MaxPool(self._name("maxpool"), src, (kernel,) * rank, stride, (padding,) * rank, ceil_mode))

    def _pool_requant(self, src: str, window: int, act_bits: int) -> im.Requant:
        c = self.shape(src)[0]
        return self._requant(np.ones((c, window), np.int64), self.in_grid(src), self.grid(act_bits), False)

    def avgpool(self, src: str, kernel: int = 2, stride: int | None = None, padding: int = 0, act_bits: int = 8,
                ceil_mode: bool = False, count_include_pad: bool = True) -> str:
        """Average pooling; where edge windows count fewer taps (ceil mode, ``count_include_pad=False``) the
        channels share one (M, n) and each count ``k`` gets the full window's multiplier times ``K / k``
        (random ones with ``random_requant``)."""
        rank = self._rank(src)
        taps = kernel ** rank
        rq = self._pool_requant(src, taps, act_bits)
        layer = im.AvgPool(self._name("avgpool"), src, (kernel,) * rank, None if stride is None else (stride,) * rank,
                           (padding,) * rank, rq, ceil_mode, count_include_pad)
        self.add(layer)
        self._model.invalidate()
        if layer.divides_by_count(self._model):
            m, n = int(rq.multiplier[0]), int(rq.shift[0])
            rq.multiplier, rq.shift = np.full_like(rq.multiplier, m), np.full_like(rq.shift, n)
            if self.random_requant:
                pairs = [(int(self.rng.integers(1, 1 << MULTIPLIER_BITS)), int(self.rng.integers(0, 40)))
                         for _ in range(taps - 1)]
            else:
                pairs = [quantize_multiplier(min(m * taps / (k * 2.0 ** n), 2.0 ** 15)) for k in range(1, taps)]
            layer.partial_multipliers = tuple(p[0] for p in pairs)
            layer.partial_shifts = tuple(p[1] for p in pairs)
        return layer.name

    def global_avgpool(self, src: str, act_bits: int = 8) -> str:
        window = int(np.prod(self.shape(src)[1:]))
        return self.add(im.GlobalAvgPool(self._name("gap"), src, self._pool_requant(src, window, act_bits)))

    def residual_add(self, a: str, b: str, act_bits: int = 8, relu: bool = True) -> str:
        if self.random_requant:
            m = self.rng.integers(1, 1 << MULTIPLIER_BITS, 2)
            n = int(self.rng.integers(0, 40))
        else:
            m = self.rng.integers(1 << (MULTIPLIER_BITS - 2), 1 << MULTIPLIER_BITS, 2)
            n = MULTIPLIER_BITS
        return self.add(im.Add(self._name("add"), a, b, m, n, self.grid(act_bits, relu=relu), relu))

    def flatten(self, src: str) -> str:
        return self.add(im.Flatten(self._name("flatten"), src))

    def concat(self, sources, act_bits: int = 8, relu: bool = False, copy_first: bool = False) -> str:
        """Concat onto a fresh grid: ``(M_i, n_i)`` from the scale ratios ``s_i / s_y`` (random with
        ``random_requant``); ``copy_first`` puts the output on the first input's grid (copied)."""
        sources = list(sources)
        out = self.in_grid(sources[0]) if copy_first else self.grid(act_bits, relu=relu)
        if self.random_requant:
            m = self.rng.integers(1, 1 << MULTIPLIER_BITS, len(sources))
            n = self.rng.integers(0, 40, len(sources))
        else:
            m, n = quantize_multipliers([self.in_grid(src).scale / out.scale for src in sources])
        if copy_first:
            m[0], n[0] = 1 << (MULTIPLIER_BITS - 1), MULTIPLIER_BITS - 1
        return self.add(im.Concat(self._name("concat"), sources, m, n, out, relu and not copy_first))

    def lookup(self, src: str, act_bits: int = 8, signed_out: bool = False, function=None) -> str:
        """An elementwise function as a table onto a fresh grid: ``function`` (float64 reals ->
        float64 reals) tabulated by the contract's rule, or, without one, random integers."""
        g, out = self.in_grid(src), self.grid(act_bits, signed_out)
        if function is None:
            table, what = self.rng.integers(out.lo, out.hi + 1, g.hi - g.lo + 1), "random"
        else:
            table, what = im.tabulate(function, g, out), getattr(function, "__name__", "function")
        return self.add(im.Lookup(self._name("lookup"), src, table, out, what))

    def clamp(self, name: str) -> str:
        """Fuse a random integer clamp containing the zero point (a ReLU6 / hardtanh) into the
        output of the requantizing layer ``name``."""
        g = self.in_grid(name)
        bounds = (int(self.rng.integers(g.lo, g.zero_point + 1)), int(self.rng.integers(g.zero_point, g.hi + 1)))
        if not self._model.layer(name).fuse_clamp(bounds):
            raise ValueError(f"layer '{name}' has no requantizer to clamp")
        return name

    def upsample(self, src: str, factor=2) -> str:
        return self.add(im.Upsample(self._name("upsample"), src, factor))

    def build(self, name: str = "example") -> im.IntegerModel:
        model = im.IntegerModel(list(self.layers), name=name)
        model.validate()
        return model


def mlp(rng, features=(16, 32, 10), weight_bits=8, act_bits=8, **kw) -> im.IntegerModel:
    b = Builder(rng, (features[0],), **kw)
    x = b.layers[0].name
    for i, f in enumerate(features[1:]):
        last = i == len(features) - 2
        x = b.linear(x, f, weight_bits, act_bits, relu=not last, signed_out=last)
    return b.build("mlp")


def cnn(rng, shape=(1, 12, 12), channels=(4, 8), classes=5, weight_bits=8, act_bits=8, **kw) -> im.IntegerModel:
    b = Builder(rng, shape, **kw)
    x = b.layers[0].name
    for c in channels:
        x = b.conv(x, c, weight_bits=weight_bits, act_bits=act_bits)
        x = b.maxpool(x)
    x = b.flatten(x)
    x = b.linear(x, classes, weight_bits, act_bits, relu=False, signed_out=True)
    return b.build("cnn")


def depthwise_separable(rng, shape=(3, 10, 10), channels=6, classes=4, weight_bits=8, act_bits=8,
                        **kw) -> im.IntegerModel:
    b = Builder(rng, shape, **kw)
    x = b.conv(b.layers[0].name, channels, weight_bits=weight_bits, act_bits=act_bits)
    x = b.conv(x, channels, groups=channels, weight_bits=weight_bits, act_bits=act_bits)  # depthwise
    x = b.conv(x, channels * 2, kernel=1, padding=0, weight_bits=weight_bits, act_bits=act_bits)  # pointwise
    x = b.global_avgpool(x, act_bits)
    x = b.linear(x, classes, weight_bits, act_bits, relu=False, signed_out=True)
    return b.build("depthwise_separable")


def residual(rng, shape=(2, 8, 8), channels=4, classes=3, weight_bits=8, act_bits=8, **kw) -> im.IntegerModel:
    b = Builder(rng, shape, **kw)
    stem = b.conv(b.layers[0].name, channels, weight_bits=weight_bits, act_bits=act_bits)
    x = b.conv(stem, channels, weight_bits=weight_bits, act_bits=act_bits)
    x = b.conv(x, channels, weight_bits=weight_bits, act_bits=act_bits, relu=False)
    x = b.residual_add(stem, x, act_bits)
    x = b.avgpool(x, 2, act_bits=act_bits)
    x = b.flatten(x)
    x = b.linear(x, classes, weight_bits, act_bits, relu=False, signed_out=True)
    return b.build("residual")


def unet(rng, shape=(2, 8, 8), channels=4, classes=3, weight_bits=8, act_bits=8, **kw) -> im.IntegerModel:
    """A small U-Net: conv -> pool -> conv -> upsample -> concat with the skip -> conv -> pool -> linear."""
    b = Builder(rng, shape, **kw)
    skip = b.conv(b.layers[0].name, channels, weight_bits=weight_bits, act_bits=act_bits)
    x = b.maxpool(skip)
    x = b.conv(x, channels * 2, weight_bits=weight_bits, act_bits=act_bits)
    x = b.upsample(x, 2)
    x = b.concat([skip, x], act_bits)
    x = b.conv(x, channels, weight_bits=weight_bits, act_bits=act_bits)
    x = b.maxpool(x)
    x = b.flatten(x)
    x = b.linear(x, classes, weight_bits, act_bits, relu=False, signed_out=True)
    return b.build("unet")


def inverted_residual(rng, shape=(3, 8, 8), channels=4, expand=2, classes=3, weight_bits=8, act_bits=8,
                      **kw) -> im.IntegerModel:
    """A MobileNetV2-style block with a MobileNetV3-style activation: stem conv + clamp (ReLU6),
    1x1 expand + clamp, depthwise 3x3 + clamp, 1x1 linear projection, residual add, a lookup
    (a random table: any function), global pool, linear."""
    b = Builder(rng, shape, **kw)
    stem = b.clamp(b.conv(b.layers[0].name, channels, weight_bits=weight_bits, act_bits=act_bits, relu=False))
    x = b.clamp(b.conv(stem, channels * expand, kernel=1, padding=0, weight_bits=weight_bits, act_bits=act_bits))
    x = b.clamp(b.conv(x, channels * expand, groups=channels * expand, weight_bits=weight_bits, act_bits=act_bits))
    x = b.conv(x, channels, kernel=1, padding=0, weight_bits=weight_bits, act_bits=act_bits, relu=False)
    x = b.residual_add(stem, x, act_bits, relu=False)
    x = b.lookup(x, act_bits)
    x = b.global_avgpool(x, act_bits)
    x = b.linear(x, classes, weight_bits, act_bits, relu=False, signed_out=True)
    return b.build("inverted_residual")


def time_series(rng, shape=(1, 40), channels=(8, 6), classes=4, weight_bits=8, act_bits=8, **kw) -> im.IntegerModel:
    """A 1-D CNN on a time series ``(C, L)``: a dilated Conv1d, a ceil-mode MaxPool1d, a Conv1d, an AvgPool1d
    whose edge windows count real samples only (``count_include_pad=False``), the global pool, a linear."""
    b = Builder(rng, shape, **kw)
    x = b.conv(b.layers[0].name, channels[0], kernel=5, padding=0, dilation=2, weight_bits=weight_bits,
               act_bits=act_bits)
    x = b.maxpool(x, 2, ceil_mode=True)
    x = b.conv(x, channels[1], kernel=3, padding=1, weight_bits=weight_bits, act_bits=act_bits)
    x = b.avgpool(x, 3, stride=2, padding=1, act_bits=act_bits, count_include_pad=False)
    x = b.global_avgpool(x, act_bits)
    x = b.linear(x, classes, weight_bits, act_bits, relu=False, signed_out=True)
    return b.build("time_series")


def dilated(rng, shape=(2, 11, 11), channels=4, classes=3, weight_bits=8, act_bits=8, **kw) -> im.IntegerModel:
    """Dilated convolution and ceil-mode pooling in 2-D: conv (dilation 2), ceil-mode MaxPool, a ceil-mode
    AvgPool without counting padding, flatten, linear."""
    b = Builder(rng, shape, **kw)
    x = b.conv(b.layers[0].name, channels, kernel=3, padding=2, dilation=2, weight_bits=weight_bits,
               act_bits=act_bits)
    x = b.maxpool(x, 2, ceil_mode=True)
    x = b.avgpool(x, 3, stride=2, padding=1, act_bits=act_bits, ceil_mode=True, count_include_pad=False)
    x = b.flatten(x)
    x = b.linear(x, classes, weight_bits, act_bits, relu=False, signed_out=True)
    return b.build("dilated")


EXAMPLES = {"mlp": mlp, "cnn": cnn, "depthwise_separable": depthwise_separable, "residual": residual, "unet": unet,
            "inverted_residual": inverted_residual, "time_series": time_series, "dilated": dilated}


def random_inputs(rng, model: im.IntegerModel, batch: int = 4) -> np.ndarray:
    """Float inputs spanning the input grid, with exact ties (k + 1/2) * scale mixed in."""
    g = model.input.grid
    shape = (batch, *model.input.shape)
    x = rng.uniform(g.lo - 2, g.hi + 2, shape)
    ties = rng.random(shape) < 0.1
    x = np.where(ties, np.floor(x) + 0.5, x)
    return (x * g.scale).astype(np.float32)
