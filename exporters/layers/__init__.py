"""The integer model's layer types, one module each, and their registry.

:data:`LAYER_TYPES` is the explicit list every backend's table is checked against
(``tests/test_layer_registry.py``): adding a layer type is its module here, its entry below
(import, ``LAYER_TYPES``, ``__all__``; ``exporters.integer_model`` re-exports ``__all__``) and
one entry per backend table — the list is in docs/layers.md.
"""

from exporters.layers.accumulator import (Accumulating, AccumulatorAnalysis, MacLayer, accumulator_analysis,
                                          folded_bias)
from exporters.layers.add import Add
from exporters.layers.avg_pool import AvgPool, WindowAverage, count_requant
from exporters.layers.base import (INITIALIZER, INT32, UNTRACKED, Layer, Requant, SingleInput, Work, bit_operations,
                                   check_multipliers, check_shifts, mac_count, pair, positions)
from exporters.layers.concat import Concat
from exporters.layers.conv import Conv
from exporters.layers.flatten import Flatten
from exporters.layers.global_avg_pool import GlobalAvgPool
from exporters.layers.input import Input
from exporters.layers.linear import Linear
from exporters.layers.lookup import Lookup, tabulate
from exporters.layers.max_pool import MaxPool
from exporters.layers.upsample import Upsample
from exporters.layers.window import ConvolutionView, Window, grouped_input_channels, plane_shape, pool_output_size

#: Every layer type, by the name the ONNX metadata's ``type`` uses (a typo fails at import).
LAYER_TYPES: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (Input, Conv, Linear, MaxPool, AvgPool, GlobalAvgPool, Add, Flatten, Concat, Upsample, Lookup)
}

__all__ = ["Accumulating", "AccumulatorAnalysis", "Add", "AvgPool", "Concat", "Conv", "ConvolutionView", "Flatten",
           "GlobalAvgPool", "INITIALIZER", "INT32", "Input", "LAYER_TYPES", "Layer", "Linear", "Lookup", "MacLayer",
           "MaxPool", "Requant", "SingleInput", "WindowAverage", "Work", "accumulator_analysis", "bit_operations",
           "check_multipliers", "check_shifts", "folded_bias", "grouped_input_channels", "mac_count", "pair",
           "pool_output_size", "positions", "tabulate", "UNTRACKED", "Upsample", "Window", "count_requant",
           "plane_shape"]
