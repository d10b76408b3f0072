"""Quantized PyTorch layers and the QuantNet graph container (see docs/toolchain.md)."""

from toolchain.nn.layers import (AvgPool2d, Flatten, GlobalAvgPool, MaxPool2d, QuantActivation, QuantAdd, QuantClamp,
                                 QuantConcat, QuantInput, QuantReLU, Upsample)
from toolchain.nn.bits import (BitsError, bit_widths, check_learnable, layer_quantizers, parse_layer_bits, set_bits,
                               use_learned_quantizers)
from toolchain.nn.mac import QuantConv2d, QuantLinear
from toolchain.nn.one_d import AvgPool1d, MaxPool1d, QuantConv1d
from toolchain.nn.net import LAYER_TYPES, QuantNet, is_power_of_two, mac_layers, set_quantization, with_power_of_two

__all__ = [
    "AvgPool2d", "Flatten", "GlobalAvgPool", "LAYER_TYPES", "MaxPool2d", "QuantActivation", "QuantAdd", "QuantClamp",
    "QuantConcat", "QuantConv2d", "QuantInput", "QuantLinear", "QuantNet", "QuantReLU", "is_power_of_two", "mac_layers", "set_quantization", "with_power_of_two",
    "Upsample", "AvgPool1d", "MaxPool1d", "QuantConv1d", "BitsError", "bit_widths", "check_learnable", "layer_quantizers", "parse_layer_bits", "set_bits", "use_learned_quantizers",
]
