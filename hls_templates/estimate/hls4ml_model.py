"""Latency and resources of an hls4ml ``io_parallel`` network (strategy Latency), from its
weights and precisions, built from :mod:`.primitives`.

Calibrated (tests/data/calibration, docs/hls.md): Dense, ReLU, softmax. The kernel modelled is
hls4ml's ``nnet::dense_latency`` (0.7 to 1.3): the unrolled products ``mult[i][j] = data[i] *
weights[i][j]`` (full precision, then cast to ``accum_t``), the accumulation ``acc[j] = bias[j] +
sum_i mult[i][j]`` and the cast to ``res_t``, pipelined at ``II = reuse_factor`` under
``ALLOCATION mul limit = ceil(n_in n_out / R) - floor(n_zeros / R)`` (:func:`.mac.mac_module`);
``nnet::relu``; ``nnet::softmax_stable``. Each layer is its own pipelined module; the top chains
them (:func:`.primitives.chain_graph`).

**Extrapolated beyond the calibration data** (no report of these was seen; rows say
``extrapolated: True``): ``Conv2dLayer`` (``conv_2d_latency_cl`` with ParallelizationFactor 1:
one output pixel per iteration of a loop pipelined at ``II = R`` over ``out_h * out_w``
partitions, that pixel's products and trees built as a Dense over its window, and
``fill_buffer`` gathering each window value from a ``n_partitions``:1 multiplexer),
``PoolLayer`` (``pooling2d_cl``: every output unrolled; max a chain of compare-selects, average
an adder tree and a cast), ``FlattenLayer`` (free) and ``AddLayer`` (an adder and a cast per
element). With a convolution of more than one partition hls4ml makes the top a DATAFLOW region
(its ``SetPipelineStyle`` pass): then every layer is a process, latency the sum along the path of
``trips * R + depth - 1``, frame interval the largest, and each array between processes a
ping-pong pair of registers — the rule Foldline's parallel architecture follows at reuse > 1.

docs/hls.md "The primitive model and its calibration" gives every rule with its data point and
the measured error; the estimate is an estimate, not a synthesis result.

>>> rng = np.random.default_rng(0)
>>> t = FixedType(16, 6)
>>> net = Hls4mlNetwork(t, 4, (DenseLayer("fc1", rng.normal(0, 0.5, (4, 3)), np.zeros(3), t, t, t, t),
...                             Activation("relu1", "relu", t)))
>>> e = estimate_hls4ml(net)
>>> [row["name"] for row in e.layers], e.totals["ii"]
(['fc1', 'relu1'], 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from exporters.errors import FoldlineError
from exporters.layers.window import pool_output_size
from hls_templates.estimate import primitives as prim
from hls_templates.estimate.mac import OutputStage, constant_width, mac_module, pipelined_top, term_width
from hls_templates.estimate.primitives import FixedType


class Hls4mlEstimateError(FoldlineError):
    """A network or configuration the hls4ml estimate does not cover (names the culprit)."""


def as_type(t) -> FixedType:
    """A :class:`FixedType`, an hls4ml precision string, or ``(width, integer_bits, signed)``."""
    if isinstance(t, FixedType):
        return t
    if isinstance(t, str):
        return FixedType.parse(t)
    try:
        width, integer, signed = t
        return FixedType(int(width), int(integer), bool(signed))
    except (TypeError, ValueError):
        raise Hls4mlEstimateError(f"precision {t!r}: expected a FixedType, 'fixed<W,I>' "
                                  "or (width, integer, signed)") from None


@dataclass(frozen=True)
class DenseLayer:
    """``weight`` is ``(n_in, n_out)`` reals (hls4ml's layout), ``bias`` ``(n_out,)``."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    weight_type: FixedType
    bias_type: FixedType
    accum_type: FixedType
    result_type: FixedType
    reuse_factor: int = 1
    source: str | None = None  # the layer it reads (None: the one before it)

    def __post_init__(self) -> None:
        weight, bias = np.asarray(self.weight, np.float64), np.asarray(self.bias, np.float64).ravel()
        if weight.ndim != 2 or bias.size != weight.shape[1]:
            raise Hls4mlEstimateError(f"layer '{self.name}': weight must be (n_in, n_out) and bias (n_out,), "
                                      f"got {weight.shape} and {bias.shape}")
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "bias", bias)
        _check_reuse(self)
        _set_types(self, ("weight_type", "bias_type", "accum_type", "result_type"))


