"""Quantized PyTorch layers and the QuantNet graph container (see docs/toolchain.md)."""

from toolchain.nn.layers import AvgPool2d, Flatten, GlobalAvgPool, MaxPool2d, QuantAdd, QuantInput, QuantReLU
from toolchain.nn.mac import QuantConv2d, QuantLinear
from toolchain.nn.net import LAYER_TYPES, QuantNet, is_power_of_two, mac_layers, set_quantization, with_power_of_two

__all__ = [
    "AvgPool2d", "Flatten", "GlobalAvgPool", "LAYER_TYPES", "MaxPool2d", "QuantAdd", "QuantConv2d", "QuantInput",
    "QuantLinear", "QuantNet", "QuantReLU", "is_power_of_two", "mac_layers", "set_quantization", "with_power_of_two",
]
