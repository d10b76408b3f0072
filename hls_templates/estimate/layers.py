"""Per-layer cost, derived from the loops of the HLS kernels in ``hls_templates/cpp/foldline``:
one rule per layer type, registered in :data:`COSTS`.

Notation: ``R`` the layer's reuse factor, ``b_x`` the input grid's bits, ``b_w`` the
declared weight bits, ``P`` the proven folded accumulator width
(:func:`exporters.integer_model.accumulator_analysis`), ``b_y`` the output grid's bits,
``nz`` the number of nonzero weights, ``nz[c]`` those of output channel ``c``.

**Multiply-accumulate** (``foldline_mac.h``, ``sparse_mac``): the nonzero table is unrolled,
``acc[out] += weight * x[tap]`` once per nonzero weight, under ``ALLOCATION mul
limit = ceil(nz / R)``. Hence:

* products: at ``R = 1`` every nonzero weight is a constant product, costed one by one
  (:mod:`.arith`: shift / LUT shift-and-add / DSP); at ``R > 1`` the ``n_real`` products
  that are not shifts share ``lanes = min(ceil(nz / R), n_real)`` general ``b_x x b_w``
  multipliers, each with two ``R``-input operand muxes, ``(b_x + b_w) * ceil(R / 4)``
  LUTs (a LUT6 is a 4:1 mux);
* adders: one ``P``-bit adder per nonzero weight (the pragma limits only ``mul``), ``nz * P``
  LUTs and, pipelined one tree level per cycle, ``nz * P`` FFs;
* requantization (``foldline_requant.h``), once per output channel with ``nz[c] > 0`` (a
  channel without weights is a constant and folds away): the constant product
  ``acc * M[c]`` (shift if ``M[c]`` is a power of two, else a LUT or DSP product of a
  ``P``-bit and a ``bits(M[c])``-bit operand), then the rounding adder and the two clamp
  comparators on ``P + 17`` bits: ``3 * (P + 17)`` LUTs; ``P + 17 + b_y`` FFs.

**Pipeline depth** of one output: product (3 cycles on a DSP, else 1) + adder tree
``ceil(log2(max_c nz[c] + 1))`` (bias included) + requant product (3 or 1) + 1 (round and clamp).

**Windows** (``foldline_window.h``; Conv, MaxPool, AvgPool, streaming): the loop runs over
every padded position, ``Hp * Wp`` iterations at ``II = R``; padding is generated, not
read. Line buffers ``lines[kh - 1][Wp]`` of ``C * b_x``-bit pixels (partitioned by row:
``kh - 1`` memories of depth ``Wp``, see :func:`.arith.memory_cost`; none when ``kh = 1``)
and window registers ``kh * kw * C * b_x`` FFs. The first output leaves after
``(kh - 1) * Wp + kw`` iterations, the last ``pad_top * Wp + pad_left`` iterations after the
last input pixel is read.

**Other stages**: MaxPool: ``window - 1`` compare-selects of ``2 * b_x`` LUTs per channel,
depth ``ceil(log2(window)) + 1``. AvgPool: ``window`` ``P``-bit adders per channel plus the
requantizer. GlobalAvgPool: one ``P``-bit accumulator per channel, ``H * W`` iterations at
``II = R``, then the requantizer. Add (``foldline_add.h``): per channel two constant products
``(x - z) * M_i`` on ``sum_bits`` (shift when ``M_i`` is a power of two) and the sum, rounding
and clamp, ``4 * sum_bits`` LUTs. Linear (``foldline_linear.h``, streaming): reads
``in_pixels`` pixels at ``II = 1`` into a register vector (``n_taps * b_x`` FFs), then one
MAC at ``II = R``. Flatten: free (the writer
permutes the weight columns).

**Parallel architecture** (the ``*_array`` kernels, ``hls_templates/plan.py``): no line
buffers; every tensor is a fully partitioned array, ``elements * bits`` FFs (twice that when
the top is a DATAFLOW region, whose array channels are ping-pong buffers). When every layer has
``R = 1`` the top function is one ``PIPELINE``, which unrolls every loop: a window layer is
built once per output pixel (``out_pixels`` copies of its per-pixel hardware). Otherwise each
layer is its own pipeline at ``II = R``, one output pixel per ``R`` cycles. ``add_array`` and
``global_avgpool_array`` unroll over all pixels in both cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from exporters import integer_model as im
from exporters.layers import positions
from hls_templates.estimate import arith
from hls_templates.estimate.config import EstimateConfig

REQUANT_PRODUCT_EXTRA = 17  # acc * M is P + 16 bits; the rounding term needs one more
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
    depth_parts: tuple = ()  # (fixed part, row_terms (C_out,), col_terms (C_out, C_in)) of MAC depth

    def latency(self, mode: Mode) -> int:
        """Cycles from its input being complete to its last output, run alone (``trips * R + d - 1``)."""
        if self.stage in ("free", "input"):
            return 0
        if mode.arch == "dataflow":
            if self.stage == "linear":  # read loop at II = 1, then one MAC at II = R
                return self.iterations + self.reuse + self.depth - 1
            return self.iterations * self.reuse + self.depth - 1
        if mode.unrolled:
            return self.depth
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


def _requant_units(m: np.ndarray, active: np.ndarray, p: int, b_y: int, cfg: EstimateConfig):
    """Per-channel (lut, dsp, ff) of the requantizers and their depth (product + round/clamp)."""
    m = np.asarray(m, dtype=np.int64)
    shift = arith.is_power_of_two(m)
    bits_m = arith.bit_length(m)
    lut_rule = arith.goes_to_lut(p, bits_m, cfg.lut_mult_max_bits, cfg.lut_mult_narrow_bits)
    product_lut = np.where(~shift & lut_rule, (arith.naf_weight(m) - 1) * (p + bits_m), 0)
    dsp = np.where(~shift & ~lut_rule, arith.dsp_tiles(p, bits_m + 1, cfg.dsp_ports), 0)
    lut = product_lut + 3 * (p + REQUANT_PRODUCT_EXTRA)
    ff = np.full(m.shape, p + REQUANT_PRODUCT_EXTRA + b_y)
    a = np.asarray(active).astype(np.int64)
    depth = arith.DSP_PIPELINE if (dsp * a).any() else arith.FABRIC_PIPELINE
    return (lut * a).astype(np.float64), (dsp * a).astype(np.float64), (ff * a).astype(np.float64), depth + 1


def _products(w: np.ndarray, b_x: int, b_w: int, reuse: int, cfg: EstimateConfig):
    """Per-nonzero (lut, dsp, ff) shares, layer totals and depth of the products (module doc)."""
    mag = np.abs(w)
    shift = arith.is_power_of_two(mag)
    if reuse == 1:
        bw = arith.bit_length(mag) + 1
        lut_rule = arith.goes_to_lut(b_x, bw, cfg.lut_mult_max_bits, cfg.lut_mult_narrow_bits)
        lut = np.where(~shift & lut_rule, (arith.naf_weight(mag) - 1) * (b_x + bw), 0)
        dsp = np.where(~shift & ~lut_rule, arith.dsp_tiles(b_x, bw, cfg.dsp_ports), 0)
        ff = np.where(shift, 0, b_x + bw)
        depth = arith.DSP_PIPELINE if dsp.any() else arith.FABRIC_PIPELINE
        return (lut, dsp, ff), (int(lut.sum()), int(dsp.sum()), int(ff.sum())), depth
    n_real = int((~shift).sum())
    lanes = min(-(-w.size // reuse), n_real)
    on_lut = bool(arith.goes_to_lut(b_x, b_w, cfg.lut_mult_max_bits, cfg.lut_mult_narrow_bits))
    lane_lut = (b_x * b_w if on_lut else 0) + (b_x + b_w) * -(-reuse // 4)
    lane_dsp = 0 if on_lut else int(arith.dsp_tiles(b_x, b_w, cfg.dsp_ports))
    lane_ff = b_x + b_w
    real = (~shift).astype(np.float64) / reuse  # each real product holds 1/R of a lane
    depth = arith.DSP_PIPELINE if lane_dsp else arith.FABRIC_PIPELINE
    return ((real * lane_lut, real * lane_dsp, real * lane_ff),
            (lanes * lane_lut, lanes * lane_dsp, lanes * lane_ff), depth)


def _window_buffers(c: int, bits: int, kernel, padded_width: int, mode: Mode):
    """(lut, bram, ff) of the line buffers and window registers of a streaming window stage."""
    if mode.arch != "dataflow":
        return 0, 0, 0
    kh, kw = kernel
    lut = bram = 0
    if kh > 1:
        row_lut, row_bram = arith.memory_cost(padded_width, c * bits)
        lut, bram = (kh - 1) * row_lut, (kh - 1) * row_bram
    return lut, bram, kh * kw * c * bits


def _window_geometry(model: im.IntegerModel, layer, kernel, padding):
    c, h, w = model.shape(layer.input)
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    _, ho, wo = model.shape(layer.name)
    first_input = max(kernel[0] - 1 - padding[0], 0) * w + max(kernel[1] - 1 - padding[1], 0)
    geo = dict(stage="window", iterations=hp * wp, fill=(kernel[0] - 1) * wp + kernel[1],
               tail=padding[0] * wp + padding[1], first_input=first_input, out_pixels=ho * wo)
    return geo, c, wp


def tensor_registers(model: im.IntegerModel, name: str, mode: Mode) -> int:
    """Parallel architecture: a layer's output array in registers (ping-pong in a DATAFLOW top)."""
    if mode.arch != "parallel":
        return 0
    bits = int(np.prod(model.shape(name))) * model.grid(name).bits
    return bits if mode.unrolled else 2 * bits


