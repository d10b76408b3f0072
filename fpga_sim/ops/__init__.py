"""The registration table: every op the simulator runs, by ONNX op type.

Adding an op means writing its class and listing it in ``OP_CLASSES``; a name
that does not exist fails at import time. Nothing is discovered by scanning.
"""

from __future__ import annotations

from fpga_sim.ops.base import Op
from fpga_sim.ops.cast import Cast
from fpga_sim.ops.clip import Clip
from fpga_sim.ops.concat import Concat
from fpga_sim.ops.conv_integer import ConvInteger
from fpga_sim.ops.elementwise import Add, BitShift, Mul, Sub
from fpga_sim.ops.gather import Gather
from fpga_sim.ops.matmul_integer import MatMulInteger
from fpga_sim.ops.max_pool import MaxPool
from fpga_sim.ops.quantize import DequantizeLinear, QuantizeLinear
from fpga_sim.ops.resize import Resize
from fpga_sim.ops.shape import Flatten, Identity, Reshape

OP_CLASSES: tuple[type[Op], ...] = (
    QuantizeLinear,
    DequantizeLinear,
    ConvInteger,
    MatMulInteger,
    Cast,
    Add,
    Sub,
    Mul,
    BitShift,
    Clip,
    MaxPool,
    Flatten,
    Reshape,
    Identity,
    Concat,
    Resize,
    Gather,
)

REGISTRY: dict[str, type[Op]] = {cls.op_type: cls for cls in OP_CLASSES}
if len(REGISTRY) != len(OP_CLASSES):
    raise ImportError("two op classes register the same op type")

SUPPORTED_OPS: frozenset[str] = frozenset(REGISTRY)

__all__ = ["OP_CLASSES", "REGISTRY", "SUPPORTED_OPS", "Op"]
