"""Integer mode: the contract's exact integer rule, run in torch on an IntegerModel.

This is an interpreter of :class:`exporters.integer_model.IntegerModel` — the same
object the ONNX exporter and the HLS generator consume — so torch, ONNX and HLS start
from the same integers. Every tensor is int64 holding the layer's integers.

* Input: ``q = clamp(round(x / s), lo, hi)`` in **float32** with the float32 scale
  (division, not a reciprocal multiply; ties to even), as ONNX QuantizeLinear computes
  (:func:`exporters.grid.quantize_host`, the one home of the host rule).
* Conv / Linear / AvgPool / GlobalAvgPool: the subtract-first accumulator ``b + sum w (x - z_x)``
  is computed as a float64 convolution (the layer's ``convolution`` view in its 2-D form: average
  pooling is an all-ones depthwise one, a 1-D layer one row; padding, ceil mode's end padding
  included, is real zero; dilation as torch's) or matmul **on integers**. Every partial sum is an
  integer of magnitude below 2^31 (the accumulator bound proven by
  ``IntegerModel.validate``) and so exactly representable in float64 (< 2^53): the sum is
  exact in any order, and converts back to int64 exactly. Padded taps are 0 = real zero.
* Requantization: ``clamp(z + ((acc * M + 2^(n-1)) >> n), lo, hi)`` in int64
  (``|acc * M| < 2^47``); ``>>`` on int64 is an arithmetic (floor) shift.
* Lookup: the stored table indexed by the input integers (``table[x - lo_x]``).
* AvgPool edge windows (ceil mode, ``count_include_pad=False``): the requantizer of each window's count.
* MaxPool on the integers (padding never wins; torch's ceil mode), Add and Concat as the contract writes them,
  Upsample by repeating the integers, Flatten free.

One step per layer type, registered in :data:`RUNNERS`.

>>> import numpy as np
>>> from exporters.grid import Grid
>>> from exporters import integer_model as im
>>> m = im.IntegerModel([im.Input("x", (2,), Grid(0.5, 0, 8, True)),
...     im.Linear("fc", "x", weight=np.array([[1, 1]]), bias=np.array([1]), weight_bits=8,
...               weight_scale=np.ones(1), requant=im.Requant([1], [1], Grid(0.5, 0, 8, True)))])
>>> run_integer(m, torch.tensor([[1.0, 0.25]])).tolist()    # q = [2, 0]; (3*1 + 1) >> 1 = 2
[[2]]
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from exporters import integer_model as im
from exporters.grid import quantize_host


def _channel(v, dims: int) -> torch.Tensor:
    """Per-channel integers broadcast over (N, C, *spatial): shape (C, 1, ..., 1) with ``dims`` ones."""
    return torch.as_tensor(np.asarray(v, dtype=np.int64)).reshape(-1, *([1] * dims))


def requantize(acc: torch.Tensor, rq: im.Requant, per_position=None) -> torch.Tensor:
    """The contract's rule on int64 ``acc`` of shape (N, C), (N, C, L) or (N, C, H, W): per channel, or
    with ``per_position`` = ``(M, n)`` arrays of the spatial shape (an AvgPool's edge windows)."""
    if per_position is None:
        m, n = _channel(rq.multiplier, acc.dim() - 2), _channel(rq.shift, acc.dim() - 2)
    else:
        m, n = (torch.as_tensor(np.asarray(v, dtype=np.int64)) for v in per_position)
    rounding = torch.where(n > 0, torch.ones_like(n) << (n - 1).clamp(min=0), torch.zeros_like(n))
    lo, hi = rq.bounds
    return torch.clamp(rq.out.zero_point + ((acc * m + rounding) >> n), lo, hi)


def quantize_input(x: torch.Tensor, layer: im.Input) -> torch.Tensor:
    """The host's rule, :func:`exporters.grid.quantize_host` (float32 division, ties to even)."""
    return torch.from_numpy(quantize_host(torch.as_tensor(x).detach().cpu().numpy(), layer.grid))


def _exact(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.int64)


def _centered(model: im.IntegerModel, layer: im.Layer, x: torch.Tensor) -> torch.Tensor:
    """``x - z_x`` in float64 (exact: integers below 2^53)."""
    return (x - model.grid(layer.inputs[0]).zero_point).to(torch.float64)


def _run_input(model, layer: im.Input, x):
    return quantize_input(x, layer)


def _accumulate(model, layer, x) -> torch.Tensor:
    """Conv, AvgPool, GlobalAvgPool: the subtract-first accumulator of the layer's convolution view, in its
    2-D form (a 1-D map is one row); padding, the ceil-mode end padding included, is real zero."""
    view = layer.convolution(model).plane()
    win = view.window
    centered = _centered(model, layer, x)
    centered = centered.reshape(len(centered), *im.plane_shape(model.shape(layer.input)))
    (pt, pl), (eh, ew) = win.padding, win.extra
    centered = F.pad(centered, (pl, pl + ew, pt, pt + eh))
    w = torch.as_tensor(view.weight, dtype=torch.float64)
    acc = _exact(F.conv2d(centered, w, None, win.stride, 0, win.dilation, view.groups))
    acc = acc.reshape(len(acc), *model.shape(layer.name))
    return acc + _channel(layer.accumulator_bias(model), acc.dim() - 2)


def _run_convolution(model, layer, x):
    """Conv, GlobalAvgPool: the accumulator, requantized per channel."""
    return requantize(_accumulate(model, layer, x), layer.requant)


def _run_avgpool(model, layer: im.AvgPool, x):
    """The accumulator, requantized per channel or, when edge windows divide by their own count, per position."""
    return requantize(_accumulate(model, layer, x), layer.requant, layer.position_requant(model))


def _run_linear(model, layer: im.Linear, x):
    w = torch.as_tensor(layer.weight, dtype=torch.float64)
    return requantize(_exact(_centered(model, layer, x) @ w.T) + torch.as_tensor(layer.bias), layer.requant)


def _shift_to_grid(total: torch.Tensor, n: int, out, relu: bool, clamp=None) -> torch.Tensor:
    """``clamp(z_y + ((total + 2^(n-1)) >> n), lo, hi)``: the tail of Add and Concat (one scalar shift)."""
    lo, hi = out.output_bounds(relu, clamp)
    return torch.clamp(out.zero_point + ((total + ((1 << (n - 1)) if n > 0 else 0)) >> n), lo, hi)


def _run_add(model: im.IntegerModel, layer: im.Add, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    za, zb = (model.grid(s).zero_point for s in layer.inputs)
    m1, m2 = layer.multipliers
    return _shift_to_grid(m1 * (a - za) + m2 * (b - zb), layer.shift, layer.out, layer.relu, layer.clamp)


def _run_concat(model: im.IntegerModel, layer: im.Concat, *xs: torch.Tensor) -> torch.Tensor:
    """Each input copied or requantized by its own ``(M_i, n_i)`` onto the output grid, then joined."""
    terms = zip(xs, layer.sources, layer.copies(model), layer.multipliers, layer.shifts)
    parts = [x if copy else _shift_to_grid(m * (x - model.grid(src).zero_point), n, layer.out, layer.relu, layer.clamp)
             for x, src, copy, m, n in terms]
    return torch.cat(parts, dim=1)


def _run_upsample(model, layer: im.Upsample, x: torch.Tensor) -> torch.Tensor:
    return x.repeat_interleave(layer.factor[0], dim=2).repeat_interleave(layer.factor[1], dim=3)


def _run_lookup(model, layer: im.Lookup, x: torch.Tensor) -> torch.Tensor:
    """``table[x - lo_x]``: the output integers, indexed by the input ones."""
    return torch.as_tensor(layer.table)[x + layer.index_offset(model)]


def _run_maxpool(model, layer: im.MaxPool, x: torch.Tensor) -> torch.Tensor:
    """torch's own max pooling (ceil mode included: its output size is PyTorch's rule, found independently
    of ``Window.extra``), on the 2-D form of the map."""
    win = layer.geometry(model).plane()
    plane = x.to(torch.float64).reshape(len(x), *im.plane_shape(model.shape(layer.input)))
    y = F.max_pool2d(plane, win.kernel, win.stride, win.padding, ceil_mode=layer.ceil_mode)
    return _exact(y).reshape(len(x), *model.shape(layer.name))


def _run_flatten(model, layer: im.Flatten, x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1)


#: One interpreter step per layer type: ``runner(model, layer, *inputs)`` (the Input gets the float x).
RUNNERS = {
    im.Input: _run_input,
    im.Conv: _run_convolution,
    im.Linear: _run_linear,
    im.MaxPool: _run_maxpool,
    im.AvgPool: _run_avgpool,
    im.GlobalAvgPool: _run_convolution,
    im.Add: _run_add,
    im.Flatten: _run_flatten,
    im.Concat: _run_concat,
    im.Upsample: _run_upsample,
    im.Lookup: _run_lookup,
}


def run_integer(model: im.IntegerModel, x: torch.Tensor, intermediate: bool = False):
    """Run ``model`` on the float input ``x`` (N, *shape); returns the output integers (int64),
    or with ``intermediate=True`` a dict of every layer's integers by layer name."""
    model.validate()
    x = torch.as_tensor(x)
    outs: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for layer in model.layers:
            args = [outs[s] for s in layer.inputs] or [x]
            outs[layer.name] = RUNNERS[type(layer)](model, layer, *args)
    return outs if intermediate else outs[model.output.name]


def dequantize(model: im.IntegerModel, q: torch.Tensor) -> torch.Tensor:
    """Real values of the output integers, float32 as ONNX DequantizeLinear computes them."""
    g = model.grid(model.output.name)
    return (q - g.zero_point).to(torch.float32) * torch.tensor(g.scale, dtype=torch.float32)


def integer_forward(model, x: torch.Tensor) -> torch.Tensor:
    """Convert a QuantNet (see :func:`toolchain.convert.to_integer_model`) and run it in integer mode."""
    from toolchain.convert import to_integer_model

    return run_integer(to_integer_model(model), x)


def float_forward(model, x: torch.Tensor) -> torch.Tensor:
    """The float fake-quant forward in eval mode (the training-time view of the network)."""
    from toolchain.convert import evaluating

    with evaluating(model), torch.no_grad():
        return model(x)


def agreement(model, x: torch.Tensor) -> float:
    """Top-1 agreement between the float fake-quant forward (eval) and integer mode on ``x``.

    The two may differ by rounding (the fake-quant path rounds real products in float32,
    and ``M / 2^n`` only approximates the real multiplier); the contract asks to report it.
    """
    q = integer_forward(model, x)
    return float((float_forward(model, x).argmax(dim=1) == q.argmax(dim=1)).float().mean())