def _check_reuse(layer) -> None:
    r = layer.reuse_factor
    if isinstance(r, bool) or int(r) != r or r < 1:
        raise Hls4mlEstimateError(f"layer '{layer.name}': reuse factor {r!r} must be an integer >= 1")
    object.__setattr__(layer, "reuse_factor", int(r))


def _set_types(layer, names) -> None:
    for name in names:
        object.__setattr__(layer, name, as_type(getattr(layer, name)))


@dataclass(frozen=True)
class Conv2dLayer:
    """``weight`` ``(kh, kw, C, F)`` reals (hls4ml's layout), ``bias`` ``(F,)``; ``in_shape``
    ``(H, W, C)``. Extrapolated (module docstring)."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    in_shape: tuple
    stride: tuple
    padding: tuple
    weight_type: FixedType
    bias_type: FixedType
    accum_type: FixedType
    result_type: FixedType
    reuse_factor: int = 1
    source: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", np.asarray(self.weight, np.float64))
        object.__setattr__(self, "bias", np.asarray(self.bias, np.float64).ravel())
        if self.weight.ndim != 4 or self.weight.shape[2] != self.in_shape[2] or self.bias.size != self.weight.shape[3]:
            raise Hls4mlEstimateError(f"layer '{self.name}': weight must be (kh, kw, C, F) with C = {self.in_shape[2]} "
                                      f"and bias (F,), got {self.weight.shape} and {self.bias.shape}")
        _check_reuse(self)
        _set_types(self, ("weight_type", "bias_type", "accum_type", "result_type"))

    @property
    def out_shape(self) -> tuple[int, int, int]:
        kh, kw, _, f = self.weight.shape
        return _window_out(self.in_shape, (kh, kw), self.stride, self.padding) + (f,)


@dataclass(frozen=True)
class PoolLayer:
    """``kind`` ``max`` or ``avg``; ``in_shape`` ``(H, W, C)``, no padding. Extrapolated."""

    name: str
    kind: str
    in_shape: tuple
    kernel: tuple
    stride: tuple
    accum_type: FixedType
    result_type: FixedType
    reuse_factor: int = 1
    source: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("max", "avg"):
            raise Hls4mlEstimateError(f"layer '{self.name}': pooling '{self.kind}' (max or avg)")
        _check_reuse(self)
        _set_types(self, ("accum_type", "result_type"))

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return _window_out(self.in_shape, self.kernel, self.stride, (0, 0)) + (self.in_shape[2],)


def _window_out(in_shape, kernel, stride, padding) -> tuple[int, int]:
    return tuple(pool_output_size(in_shape[i], kernel[i], stride[i], padding[i]) for i in (0, 1))


@dataclass(frozen=True)
class FlattenLayer:
    """A reshape: free in io_parallel. Extrapolated."""

    name: str
    source: str | None = None


@dataclass(frozen=True)
class AddLayer:
    """The element-wise sum of the layers named ``inputs``, in ``accum_type``, cast to ``result_type``."""

    name: str
    inputs: tuple
    accum_type: FixedType
    result_type: FixedType

    def __post_init__(self) -> None:
        _set_types(self, ("accum_type", "result_type"))


@dataclass(frozen=True)
class Activation:
    """``kind`` is ``relu`` or ``softmax``."""

    name: str
    kind: str
    result_type: FixedType
    source: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "result_type", as_type(self.result_type))


@dataclass(frozen=True)
class Hls4mlNetwork:
    """Layers after an input of ``n_inputs`` values of ``input_type`` (a map: ``input_shape``
    ``(H, W, C)``); each reads the layer before it unless it names its ``source`` (an Add names
    both inputs; ``"input"`` is the network's input)."""

    input_type: FixedType
    n_inputs: int
    layers: tuple
    clock_ns: float = 5.0
    uncertainty_ns: float | None = None
    part: str = "xcu250-figd2104-2L-e"
    input_shape: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_type", as_type(self.input_type))
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.clock_ns > 0:
            raise Hls4mlEstimateError(f"clock period {self.clock_ns!r} ns must be positive")


@dataclass
class Hls4mlEstimate:
    """``layers``: one dict per layer (``name, kind, latency_cycles, ii, dsp, lut, ff, bram``, the
    delays of its cycles and how its products were built); ``top``: the top function's own
    registers and muxes; ``totals``: the whole design. ``dense_relu_latency`` counts the cycles
    before the softmax starts (all of them when there is none)."""

    layers: list[dict]
    top: dict
    totals: dict
    notes: list[str] = field(default_factory=list)

    def layer(self, name: str) -> dict:
        for row in self.layers:
            if row["name"] == name:
                return row
        raise KeyError(name)

    def to_dict(self) -> dict:
        """Plain data for a strict JSON report."""
        return {"layers": [dict(row) for row in self.layers], "top": dict(self.top), "totals": dict(self.totals),
                "notes": list(self.notes)}


# softmax_stable with 10-bit tables (exp ap_fixed<18,8>, inv ap_fixed<18,4>) on 5 classes is not
# modelled from primitives; a fixed cost from the reports: 4 cycles (A, B; C took 3), one DSP per
# class and 4 BRAM18 (all three), LUT and FF the mean of the two builds seen (664/236 in A and B,
# 484/144 in C: its input carries fewer live bits). Delays of its first and last cycle: 3.97, 3.69 ns.
SOFTMAX_LATENCY = 4
SOFTMAX_BRAM18 = 4
SOFTMAX_LUT_PER_CLASS = (664 + 484) / 2 / 5
SOFTMAX_FF_PER_CLASS = (236 + 144) / 2 / 5
SOFTMAX_FIRST_LAST_NS = (3.97, 3.69)


def hls4ml_weight_integers(values, t: FixedType) -> np.ndarray:
    """The integers hls4ml's weights become: printed with ``frac`` decimals (``{:.Nf}``), then
    converted by ap_fixed's default truncation (the calibration weights, A and B, are floats)."""
    printed = np.array([float(f"{x:.{max(t.frac, 0)}f}") for x in np.asarray(values, np.float64).ravel()])
    return t.quantize(printed).reshape(np.shape(values))


def _dense(layer: DenseLayer, x: FixedType, live: np.ndarray, part: prim.Part,
           budget: float) -> tuple[dict, np.ndarray]:
    """One ``dense_latency`` module (:func:`.mac.mac_module`): products, one adder tree per output
    with a nonzero weight (the others are constants and cost nothing, here and in the layers they
    feed), the cast, and at reuse > 1 the multipliers shared under hls4ml's limit (``n_zeros``
    counted on the weights as given, as hls4ml counts them)."""
    w_int = hls4ml_weight_integers(layer.weight, layer.weight_type)
    b_int = hls4ml_weight_integers(layer.bias, layer.bias_type)
    acc, res, reuse = layer.accum_type, layer.result_type, layer.reuse_factor
    w_live = np.where(live[:, None], w_int, 0)
    rows, cols = np.nonzero(w_live)
    values = w_live[rows, cols]
    drop = max(x.frac + layer.weight_type.frac - acc.frac, 0)      # LSBs the cast to accum_t drops
    bias_acc = b_int * 2 ** max(acc.frac - layer.bias_type.frac, 0)
    cast_lut, cast_ns = prim.cast_cost(acc, res, part)
    n_in, n_out = w_int.shape
    limit = math.ceil(n_in * n_out / reuse) - math.floor(int(np.sum(layer.weight == 0)) / reuse)
    m = mac_module(cols, rows, values, n_out, n_in, x.width, term_width(x.width, x.signed, values, acc.width, drop),
                   constant_width(bias_acc, acc.width), acc.width,
                   OutputStage(cast_lut, 0, 0, (cast_ns,) if cast_ns else (), res.width), budget, part, reuse, limit)
    row = dict(name=layer.name, kind="dense", latency_cycles=m.stages, ii=reuse, dsp=m.dsp, lut=m.lut, ff=m.ff,
               bram=0, delays_ns=[round(d, 3) for d in m.delays], outputs=m.outputs, out_width=res.width,
               mul_ops=m.mul_ops, dsp_products=m.dsp_products, multiplier_limit=limit, products=m.products)
    return row, m.live


def _relu(act: Activation, x: FixedType, live: np.ndarray, part: prim.Part) -> dict:
    lut, ns = prim.relu_cost(x, act.result_type, part)
    n = int(live.sum())
    return dict(name=act.name, kind="relu", latency_cycles=0, ii=1, dsp=0, lut=lut * n, ff=0, bram=0,
                delays_ns=[round(ns, 3)], outputs=n, out_width=act.result_type.width)


def _softmax(act: Activation, n: int, budget: float) -> dict:
    first, last = SOFTMAX_FIRST_LAST_NS
    return dict(name=act.name, kind="softmax", latency_cycles=SOFTMAX_LATENCY, ii=1, dsp=n,
                lut=round(SOFTMAX_LUT_PER_CLASS * n), ff=round(SOFTMAX_FF_PER_CLASS * n), bram=SOFTMAX_BRAM18,
                delays_ns=[first] + [budget] * (SOFTMAX_LATENCY - 1) + [last], outputs=n,
                out_width=act.result_type.width, fixed_cost=True)


def _conv(layer: Conv2dLayer, x: FixedType, part: prim.Part, budget: float) -> dict:
    """``conv_2d_latency_cl``, ParallelizationFactor 1 (extrapolated): one output pixel's Dense over
    its window per iteration, ``n_partitions = out_h * out_w`` iterations at ``II = R``, the window
    gathered by ``fill_buffer`` (one ``n_partitions``:1 mux and a register per tap)."""
    kh, kw, c, f = layer.weight.shape
    w_int = hls4ml_weight_integers(layer.weight, layer.weight_type).reshape(kh * kw * c, f)
    dense = DenseLayer(layer.name, w_int * 2.0 ** -layer.weight_type.frac, layer.bias, layer.weight_type,
                       layer.bias_type, layer.accum_type, layer.result_type, layer.reuse_factor)
    row, _ = _dense(dense, x, np.ones(kh * kw * c, dtype=bool), part, budget)
    oh, ow, _ = layer.out_shape
    taps = kh * kw * c
    row.update(kind="conv2d", trips=oh * ow, outputs=oh * ow * f, extrapolated=True)
    if oh * ow > 1:
        row["lut"] += taps * prim.mux_lut(oh * ow)
        row["ff"] += taps * x.width
    return row


def _pool(layer: PoolLayer, x: FixedType, part: prim.Part, budget: float) -> dict:
    """``pooling2d_cl`` (extrapolated): every output unrolled; max: ``y = x[i] > y ? x[i] : y``, a
    chain of compare-selects; average: an adder tree of the window in ``accum_t``, the division by
    a power-of-two window a shift, the cast to ``res_t``."""
    oh, ow, c = layer.out_shape
    n, window = oh * ow * c, layer.kernel[0] * layer.kernel[1]
    res = layer.result_type
    if layer.kind == "max":
        step = prim.icmp_delay(x.width, part) + prim.SELECT_DELAY_NS * part.delay_scale
        cycles = prim.chain_ops(0.0, [step] * (window - 1), budget)
        lut = n * (window - 1) * (prim.icmp_lut(x.width) + prim.select_lut(x.width))
        ff = n * x.width * (len(cycles) - 1)
    else:
        acc = layer.accum_type
        trees = prim.adder_trees(np.zeros(n * window), np.full(n * window, x.width + 1), np.repeat(np.arange(n), window),
                                 n, acc.width, budget, part)
        cast_lut, cast_ns = prim.cast_cost(acc, res, part)
        cycles = prim.chain_ops(float(trees.tail_ns.max(initial=0.0)), [cast_ns], budget)
        cycles = [float(trees.head_ns.max(initial=0.0))] + [budget] * (int(trees.stage.max(initial=0)) - 1) + cycles \
            if trees.stage.max(initial=0) else cycles
        lut = int(trees.lut.sum()) + n * cast_lut
        ff = int(trees.reg_bits.sum()) + n * res.width * (len(cycles) - 1)
    return dict(name=layer.name, kind=f"{layer.kind}pool", latency_cycles=len(cycles) - 1, ii=layer.reuse_factor,
                dsp=0, lut=int(lut), ff=int(ff), bram=0, delays_ns=[round(d, 3) for d in cycles], outputs=n,
                out_width=res.width, extrapolated=True)


def _add(layer: AddLayer, x: FixedType, n: int, part: prim.Part, budget: float) -> dict:
    """``nnet::add`` (extrapolated): per element an adder in ``accum_t`` and the cast to ``res_t``."""
    acc, res = layer.accum_type, layer.result_type
    cast_lut, cast_ns = prim.cast_cost(acc, res, part)
    cycles = prim.chain_ops(0.0, [prim.add_delay(acc.width, part), cast_ns], budget)
    return dict(name=layer.name, kind="add", latency_cycles=len(cycles) - 1, ii=1, dsp=0,
                lut=n * (prim.add_lut(acc.width) + cast_lut), ff=n * acc.width * (len(cycles) - 1), bram=0,
                delays_ns=[round(d, 3) for d in cycles], outputs=n, out_width=res.width, extrapolated=True)


def _free(layer: FlattenLayer, n: int, width: int) -> dict:
    return dict(name=layer.name, kind="flatten", latency_cycles=0, ii=1, dsp=0, lut=0, ff=0, bram=0, delays_ns=[],
                outputs=n, out_width=width, free=True, extrapolated=True)


def _layer_row(layer, tensors: dict, src, part: prim.Part, budget: float):
    """One layer's row and its output (type, live mask) from its input tensor(s)."""
    x, live = tensors[src[0]]
    if isinstance(layer, DenseLayer):
        if np.shape(layer.weight)[0] != live.size:
            raise Hls4mlEstimateError(f"layer '{layer.name}': {np.shape(layer.weight)[0]} inputs, "
                                      f"its input gives {live.size}")
        row, out = _dense(layer, x, live, part, budget)
        return row, (layer.result_type, out)
    if isinstance(layer, Conv2dLayer):
        n = int(np.prod(layer.out_shape))
        return _conv(layer, x, part, budget), (layer.result_type, np.ones(n, dtype=bool))
    if isinstance(layer, PoolLayer):
        row = _pool(layer, x, part, budget)
        return row, (layer.result_type, np.ones(row["outputs"], dtype=bool))
    if isinstance(layer, FlattenLayer):
        return _free(layer, live.size, x.width), (x, live)
    if isinstance(layer, AddLayer):
        row = _add(layer, x, live.size, part, budget)
        return row, (layer.result_type, live | tensors[src[1]][1])
    if layer.kind == "relu":
        return _relu(layer, x, live, part), (layer.result_type, live)
    if layer.kind == "softmax":
        return _softmax(layer, live.size, budget), (layer.result_type, live)
    raise Hls4mlEstimateError(f"layer '{layer.name}': activation '{layer.kind}' is not modelled "
                              "(relu and softmax are)")


def estimate_hls4ml(net: Hls4mlNetwork) -> Hls4mlEstimate:
    """Per-layer and total latency, II, DSP, LUT, FF, BRAM18 of ``net`` (see the module doc)."""
    part = prim.part_for(net.part)
    budget = prim.cycle_budget(net.clock_ns, net.uncertainty_ns)
    tensors = {"input": (as_type(net.input_type), np.ones(int(net.n_inputs), dtype=bool))}
    rows, sources, previous = [], [], "input"
    for layer in net.layers:
        src = tuple(layer.inputs) if isinstance(layer, AddLayer) else (layer.source or previous,)
        missing = [s for s in src if s not in tensors]
        if missing:
            raise Hls4mlEstimateError(f"layer '{layer.name}': reads '{missing[0]}', which no earlier layer is")
        row, tensors[layer.name] = _layer_row(layer, tensors, src, part, budget)
        rows.append(row)
        sources.append(src)
        previous = layer.name
    input_bits = int(net.n_inputs) * as_type(net.input_type).width
    if any(row.get("trips", 1) > 1 for row in rows):
        return _dataflow_top(net, rows, sources, input_bits, part, budget)
    return _pipelined_top(net, rows, sources, input_bits, part, budget)


def _producers(rows: list[dict], sources) -> list[list[int]]:
    """For each row, the rows it reads (through free views); the network input is none."""
    index = {row["name"]: i for i, row in enumerate(rows)}
    resolved: list[list[int]] = []
    for row, src in zip(rows, sources):
        found = []
        for s in src:
            found += resolved[index[s]] if s in index and rows[index[s]].get("free") else ([index[s]] if s in index else [])
        resolved.append(sorted(set(found)))
    return resolved


def _pipelined_top(net, rows, sources, input_bits, part, budget) -> Hls4mlEstimate:
    """io_parallel without a multi-partition convolution: one PIPELINE top chaining the modules."""
    producers = _producers(rows, sources)
    chain = prim.chain_graph([row["delays_ns"] for row in rows], producers, budget)
    ii = max((row["ii"] for row in rows), default=1)
    top_lut, top_ff = pipelined_top(input_bits, chain.states, ii)
    for i, row in enumerate(rows):
        row["start_cycle"] = chain.starts[i]
        for k, wait in zip(producers[i], chain.waits[i]):       # outputs crossing cycle boundaries
            top_ff += wait * rows[k]["outputs"] * rows[k]["out_width"]
        if row["latency_cycles"] >= 1 and (row["kind"] == "softmax" or (ii > 1 and i > 0)):
            top_ff += 1                   # ap_start register of a multi-cycle instance
    softmax_at = next((chain.starts[i] for i, row in enumerate(rows) if row["kind"] == "softmax"), chain.states)
    return _result(net, rows, dict(lut=top_lut, ff=top_ff, dsp=0, bram=0), chain.states - 1, ii, softmax_at,
                   "pipeline", part, budget)


def _dataflow_top(net, rows, sources, input_bits, part, budget) -> Hls4mlEstimate:
    """A DATAFLOW top (extrapolated): each layer a process over complete arrays; latency the longest
    path of ``trips * R + depth - 1``; every array between processes two registers (ping-pong).
    A row's ``latency_cycles`` becomes its process's latency (``module_cycles`` keeps its module's)."""
    producers = _producers(rows, sources)
    done: list[int] = []
    top_lut, top_ff = pipelined_top(input_bits, 1, 1)
    for i, row in enumerate(rows):
        own = 0 if row.get("free") else row.get("trips", 1) * row["ii"] + row["latency_cycles"]
        row["module_cycles"], row["latency_cycles"] = row["latency_cycles"], own   # a process's latency
        start = max((done[k] for k in producers[i]), default=0)
        row["start_cycle"] = start
        done.append(start + own)
        if i < len(rows) - 1 and not row.get("free"):
            top_ff += 2 * row["outputs"] * row["out_width"]
    ii = max((row["latency_cycles"] for row in rows), default=1)
    return _result(net, rows, dict(lut=top_lut, ff=top_ff, dsp=0, bram=0), max(done, default=0), ii,
                   next((row["start_cycle"] for row in rows if row["kind"] == "softmax"), max(done, default=0)),
                   "dataflow", part, budget)


def _result(net, rows, top, latency, ii, softmax_at, style, part, budget) -> Hls4mlEstimate:
    totals = {m: sum(row[m] for row in rows) + top[m] for m in ("dsp", "lut", "ff", "bram")}
    totals.update(latency_cycles=latency, ii=ii, dense_relu_latency=softmax_at, top_style=style,
                  clock_ns=net.clock_ns, budget_ns=round(budget, 3), part=part.name, part_family=part.family,
                  part_calibrated=part.calibrated)
    notes = ["an estimate from the primitive model (docs/hls.md), not a synthesis result"]
    if not part.calibrated:
        notes.append(f"part {part.name}: outside the calibration (xcu250); delays and binding extrapolated")
    extra = sorted({row["kind"] for row in rows if row.get("extrapolated")})
    if extra:
        notes.append(f"{', '.join(extra)} and the {style} top: extrapolated beyond the calibration data "
                     "(Dense, ReLU, softmax in a pipelined top)")
    return Hls4mlEstimate(rows, top, totals, notes)


# ----------------------------------------------------------------------------- calibration folders

def _read_yaml(path: Path) -> dict:
    import yaml

    class _Loader(yaml.SafeLoader):
        """hls4ml writes tags such as ``!keras_model``: read them as plain strings."""

    _Loader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node))
    with open(path) as f:
        return yaml.load(f, Loader=_Loader)


