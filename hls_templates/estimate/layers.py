"""Per-layer cost, derived from the loops of the HLS kernels in ``hls_templates/cpp/foldline``:
one rule per layer type, registered in :data:`COSTS`.

Notation: ``R`` the layer's reuse factor, ``b_x`` the input grid's bits, ``b_w`` the
declared weight bits, ``P`` the proven folded accumulator width
(:func:`exporters.integer_model.accumulator_analysis`), ``b_y`` the output grid's bits,
``nz`` the number of nonzero weights, ``nz[c]`` those of output channel ``c``.

**Multiply-accumulate and requantization** (``foldline_mac.h``, ``foldline_requant.h``): one
module of :func:`.mac.mac_module` per layer, from the primitives calibrated on real reports
(:mod:`.primitives`; docs/hls.md, "Foldline's kernels under the primitives"): the nonzero table
unrolled into products by literal weights (shared per tap and weight), one adder tree per output
with a weight (a channel without any is a constant and folds away), the requantizer
(:func:`.requant_stage.requant_stage`) chained after the slowest tree, registers where cycles
end, and at ``R > 1`` the ``mul`` operations beyond ``ALLOCATION mul limit = ceil(nz / R)``
sharing units. Its **depth** is its module's cycles (``stages + 1``); ``delays_ns`` the delay
of each, which the parallel top chains.

**Windows** (``foldline_window.h``; Conv, MaxPool, AvgPool, streaming; a 1-D layer is one row,
``H = kh = 1``): the loop runs over every padded position, ``Hp * Wp`` iterations at ``II = R``
(``Hp = H + pad_top + pad_bottom``, the bottom and right padding including ceil mode's end
padding); padding is generated, not read. A window spans ``sh = d_h (kh - 1) + 1`` rows and
``sw = d_w (kw - 1) + 1`` columns (dilation). Line buffers ``lines[sh - 1][Wp]`` of
``C * b_x``-bit pixels (partitioned by row: ``sh - 1`` memories of depth ``Wp``, see
:func:`.arith.memory_cost`; none when ``sh = 1``) and window registers ``kh * sw * C * b_x`` FFs
(each tap row keeps its ``sw`` columns). The first output leaves after ``(sh - 1) * Wp + sw``
iterations, the last ``pad_bottom * Wp + pad_right`` iterations after the last input pixel is read.

**Other stages**: MaxPool: a chain of ``window - 1`` compare-selects per channel
(:func:`.requant_stage.max_window`). AvgPool and the array GlobalAvgPool: the MAC rule on their
all-ones convolution; an AvgPool whose edge windows divide by their own count
(``counted`` in its config) has a requantizer whose ``M`` and ``n`` are read from a table per pixel, not
literals: costed as its widest ``M`` (the rule builds one requantizer per channel either way) plus
the count logic, two small comparators per axis and the table read (:func:`avgpool_cost`). The streaming GlobalAvgPool: one ``P``-bit accumulator per channel,
``H * W`` iterations at ``II = R``, then the requantizer. Add (``foldline_add.h``): per element the
zero-point subtractions, the constant products ``(x - z) * M_i`` on ``sum_bits`` and their sum,
then the shared rounding and clamp (:func:`.requant_stage.add_element`). Lookup
(``foldline_lookup.h``): per value a LUT-logic ROM of ``n_table x b_y`` bits
(:func:`.arith.rom_logic_cost`), one cycle. Linear (``foldline_linear.h``, streaming): reads
``in_pixels`` pixels at ``II = 1`` into a register vector (``n_taps * b_x`` FFs), then one
MAC at ``II = R``. Concat (``foldline_concat.h``): a pixel stage; per channel a copy's register or
a requantized input's constant product, rounding and clamp (:func:`concat_cost`). Upsample
(``foldline_upsample.h``): a window-like stage over the output pixels with a row buffer
(:func:`upsample_cost`). Flatten: free (the writer
permutes the weight columns).

**Parallel architecture** (the ``*_array`` kernels, ``hls_templates/plan.py``): no line
buffers. When every layer has ``R = 1`` the top function is one ``PIPELINE``, which unrolls
every loop: a window layer is built once per output pixel (``out_pixels`` copies of its
per-pixel hardware), and a tensor is registered only where it waits across a cycle of the top's
chain (``core``). Otherwise the top is a DATAFLOW region of per-layer pipelines at ``II = R``,
one output pixel per ``R`` cycles, each tensor a fully partitioned ping-pong array
(``2 * elements * bits`` FFs) and each window gathered from it by ``positions``:1 multiplexers.
``add_array`` and ``global_avgpool_array`` unroll over all pixels in both cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from exporters import integer_model as im
from exporters.bounds import signed_width
from exporters.layers import positions
from exporters.requant import MAX_SHIFT, MULTIPLIER_BITS
from hls_templates.estimate import arith
from hls_templates.estimate import primitives as prim
from hls_templates.estimate.config import EstimateConfig
from hls_templates.estimate.mac import constant_width, mac_module, module_latency, term_width
from hls_templates.estimate.requant_stage import add_element, max_window, requant_stage

METRICS = ("lut", "dsp", "ff", "bram")


@dataclass(frozen=True)
class Mode:
    """The concrete architecture: ``dataflow`` or ``parallel``; ``unrolled`` when the parallel
    top is one PIPELINE (every reuse factor 1)."""

    arch: str
    unrolled: bool = False


@dataclass
class LayerCost:
    """One layer's estimate, plus what the schedule and the channel-cost rule need."""

    name: str
    kind: str
    reuse: int = 1
    macs: int = 0
    nonzero_multiplies: int = 0
    lut: int = 0
    dsp: int = 0
    ff: int = 0
    bram: int = 0
    # timing: a "stage" in the schedule (see schedule.py)
    stage: str = "free"  # "input", "window", "pixel", "reduce", "linear", "free"
    iterations: int = 0  # loop trip count per frame
    depth: int = 0  # pipeline depth of one iteration's output
    fill: int = 0  # window stages: iterations up to the first output; others 0
    tail: int = 0  # window stages: iterations after the last input read
    first_input: int = 0  # window stages: raster index of the input pixel the first window needs
    out_pixels: int = 0  # output pixels per frame (1 for vectors)
    # channel-cost parts (arrays over this layer's output / input channels)
    out_share: dict = field(default_factory=dict)  # metric -> (C_out,) cost of each output channel
    in_share: dict = field(default_factory=dict)  # metric -> (C_in,) cost of reading each input channel
    delays_ns: tuple = ()  # the combinational delay of each cycle of its module (primitives.chain_graph)
    module: object = None  # a MAC layer's .mac.MacModule: what the channel-cost rule recomputes
    out_bits: int = 0  # bits of each output element (what a register crossing a cycle boundary holds)
    out_elements: int = 0  # output elements that are not constants (parallel top's crossing registers)

    def cycle_delays(self, budget: float) -> tuple:
        """Its delays per cycle: the module's, or ``depth`` full cycles for a rule that gives none."""
        return self.delays_ns or (budget,) * max(self.depth, 1)

    def latency(self, mode: Mode) -> int:
        """Cycles from its input being complete to its last output, run alone (``trips * R + d - 1``)."""
        if self.stage in ("free", "input"):
            return 0
        if mode.arch == "dataflow":
            if self.stage == "linear":  # read loop at II = 1, then one MAC at II = R
                return self.iterations + self.reuse + self.depth - 1
            return self.iterations * self.reuse + self.depth - 1
        if mode.unrolled:
            return max(self.depth - 1, 0)  # its module's cycles beyond the first (0: combinational)
        trips = self.out_pixels if self.stage == "window" else 1
        return trips * self.reuse + self.depth - 1

    def ii(self, mode: Mode) -> int:
        """Cycles between frames for this stage alone."""
        if self.stage in ("free", "input"):
            return 0
        if mode.arch == "dataflow":
            return self.latency(mode) if self.stage == "linear" else self.iterations * self.reuse
        return 1 if mode.unrolled else self.latency(mode)


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.float64)


