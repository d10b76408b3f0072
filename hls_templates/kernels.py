"""One HLS kernel call per layer: its config struct, its constant tables and its call line.

Each ``*_kernel`` function turns one integer-model layer into a :class:`Kernel` for the chosen
architecture. Config structs are dataclasses rendered by :func:`hls_templates.cpp.render_struct`;
their fields mirror the ``CONFIG_T::`` members the kernels in ``cpp/foldline/`` read.

Zero weights: MAC layers list their nonzero weights only (:func:`sparse_table`) as
``(out, tap, weight)`` entries, so a pruned weight never becomes a multiplier, whatever the
HLS tool's constant folding does.

Every table is a plain constant array whose elements are ``foldline::table_element<T>::type``:
the ap type ``T`` in synthesis, a built-in integer in C simulation, so g++ compiles a table as
data in time linear in its length (``foldline_types.h``; docs/hls.md, "C simulation here").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from exporters import integer_model as im
from hls_templates.cpp import ap_int, count, flag, index_bits, integer, render_table, typedef
from hls_templates.errors import UnsupportedModelError

MULTIPLIER_T = "foldline::multiplier_t"
SHIFT_T = "foldline::shift_t"


# -- config structs (fields = the CONFIG_T members the C++ kernels read) ------------------------
@dataclass
class WindowFields:
    in_height: int = count("input rows")
    in_width: int = count("input columns")
    n_chan: int = count("input channels")
    filt_height: int = count("window rows")
    filt_width: int = count("window columns")
    stride_height: int = count("")
    stride_width: int = count("")
    dil_height: int = count("rows between window taps (dilation)")
    dil_width: int = count("columns between window taps (dilation)")
    pad_top: int = count("padding rows on top")
    pad_left: int = count("padding columns on the left")
    pad_bottom: int = count("padding rows at the bottom: pad_top + ceil mode's end padding")
    pad_right: int = count("padding columns on the right: pad_left + ceil mode's end padding")
    out_height: int = count("")
    out_width: int = count("")
    pad_value: int = integer("value of a padded tap")


@dataclass
class SparseFields:
    weight_t: str = typedef("weights: signed, weight_bits wide")
    tap_t: str = typedef("index into the flattened window / input vector")
    out_index_t: str = typedef("index of the output channel")
    nonzero_t: str = typedef("one (out, tap, weight) entry")
    n_taps: int = count("inputs each output may read")
    n_out: int = count("outputs")
    n_nonzero: int = count("nonzero weights: the multipliers at reuse 1")
    n_table: int = count("table length (n_nonzero, or 1 placeholder)")
    multiplier_limit: int = count("ceil(n_nonzero / reuse_factor)")


@dataclass
class RequantFields:
    accum_t: str = typedef("proven folded-form accumulator width P")
    accum_bits: int = count("P")
    out_zero: int = integer("output zero point")
    out_lo: int = integer("clamp low (the zero point when ReLU is fused)")
    out_hi: int = integer("clamp high")
    shift_min: int = count("smallest shift n of the channels: sizes the rounding word (foldline_requant.h)")


@dataclass
class ConvConfig(RequantFields, SparseFields, WindowFields):
    n_filt: int = count("output channels")
    groups: int = count("")
    reuse_factor: int = count("cycles per output pixel (initiation interval)")


@dataclass
class LinearConfig(RequantFields, SparseFields):
    in_pixels: int = count("input stream elements (pixels before a Flatten)")
    in_chan: int = count("values per input element")
    reuse_factor: int = count("cycles per output vector (initiation interval)")


@dataclass
class MaxPoolConfig(WindowFields):
    reuse_factor: int = count("cycles per output pixel")


@dataclass
class AvgPoolConfig(RequantFields, WindowFields):
    in_zero: int = integer("input zero point (padded taps hold it)")
    acc_start: int = integer("-in_zero * window: the folded-form start")
    reuse_factor: int = count("cycles per output pixel")
    counted: bool = flag("edge windows divide by the taps they count: (M, n) by (rows, columns) counted")
    n_rules: int = count("entries of the M and n tables: n_chan, or filt_height * filt_width when counted")
    count_row_lo: int = integer("first padded row a window counts (pad_top without count_include_pad)")
    count_row_hi: int = integer("end of the rows a window counts")
    count_col_lo: int = integer("first padded column a window counts")
    count_col_hi: int = integer("end of the columns a window counts")


@dataclass
class GlobalAvgPoolConfig(RequantFields):
    n_chan: int = count("channels")
    n_pixels: int = count("H * W: the window")
    in_zero: int = integer("input zero point")
    acc_start: int = integer("-in_zero * n_pixels: the folded-form start")
    reuse_factor: int = count("cycles per input pixel")


@dataclass
class AddConfig:
    n_chan: int = count("channels per element")
    n_pixels: int = count("elements")
    zero_a: int = integer("first input's zero point")
    zero_b: int = integer("second input's zero point")
    mult_a: int = count("M1")
    mult_b: int = count("M2")
    shift: int = count("n, shared")
    sum_bits: int = count("proven width of M1 (x1 - z1) + M2 (x2 - z2)")
    out_zero: int = integer("output zero point")
    out_lo: int = integer("clamp low")
    out_hi: int = integer("clamp high")
    reuse_factor: int = count("cycles per element")


@dataclass
class LookupConfig:
    table_t: str = typedef("an output integer: the output grid's type")
    index_t: str = typedef("a table index, 0 .. n_table - 1")
    n_table: int = count("entries: one per integer of the input grid")
    in_lo: int = integer("the input grid's lowest integer: index = x - in_lo")
    n_chan: int = count("values per element")
    n_pixels: int = count("elements")
    reuse_factor: int = count("cycles per element")


@dataclass
class ConcatConfig:
    n_pixels: int = count("pixels (1 for vectors)")
    n_chan_a: int = count("channels of the first input")
    n_chan_b: int = count("channels of the second input")
    n_chan: int = count("output channels: n_chan_a + n_chan_b")
    copy_a: bool = flag("the first input's rule is the identity: copied")
    zero_a: int = integer("first input's zero point")
    mult_a: int = count("M_a")
    shift_a: int = count("n_a")
    term_bits_a: int = count("proven width of M_a (x_a - z_a) and of x_a")
    copy_b: bool = flag("the second input's rule is the identity: copied")
    zero_b: int = integer("second input's zero point")
    mult_b: int = count("M_b")
    shift_b: int = count("n_b")
    term_bits_b: int = count("proven width of M_b (x_b - z_b) and of x_b")
    out_zero: int = integer("output zero point")
    out_lo: int = integer("clamp low (raised by a fused ReLU or clamp)")
    out_hi: int = integer("clamp high")
    reuse_factor: int = count("cycles per pixel")


@dataclass
class UpsampleConfig:
    in_height: int = count("input rows")
    in_width: int = count("input columns")
    n_chan: int = count("channels")
    factor_height: int = count("each row repeated")
    factor_width: int = count("each column repeated")
    out_height: int = count("in_height * factor_height")
    out_width: int = count("in_width * factor_width")
    reuse_factor: int = count("cycles per output pixel")


# -- what the writer renders --------------------------------------------------------------------
@dataclass
class Table:
    name: str
    ctype: str
    values: list
    comment: str = ""

    def render(self) -> str:
        head = f"// {self.comment}\n" if self.comment else ""
        return head + render_table(self.name, f"foldline::table_element<{self.ctype}>::type", self.values)


@dataclass
class Buffer:
    """One tensor as the hardware holds it: pixel-major (HWC) ``height x width`` elements of
    ``channels`` values (a vector is ``(F, 1, 1)``; a flattened map keeps its map layout)."""

    tensor: str
    ident: str
    var: str
    bits: int
    signed: bool
    channels: int
    height: int
    width: int
    grid: object

    @property
    def elem(self) -> str:
        return ap_int(self.bits, self.signed)

    @property
    def elem_t(self) -> str:
        return f"{self.ident}_t"

    @property
    def pixel_t(self) -> str:
        return f"{self.ident}_pixel_t"

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @property
    def size(self) -> int:
        return self.pixels * self.channels

    @property
    def layout(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


@dataclass
class Kernel:
    layer: str
    summary: str
    function: str
    template_args: list[str]
    args: list[str]
    config_name: str | None = None
    config: object | None = None
    tables: list[Table] = field(default_factory=list)

    def call(self) -> str:
        return f"{self.function}<{', '.join(self.template_args)}>({', '.join(self.args)});"


# -- tables ---------------------------------------------------------------------------------------
def sparse_table(rows_by_tap: np.ndarray) -> list[tuple[int, int, int]]:
    """``(out, tap, weight)`` for every nonzero of a ``(n_out, n_taps)`` matrix, out-major."""
    outs, taps = np.nonzero(rows_by_tap)
    return [(int(o), int(t), int(rows_by_tap[o, t])) for o, t in zip(outs, taps)]


def _sparse_fields(weight_bits: int, matrix: np.ndarray, reuse: int) -> tuple[dict, list]:
    n_out, n_taps = matrix.shape
    entries = sparse_table(matrix)
    nnz = len(entries)
    fields_ = dict(weight_t=ap_int(weight_bits), tap_t=ap_int(index_bits(n_taps), False),
                   out_index_t=ap_int(index_bits(n_out), False),
                   nonzero_t="foldline::nonzero<weight_t, tap_t, out_index_t>",
                   n_taps=n_taps, n_out=n_out, n_nonzero=nnz, n_table=max(nnz, 1),
                   multiplier_limit=max(1, -(-nnz // reuse)))
    return fields_, entries or [(0, 0, 0)]


def _requant_fields(model: im.IntegerModel, layer, rq: im.Requant) -> dict:
    bits = im.accumulator_analysis(model, layer).bits
    lo, hi = rq.bounds
    return dict(accum_t=ap_int(bits), accum_bits=bits, out_zero=rq.out.zero_point, out_lo=lo, out_hi=hi,
                shift_min=int(np.min(rq.shift)))


def _requant_tables(ident: str, rq: im.Requant) -> list[Table]:
    return [Table(f"{ident}_m", MULTIPLIER_T, rq.multiplier.tolist(), "requantization multipliers M (per channel)"),
            Table(f"{ident}_n", SHIFT_T, rq.shift.tolist(), "requantization shifts n (per channel)")]


def _folded_start(model, layer, z: int) -> int:
    """A pooling accumulator's start, ``b' = -z_x * window`` (the same for every channel)."""
    return int(im.folded_bias(layer, z, model)[0])


def _window_fields(in_buf: Buffer, out_buf: Buffer, window: im.Window, pad_value: int) -> dict:
    """The window of a layer in its 2-D form (``Window.plane``: a 1-D layer is one row)."""
    w = window.plane()
    return dict(in_height=in_buf.height, in_width=in_buf.width, n_chan=in_buf.channels, filt_height=w.kernel[0],
                filt_width=w.kernel[1], stride_height=w.stride[0], stride_width=w.stride[1],
                dil_height=w.dilation[0], dil_width=w.dilation[1], pad_top=w.padding[0], pad_left=w.padding[1],
                pad_bottom=w.padding[0] + w.extra[0], pad_right=w.padding[1] + w.extra[1],
                out_height=out_buf.height, out_width=out_buf.width, pad_value=pad_value)


def _geometry_text(layer, model) -> str:
    """``kernel (3, 3), stride (1, 1), padding (1, 1)`` and what differs from the defaults (for summaries)."""
    w = layer.geometry(model)
    text = f"kernel {w.kernel}, stride {w.stride}, padding {w.padding}"
    if any(d != 1 for d in w.dilation):
        text += f", dilation {w.dilation}"
    if any(w.extra):
        text += f", ceil-mode end padding {w.extra}"
    return text


def _types(arch: str, *buffers: Buffer) -> list[str]:
    return [b.pixel_t if arch == "dataflow" else b.elem_t for b in buffers]


def _variant(base: str, arch: str) -> str:
    return f"foldline::{base}_{'stream' if arch == 'dataflow' else 'array'}"


# -- one function per layer type ------------------------------------------------------------------
def conv_kernel(model, layer: im.Conv, ident, ins, out, args, arch, reuse) -> Kernel:
    (src,) = ins
    view = layer.convolution(model).plane()
    o, i_per_group, kh, kw = view.weight.shape
    c = src.channels
    # tap (y * kw + x) * C + the input channel the layer's grouping assigns (ConvolutionView.input_channel)
    channel = view.input_channel[:, :, None, None]
    taps = (np.arange(kh)[:, None] * kw + np.arange(kw)[None, :]) * c + channel
    matrix = np.zeros((o, kh * kw * c), dtype=np.int64)
    np.put_along_axis(matrix, taps.reshape(o, -1), view.weight.reshape(o, -1), axis=1)
    sparse, entries = _sparse_fields(layer.weight_bits, matrix, reuse)
    z = model.grid(layer.input).zero_point
    cfg = ConvConfig(**_window_fields(src, out, view.window, z), **sparse,
                     **_requant_fields(model, layer, layer.requant), n_filt=o, groups=layer.groups,
                     reuse_factor=reuse)
    name = f"config_{ident}"
    tables = [Table(f"{ident}_w", f"{name}::nonzero_t", entries,
                    f"{sparse['n_nonzero']} nonzero weights of {layer.weight.size}: "
                    "{out, tap, weight}, tap = (kh * filt_width + kw) * n_chan + input channel"),
              Table(f"{ident}_b", f"{name}::accum_t", im.folded_bias(layer, z).tolist(),
                    f"folded bias b' = b - z_x * sum(w), z_x = {z}"),
              *_requant_tables(ident, layer.requant)]
    kind = "depthwise " if layer.groups == c and i_per_group == 1 and c > 1 else ""
    summary = (f"{layer.name}: {kind}{layer.op_name(model)} {'x'.join(map(str, layer.weight.shape))}, groups "
               f"{layer.groups}, {_geometry_text(layer, model)}; {sparse['n_nonzero']}/{layer.weight.size} weights nonzero; "
               f"accumulator {cfg.accum_bits} bits; reuse {reuse}")
    return Kernel(layer.name, summary, _variant("conv2d", arch), [*_types(arch, src, out), name],
                  [*args, *(t.name for t in tables)], name, cfg, tables)


def linear_kernel(model, layer: im.Linear, ident, ins, out, args, arch, reuse) -> Kernel:
    (src,) = ins
    rows = layer.weight_rows()
    # The model's input index j is C-major over the source layout; the hardware holds HWC.
    pixels = src.pixels
    j = np.arange(rows.shape[1])
    physical = (j % pixels) * src.channels + j // pixels
    matrix = np.zeros_like(rows)
    matrix[:, physical] = rows
    sparse, entries = _sparse_fields(layer.weight_bits, matrix, reuse)
    z = model.grid(layer.input).zero_point
    in_pixels, in_chan = (src.pixels, src.channels) if arch == "dataflow" else (1, src.size)
    cfg = LinearConfig(**sparse, **_requant_fields(model, layer, layer.requant), in_pixels=in_pixels,
                       in_chan=in_chan, reuse_factor=reuse)
    name = f"config_{ident}"
    note = "" if pixels == 1 else f" (columns permuted from C-major to the HWC order of {src.tensor})"
    tables = [Table(f"{ident}_w", f"{name}::nonzero_t", entries,
                    f"{sparse['n_nonzero']} nonzero weights of {rows.size}: {{out, tap, weight}}{note}"),
              Table(f"{ident}_b", f"{name}::accum_t", im.folded_bias(layer, z).tolist(),
                    f"folded bias b' = b - z_x * sum(w), z_x = {z}"),
              *_requant_tables(ident, layer.requant)]
    summary = (f"{layer.name}: Linear {rows.shape[1]} -> {rows.shape[0]}; {sparse['n_nonzero']}/{rows.size} weights "
               f"nonzero; accumulator {cfg.accum_bits} bits; reuse {reuse}")
    return Kernel(layer.name, summary, _variant("linear", arch), [*_types(arch, src, out), name],
                  [*args, *(t.name for t in tables)], name, cfg, tables)


def maxpool_kernel(model, layer: im.MaxPool, ident, ins, out, args, arch, reuse) -> Kernel:
    (src,) = ins
    cfg = MaxPoolConfig(**_window_fields(src, out, layer.geometry(model), src.grid.lo), reuse_factor=reuse)
    name = f"config_{ident}"
    summary = f"{layer.name}: {layer.op_name(model)} {_geometry_text(layer, model)}"
    return Kernel(layer.name, summary, _variant("maxpool", arch), [*_types(arch, src), name], list(args), name, cfg)


def avgpool_kernel(model, layer: im.AvgPool, ident, ins, out, args, arch, reuse) -> Kernel:
    """Per-channel (M, n); or, when edge windows count fewer taps (``counted``), the (M, n) of each
    (counted rows, counted columns) pair: entry ``(a - 1) * kw + b - 1`` is the rule of count ``a * b``
    (``AvgPool.count_rule``), the bounds of the counted rows and columns in the config."""
    (src,) = ins
    z = src.grid.zero_point
    plane = layer.geometry(model).plane()
    (kh, kw), (pt, pl) = plane.kernel, plane.padding
    if layer.count_include_pad:  # the padded plane, without ceil mode's end padding
        rows, cols = (0, src.height + 2 * pt), (0, src.width + 2 * pl)
    else:  # the input
        rows, cols = (pt, pt + src.height), (pl, pl + src.width)
    counted = layer.divides_by_count(model)
    fields = dict(**_window_fields(src, out, plane, z), **_requant_fields(model, layer, layer.requant), in_zero=z,
                  acc_start=_folded_start(model, layer, z), reuse_factor=reuse, counted=counted,
                  count_row_lo=rows[0], count_row_hi=rows[1], count_col_lo=cols[0], count_col_hi=cols[1])
    if counted:
        rules = [layer.count_rule(a * b) for a in range(1, kh + 1) for b in range(1, kw + 1)]
        fields["shift_min"] = min(n for _, n in rules)
        tables = [Table(f"{ident}_m", MULTIPLIER_T, [m for m, _ in rules],
                        "requantization multipliers M by (counted rows - 1) * filt_width + counted columns - 1"),
                  Table(f"{ident}_n", SHIFT_T, [n for _, n in rules], "requantization shifts n, indexed alike")]
    else:
        tables = _requant_tables(ident, layer.requant)
    cfg = AvgPoolConfig(**fields, n_rules=len(tables[0].values))
    name = f"config_{ident}"
    summary = (f"{layer.name}: {layer.op_name(model)} {_geometry_text(layer, model)} (padded taps = z_x = {z}"
               f"{'; each window divided by the taps it counts' if counted else ''}); accumulator {cfg.accum_bits} bits")
    return Kernel(layer.name, summary, _variant("avgpool", arch), [*_types(arch, src, out), name],
                  [*args, *(t.name for t in tables)], name, cfg, tables)


def global_avgpool_kernel(model, layer: im.GlobalAvgPool, ident, ins, out, args, arch, reuse) -> Kernel:
    (src,) = ins
    z = src.grid.zero_point
    cfg = GlobalAvgPoolConfig(**_requant_fields(model, layer, layer.requant), n_chan=src.channels,
                              n_pixels=src.pixels, in_zero=z, acc_start=_folded_start(model, layer, z),
                              reuse_factor=reuse)
    name = f"config_{ident}"
    tables = _requant_tables(ident, layer.requant)
    summary = f"{layer.name}: {layer.op_name(model)} over {src.height}x{src.width}; accumulator {cfg.accum_bits} bits"
    return Kernel(layer.name, summary, _variant("global_avgpool", arch), [*_types(arch, src, out), name],
                  [*args, *(t.name for t in tables)], name, cfg, tables)


def add_kernel(model, layer: im.Add, ident, ins, out, args, arch, reuse) -> Kernel:
    a, b = ins
    if a.layout != b.layout:
        raise UnsupportedModelError(
            f"layer '{layer.name}': Add of tensors held in different layouts {a.layout} and "
            f"{b.layout} (a flattened map and a vector) is not supported")
    ga, gb = a.grid, b.grid
    (ma, mb), n = layer.multipliers, layer.shift
    sum_bits = layer.sum_bits(model)
    olo, ohi = layer.bounds
    pixels, chan = (a.pixels, a.channels) if arch == "dataflow" else (1, a.size)
    cfg = AddConfig(n_chan=chan, n_pixels=pixels, zero_a=ga.zero_point, zero_b=gb.zero_point, mult_a=ma,
                    mult_b=mb, shift=n, sum_bits=sum_bits, out_zero=layer.out.zero_point, out_lo=olo, out_hi=ohi,
                    reuse_factor=reuse)
    name = f"config_{ident}"
    summary = f"{layer.name}: residual Add, M = ({ma}, {mb}), n = {n}; sum {sum_bits} bits"
    return Kernel(layer.name, summary, _variant("add", arch), [*_types(arch, a, b, out), name], list(args), name, cfg)


def lookup_kernel(model, layer: im.Lookup, ident, ins, out, args, arch, reuse) -> Kernel:
    """``y = table[x - in_lo]`` per element: one ROM read per value of a pixel (stream) or of the
    whole tensor (array)."""
    (src,) = ins
    pixels, chan = (src.pixels, src.channels) if arch == "dataflow" else (1, src.size)
    n = layer.table.size
    cfg = LookupConfig(table_t=out.elem, index_t=ap_int(index_bits(n), False), n_table=n, in_lo=src.grid.lo,
                       n_chan=chan, n_pixels=pixels, reuse_factor=reuse)
    name = f"config_{ident}"
    tables = [Table(f"{ident}_w", f"{name}::table_t", layer.table.tolist(),
                    f"lookup table ({layer.function}): y = table[x - ({src.grid.lo})], output grid scale "
                    f"{out.grid.scale!r}, zero point {out.grid.zero_point}")]
    summary = f"{layer.name}: Lookup ({layer.function}), {n} entries of {out.bits} bits; reuse {reuse}"
    return Kernel(layer.name, summary, _variant("lookup", arch), [*_types(arch, src, out), name],
                  [*args, *(t.name for t in tables)], name, cfg, tables)


def concat_kernel(model, layer: im.Concat, ident, ins, out, args, arch, reuse) -> Kernel:
    """Two inputs (the planner chains a longer Concat, :func:`hls_templates.plan.binary_concats`),
    pixel-major like every map: each output pixel is input a's pixel, then input b's."""
    if len(ins) != 2:
        raise UnsupportedModelError(f"layer '{layer.name}': the HLS Concat kernel joins two inputs, got {len(ins)}")
    if any(b.pixels != out.pixels for b in ins):
        raise UnsupportedModelError(
            f"layer '{layer.name}': Concat of a flattened map (held as pixels of channels) with other features is "
            "not supported by the HLS kernels; concatenate the maps before the Flatten (or export with --hls none)")
    per_input = {}
    for key, src, copy, m, n, bits in zip("ab", layer.sources, layer.copies(model), layer.multipliers, layer.shifts,
                                          layer.term_bits(model)):
        per_input.update({f"copy_{key}": copy, f"zero_{key}": model.grid(src).zero_point, f"mult_{key}": m,
                          f"shift_{key}": n, f"term_bits_{key}": bits})
    lo, hi = layer.bounds
    a, b = ins
    cfg = ConcatConfig(n_pixels=out.pixels, n_chan_a=a.channels, n_chan_b=b.channels, n_chan=out.channels,
                       **per_input, out_zero=layer.out.zero_point, out_lo=lo, out_hi=hi, reuse_factor=reuse)
    name = f"config_{ident}"
    rules = ", ".join("copied" if c else f"(M, n) = ({m}, {n})"
                      for c, m, n in zip(layer.copies(model), layer.multipliers, layer.shifts))
    summary = f"{layer.name}: Concat of {a.channels} + {b.channels} channels; {rules}"
    return Kernel(layer.name, summary, _variant("concat", arch), [*_types(arch, a, b, out), name], list(args),
                  name, cfg)


def upsample_kernel(model, layer: im.Upsample, ident, ins, out, args, arch, reuse) -> Kernel:
    (src,) = ins
    cfg = UpsampleConfig(in_height=src.height, in_width=src.width, n_chan=src.channels,
                         factor_height=layer.factor[0], factor_width=layer.factor[1], out_height=out.height,
                         out_width=out.width, reuse_factor=reuse)
    name = f"config_{ident}"
    summary = f"{layer.name}: nearest Upsample x{layer.factor[0]} x{layer.factor[1]} (a row buffer when streaming)"
    return Kernel(layer.name, summary, _variant("upsample", arch), [*_types(arch, src, out), name], list(args),
                  name, cfg)


#: One kernel per computing layer type. The Input is the top function's port and a free view
#: (``layer.is_free_view``: Flatten) aliases its input's buffer, so neither has a kernel.
KERNELS = {
    im.Conv: conv_kernel,
    im.Linear: linear_kernel,
    im.MaxPool: maxpool_kernel,
    im.AvgPool: avgpool_kernel,
    im.GlobalAvgPool: global_avgpool_kernel,
    im.Add: add_kernel,
    im.Concat: concat_kernel,
    im.Upsample: upsample_kernel,
    im.Lookup: lookup_kernel,
}
