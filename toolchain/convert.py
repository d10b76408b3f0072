"""QuantNet -> :class:`exporters.integer_model.IntegerModel` (one conversion for every backend).

The model is evaluated once in eval mode on a dummy input to read each tensor's
metadata (scale, zero point, bits, alive channels); eval metadata does not depend on the
data. Each layer is then converted by the function registered for its type:

* MAC layers: batch norm folded into ``w, b`` (running statistics), integer weights and
  scales from the layer's own weight quantizer, ``b_int = round(b / (s_x s_w[c]))``, and
  ``(M, n) = quantize_multipliers(s_x * s_w / s_y)``;
* AvgPool / GlobalAvgPool: ``S = s_x / (s_y * window)``; an AvgPool whose edge windows count fewer
  taps (ceil mode, ``count_include_pad=False``) also ``S_k = s_x / (s_y * k)`` per count ``k``
  (``exporters.layers.avg_pool.count_requant``);
* the 1-D layers (QuantConv1d, MaxPool1d, AvgPool1d) convert as the 2-D ones: the integer layers
  take a ``(C, L)`` input;
* QuantAdd: ``(M1, M2), n = quantize_shared_shift([s_1 / s_y, s_2 / s_y])``;
* QuantConcat: per input ``(M_i, n_i) = quantize_multiplier(s_i / s_y)``; Upsample maps one to one;
* QuantReLU and QuantClamp (:data:`FUSED`): fused into the requantization of the layer they
  follow (that layer's output must feed nothing else), a clamp ``[a, b]`` as the integer
  bounds ``[Q(a), Q(b)]`` on its grid; a layer's own ``clamp=(a, b)`` the same way;
* QuantActivation: a Lookup, its table ``tabulate``d in float64 over the input grid;
  MaxPool2d and Flatten map one to one.

Integer layer names are the QuantNet layer names; a fused ReLU or clamp takes over its
producer's name, so the integer model names the tensor the network really outputs.

>>> from toolchain import build
>>> net = build("mlp", input_shape=(1, 4, 4), hidden=(8,))
>>> _ = net(torch.randn(16, 1, 4, 4))          # one training step of statistics
>>> [type(l).__name__ for l in to_integer_model(net).layers]
['Input', 'Flatten', 'Linear', 'Linear']
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from exporters import integer_model as im
from exporters.errors import FoldlineError, ModelError
from exporters.requant import quantize_multiplier, quantize_multipliers, quantize_shared_shift
from toolchain.nn import layers as L
from toolchain.nn.functions import ACTIVATIONS, NOT_A_LOOKUP, float64_function
from toolchain.nn.mac import QuantConv2d, QuantLinear
from toolchain.nn.net import LAYER_TYPES, QuantNet
from toolchain.nn.one_d import AvgPool1d, MaxPool1d, QuantConv1d
from toolchain.quant import CalibrationError, QuantTensor


class UnsupportedModuleError(FoldlineError):
    """A module conversion cannot express in the integer contract (names its path and type)."""


def _supported() -> str:
    return ", ".join(sorted(LAYER_TYPES))


#: torch.nn modules with a Foldline counterpart of another name, by lower-case class name.
_ALTERNATIVES = {
    "relu": "use toolchain.nn.QuantReLU, or relu=True on the layer before (fused)",
    "relu6": "use clamp=(0, 6) on the layer before, or toolchain.nn.QuantClamp(0, 6) (fused)",
    "hardtanh": "use clamp=(min_val, max_val) on the layer before, or toolchain.nn.QuantClamp (fused)",
    "leakyrelu": "use toolchain.nn.QuantActivation('leaky_relu', {'negative_slope': ...})",
    "softmax": f"softmax: {NOT_A_LOOKUP['softmax']}",
    "logsoftmax": f"log_softmax: {NOT_A_LOOKUP['log_softmax']}",
    "conv1d": "use toolchain.nn.QuantConv1d", "conv2d": "use toolchain.nn.QuantConv2d",
    "maxpool1d": "use toolchain.nn.MaxPool1d", "avgpool1d": "use toolchain.nn.AvgPool1d",
    "adaptiveavgpool1d": "use toolchain.nn.GlobalAvgPool (to size 1)",
    "adaptiveavgpool2d": "use toolchain.nn.GlobalAvgPool (to 1x1)",
    "batchnorm1d": "use bn=True on the conv or linear layer before (folded)",
    "batchnorm2d": "use bn=True on the conv layer before (folded)",
    "convtranspose1d": "transposed convolution is not supported; use toolchain.nn.Upsample then a QuantConv1d",
    "convtranspose2d": "transposed convolution is not supported; use toolchain.nn.Upsample then a QuantConv2d",
    "conv3d": "3-D convolution is not supported; use toolchain.nn.QuantConv2d or QuantConv1d",
}


def _refusal(path: str, module: nn.Module, supported: str) -> str:
    """One line naming the module, its type and the nearest supported alternative."""
    kind = type(module).__name__.lower()
    alternative = _ALTERNATIVES.get(kind) or (
        f"use toolchain.nn.QuantActivation('{kind}')" if kind in ACTIVATIONS else None)
    hint = f"; {alternative}" if alternative else ""
    return (f"module '{path}' ({type(module).__module__}.{type(module).__name__}) is not supported{hint}; "
            f"supported: {supported}")


def _first_unsupported(module: nn.Module, path: str):
    """Depth-first: the first leaf module that is not a QuantNet layer type (containers are walked)."""
    for name, child in module.named_children():
        child_path = f"{path}.{name}" if path else name
        if type(child) in LAYER_TYPES.values():
            continue
        if not list(child.children()):
            return child_path, child
        found = _first_unsupported(child, child_path)
        if found[1] is not None:
            return found
    return path, None


def check_supported(model: nn.Module) -> None:
    """Refuse any module that is not a QuantNet layer, naming its path and type."""
    if not isinstance(model, QuantNet):
        path, module = _first_unsupported(model, "")
        if module is not None:
            raise UnsupportedModuleError(_refusal(path, module, f"{_supported()} inside a toolchain.nn.QuantNet"))
        raise UnsupportedModuleError(
            f"model of type {type(model).__name__} is not a toolchain.nn.QuantNet; "
            f"build one from layers ({_supported()})")
    for lname, module in model.layers.items():
        if LAYER_TYPES.get(type(module).__name__) is not type(module):
            raise UnsupportedModuleError(_refusal(f"layers.{lname}", module, _supported()))


@contextlib.contextmanager
def evaluating(model: nn.Module):
    """Eval mode (frozen statistics) for the duration; restores each module's own flag."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