def _scale(cost: LayerCost, copies: int) -> None:
    """``copies`` identical instances of the per-pixel hardware (an unrolled parallel top)."""
    if copies == 1:
        return
    cost.lut, cost.dsp, cost.ff = cost.lut * copies, cost.dsp * copies, cost.ff * copies
    for shares in (cost.out_share, cost.in_share):
        for key in ("lut", "dsp", "ff"):
            if key in shares:
                shares[key] = shares[key] * copies


def _mac_cost(model: im.IntegerModel, layer: im.MacLayer, cfg: EstimateConfig, mode: Mode, geo: dict,
              col: np.ndarray, c_in: int, buffers: tuple, copies: int) -> LayerCost:
    """A MAC layer from its stage geometry, the input channel ``col`` of every entry of its
    weight rows and its input-side ``buffers`` (lut, bram, ff); ``copies`` of it when unrolled."""
    reuse = cfg.reuse(layer.name)
    b_x, b_w, b_y = model.grid(layer.input).bits, layer.weight_bits, model.grid(layer.name).bits
    p = im.accumulator_analysis(model, layer).bits
    rows = layer.weight_rows(model)
    c_out = rows.shape[0]
    r_idx, k_idx = np.nonzero(rows)
    w, c_idx = rows[r_idx, k_idx], col[r_idx, k_idx]
    (p_lut, p_dsp, p_ff), (t_lut, t_dsp, t_ff), mult_depth = _products(w, b_x, b_w, reuse, cfg)
    nz_row = np.bincount(r_idx, minlength=c_out)
    rq_lut, rq_dsp, rq_ff, rq_depth = _requant_units(layer.requant.multiplier, nz_row > 0, p, b_y, cfg)

    cost = LayerCost(layer.name, type(layer).__name__, reuse=reuse, **geo)
    work = layer.work(model)
    cost.macs, cost.nonzero_multiplies = work.macs, work.nonzero_macs
    adders = w.size * p
    cost.lut = int(t_lut + adders + rq_lut.sum())
    cost.dsp = int(t_dsp + rq_dsp.sum())
    cost.ff = int(t_ff + adders + rq_ff.sum())
    fixed = mult_depth + rq_depth
    cost.depth = int(fixed + arith.adder_tree_depth(nz_row + 1).max())
    cost.depth_parts = (fixed, nz_row, _count_matrix(r_idx, c_idx, c_out, c_in))

    def per(values, index, n):
        return np.bincount(index, weights=np.asarray(values, dtype=np.float64), minlength=n)

    adder_col = per(np.full(w.size, p), c_idx, c_in)
    cost.out_share = {"lut": per(p_lut, r_idx, c_out) + nz_row * p + rq_lut,
                      "dsp": per(p_dsp, r_idx, c_out) + rq_dsp,
                      "ff": per(p_ff, r_idx, c_out) + nz_row * p + rq_ff, "bram": _zeros(c_out)}
    cost.in_share = {"lut": per(p_lut, c_idx, c_in) + adder_col, "dsp": per(p_dsp, c_idx, c_in),
                     "ff": per(p_ff, c_idx, c_in) + adder_col, "bram": _zeros(c_in)}
    _scale(cost, copies)
    _add_buffers(cost, *buffers, c_in)
    _add_output_registers(cost, tensor_registers(model, layer.name, mode), c_out)
    return cost


