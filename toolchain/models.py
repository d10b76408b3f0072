"""Built-in quantized models, all :class:`~toolchain.nn.QuantNet` (architecture = data).

``build(name, **kwargs)`` with ``name`` in :data:`MODELS`. Common keyword arguments:
``input_shape`` (default ``(1, 28, 28)``), ``num_classes`` (10), ``weight_bits``,
``act_bits``, ``input_bits``, ``output_bits`` (8 each), ``width`` (a channel multiplier) and
``power_of_two`` (False; True puts every quantizer in power-of-two mode, see
:mod:`toolchain.quant`: what the hls4ml backend needs — ``mlp`` and ``cnn`` then pass its
check; ``resnet`` and ``dsconv`` hold a global average pool (and ``dsconv`` depthwise
convs), ``unet`` a concatenation and an upsampling, which hls4ml refuses whatever the scales).

* ``mlp``: flatten -> linear+BN+ReLU per ``hidden`` (default ``(64, 32)``) -> linear.
* ``cnn``: conv3x3(16)+BN+ReLU -> maxpool2 -> conv3x3(32)+BN+ReLU -> maxpool2 -> flatten -> linear.
* ``resnet``: stem conv3x3(16)+BN+ReLU -> maxpool2 -> residual block (conv+BN+ReLU,
  conv+BN, add+ReLU) -> avgpool2 -> residual block -> global average pool -> linear.
* ``dsconv``: conv3x3(16, stride 2)+BN+ReLU -> [depthwise 3x3+BN+ReLU -> pointwise
  1x1+BN+ReLU] x2 (32, 64 channels; the second depthwise has stride 2) -> global average pool -> linear.
* ``unet``: a small U-Net: enc conv3x3(8)+BN+ReLU -> maxpool2 -> conv3x3(16)+BN+ReLU -> nearest
  upsampling x2 -> concat with enc (the skip) -> conv3x3(8)+BN+ReLU -> maxpool2 -> flatten -> linear
  (H and W even).

>>> [build(name, input_shape=(1, 8, 8))(torch.zeros(2, 1, 8, 8)).shape[1] for name in MODELS]
[10, 10, 10, 10, 10]
"""

from __future__ import annotations

import torch

from exporters.errors import FoldlineError
from toolchain.nn import (AvgPool2d, Flatten, GlobalAvgPool, MaxPool2d, QuantAdd, QuantConcat, QuantConv2d,
                          QuantInput, QuantLinear, QuantNet, Upsample)


class UnknownModelError(FoldlineError):
    """``build`` was asked for a model name it does not know."""


def _channels(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _pow2(kw: dict) -> dict:
    return dict(power_of_two=bool(kw.get("power_of_two", False)))


def _bits(kw: dict) -> dict:
    return dict(weight_bits=kw.get("weight_bits", 8), act_bits=kw.get("act_bits", 8), **_pow2(kw))


def _input(kw: dict) -> QuantInput:
    return QuantInput(kw.get("input_bits", 8), **_pow2(kw))


def _head(in_features: int, num_classes: int, kw: dict) -> QuantLinear:
    return QuantLinear(in_features, num_classes, weight_bits=kw.get("weight_bits", 8),
                       act_bits=kw.get("output_bits", 8), signed_output=True, **_pow2(kw))


def _conv_bn_relu(cin, cout, k, kw, stride=1, groups=1, relu=True) -> QuantConv2d:
    return QuantConv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False, bn=True, relu=relu,
                       **_bits(kw))


def mlp(input_shape=(1, 28, 28), num_classes=10, hidden=(64, 32), width=1.0, **kw) -> QuantNet:
    layers = [("quant_in", _input(kw))]
    features = 1
    for d in input_shape:
        features *= int(d)
    if len(input_shape) > 1:
        layers.append(("flatten", Flatten()))
    for i, h in enumerate(hidden, start=1):
        h = _channels(h, width)
        layers.append((f"fc{i}", QuantLinear(features, h, bias=False, bn=True, relu=True, **_bits(kw))))
        features = h
    layers.append(("head", _head(features, num_classes, kw)))
    return QuantNet(layers, input_shape, name="mlp")


