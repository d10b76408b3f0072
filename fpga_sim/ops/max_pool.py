"""MaxPool (1-D and 2-D, first output only): padded positions never win.

A 1-D pool (X ``(N, C, L)``) is the 2-D one over a single row, as the specification's N-D
definition has it (``conv_integer.as_2d_attributes``)."""

from __future__ import annotations

from itertools import product
from typing import Any, Sequence

import numpy as np

from fpga_sim.numeric import FLOAT_DTYPES, INT8_DTYPES
from fpga_sim.ops.base import Attr, Input, Known, Op
from fpga_sim.ops.conv_integer import as_2d_attributes, spatial_rank


def _geometry(attrs: dict[str, Any]) -> tuple[tuple[int, ...], ...]:
    kernel = tuple(attrs["kernel_shape"])
    pads = tuple(attrs["pads"] or (0, 0, 0, 0))
    strides = tuple(attrs["strides"] or (1, 1))
    dilations = tuple(attrs["dilations"] or (1, 1))
    if len(kernel) != 2 or len(pads) != 4 or len(strides) != 2 or len(dilations) != 2:
        raise ValueError("kernel_shape, strides and dilations need one value per axis, pads two")
    if min(kernel) < 1 or min(strides) < 1 or min(dilations) < 1 or min(pads) < 0:
        raise ValueError("kernel, strides and dilations must be >= 1 and pads >= 0")
    if max(pads[0], pads[2]) >= kernel[0] or max(pads[1], pads[3]) >= kernel[1]:
        raise ValueError("pads must be smaller than the kernel")
    return kernel, pads, strides, dilations


def _window_hits_input(size: int, out: int, kernel: int, pad: int, stride: int, dilation: int) -> bool:
    """True if every output window along one axis covers at least one real element."""
    taps = np.arange(out)[:, None] * stride - pad + np.arange(kernel)[None, :] * dilation
    return bool(((taps >= 0) & (taps < size)).any(axis=1).all())


class MaxPool(Op):
    """Max over each window; padding never wins (it acts as the dtype's lowest value).

    Refused at run time: float inputs holding NaN or -inf, and windows made only
    of padding. For those the specification gives no single answer and
    onnxruntime returns -FLT_MAX or an order-dependent value.
    """

    op_type = "MaxPool"
    inputs = (Input("X", INT8_DTYPES | FLOAT_DTYPES),)
    attributes = {
        "auto_pad": Attr("str", "NOTSET", choices=("NOTSET",)),
        "ceil_mode": Attr("int", 0, choices=(0,)),
        "dilations": Attr("ints", None),
        "kernel_shape": Attr("ints"),
        "pads": Attr("ints", None),
        "storage_order": Attr("int", 0, choices=(0,)),
        "strides": Attr("ints", None),
    }

    def prepare(self, known: Sequence[Known | None], **attrs: Any) -> None:
        x = known[0]
        _geometry(as_2d_attributes(attrs, spatial_rank(attrs, None if x is None else x.shape)))

    def _run(self, X, **attrs):
        if X.ndim not in (3, 4):
            raise ValueError(f"X must be 3-D (1-D pooling) or 4-D (2-D), got shape {X.shape}")
        if X.ndim == 3:
            return self._run_2d(X[:, :, None, :], **as_2d_attributes(attrs, 1))[:, :, 0, :]
        return self._run_2d(X, **attrs)

    def _run_2d(self, X, **attrs):
        (k_h, k_w), (pad_t, pad_l, pad_b, pad_r), (s_h, s_w), (d_h, d_w) = _geometry(attrs)
        if X.dtype.kind == "f" and (np.isnan(X).any() or np.isneginf(X).any()):
            raise ValueError("float input holding NaN or -inf is not supported")
        n, c, h, w = X.shape
        out_h = (h + pad_t + pad_b - d_h * (k_h - 1) - 1) // s_h + 1
        out_w = (w + pad_l + pad_r - d_w * (k_w - 1) - 1) // s_w + 1
        if out_h < 1 or out_w < 1:
            raise ValueError(f"the kernel does not fit the padded input {X.shape}")
        rows_ok = _window_hits_input(h, out_h, k_h, pad_t, s_h, d_h)
        if not (rows_ok and _window_hits_input(w, out_w, k_w, pad_l, s_w, d_w)):
            raise ValueError("a pooling window lies entirely in the padding")
        lowest = np.finfo(X.dtype).min if X.dtype.kind == "f" else np.iinfo(X.dtype).min
        padded = np.full((n, c, h + pad_t + pad_b, w + pad_l + pad_r), lowest, X.dtype)
        padded[:, :, pad_t : pad_t + h, pad_l : pad_l + w] = X
        out = None
        for i, j in product(range(k_h), range(k_w)):
            tap = padded[:, :, i * d_h : i * d_h + s_h * (out_h - 1) + 1 : s_h,
                         j * d_w : j * d_w + s_w * (out_w - 1) + 1 : s_w]
            out = tap.copy() if out is None else np.maximum(out, tap, out=out)
        return out
