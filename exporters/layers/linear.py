"""Linear: ``acc[o] = b[o] + sum_f w[o, f] (x[f] - z_x)`` on a flat ``(F,)`` input, then
requantization (contract, "Multiply-accumulate layers")."""

from __future__ import annotations

from dataclasses import dataclass

from exporters.errors import ModelError
from exporters.layers.accumulator import MacLayer


@dataclass(eq=False)
class Linear(MacLayer):
    def output_shape(self, in_shapes):
        (shape,) = in_shapes
        if len(shape) != 1:
            raise ModelError(f"layer '{self.name}': Linear needs a flat (F,) input, got {shape}; add a Flatten")
        if self.weight.ndim != 2 or self.weight.shape[1] != shape[0]:
            raise ModelError(f"layer '{self.name}': weight shape {self.weight.shape} does not fit input {shape}")
        return (self.out_channels,)

    @classmethod
    def from_initializer(cls, field_name, array):
        # the ONNX file stores the weight transposed, F x O, as MatMulInteger reads it
        return array.astype("int64").T if field_name == "weight" else array