def cnn(input_shape=(1, 28, 28), num_classes=10, width=1.0, **kw) -> QuantNet:
    c, h, w = input_shape
    c1, c2 = _channels(16, width), _channels(32, width)
    layers = [
        ("quant_in", _input(kw)),
        ("conv1", _conv_bn_relu(c, c1, 3, kw)),
        ("pool1", MaxPool2d(2)),
        ("conv2", _conv_bn_relu(c1, c2, 3, kw)),
        ("pool2", MaxPool2d(2)),
        ("flatten", Flatten()),
        ("head", _head(c2 * (h // 4) * (w // 4), num_classes, kw)),
    ]
    return QuantNet(layers, input_shape, name="cnn")


def _block(prefix: str, x: str, c: int, kw: dict) -> list:
    return [
        (f"{prefix}_conv1", _conv_bn_relu(c, c, 3, kw), [x]),
        (f"{prefix}_conv2", _conv_bn_relu(c, c, 3, kw, relu=False)),
        (f"{prefix}_add", QuantAdd(kw.get("act_bits", 8), relu=True, **_pow2(kw)), [x, f"{prefix}_conv2"]),
    ]


def resnet(input_shape=(1, 28, 28), num_classes=10, width=1.0, **kw) -> QuantNet:
    c = _channels(16, width)
    layers = [
        ("quant_in", _input(kw)),
        ("stem", _conv_bn_relu(input_shape[0], c, 3, kw)),
        ("pool1", MaxPool2d(2)),
        *_block("block1", "pool1", c, kw),
        ("pool2", AvgPool2d(2, act_bits=kw.get("act_bits", 8), **_pow2(kw))),
        *_block("block2", "pool2", c, kw),
        ("gap", GlobalAvgPool(kw.get("act_bits", 8), **_pow2(kw))),
        ("head", _head(c, num_classes, kw)),
    ]
    return QuantNet(layers, input_shape, name="resnet")


def dsconv(input_shape=(1, 28, 28), num_classes=10, width=1.0, **kw) -> QuantNet:
    c0, c1, c2 = _channels(16, width), _channels(32, width), _channels(64, width)
    layers = [
        ("quant_in", _input(kw)),
        ("stem", _conv_bn_relu(input_shape[0], c0, 3, kw, stride=2)),
        ("dw1", _conv_bn_relu(c0, c0, 3, kw, groups=c0)),
        ("pw1", _conv_bn_relu(c0, c1, 1, kw)),
        ("dw2", _conv_bn_relu(c1, c1, 3, kw, stride=2, groups=c1)),
        ("pw2", _conv_bn_relu(c1, c2, 1, kw)),
        ("gap", GlobalAvgPool(kw.get("act_bits", 8), **_pow2(kw))),
        ("head", _head(c2, num_classes, kw)),
    ]
    return QuantNet(layers, input_shape, name="dsconv")


def unet(input_shape=(1, 28, 28), num_classes=10, width=1.0, **kw) -> QuantNet:
    c, h, w = input_shape
    c1, c2 = _channels(8, width), _channels(16, width)
    layers = [
        ("quant_in", _input(kw)),
        ("enc", _conv_bn_relu(c, c1, 3, kw)),
        ("pool1", MaxPool2d(2)),
        ("mid", _conv_bn_relu(c1, c2, 3, kw)),
        ("up", Upsample(2)),
        ("skip", QuantConcat(kw.get("act_bits", 8), **_pow2(kw)), ["enc", "up"]),
        ("dec", _conv_bn_relu(c1 + c2, c1, 3, kw)),
        ("pool2", MaxPool2d(2)),
        ("flatten", Flatten()),
        ("head", _head(c1 * (h // 2) * (w // 2), num_classes, kw)),
    ]
    return QuantNet(layers, input_shape, name="unet")


_BUILDERS = {"mlp": mlp, "cnn": cnn, "resnet": resnet, "dsconv": dsconv, "unet": unet}
MODELS = tuple(_BUILDERS)


def build(name: str, **kwargs) -> QuantNet:
    """Build a built-in model by name (see the module docstring for the keyword arguments)."""
    if name not in _BUILDERS:
        raise UnknownModelError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    return _BUILDERS[name](**kwargs)