def conv_cost(model: im.IntegerModel, layer: im.Conv, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    """A window stage (``conv2d_stream``); unrolled, one copy per output pixel."""
    geo, c_in, wp = _window_geometry(model, layer, layer.kernel, layer.padding)
    view = layer.convolution(model)  # the input channel of every weight entry, as the rows order them
    col = np.broadcast_to(view.input_channel[:, :, None, None], view.weight.shape).reshape(len(view.weight), -1)
    buffers = _window_buffers(c_in, model.grid(layer.input).bits, layer.kernel, wp, mode)
    return _mac_cost(model, layer, cfg, mode, geo, col, c_in, buffers, geo["out_pixels"] if mode.unrolled else 1)


def linear_cost(model: im.IntegerModel, layer: im.Linear, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    """``linear_stream`` keeps the whole input vector ``x[n_taps]`` in registers, then one MAC."""
    c_in = layer.weight.shape[1]
    geo = dict(stage="linear", iterations=_linear_input_pixels(model, layer), out_pixels=1)
    col = np.broadcast_to(np.arange(c_in)[None, :], layer.weight.shape)
    buffers = (0, 0, c_in * model.grid(layer.input).bits if mode.arch == "dataflow" else 0)
    return _mac_cost(model, layer, cfg, mode, geo, col, c_in, buffers, 1)


def _add_buffers(cost: LayerCost, lut: int, bram: int, ff: int, channels: int) -> None:
    """Input-side buffers: charged to the layer, shared evenly by its input channels."""
    cost.lut, cost.bram, cost.ff = cost.lut + lut, cost.bram + bram, cost.ff + ff
    shares = cost.in_share if cost.in_share else cost.out_share
    for key, value in (("lut", lut), ("bram", bram), ("ff", ff)):
        shares[key] = shares[key] + value / channels


def _add_output_registers(cost: LayerCost, ff: int, channels: int) -> None:
    cost.ff += ff
    cost.out_share["ff"] = cost.out_share["ff"] + ff / channels


def _count_matrix(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    """(n_rows, n_cols) counts of nonzero weights of each output row that read each input."""
    return np.bincount(rows * n_cols + cols, minlength=n_rows * n_cols).reshape(n_rows, n_cols)


def _linear_input_pixels(model: im.IntegerModel, layer: im.Linear) -> int:
    """Pixels a streaming Linear reads: H * W of the map a free view (Flatten) made its input from, else 1."""
    src = model.layer(layer.input)
    return positions(model.shape(src.input)) if src.is_free_view else 1


def _window_stage(model: im.IntegerModel, layer, mode: Mode):
    """Geometry, channels, unrolled copies and line buffers of a pooling window stage."""
    geo, c, wp = _window_geometry(model, layer, layer.kernel, layer.padding)
    buffers = _window_buffers(c, model.grid(layer.input).bits, layer.kernel, wp, mode)
    return geo, c, (geo["out_pixels"] if mode.unrolled else 1), buffers


def _pool_cost(model: im.IntegerModel, layer, cfg: EstimateConfig, mode: Mode, geo: dict, c: int, per_channel,
               depth: int, copies: int, buffers: tuple) -> LayerCost:
    """A pooling stage from its per-channel (lut, dsp, ff) arrays."""
    cost = LayerCost(layer.name, type(layer).__name__, reuse=cfg.reuse(layer.name), **geo)
    lut, dsp, ff = per_channel
    cost.depth = depth
    cost.lut, cost.dsp, cost.ff = int(lut.sum()), int(dsp.sum()), int(ff.sum())
    cost.out_share = {"lut": lut, "dsp": dsp, "ff": ff, "bram": _zeros(c)}
    _scale(cost, copies)
    _add_buffers(cost, *buffers, c)
    _add_output_registers(cost, tensor_registers(model, layer.name, mode), c)
    return cost


def _averaging(model: im.IntegerModel, layer, cfg: EstimateConfig, c: int, terms: int):
    """Per-channel (lut, dsp, ff) and depth of ``terms`` P-bit adders plus the requantizer."""
    p = im.accumulator_analysis(model, layer).bits
    rq_lut, dsp, rq_ff, rq_depth = _requant_units(layer.requant.multiplier, np.ones(c, bool), p,
                                                  model.grid(layer.name).bits, cfg)
    return (rq_lut + terms * p, dsp, rq_ff + terms * p), int(arith.adder_tree_depth(terms + 1)) + rq_depth


def maxpool_cost(model: im.IntegerModel, layer: im.MaxPool, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    geo, c, copies, buffers = _window_stage(model, layer, mode)
    window = layer.kernel[0] * layer.kernel[1]
    per_channel = (np.full(c, (window - 1) * 2.0 * model.grid(layer.input).bits), _zeros(c), _zeros(c))
    return _pool_cost(model, layer, cfg, mode, geo, c, per_channel, int(arith.adder_tree_depth(window)) + 1,
                      copies, buffers)


def avgpool_cost(model: im.IntegerModel, layer: im.AvgPool, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    geo, c, copies, buffers = _window_stage(model, layer, mode)
    per_channel, depth = _averaging(model, layer, cfg, c, layer.kernel[0] * layer.kernel[1])
    return _pool_cost(model, layer, cfg, mode, geo, c, per_channel, depth, copies, buffers)


def global_avgpool_cost(model: im.IntegerModel, layer: im.GlobalAvgPool, cfg: EstimateConfig,
                        mode: Mode) -> LayerCost:
    c, h, w = model.shape(layer.input)
    geo = dict(stage="reduce", iterations=h * w, out_pixels=1)
    terms = h * w if mode.arch == "parallel" else 1  # the array kernel unrolls the pixel sum
    per_channel, depth = _averaging(model, layer, cfg, c, terms)
    return _pool_cost(model, layer, cfg, mode, geo, c, per_channel, depth, 1, (0, 0, 0))


def add_cost(model: im.IntegerModel, layer: im.Add, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    reuse = cfg.reuse(layer.name)
    shape = model.shape(layer.name)
    c = shape[0]
    pixels = positions(shape)
    s = layer.sum_bits(model)  # as the generator sets it
    m = np.array(layer.multipliers, dtype=np.int64)
    shift = arith.is_power_of_two(m)
    bits_m = arith.bit_length(m)
    lut_rule = arith.goes_to_lut(s, bits_m, cfg.lut_mult_max_bits, cfg.lut_mult_narrow_bits)
    prod_lut = float(np.where(~shift & lut_rule, (arith.naf_weight(m) - 1) * (s + bits_m), 0).sum())
    prod_dsp = float(np.where(~shift & ~lut_rule, arith.dsp_tiles(s, bits_m + 1, cfg.dsp_ports), 0).sum())
    zero_subs = sum(s for src in layer.inputs if model.grid(src).zero_point != 0)
    per_lut = prod_lut + zero_subs + 4 * s  # products, zero-point subtractions, sum + round + 2 compares
    per_ff = float(2 * s + model.grid(layer.name).bits)
    cost = LayerCost(layer.name, "Add", reuse=reuse, stage="pixel", iterations=pixels, out_pixels=pixels)
    cost.depth = (arith.DSP_PIPELINE if prod_dsp else arith.FABRIC_PIPELINE) + 3
    cost.out_share = {"lut": np.full(c, per_lut), "dsp": np.full(c, prod_dsp), "ff": np.full(c, per_ff),
                      "bram": _zeros(c)}
    cost.lut, cost.dsp, cost.ff = int(per_lut * c), int(prod_dsp * c), int(per_ff * c)
    _scale(cost, pixels if mode.arch == "parallel" else 1)  # add_array unrolls every element
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
    im.Flatten: free_view_cost,
}


def layer_cost(model: im.IntegerModel, layer: im.Layer, cfg: EstimateConfig, mode: Mode) -> LayerCost:
    return COSTS[type(layer)](model, layer, cfg, mode)