def _window_buffers(c: int, bits: int, window: im.Window, padded_width: int, mode: Mode):
    """(lut, bram, ff) of the line buffers and window registers of a streaming window stage."""
    if mode.arch != "dataflow":
        return 0, 0, 0
    (kh, _), (sh, sw) = window.kernel, window.span
    lut = bram = 0
    if sh > 1:
        row_lut, row_bram = arith.memory_cost(padded_width, c * bits)
        lut, bram = (sh - 1) * row_lut, (sh - 1) * row_bram
    return lut, bram, kh * sw * c * bits


def _window_geometry(model: im.IntegerModel, layer, window: im.Window):
    """The schedule of a streaming window stage over the 2-D form of its window (``window.plane()``)."""
    c, h, w = im.plane_shape(model.shape(layer.input))
    (pt, pl), (eh, ew), (sh, sw) = window.padding, window.extra, window.span
    hp, wp = h + 2 * pt + eh, w + 2 * pl + ew
    _, ho, wo = im.plane_shape(model.shape(layer.name))
    first_input = max(sh - 1 - pt, 0) * w + max(sw - 1 - pl, 0)
    geo = dict(stage="window", iterations=hp * wp, fill=(sh - 1) * wp + sw,
               tail=(pt + eh) * wp + pl + ew, first_input=first_input, out_pixels=ho * wo)
    return geo, c, wp


