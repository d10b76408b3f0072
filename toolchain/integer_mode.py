"""Integer mode: the contract's exact integer rule, run in torch on an IntegerModel.

This is an interpreter of :class:`exporters.integer_model.IntegerModel` — the same
object the ONNX exporter and the HLS generator consume — so torch, ONNX and HLS start
from the same integers. Every tensor is int64 holding the layer's integers.

* Input: ``q = clamp(round(x / s), lo, hi)`` in **float32** with the float32 scale
  (division, not a reciprocal multiply; ties to even), as ONNX QuantizeLinear computes
  (:func:`exporters.grid.quantize_host`, the one home of the host rule).
* Conv / Linear / AvgPool / GlobalAvgPool: the subtract-first accumulator ``b + sum w (x - z_x)``
  is computed as a float64 convolution (the layer's ``convolution`` view: average pooling is
  an all-ones depthwise one) or matmul **on integers**. Every partial sum is an
  integer of magnitude below 2^31 (the accumulator bound proven by
  ``IntegerModel.validate``) and so exactly representable in float64 (< 2^53): the sum is
  exact in any order, and converts back to int64 exactly. Padded taps are 0 = real zero.
* Requantization: ``clamp(z + ((acc * M + 2^(n-1)) >> n), lo, hi)`` in int64
  (``|acc * M| < 2^47``); ``>>`` on int64 is an arithmetic (floor) shift.
* MaxPool on the integers (padding never wins), Add as the contract writes it, Flatten free.

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


def _channel(v, spatial: bool) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(v, dtype=np.int64))
    return t.reshape(-1, 1, 1) if spatial else t


def requantize(acc: torch.Tensor, rq: im.Requant) -> torch.Tensor:
    """The contract's rule on int64 ``acc`` of shape (N, C) or (N, C, H, W)."""
    spatial = acc.dim() == 4
    m, n = _channel(rq.multiplier, spatial), _channel(rq.shift, spatial)
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


def _run_convolution(model, layer, x):
    """Conv, AvgPool, GlobalAvgPool: the subtract-first accumulator of the layer's convolution view."""
    view = layer.convolution(model)
    w = torch.as_tensor(view.weight, dtype=torch.float64)
    acc = _exact(F.conv2d(_centered(model, layer, x), w, None, view.stride, view.padding, 1, view.groups))
    acc = acc + _channel(layer.accumulator_bias(model), True)
    return requantize(acc.reshape(len(acc), *model.shape(layer.name)), layer.requant)


def _run_linear(model, layer: im.Linear, x):
    w = torch.as_tensor(layer.weight, dtype=torch.float64)
    return requantize(_exact(_centered(model, layer, x) @ w.T) + torch.as_tensor(layer.bias), layer.requant)


def _run_add(model: im.IntegerModel, layer: im.Add, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    za, zb = (model.grid(s).zero_point for s in layer.inputs)
    m1, m2 = layer.multipliers
    n = layer.shift
    total = m1 * (a - za) + m2 * (b - zb) + ((1 << (n - 1)) if n > 0 else 0)
    lo, hi = layer.out.output_bounds(layer.relu)
    return torch.clamp(layer.out.zero_point + (total >> n), lo, hi)


def _run_maxpool(model, layer: im.MaxPool, x: torch.Tensor) -> torch.Tensor:
    return _exact(F.max_pool2d(x.to(torch.float64), layer.kernel, layer.stride, layer.padding))


def _run_flatten(model, layer: im.Flatten, x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1)


#: One interpreter step per layer type: ``runner(model, layer, *inputs)`` (the Input gets the float x).
RUNNERS = {
    im.Input: _run_input,
    im.Conv: _run_convolution,
    im.Linear: _run_linear,
    im.MaxPool: _run_maxpool,
    im.AvgPool: _run_convolution,
    im.GlobalAvgPool: _run_convolution,
    im.Add: _run_add,
    im.Flatten: _run_flatten,
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