def load_calibration_case(path) -> Hls4mlNetwork:
    """A calibration folder (``weights.npz`` + ``hls4ml_config.yml``, see its README) as an
    :class:`Hls4mlNetwork`: the Dense layers in the order of the ``<name>_weight`` arrays, a
    ``relu<k>`` after hidden layer ``k`` and a ``softmax`` after the last (the Keras names of
    the jet MLP), precisions from ``LayerName`` with the model's ``Precision`` as default."""
    folder = Path(path)
    try:
        cfg = _read_yaml(folder / "hls4ml_config.yml")
        weights = np.load(folder / "weights.npz")
    except OSError as e:
        raise Hls4mlEstimateError(f"calibration case '{folder}': {e.strerror or e}") from None
    hls = cfg.get("HLSConfig", {})
    model = hls.get("Model", {})
    names = cfg.get("LayerName") or hls.get("LayerName") or {}
    if cfg.get("IOType", "io_parallel") != "io_parallel" or model.get("Strategy", "Latency").lower() != "latency":
        raise Hls4mlEstimateError(f"calibration case '{folder}': only io_parallel with strategy Latency is modelled")

    def precision(layer: str, key: str) -> FixedType:
        spec = (names.get(layer) or {}).get("Precision", {})
        return FixedType.parse(spec.get(key, model["Precision"]) if isinstance(spec, dict) else spec)

    dense = [k[:-len("_weight")] for k in weights.files if k.endswith("_weight")]
    if not dense:
        raise Hls4mlEstimateError(f"calibration case '{folder}': weights.npz holds no '<layer>_weight' array")
    layers = []
    for k, name in enumerate(dense, start=1):
        reuse = int((names.get(name) or {}).get("ReuseFactor", model.get("ReuseFactor", 1)))
        layers.append(DenseLayer(name, weights[f"{name}_weight"], weights[f"{name}_bias"], precision(name, "weight"),
                                 precision(name, "bias"), precision(name, "accum"), precision(name, "result"), reuse))
        act = f"relu{k}" if k < len(dense) else "softmax"
        layers.append(Activation(act, "relu" if k < len(dense) else "softmax", precision(act, "result")))
    first = weights[f"{dense[0]}_weight"]
    return Hls4mlNetwork(precision(f"{dense[0]}_input", "result"), first.shape[0], tuple(layers),
                         float(cfg.get("ClockPeriod", 5.0)), None, str(cfg.get("Part", "xcu250-figd2104-2L-e")))