def tensor_registers(model: im.IntegerModel, name: str, mode: Mode) -> int:
    """Parallel architecture with a DATAFLOW top (some reuse > 1): a layer's output array in
    registers, twice (ping-pong). In a PIPELINE top (every reuse 1) an array is wiring unless it
    crosses a cycle boundary; those registers come from the top's chain (``core``)."""
    if mode.arch != "parallel" or mode.unrolled:
        return 0
    return 2 * int(np.prod(model.shape(name))) * model.grid(name).bits


def _scale(cost: LayerCost, copies: int) -> None:
    """``copies`` identical instances of the per-pixel hardware (an unrolled parallel top)."""
    if copies == 1:
        return
    cost.lut, cost.dsp, cost.ff = cost.lut * copies, cost.dsp * copies, cost.ff * copies
    for shares in (cost.out_share, cost.in_share):
        for key in ("lut", "dsp", "ff"):
            if key in shares:
                shares[key] = shares[key] * copies


def _target(cfg: EstimateConfig) -> tuple[prim.Part, float, tuple[int, int]]:
    """The part, the cycle budget (period less the clock uncertainty) and the DSP-or-LUT thresholds."""
    return prim.part_for(cfg.part), prim.cycle_budget(cfg.clock_ns), (cfg.lut_mult_max_bits, cfg.lut_mult_narrow_bits)


def _gather_muxes(taps: int, positions_: int) -> int:
    """LUTs of gathering ``taps`` window values from a partitioned array at a variable position
    (``gather_window`` in a pipelined, not unrolled, loop over ``positions_`` output pixels):
    one ``positions_``:1 multiplexer per tap (:func:`.primitives.mux_lut`, extrapolated far beyond
    the 2- and 3-input muxes it was read from)."""
    return taps * prim.mux_lut(positions_) if positions_ > 1 else 0


