"""QuantNet -> :class:`exporters.integer_model.IntegerModel` (one conversion for every backend).

The model is evaluated once in eval mode on a dummy input to read each tensor's
metadata (scale, zero point, bits, alive channels); eval metadata does not depend on the
data. Each layer is then converted by the function registered for its type:

* MAC layers: batch norm folded into ``w, b`` (running statistics), integer weights and
  scales from the layer's own weight quantizer, ``b_int = round(b / (s_x s_w[c]))``, and
  ``(M, n) = quantize_multipliers(s_x * s_w / s_y)``;
* AvgPool / GlobalAvgPool: ``S = s_x / (s_y * window)``;
* QuantAdd: ``(M1, M2), n = quantize_shared_shift([s_1 / s_y, s_2 / s_y])``;
* QuantReLU: fused into the requantization of the layer it follows (that layer's output
  must feed nothing else); MaxPool2d and Flatten map one to one.

Integer layer names are the QuantNet layer names; a fused ReLU takes over its producer's
name, so the integer model names the tensor the network really outputs.

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
from exporters.requant import quantize_multipliers, quantize_shared_shift
from toolchain.nn import layers as L
from toolchain.nn.mac import QuantConv2d, QuantLinear
from toolchain.nn.net import LAYER_TYPES, QuantNet
from toolchain.quant import CalibrationError, QuantTensor


class UnsupportedModuleError(FoldlineError):
    """A module conversion cannot express in the integer contract (names its path and type)."""


def _supported() -> str:
    return ", ".join(sorted(LAYER_TYPES))


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
            raise UnsupportedModuleError(
                f"module '{path}' ({type(module).__module__}.{type(module).__name__}) is not supported; "
                f"supported: {_supported()} inside a toolchain.nn.QuantNet")
        raise UnsupportedModuleError(
            f"model of type {type(model).__name__} is not a toolchain.nn.QuantNet; "
            f"build one from layers ({_supported()})")
    for lname, module in model.layers.items():
        if LAYER_TYPES.get(type(module).__name__) is not type(module):
            raise UnsupportedModuleError(
                f"module 'layers.{lname}' ({type(module).__module__}.{type(module).__name__}) is not supported; "
                f"supported: {_supported()}")


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


def _requant(scales, out: QuantTensor, relu: bool) -> im.Requant:
    m, n = quantize_multipliers(np.asarray(scales, dtype=np.float64) / float(out.scale))
    return im.Requant(m, n, _grid(out), relu)


def _mac_fields(module, inputs, metas, meta) -> dict:
    x = metas[inputs[0]]
    w_int, w_scale = module.quantized_weight(x.channel_mask)
    b_int = module.quantized_bias(x.scale, x.channel_mask)
    w_scale64 = w_scale.double().numpy()
    requant = _requant(float(x.scale) * w_scale64, meta, module.relu)
    return dict(weight=w_int.numpy(), bias=b_int.numpy(), weight_bits=module.weight_bits,
                weight_scale=w_scale64, requant=requant)


def _conv(name, module, inputs, metas, meta):
    return im.Conv(name, inputs[0], **_mac_fields(module, inputs, metas, meta), stride=module.stride,
                   padding=module.padding, groups=module.groups)


def _linear(name, module, inputs, metas, meta):
    return im.Linear(name, inputs[0], **_mac_fields(module, inputs, metas, meta))


def _avgpool(name, module, inputs, metas, meta):
    x = metas[inputs[0]]
    window = module.kernel_size[0] * module.kernel_size[1]
    channels = x.value.shape[1]
    rq = _requant(np.full(channels, float(x.scale) / window), meta, False)
    return im.AvgPool(name, inputs[0], module.kernel_size, module.stride, module.padding, rq)


def _global_avgpool(name, module, inputs, metas, meta):
    x = metas[inputs[0]]
    _, channels, h, w = x.value.shape
    return im.GlobalAvgPool(name, inputs[0], _requant(np.full(channels, float(x.scale) / (h * w)), meta, False))


def _add(name, module, inputs, metas, meta):
    a, b = (metas[s] for s in inputs)
    ms, n = quantize_shared_shift([float(a.scale) / float(meta.scale), float(b.scale) / float(meta.scale)])
    return im.Add(name, inputs[0], inputs[1], tuple(int(v) for v in ms), int(n), _grid(meta), module.relu)


def _input(name, module, inputs, metas, meta):
    return im.Input(name, None, _grid(meta))  # shape filled in by the caller


def _maxpool(name, module, inputs, metas, meta):
    return im.MaxPool(name, inputs[0], module.kernel_size, module.stride, module.padding)


def _flatten(name, module, inputs, metas, meta):
    return im.Flatten(name, inputs[0])


CONVERTERS = {
    L.QuantInput: _input, QuantConv2d: _conv, QuantLinear: _linear, L.AvgPool2d: _avgpool,
    L.GlobalAvgPool: _global_avgpool, L.QuantAdd: _add, L.MaxPool2d: _maxpool, L.Flatten: _flatten,
}


def _fuse_relu(lname: str, source: str, layers: list[im.Layer], consumers: dict[str, list[str]]) -> None:
    producer = layers[-1] if layers else None
    if producer is None or producer.name != source:
        raise ModelError(f"layer '{lname}': a QuantReLU must directly follow the layer it reads ('{source}')")
    if consumers[source] != [lname]:
        raise ModelError(f"layer '{lname}': cannot fuse the ReLU, '{source}' also feeds {consumers[source]}")
    if not producer.fuse_relu():
        raise ModelError(f"layer '{lname}': a QuantReLU must follow a requantizing layer "
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
        if isinstance(module, L.QuantReLU):
            _fuse_relu(lname, inputs[0], layers, consumers)
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