def trace_metadata(model: QuantNet, example_input: torch.Tensor | None = None) -> dict[str, QuantTensor]:
    """Every layer's output QuantTensor in eval mode (on zeros unless ``example_input`` is given)."""
    x = example_input[:1] if example_input is not None else torch.zeros(1, *model.input_shape)
    with evaluating(model), torch.no_grad():
        try:
            outs = model.trace(x)
        except CalibrationError as exc:
            raise CalibrationError(f"model '{model.name}': {exc}") from None
    for lname, q in outs.items():
        if not q.quantized:
            raise CalibrationError(f"layer '{lname}': quantization is disabled; call set_quantization(model, True)")
    return outs


def _grid(meta: QuantTensor):
    return meta.grid()


def _clamp(module, out: QuantTensor) -> tuple[int, int] | None:
    """A module's fused ``clamp=(a, b)`` as integer bounds ``[Q(a), Q(b)]`` on its output grid,
    narrowed by its output quantizer's own real clamp (a learned range ``[0, q_m]``,
    :meth:`toolchain.quant._Quantizer.real_clamp`)."""
    quantizer = getattr(module, "out_quant", None)
    clamps = [getattr(module, "clamp", None), quantizer.real_clamp() if quantizer is not None else None]
    bounds = [_grid(out).clamp_bounds(*c) for c in clamps if c is not None]
    if not bounds:
        return None
    return max(lo for lo, _ in bounds), min(hi for _, hi in bounds)


def _requant(scales, out: QuantTensor, relu: bool, clamp: tuple[int, int] | None = None) -> im.Requant:
    m, n = quantize_multipliers(np.asarray(scales, dtype=np.float64) / float(out.scale))
    return im.Requant(m, n, _grid(out), relu, clamp)


def _mac_fields(module, inputs, metas, meta) -> dict:
    x = metas[inputs[0]]
    w_int, w_scale = module.quantized_weight(x.channel_mask)
    b_int = module.quantized_bias(x.scale, x.channel_mask)
    w_scale64 = w_scale.double().numpy()
    requant = _requant(float(x.scale) * w_scale64, meta, module.relu, _clamp(module, meta))
    return dict(weight=w_int.numpy(), bias=b_int.numpy(), weight_bits=module.weight_bits,
                weight_scale=w_scale64, requant=requant)


def _conv(name, module, inputs, metas, meta):
    return im.Conv(name, inputs[0], **_mac_fields(module, inputs, metas, meta), stride=module.stride,
                   padding=module.padding, groups=module.groups, dilation=module.dilation)


def _linear(name, module, inputs, metas, meta):
    return im.Linear(name, inputs[0], **_mac_fields(module, inputs, metas, meta))


def _avgpool(name, module, inputs, metas, meta):
    """The full window's ``(M, n)`` per channel; where edge windows count ``k`` fewer taps, one ``(M_k, n_k)``
    per count (the fake-quant forward divides by the same counts, ``F.avg_pool*d``)."""
    x = metas[inputs[0]]
    window = int(np.prod(module.kernel_size))
    channels = x.value.shape[1]
    rq = _requant(np.full(channels, float(x.scale) / window), meta, False)
    layer = im.AvgPool(name, inputs[0], module.kernel_size, module.stride, module.padding, rq, module.ceil_mode,
                       module.count_include_pad)
    if layer.divides_by_count_over(tuple(x.value.shape[2:])):
        layer.partial_multipliers, layer.partial_shifts = im.count_requant(x.scale, meta.scale, range(1, window))
    return layer


