"""ConvInteger (1-D and 2-D): int32 sums of (x - x_zp) * (w - w_zp); padded taps hold x_zp.

A 1-D convolution (x ``(N, C, L)``, w ``(O, C/group, k)``) is, by the specification's N-D
definition, the 2-D one over a single row: it runs as such (:func:`as_2d_attributes`)."""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fpga_sim.numeric import INT8_DTYPES
from fpga_sim.ops.base import Attr, Input, Known, Op, is_scalar_shape
from fpga_sim.ops.integer_gemm import CHUNK_BYTES, CentredWeights, scalar_int, store_int32


def _conv_weights(w: np.ndarray, w_zero_point: np.ndarray | None, group: int) -> CentredWeights:
    out_channels = w.shape[0]
    if out_channels % group:
        raise ValueError(f"{out_channels} output channels are not divisible by group={group}")
    rows = w.reshape(group, out_channels // group, -1)
    zero_point = None
    if w_zero_point is not None:
        if w_zero_point.size not in (1, out_channels) or w_zero_point.ndim > 1:
            raise ValueError(f"w_zero_point must be a scalar or have {out_channels} elements")
        zero_point = np.broadcast_to(w_zero_point.reshape(-1), (out_channels,)).reshape(group, -1)
    return CentredWeights.from_rows(rows, zero_point)


class Geometry(NamedTuple):
    """Where every tap of every output reads: pads (t, l, b, r) and (h, w) pairs."""

    pads: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    kernel: tuple[int, ...]
    out: tuple[int, ...]


def spatial_rank(attrs: dict[str, Any], *shapes) -> int:
    """1 or 2: from the first known rank of ``shapes`` (x, w: rank - 2), else the attributes' lengths."""
    for shape in shapes:
        if shape is not None:
            if len(shape) not in (3, 4):
                raise ValueError(f"only 1-D and 2-D windows are supported (a 3-D or 4-D tensor), got rank {len(shape)}")
            return len(shape) - 2
    for key, per_axis in (("kernel_shape", 1), ("strides", 1), ("dilations", 1), ("pads", 2)):
        if attrs.get(key):
            return len(attrs[key]) // per_axis
    return 2


def as_2d_attributes(attrs: dict[str, Any], rank: int) -> dict[str, Any]:
    """The attributes of a 1-D window as those of the 2-D window over one row (unchanged in 2-D):
    pads ``(b, e) -> (0, b, 0, e)``, strides/dilations/kernel ``(v,) -> (1, v)``."""
    if rank == 2:
        return attrs
    out = dict(attrs)
    for key in ("strides", "dilations", "kernel_shape"):
        if attrs.get(key) is not None:
            if len(attrs[key]) != 1:
                raise ValueError(f"{key} must have 1 value for a 1-D window, got {list(attrs[key])}")
            out[key] = (1, *attrs[key])
    if attrs.get("pads") is not None:
        if len(attrs["pads"]) != 2:
            raise ValueError(f"pads must have 2 values for a 1-D window, got {list(attrs['pads'])}")
        out["pads"] = (0, attrs["pads"][0], 0, attrs["pads"][1])
    return out


def _parse_attributes(attrs: dict[str, Any]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    pads = attrs["pads"] or (0, 0, 0, 0)
    strides = attrs["strides"] or (1, 1)
    dilations = attrs["dilations"] or (1, 1)
    if len(pads) != 4 or len(strides) != 2 or len(dilations) != 2:
        raise ValueError("pads must have 2 values per axis, strides and dilations 1, of a 1-D or 2-D window")
    if min(pads) < 0 or min(strides) < 1 or min(dilations) < 1:
        raise ValueError("pads must be >= 0, strides and dilations >= 1")
    return tuple(pads), tuple(strides), tuple(dilations)


def _flat_columns(padded: np.ndarray, group: int, geometry: Geometry) -> tuple[np.ndarray, int]:
    """im2col for stride 1 from contiguous slices of the flattened padded image.

    Output row r, column q, tap (i, j) reads flat element (r + i*d_h) * Wp + q + j*d_w,
    so each tap is one contiguous slice of length OH * Wp covering OH full padded
    rows. Columns q >= OW are garbage (they wrap into the next row or the spare
    zero row at the bottom) and are dropped after the GEMM; their sums obey the
    same bound, being sums of the same kind of terms.
    """
    (d_h, d_w), (k_h, k_w), out_h = geometry.dilations, geometry.kernel, geometry.out[0]
    m, c, _, row_width = padded.shape
    flat = padded.reshape(m, group, c // group, -1).transpose(1, 2, 0, 3)  # (G, C/G, m, Hp*Wp)
    length = out_h * row_width
    columns = np.empty((group, c // group, k_h, k_w, m, length), padded.dtype)
    for i in range(k_h):
        for j in range(k_w):
            offset = i * d_h * row_width + j * d_w
            columns[:, :, i, j] = flat[..., offset : offset + length]
    return columns.reshape(group, -1, m * length), row_width


def _window_columns(padded: np.ndarray, group: int, geometry: Geometry) -> tuple[np.ndarray, int]:
    """General im2col (any stride) through a strided sliding-window view."""
    _, (s_h, s_w), (d_h, d_w), (k_h, k_w), (out_h, out_w) = geometry
    m, c = padded.shape[:2]
    span_h, span_w = d_h * (k_h - 1) + 1, d_w * (k_w - 1) + 1
    windows = sliding_window_view(padded, (span_h, span_w), axis=(2, 3))
    windows = windows[:, :, : s_h * (out_h - 1) + 1 : s_h, : s_w * (out_w - 1) + 1 : s_w, ::d_h, ::d_w]
    # (m, C, OH, OW, KH, KW) -> (G, C/G * KH * KW, m * OH * OW)
    columns = windows.reshape(m, group, c // group, out_h, out_w, k_h, k_w).transpose(1, 2, 5, 6, 0, 3, 4)
    return np.ascontiguousarray(columns).reshape(group, -1, m * out_h * out_w), out_w


class ConvInteger(Op):
    """ConvInteger, NCHW x OIHW (or NCL x OIL) -> int32, exact (see ``integer_gemm``).

    Padded taps contribute 0 after centring, i.e. padding holds the zero point.
    Computed as im2col + one GEMM per group and batch chunk (few, large BLAS
    calls: many small ones collapse when the CPU is shared): float32 or float64 when
    the weight-derived bound proves exactness, int64 otherwise; results wrap to
    int32 like the specification's int32 accumulator.
    """

    op_type = "ConvInteger"
    inputs = (
        Input("x", INT8_DTYPES),
        Input("w", INT8_DTYPES),
        Input("x_zero_point", INT8_DTYPES, optional=True, scalar=True),
        Input("w_zero_point", INT8_DTYPES, optional=True),
    )
    attributes = {
        "auto_pad": Attr("str", "NOTSET", choices=("NOTSET",)),
        "dilations": Attr("ints", None),
        "group": Attr("int", 1),
        "kernel_shape": Attr("ints", None),
        "pads": Attr("ints", None),
        "strides": Attr("ints", None),
    }
    same_dtype = (("x", "x_zero_point"), ("w", "w_zero_point"))

    def prepare(self, known: Sequence[Known | None], **attrs: Any) -> None:
        x, w, _, w_zp = known
        shapes = [info.shape for info in (x, w) if info is not None and info.shape is not None]
        rank = spatial_rank(attrs, *shapes)
        if len({len(s) for s in shapes}) > 1:
            raise ValueError(f"x and w must have the same rank, got shapes {shapes}")
        flat = as_2d_attributes(attrs, rank)
        _parse_attributes(flat)
        if attrs["group"] < 1:
            raise ValueError(f"group must be >= 1, got {attrs['group']}")
        if flat["kernel_shape"] is not None and len(flat["kernel_shape"]) != 2:
            raise ValueError(f"kernel_shape {list(attrs['kernel_shape'])} does not fit a {rank}-D convolution")
        if w_zp is not None and w_zp.shape is not None and not (is_scalar_shape(w_zp.shape) or len(w_zp.shape) == 1):
            raise ValueError("w_zero_point must be a scalar or 1-D (per output channel)")
        if w.value is not None and x.shape is not None and x.shape[1] is not None:
            if x.shape[1] != w.value.shape[1] * attrs["group"]:
                raise ValueError(f"x has {x.shape[1]} channels, w expects {w.value.shape[1]} x group {attrs['group']}")
        self.weights = None
        if w.value is not None and (w_zp is None or w_zp.value is not None):
            self.weights = _conv_weights(w.value, None if w_zp is None else w_zp.value, attrs["group"])

    def _run(self, x, w, x_zero_point=None, w_zero_point=None, **attrs):
        if x.ndim != w.ndim or x.ndim not in (3, 4):
            raise ValueError(f"x and w must both be 3-D (1-D convolution) or 4-D (2-D), got {x.shape} and {w.shape}")
        if x.ndim == 4:
            return self._run_2d(x, w, x_zero_point, w_zero_point, **attrs)
        flat = as_2d_attributes(attrs, 1)
        return self._run_2d(x[:, :, None, :], w[:, :, None, :], x_zero_point, w_zero_point, **flat)[:, :, 0, :]

    def _run_2d(self, x, w, x_zero_point=None, w_zero_point=None, *, group, kernel_shape, **attrs):
        (pad_t, pad_l, pad_b, pad_r), (s_h, s_w), (d_h, d_w) = _parse_attributes(attrs)
        if kernel_shape is not None and tuple(kernel_shape) != w.shape[2:]:
            raise ValueError(f"kernel_shape {list(kernel_shape)} differs from w's {list(w.shape[2:])}")
        weights = self.weights or _conv_weights(w, w_zero_point, group)
        n, c, h, wd = x.shape
        out_c, c_g, k_h, k_w = w.shape
        if c != c_g * group:
            raise ValueError(f"x has {c} channels, w expects {c_g} x group {group}")
        x_zp = scalar_int(x_zero_point)
        acc, bound = weights.accumulator(x.dtype, x_zp)
        span_h, span_w = d_h * (k_h - 1) + 1, d_w * (k_w - 1) + 1
        out_h = (h + pad_t + pad_b - span_h) // s_h + 1
        out_w = (wd + pad_l + pad_r - span_w) // s_w + 1
        if out_h < 1 or out_w < 1:
            raise ValueError(f"the kernel does not fit the padded input {x.shape}")
        kernel = weights.matrix.astype(acc)  # (group, Cout/group, K), K ordered (c, kh, kw)
        geometry = Geometry((pad_t, pad_l, pad_b, pad_r), (s_h, s_w), (d_h, d_w), (k_h, k_w), (out_h, out_w))
        im2col = _flat_columns if (s_h, s_w) == (1, 1) else _window_columns
        out = np.empty((n, out_c, out_h, out_w), np.int32)
        chunk = max(1, CHUNK_BYTES // (c * k_h * k_w * out_h * (wd + pad_l + pad_r) * acc.itemsize))
        padded = np.zeros((min(n, chunk), c, h + pad_t + pad_b + 1, wd + pad_l + pad_r), acc)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            np.subtract(x[start : start + m], acc.type(x_zp), dtype=acc,
                        out=padded[:m, :, pad_t : pad_t + h, pad_l : pad_l + wd])
            columns, row_width = im2col(padded[:m], group, geometry)
            sums = np.matmul(kernel, columns)  # one GEMM per group: (G, Cout/G, m * OH * row_width)
            sums = sums.reshape(group, out_c // group, m, out_h, row_width)[..., :out_w]
            store_int32(out[start : start + m].reshape(m, group, out_c // group, out_h, out_w),
                        sums.transpose(2, 0, 1, 3, 4), bound)
        return out
