"""fpga_sim: a bit-accurate, integer-only reference simulator for Foldline's ONNX graphs.

It executes the exporter's op set with numpy (no onnxruntime), following the
ONNX specification exactly and matching onnxruntime 1.32 on CPU element for
element. Every intermediate tensor is available by name through ``trace``.

Example (a one-node graph, built in memory):

>>> import numpy as np
>>> from onnx import TensorProto, helper
>>> node = helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["q"], name="quant")
>>> graph = helper.make_graph(
...     [node], "demo",
...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
...     [helper.make_tensor_value_info("q", TensorProto.INT8, ["N", 3])],
...     initializer=[helper.make_tensor("scale", TensorProto.FLOAT, [], [0.5]),
...                  helper.make_tensor("zp", TensorProto.INT8, [], [0])])
>>> model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
>>> sim = Simulator(model)
>>> sim.run(None, {"x": np.array([[0.25, 0.75, 100.0]], np.float32)})
[array([[  0,   2, 127]], dtype=int8)]
>>> sorted(sim.trace({"x": np.zeros((1, 3), np.float32)}))
['q']
"""

from fpga_sim.errors import (
    FeedError,
    ModelLoadError,
    NodeExecutionError,
    SimulatorError,
    UnsupportedModelError,
    UnsupportedNodeError,
)
from fpga_sim.graph import TensorInfo
from fpga_sim.ops import SUPPORTED_OPS
from fpga_sim.simulator import Simulator

__all__ = [
    "FeedError",
    "ModelLoadError",
    "NodeExecutionError",
    "SUPPORTED_OPS",
    "Simulator",
    "SimulatorError",
    "TensorInfo",
    "UnsupportedModelError",
    "UnsupportedNodeError",
]