def _global_avgpool(name, module, inputs, metas, meta):
    x = metas[inputs[0]]
    channels, window = x.value.shape[1], int(np.prod(x.value.shape[2:]))
    return im.GlobalAvgPool(name, inputs[0], _requant(np.full(channels, float(x.scale) / window), meta, False))


def _add(name, module, inputs, metas, meta):
    a, b = (metas[s] for s in inputs)
    ms, n = quantize_shared_shift([float(a.scale) / float(meta.scale), float(b.scale) / float(meta.scale)])
    return im.Add(name, inputs[0], inputs[1], tuple(int(v) for v in ms), int(n), _grid(meta), module.relu,
                  _clamp(module, meta))


def _lookup(name, module, inputs, metas, meta):
    """The function tabulated over the input grid (contract, "Lookup"), in float64."""
    in_grid, out_grid = _grid(metas[inputs[0]]), _grid(meta)
    try:
        table = im.tabulate(float64_function(module.function, module.params), in_grid, out_grid)
    except ModelError as exc:
        raise ModelError(f"layer '{name}' ({module.describe()}): {exc}") from None
    return im.Lookup(name, inputs[0], table, out_grid, module.describe())


def _concat(name, module, inputs, metas, meta):
    pairs = [quantize_multiplier(float(metas[src].scale) / float(meta.scale)) for src in inputs]
    return im.Concat(name, inputs, [m for m, _ in pairs], [n for _, n in pairs], _grid(meta), module.relu,
                     _clamp(module, meta))


def _upsample(name, module, inputs, metas, meta):
    return im.Upsample(name, inputs[0], module.scale_factor)


def _input(name, module, inputs, metas, meta):
    return im.Input(name, None, _grid(meta))  # shape filled in by the caller


def _maxpool(name, module, inputs, metas, meta):
    return im.MaxPool(name, inputs[0], module.kernel_size, module.stride, module.padding, module.ceil_mode)


def _flatten(name, module, inputs, metas, meta):
    return im.Flatten(name, inputs[0])


CONVERTERS = {
    L.QuantInput: _input, QuantConv2d: _conv, QuantLinear: _linear, L.AvgPool2d: _avgpool,
    L.GlobalAvgPool: _global_avgpool, L.QuantAdd: _add, L.MaxPool2d: _maxpool, L.Flatten: _flatten,
    L.QuantActivation: _lookup, L.QuantConcat: _concat, L.Upsample: _upsample,
    QuantConv1d: _conv, MaxPool1d: _maxpool, AvgPool1d: _avgpool,
}

#: Modules fused into the requantizing layer before them: ``fuse(layer, module, x)`` narrows that
#: layer's output clamp (``x`` is the module's input QuantTensor) and says whether it could.
FUSED = {
    L.QuantReLU: lambda layer, module, x: layer.fuse_relu(),
    L.QuantClamp: lambda layer, module, x: layer.fuse_clamp(module.bounds(x)),
}


def _fuse(lname: str, module: nn.Module, source: str, x: QuantTensor, layers: list[im.Layer],
          consumers: dict[str, list[str]]) -> None:
    kind = type(module).__name__
    producer = layers[-1] if layers else None
    if producer is None or producer.name != source:
        raise ModelError(f"layer '{lname}': a {kind} must directly follow the layer it reads ('{source}')")
    if consumers[source] != [lname]:
        raise ModelError(f"layer '{lname}': cannot fuse the {kind}, '{source}' also feeds {consumers[source]}")
    if not FUSED[type(module)](producer, module, x):
        raise ModelError(f"layer '{lname}': a {kind} must follow a requantizing layer "
                         f"(Conv, Linear, Add, AvgPool), not {type(producer).__name__}")
    producer.name = lname


def to_integer_model(model: nn.Module, example_input: torch.Tensor | None = None) -> im.IntegerModel:
    """Convert a calibrated QuantNet into the validated integer model every backend shares."""
    check_supported(model)
    metas = trace_metadata(model, example_input)
    consumers: dict[str, list[str]] = {n: [] for n in model.layers}
    for lname, srcs in model.layer_inputs.items():
        for s in srcs:
            consumers[s].append(lname)
    rename: dict[str, str] = {}
    layers: list[im.Layer] = []
    for lname, module in model.layers.items():
        inputs = [rename.get(s, s) for s in model.layer_inputs[lname]]
        if type(module) in FUSED:
            _fuse(lname, module, inputs[0], metas[model.layer_inputs[lname][0]], layers, consumers)
            rename[inputs[0]] = lname
            continue
        metas_by_name = {rename.get(k, k): v for k, v in metas.items()}
        try:
            layer = CONVERTERS[type(module)](lname, module, inputs, metas_by_name, metas[lname])
        except ModelError as exc:
            if f"'{lname}'" in str(exc):
                raise
            raise type(exc)(f"layer '{lname}' ({type(module).__name__}): {exc}") from None
        if isinstance(layer, im.Input):
            layer.shape = tuple(model.input_shape)
        layers.append(layer)
    result = im.IntegerModel(layers, name=model.name)
    result.validate()
    return result