def _mac_cost(model: im.IntegerModel, layer, cfg: EstimateConfig, mode: Mode, geo: dict, tap: np.ndarray,
              tap_channel: np.ndarray, c_in: int, buffers: tuple, copies: int, requant=None) -> LayerCost:
    """An accumulating layer (``sparse_mac`` then ``requantize``) as one :func:`.mac.mac_module`:
    ``tap[o, k]`` is the input value entry ``k`` of weight row ``o`` reads (products of one tap and
    one weight are built once), ``tap_channel[t]`` the input channel of tap ``t``; ``buffers``
    (lut, bram, ff) its input side; ``copies`` of it in an unrolled parallel top; ``requant`` the
    requantizer to cost instead of the layer's own (a counted AvgPool's worst table entry)."""
    reuse = cfg.reuse(layer.name)
    part, budget, thresholds = _target(cfg)
    grid_in, grid_out = model.grid(layer.input), model.grid(layer.name)
    p = im.accumulator_analysis(model, layer).bits
    rows = layer.weight_rows(model)
    c_out = rows.shape[0]
    r_idx, k_idx = np.nonzero(rows)
    w = rows[r_idx, k_idx]
    rq = requant or layer.requant
    stage = requant_stage(rq.multiplier, rq.shift, p, grid_out.bits, rq.out.zero_point, part, thresholds)
    bias = im.folded_bias(layer, grid_in.zero_point, model)
    m = mac_module(r_idx, tap[r_idx, k_idx], w, c_out, tap_channel.size, grid_in.bits,
                   term_width(grid_in.bits, grid_in.signed, w, p), constant_width(bias, p), p, stage, budget, part,
                   reuse, max(1, -(-w.size // reuse)), thresholds, tap_channel)
    cost = LayerCost(layer.name, type(layer).__name__, reuse=reuse, **geo)
    work = layer.work(model)
    cost.macs, cost.nonzero_multiplies = work.macs, work.nonzero_macs
    cost.lut, cost.dsp, cost.ff = m.lut, m.dsp, m.ff
    cost.depth, cost.delays_ns, cost.module = module_latency(m.stages), tuple(m.delays), m
    cost.out_bits, cost.out_elements = grid_out.bits, int(m.live.sum()) * geo["out_pixels"]

    def by_channel(values):
        return np.bincount(tap_channel, weights=values, minlength=c_in)

    cost.out_share = {"lut": m.out_lut, "dsp": m.out_dsp, "ff": m.out_ff, "bram": _zeros(c_out)}
    cost.in_share = {"lut": by_channel(m.in_lut), "dsp": by_channel(m.in_dsp), "ff": by_channel(m.in_ff),
                     "bram": _zeros(c_in)}
    _scale(cost, copies)
    if mode.arch == "parallel" and not mode.unrolled and geo["stage"] == "window":
        mux = _gather_muxes(tap_channel.size, geo["out_pixels"])
        buffers = (buffers[0] + mux, buffers[1], buffers[2])
    _add_buffers(cost, *buffers, c_in)
    _add_output_registers(cost, tensor_registers(model, layer.name, mode), c_out)
    return cost


def _window_taps(model: im.IntegerModel, layer) -> tuple[np.ndarray, np.ndarray, int]:
    """Tap ``(channel * kh + y) * kw + x`` of every entry of a window layer's weight rows (grouped
    and depthwise layers read the channel their group assigns), each tap's channel, the channels."""
    view = layer.convolution(model).plane()
    o, i_local, kh, kw = view.weight.shape
    c_in = model.shape(layer.input)[0]
    spot = np.arange(kh * kw)
    tap = (view.input_channel[:, :, None] * (kh * kw) + spot[None, None, :]).reshape(o, -1)
    return tap, np.repeat(np.arange(c_in), kh * kw), c_in


def conv_cost(model: im.IntegerModel, layer: im.Conv, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    """A window stage (``conv2d_stream``); unrolled, one copy per output pixel."""
    window = layer.geometry(model).plane()
    geo, c_in, wp = _window_geometry(model, layer, window)
    tap, tap_channel, _ = _window_taps(model, layer)
    buffers = _window_buffers(c_in, model.grid(layer.input).bits, window, wp, mode)
    return _mac_cost(model, layer, cfg, mode, geo, tap, tap_channel, c_in, buffers,
                     geo["out_pixels"] if mode.unrolled else 1)


def linear_cost(model: im.IntegerModel, layer: im.Linear, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    """``linear_stream`` keeps the whole input vector ``x[n_taps]`` in registers, then one MAC."""
    c_in = layer.weight.shape[1]
    geo = dict(stage="linear", iterations=_linear_input_pixels(model, layer), out_pixels=1)
    tap = np.broadcast_to(np.arange(c_in)[None, :], layer.weight.shape)
    buffers = (0, 0, c_in * model.grid(layer.input).bits if mode.arch == "dataflow" else 0)
    return _mac_cost(model, layer, cfg, mode, geo, tap, np.arange(c_in), c_in, buffers, 1)


def _add_buffers(cost: LayerCost, lut: int, bram: int, ff: int, channels: int) -> None:
    """Input-side buffers: charged to the layer, shared evenly by its input channels."""
    cost.lut, cost.bram, cost.ff = cost.lut + lut, cost.bram + bram, cost.ff + ff
    shares = cost.in_share if cost.in_share else cost.out_share
    for key, value in (("lut", lut), ("bram", bram), ("ff", ff)):
        shares[key] = shares[key] + value / channels


def _add_output_registers(cost: LayerCost, ff: int, channels: int) -> None:
    cost.ff += ff
    cost.out_share["ff"] = cost.out_share["ff"] + ff / channels


def _linear_input_pixels(model: im.IntegerModel, layer: im.Linear) -> int:
    """Pixels a streaming Linear reads: H * W of the map a free view (Flatten) made its input from, else 1."""
    src = model.layer(layer.input)
    return positions(model.shape(src.input)) if src.is_free_view else 1


def _window_stage(model: im.IntegerModel, layer, mode: Mode):
    """Geometry, channels, unrolled copies and line buffers of a pooling window stage."""
    window = layer.geometry(model).plane()
    geo, c, wp = _window_geometry(model, layer, window)
    buffers = _window_buffers(c, model.grid(layer.input).bits, window, wp, mode)
    return geo, c, (geo["out_pixels"] if mode.unrolled else 1), buffers


def _pool_cost(model: im.IntegerModel, layer, cfg: EstimateConfig, mode: Mode, geo: dict, c: int, per_channel,
               delays: list, copies: int, buffers: tuple) -> LayerCost:
    """A pooling stage from its per-channel (lut, dsp, ff) arrays and the cycles of its module."""
    cost = LayerCost(layer.name, type(layer).__name__, reuse=cfg.reuse(layer.name), **geo)
    lut, dsp, ff = per_channel
    cost.depth, cost.delays_ns = len(delays), tuple(delays)
    cost.out_bits, cost.out_elements = model.grid(layer.name).bits, c * geo["out_pixels"]
    cost.lut, cost.dsp, cost.ff = int(lut.sum()), int(dsp.sum()), int(ff.sum())
    cost.out_share = {"lut": lut, "dsp": dsp, "ff": ff, "bram": _zeros(c)}
    _scale(cost, copies)
    if mode.arch == "parallel" and not mode.unrolled and geo["stage"] == "window":
        window = int(np.prod(layer.kernel))
        buffers = (buffers[0] + _gather_muxes(window * c, geo["out_pixels"]), buffers[1], buffers[2])
    _add_buffers(cost, *buffers, c)
    _add_output_registers(cost, tensor_registers(model, layer.name, mode), c)
    return cost


def maxpool_cost(model: im.IntegerModel, layer: im.MaxPool, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    """``max_window`` per channel (:func:`.requant_stage.max_window`): a chain of compare-selects,
    registered where it does not fit a cycle."""
    geo, c, copies, buffers = _window_stage(model, layer, mode)
    part, budget, _ = _target(cfg)
    bits = model.grid(layer.input).bits
    lut, ops = max_window(int(np.prod(layer.kernel)), bits, part)
    cycles = prim.chain_ops(0.0, ops, budget)
    per_channel = (np.full(c, float(lut)), _zeros(c), np.full(c, float((len(cycles) - 1) * bits)))
    return _pool_cost(model, layer, cfg, mode, geo, c, per_channel, cycles, copies, buffers)


def avgpool_cost(model: im.IntegerModel, layer: im.AvgPool, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    """``avg_window``: the all-ones depthwise convolution it is (``WindowAverage.convolution``), so
    the MAC rule with shifts for products (``x * 1``) and the shared requantizer."""
    geo, c, copies, buffers = _window_stage(model, layer, mode)
    tap, tap_channel, _ = _window_taps(model, layer)
    if not layer.divides_by_count(model):
        return _mac_cost(model, layer, cfg, mode, geo, tap, tap_channel, c, buffers, copies)
    # a counted avg_window: M and n read per pixel from a table of K pairs; costed as the entry with the
    # most signed digits in every channel's requantizer, plus the table read (a K:1 multiplexer of the
    # 16 + 6 bits of (M, n)) and the count logic (two comparators and a subtraction per axis)
    taps = int(np.prod(layer.kernel))
    rules = [layer.count_rule(k) for k in range(1, taps + 1)]
    worst = max(rules, key=lambda r: (int(arith.naf_weight(np.array([r[0]]))[0]), r[0]))
    rq = layer.requant
    costed = im.Requant(np.full(c, worst[0]), np.full(c, min(n for _, n in rules)), rq.out, rq.relu, rq.clamp)
    count_logic = prim.mux_lut(taps) * (MULTIPLIER_BITS + MAX_SHIFT.bit_length()) + 6 * prim.add_lut(8)
    buffers = (buffers[0] + count_logic, buffers[1], buffers[2])
    return _mac_cost(model, layer, cfg, mode, geo, tap, tap_channel, c, buffers, copies, costed)


def global_avgpool_cost(model: im.IntegerModel, layer: im.GlobalAvgPool, cfg: EstimateConfig,
                        mode: Mode) -> LayerCost:
    """``global_avgpool_array`` unrolls the pixel sum (the MAC rule over ``H * W`` ones);
    ``global_avgpool_stream`` adds one pixel per iteration into a ``P``-bit accumulator per
    channel, then requantizes once."""
    c, h, w = im.plane_shape(model.shape(layer.input))
    geo = dict(stage="reduce", iterations=h * w, out_pixels=1)
    if mode.arch == "parallel":
        tap, tap_channel, _ = _window_taps(model, layer)
        return _mac_cost(model, layer, cfg, mode, geo, tap, tap_channel, c, (0, 0, 0), 1)
    part, budget, thresholds = _target(cfg)
    p = im.accumulator_analysis(model, layer).bits
    rq = layer.requant
    stage = requant_stage(rq.multiplier, rq.shift, p, model.grid(layer.name).bits, rq.out.zero_point, part, thresholds)
    lut = prim.add_lut(p) + np.broadcast_to(np.asarray(stage.lut, dtype=np.float64), (c,))
    dsp = np.broadcast_to(np.asarray(stage.dsp, dtype=np.float64), (c,))
    cycles = prim.chain_ops(prim.add_delay(p, part), stage.delays, budget)
    return _pool_cost(model, layer, cfg, mode, geo, c, (lut, dsp, np.full(c, float(p + stage.width))), cycles, 1,
                      (0, 0, 0))


def _term_products(multipliers, bits, cfg: EstimateConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per multiplier, (LUT, DSP) of the constant product ``(x - z) * M`` on ``bits``-bit operands
    (Add, Concat): a shift when ``M`` is a power of two, else shift-and-add over its NAF digits in
    fabric or DSP tiles, by the product rule of :mod:`.arith`."""
    m = np.asarray(multipliers, dtype=np.int64)
    shift = arith.is_power_of_two(m)
    bits_m = arith.bit_length(m)
    lut_rule = arith.goes_to_lut(bits, bits_m, cfg.lut_mult_max_bits, cfg.lut_mult_narrow_bits)
    lut = np.where(~shift & lut_rule, (arith.naf_weight(m) - 1) * (bits + bits_m), 0)
    dsp = np.where(~shift & ~lut_rule, arith.dsp_tiles(bits, bits_m + 1, cfg.dsp_ports), 0)
    return lut.astype(np.float64), dsp.astype(np.float64)


def add_cost(model: im.IntegerModel, layer: im.Add, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    """``add_one`` per element (:func:`.requant_stage.add_element`): the zero-point subtractions, the
    constant products by ``M_i`` on ``sum_bits``, their sum and the shared rounding and clamp,
    chained into cycles; its result registered where a cycle ends. A pixel stage; ``add_array``
    unrolls every element."""
    reuse = cfg.reuse(layer.name)
    part, budget, thresholds = _target(cfg)
    shape = model.shape(layer.name)
    c, pixels = shape[0], positions(shape)
    s = layer.sum_bits(model)  # as the generator sets it
    b_y = model.grid(layer.name).bits
    zeros = [model.grid(src).zero_point for src in layer.inputs]
    lut, dsp, _, ops = add_element(s, zeros, layer.multipliers, layer.shift, b_y, layer.out.zero_point, part,
                                   thresholds)
    cycles = prim.chain_ops(0.0, ops, budget)
    per_ff = float((len(cycles) - 1) * s)
    cost = LayerCost(layer.name, "Add", reuse=reuse, stage="pixel", iterations=pixels, out_pixels=pixels)
    cost.depth, cost.delays_ns = len(cycles), tuple(cycles)
    cost.out_bits, cost.out_elements = b_y, c * pixels
    cost.out_share = {"lut": np.full(c, lut), "dsp": np.full(c, dsp), "ff": np.full(c, per_ff), "bram": _zeros(c)}
    cost.lut, cost.dsp, cost.ff = int(lut * c), int(dsp * c), int(per_ff * c)
    _scale(cost, pixels if mode.arch == "parallel" else 1)  # add_array unrolls every element
    _add_output_registers(cost, tensor_registers(model, layer.name, mode), c)
    return cost


def lookup_cost(model: im.IntegerModel, layer: im.Lookup, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    """A pixel stage (``lookup_stream`` / ``lookup_array``): per value one lookup of the partitioned
    table, a ROM of ``n_table x b_y`` bits built as LUT logic (:func:`.arith.rom_logic_cost`); no DSP,
    no register of its own, one cycle (uncalibrated: no report has a Lookup). The array kernel
    unrolls every element."""
    reuse = cfg.reuse(layer.name)
    shape = model.shape(layer.name)
    c, pixels = shape[0], positions(shape)
    b_y = model.grid(layer.name).bits
    per_lut = float(arith.rom_logic_cost(layer.table.size, b_y))
    cost = LayerCost(layer.name, "Lookup", reuse=reuse, stage="pixel", iterations=pixels, out_pixels=pixels)
    cost.depth = arith.FABRIC_PIPELINE
    cost.out_bits, cost.out_elements = b_y, c * pixels
    cost.out_share = {"lut": np.full(c, per_lut), "dsp": _zeros(c), "ff": _zeros(c), "bram": _zeros(c)}
    cost.lut = int(per_lut * c)
    _scale(cost, pixels if mode.arch == "parallel" else 1)
    _add_output_registers(cost, tensor_registers(model, layer.name, mode), c)
    return cost


def concat_cost(model: im.IntegerModel, layer: im.Concat, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    """A pixel stage (``concat_stream`` / ``concat_array``). Per output channel: from a copied input,
    its ``b_y``-bit output register; from a requantized input ``i``, the constant product
    ``(x - z_i) * M_i`` (:func:`_term_products`, on the width of ``x - z_i``), the zero-point subtraction
    (none when ``z_i = 0``), the rounding adder and two clamp comparators (``3 * term_bits_i``
    LUTs), ``term_bits_i + b_y`` FFs. The array kernel unrolls every element. A Concat of ``k > 2``
    inputs is generated as a chain of two-input kernels (``plan.binary_concats``) and costed as this
    one stage: each input is requantized once either way; the chain's extra registers are left out."""
    shape = model.shape(layer.name)
    c, pixels, b_y = shape[0], positions(shape), model.grid(layer.name).bits
    bits = np.array(layer.term_bits(model), dtype=np.int64)
    copied = np.array(layer.copies(model))
    grids = [model.grid(src) for src in layer.sources]
    operand = np.array([signed_width(g.lo - g.zero_point, g.hi - g.zero_point) for g in grids])  # x - z_i
    prod_lut, prod_dsp = _term_products(layer.multipliers, operand, cfg)
    zero_sub = np.array([g.zero_point != 0 for g in grids]) * bits
    channels = [model.shape(src)[0] for src in layer.sources]
    lut = np.repeat(np.where(copied, 0, prod_lut + zero_sub + 3 * bits), channels).astype(np.float64)
    dsp = np.repeat(np.where(copied, 0, prod_dsp), channels).astype(np.float64)
    ff = np.repeat(np.where(copied, b_y, bits + b_y), channels).astype(np.float64)
    cost = LayerCost(layer.name, "Concat", reuse=cfg.reuse(layer.name), stage="pixel", iterations=pixels,
                     out_pixels=pixels)
    cost.depth = (arith.DSP_PIPELINE if dsp.any() else arith.FABRIC_PIPELINE) + 1
    cost.out_share = {"lut": lut, "dsp": dsp, "ff": ff, "bram": _zeros(c)}
    cost.lut, cost.dsp, cost.ff = int(lut.sum()), int(dsp.sum()), int(ff.sum())
    _scale(cost, pixels if mode.arch == "parallel" else 1)  # concat_array unrolls every element
    _add_output_registers(cost, tensor_registers(model, layer.name, mode), c)
    return cost


def upsample_cost(model: im.IntegerModel, layer: im.Upsample, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    """``upsample_stream`` loops over the output pixels at ``II = R``, reading a new input pixel at
    the first repetition of each: a window-like stage (first output one cycle after the first input;
    ``(f_h - 1) * W * f_w + f_w - 1`` iterations after the last read), with a row buffer of ``W``
    pixels (``C * b`` bits each, :func:`.arith.memory_cost`) and a ``C * b``-bit output register.
    The array kernel is wiring (a new frame's copy, one output pixel per ``R`` cycles when pipelined)."""
    c, h, w = model.shape(layer.input)
    fh, fw = layer.factor
    _, ho, wo = model.shape(layer.name)
    bits = model.grid(layer.name).bits
    cost = LayerCost(layer.name, "Upsample", reuse=cfg.reuse(layer.name), stage="window", iterations=ho * wo,
                     fill=1, tail=(fh - 1) * w * fw + fw - 1, out_pixels=ho * wo, depth=1)
    lut, bram, ff = 0, 0, 0
    if mode.arch == "dataflow":
        lut, bram = arith.memory_cost(w, c * bits)
        ff = c * bits
    cost.lut, cost.bram, cost.ff = lut, bram, ff
    cost.out_share = {"lut": np.full(c, lut / c), "dsp": _zeros(c), "ff": np.full(c, ff / c),
                      "bram": np.full(c, bram / c)}
    _add_output_registers(cost, tensor_registers(model, layer.name, mode), c)
    return cost


def _port_cost(model: im.IntegerModel, layer: im.Layer, cfg: EstimateConfig, mode: Mode, stage: str) -> LayerCost:
    shape = model.shape(layer.name)
    pixels = positions(shape)
    return LayerCost(layer.name, type(layer).__name__, stage=stage, iterations=pixels, out_pixels=pixels,
                     out_share={k: _zeros(shape[0]) for k in METRICS})


def input_cost(model: im.IntegerModel, layer: im.Input, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    """The input port: one pixel per cycle, no hardware of its own."""
    return _port_cost(model, layer, cfg, mode, "input")


def free_view_cost(model: im.IntegerModel, layer: im.Layer, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    """A free view (Flatten): an alias of its input's buffer, no hardware and no cycles."""
    return _port_cost(model, layer, cfg, mode, "free")


#: One cost rule per layer type, from the loops of its kernel (docs/hls.md, "Estimator").
COSTS = {
    im.Input: input_cost,
    im.Conv: conv_cost,
    im.Linear: linear_cost,
    im.MaxPool: maxpool_cost,
    im.AvgPool: avgpool_cost,
    im.GlobalAvgPool: global_avgpool_cost,
    im.Add: add_cost,
    im.Concat: concat_cost,
    im.Upsample: upsample_cost,
    im.Flatten: free_view_cost,
    im.Lookup: lookup_cost,
}


def layer_cost(model: im.IntegerModel, layer: im.Layer, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    return COSTS[type(layer)](model, layer, cfg, mode)
