"""QuantizeLinear and DequantizeLinear, per-tensor only (scalar scale and zero point)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from onnx import TensorProto

from fpga_sim.numeric import INT8_DTYPES, round_half_to_even, saturate
from fpga_sim.ops.base import Attr, Input, Known, Op

F32 = frozenset({np.dtype(np.float32)})
_OUTPUT_DTYPES = {TensorProto.UINT8: np.dtype(np.uint8), TensorProto.INT8: np.dtype(np.int8)}


def _check_scale(scale: np.ndarray) -> None:
    value = float(scale.reshape(-1)[0])
    if not np.isfinite(value) or value == 0.0:
        raise ValueError(f"scale must be finite and non-zero, got {value}")


class QuantizeLinear(Op):
    """y = saturate(round_half_to_even(x / scale) + zero_point), all in float32.

    The division is a float32 division (as onnxruntime does it), not a
    multiplication by the reciprocal. NaN inputs are refused: the specification
    leaves their result undefined (onnxruntime's result depends on the position
    of the element in the tensor). +-inf saturate. The output dtype is the zero
    point's (uint8 when there is none).
    """

    op_type = "QuantizeLinear"
    inputs = (
        Input("x", F32),
        Input("y_scale", F32, scalar=True),
        Input("y_zero_point", INT8_DTYPES, optional=True, scalar=True),
    )
    attributes = {
        "axis": Attr("int", 1),
        "saturate": Attr("int", 1, choices=(0, 1)),
        "block_size": Attr("int", 0, choices=(0,)),
        "output_dtype": Attr("int", 0, choices=(0, TensorProto.UINT8, TensorProto.INT8)),
    }

    def prepare(self, known: Sequence[Known | None], **attrs: Any) -> None:
        scale, zero_point = known[1], known[2]
        if scale is not None and scale.value is not None:
            _check_scale(scale.value)
        if attrs["output_dtype"] and zero_point is not None and zero_point.dtype is not None:
            if zero_point.dtype != _OUTPUT_DTYPES[attrs["output_dtype"]]:
                raise ValueError("output_dtype differs from the zero point's dtype")

    def _run(self, x, y_scale, y_zero_point=None, *, output_dtype, **_):
        if y_zero_point is None:
            out_dtype = _OUTPUT_DTYPES.get(output_dtype, np.dtype(np.uint8))
            zero_point = 0
        else:
            out_dtype = y_zero_point.dtype
            zero_point = int(y_zero_point.reshape(-1)[0])
        _check_scale(y_scale)
        if np.isnan(x).any():
            raise ValueError("input contains NaN; QuantizeLinear of NaN is undefined")
        scaled = np.divide(x, y_scale.reshape(()), dtype=np.float32)
        rounded = round_half_to_even(scaled)
        rounded += np.float32(zero_point)
        return saturate(rounded, out_dtype)


class DequantizeLinear(Op):
    """y = (x - zero_point) * scale in float32; int32 x must have zero point 0.

    x - zero_point is exact in int32 for 8-bit types; its conversion to float32
    rounds once (int32 x may exceed 2**24) and the product rounds once, as in
    onnxruntime.
    """

    op_type = "DequantizeLinear"
    inputs = (
        Input("x", INT8_DTYPES | {np.dtype(np.int32)}),
        Input("x_scale", F32, scalar=True),
        Input("x_zero_point", INT8_DTYPES | {np.dtype(np.int32)}, optional=True, scalar=True),
    )
    attributes = {"axis": Attr("int", 1), "block_size": Attr("int", 0, choices=(0,))}
    same_dtype = (("x", "x_zero_point"),)

    def prepare(self, known: Sequence[Known | None], **attrs: Any) -> None:
        zero_point = known[2]
        if zero_point is not None and zero_point.value is not None:
            self._check_zero_point(zero_point.value)

    @staticmethod
    def _check_zero_point(zero_point: np.ndarray) -> None:
        if zero_point.dtype == np.int32 and zero_point.any():
            raise ValueError("an int32 input must have zero point 0 (ONNX specification)")

    def _run(self, x, x_scale, x_zero_point=None, **_):
        centred = x.astype(np.int32)
        if x_zero_point is not None:
            self._check_zero_point(x_zero_point)
            centred -= x_zero_point.reshape(()).astype(np.int32)
        return centred.astype(np.float32) * x_scale.reshape(())
