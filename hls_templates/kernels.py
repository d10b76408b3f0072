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
from hls_templates.cpp import ap_int, count, index_bits, integer, render_table, typedef
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
    pad_top: int = count("padding rows on each side")
    pad_left: int = count("padding columns on each side")
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
    return dict(accum_t=ap_int(bits), accum_bits=bits, out_zero=rq.out.zero_point, out_lo=lo, out_hi=hi)


def _requant_tables(ident: str, rq: im.Requant) -> list[Table]:
    return [Table(f"{ident}_m", MULTIPLIER_T, rq.multiplier.tolist(), "requantization multipliers M (per channel)"),
            Table(f"{ident}_n", SHIFT_T, rq.shift.tolist(), "requantization shifts n (per channel)")]


def _folded_start(model, layer, z: int) -> int:
    """A pooling accumulator's start, ``b' = -z_x * window`` (the same for every channel)."""
    return int(im.folded_bias(layer, z, model)[0])


def _window_fields(in_buf: Buffer, out_buf: Buffer, kernel, stride, padding, pad_value: int) -> dict:
    return dict(in_height=in_buf.height, in_width=in_buf.width, n_chan=in_buf.channels, filt_height=kernel[0],
                filt_width=kernel[1], stride_height=stride[0], stride_width=stride[1], pad_top=padding[0],
                pad_left=padding[1], out_height=out_buf.height, out_width=out_buf.width, pad_value=pad_value)


def _types(arch: str, *buffers: Buffer) -> list[str]:
    return [b.pixel_t if arch == "dataflow" else b.elem_t for b in buffers]


def _variant(base: str, arch: str) -> str:
    return f"foldline::{base}_{'stream' if arch == 'dataflow' else 'array'}"


# -- one function per layer type ------------------------------------------------------------------
def conv_kernel(model, layer: im.Conv, ident, ins, out, args, arch, reuse) -> Kernel:
    (src,) = ins
    o, i_per_group, kh, kw = layer.weight.shape
    c = src.channels
    # tap (y * kw + x) * C + the input channel the layer's grouping assigns (ConvolutionView.input_channel)
    channel = layer.convolution(model).input_channel[:, :, None, None]
    taps = (np.arange(kh)[:, None] * kw + np.arange(kw)[None, :]) * c + channel
    matrix = np.zeros((o, kh * kw * c), dtype=np.int64)
    np.put_along_axis(matrix, taps.reshape(o, -1), layer.weight.reshape(o, -1), axis=1)
    sparse, entries = _sparse_fields(layer.weight_bits, matrix, reuse)
    z = model.grid(layer.input).zero_point
    cfg = ConvConfig(**_window_fields(src, out, (kh, kw), layer.stride, layer.padding, z), **sparse,
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
    summary = (f"{layer.name}: {kind}Conv {o}x{i_per_group}x{kh}x{kw}, groups {layer.groups}, stride {layer.stride}, "
               f"padding {layer.padding}; {sparse['n_nonzero']}/{layer.weight.size} weights nonzero; "
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
    cfg = MaxPoolConfig(**_window_fields(src, out, layer.kernel, layer.stride, layer.padding, src.grid.lo),
                        reuse_factor=reuse)
    name = f"config_{ident}"
    summary = f"{layer.name}: MaxPool {layer.kernel}, stride {layer.stride}, padding {layer.padding}"
    return Kernel(layer.name, summary, _variant("maxpool", arch), [*_types(arch, src), name], list(args), name, cfg)


def avgpool_kernel(model, layer: im.AvgPool, ident, ins, out, args, arch, reuse) -> Kernel:
    (src,) = ins
    z = src.grid.zero_point
    cfg = AvgPoolConfig(**_window_fields(src, out, layer.kernel, layer.stride, layer.padding, z),
                        **_requant_fields(model, layer, layer.requant), in_zero=z,
                        acc_start=_folded_start(model, layer, z), reuse_factor=reuse)
    name = f"config_{ident}"
    tables = _requant_tables(ident, layer.requant)
    summary = (f"{layer.name}: AvgPool {layer.kernel}, stride {layer.stride}, padding {layer.padding} "
               f"(padded taps = z_x = {z}); accumulator {cfg.accum_bits} bits")
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
    summary = f"{layer.name}: GlobalAvgPool over {src.height}x{src.width}; accumulator {cfg.accum_bits} bits"
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
    olo, ohi = layer.out.output_bounds(layer.relu)
    pixels, chan = (a.pixels, a.channels) if arch == "dataflow" else (1, a.size)
    cfg = AddConfig(n_chan=chan, n_pixels=pixels, zero_a=ga.zero_point, zero_b=gb.zero_point, mult_a=ma,
                    mult_b=mb, shift=n, sum_bits=sum_bits, out_zero=layer.out.zero_point, out_lo=olo, out_hi=ohi,
                    reuse_factor=reuse)
    name = f"config_{ident}"
    summary = f"{layer.name}: residual Add, M = ({ma}, {mb}), n = {n}; sum {sum_bits} bits"
    return Kernel(layer.name, summary, _variant("add", arch), [*_types(arch, a, b, out), name], list(args), name, cfg)


#: One kernel per computing layer type. The Input is the top function's port and a free view
#: (``layer.is_free_view``: Flatten) aliases its input's buffer, so neither has a kernel.
KERNELS = {
    im.Conv: conv_kernel,
    im.Linear: linear_kernel,
    im.MaxPool: maxpool_kernel,
    im.AvgPool: avgpool_kernel,
    im.GlobalAvgPool: global_avgpool_kernel,
    im.Add: add_kernel,
}
