"""Comparing the simulator with onnxruntime, tensor by tensor.

onnxruntime is imported only inside :func:`run_onnxruntime`, which only the
CLI's ``verify`` command calls: the simulator itself never depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import onnx

from fpga_sim.graph import Node
from fpga_sim.numeric import NUMPY_TO_ONNX
from fpga_sim.platform import cpu_has_vnni

INTEGER_GEMM_OPS = frozenset({"ConvInteger", "MatMulInteger"})


@dataclass(frozen=True)
class Divergence:
    """The first tensor on which the simulator and onnxruntime disagree."""

    tensor: str
    node_name: str | None
    op_type: str | None
    reason: str
    """'values', or a sentence for dtype/shape mismatches and missing tensors."""
    flat_index: int | None = None
    index: tuple[int, ...] | None = None
    sim_value: object = None
    ort_value: object = None
    differing: int = 0
    total: int = 0

    def describe(self, vnni: bool | None = None, saturates: bool | None = None) -> str:
        """A multi-line report; mentions VNNI saturation for integer GEMMs on non-VNNI CPUs.

        ``vnni``: whether the CPU has VNNI (read from /proc/cpuinfo when None).
        ``saturates``: the result of :func:`onnxruntime_saturates_u8s8`, if run.
        """
        where = f"node {self.node_name!r} ({self.op_type})" if self.node_name else "graph output"
        lines = [f"first divergence: {where}, tensor {self.tensor!r}"]
        if self.reason == "values":
            lines.append(f"  at flat index {self.flat_index}, index {list(self.index)}: "
                         f"simulator {self.sim_value!r} vs onnxruntime {self.ort_value!r}")
            lines.append(f"  {self.differing} of {self.total} elements differ")
        else:
            lines.append(f"  {self.reason}")
        if self.op_type in INTEGER_GEMM_OPS and not (cpu_has_vnni() if vnni is None else vnni):
            lines.append("  note: this CPU has no AVX-VNNI/AVX512-VNNI; onnxruntime's u8 x s8 kernels may have "
                         "saturated pairs of products to 16 bits, so onnxruntime (not the simulator) may be wrong")
            if saturates is not None:
                lines.append(f"  a worst-case probe (MatMulInteger, 255 * 127 pairs) "
                             f"{'shows' if saturates else 'does not show'} onnxruntime saturating here")
        return "\n".join(lines)


def compare(tensor: str, sim: np.ndarray, ort: np.ndarray, node: Node | None) -> Divergence | None:
    """None if ``sim`` and ``ort`` are equal in dtype, shape and every element (NaN == NaN)."""
    node_name, op_type = (node.name, node.op_type) if node else (None, None)
    if sim.dtype != ort.dtype or sim.shape != ort.shape:
        return Divergence(tensor, node_name, op_type,
                          f"simulator gives {sim.dtype} {list(sim.shape)}, onnxruntime {ort.dtype} {list(ort.shape)}")
    equal = sim == ort
    if sim.dtype.kind == "f":
        equal |= np.isnan(sim) & np.isnan(ort)
    if equal.all():
        return None
    flat = int(np.flatnonzero(~equal.reshape(-1))[0])
    index = tuple(int(i) for i in np.unravel_index(flat, sim.shape))
    return Divergence(tensor, node_name, op_type, "values", flat, index,
                      sim.reshape(-1)[flat].item(), ort.reshape(-1)[flat].item(),
                      int((~equal).sum()), int(equal.size))


def first_divergence(nodes: Sequence[Node], sim: Mapping[str, np.ndarray],
                     ort: Mapping[str, np.ndarray]) -> Divergence | None:
    """Walk the nodes in topological order; the first differing node output, if any."""
    for node in nodes:
        for tensor in node.outputs:
            if not tensor:
                continue
            if tensor not in ort:
                return Divergence(tensor, node.name, node.op_type, "onnxruntime did not return this tensor")
            found = compare(tensor, sim[tensor], ort[tensor], node)
            if found:
                return found
    return None


def expose_all_tensors(model: onnx.ModelProto, dtypes: Mapping[str, np.dtype]) -> onnx.ModelProto:
    """A copy of ``model`` in which every node output is also a graph output.

    Types come from onnx shape inference; ``dtypes`` (the simulator's, by
    tensor name) fills in any tensor that inference leaves untyped.
    """
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    types = {v.name: v for v in inferred.graph.value_info if v.type.tensor_type.elem_type}
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    present = {o.name for o in exposed.graph.output}
    for node in exposed.graph.node:
        for tensor in node.output:
            if not tensor or tensor in present:
                continue
            if tensor in types:
                elem_type = types[tensor].type.tensor_type.elem_type
            else:
                elem_type = NUMPY_TO_ONNX[np.dtype(dtypes[tensor])]
            exposed.graph.output.append(onnx.helper.make_tensor_value_info(tensor, elem_type, None))
            present.add(tensor)
    return exposed


def onnxruntime_saturates_u8s8() -> bool:
    """Worst-case probe: does onnxruntime's u8 x s8 MatMulInteger saturate on this CPU?

    Each pair of products 255 * 127 sums to 64770 > 32767, which a 16-bit
    saturating pairwise add (``vpmaddubsw``, x86 without VNNI) clips.
    """
    taps = 64
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "vnni_probe",
        [onnx.helper.make_tensor_value_info("a", onnx.TensorProto.UINT8, [1, taps])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.INT32, [1, 1])],
        initializer=[onnx.numpy_helper.from_array(np.full((taps, 1), 127, np.int8), "b")])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 21)])
    model.ir_version = 10
    result = run_onnxruntime(model, {"a": np.full((1, taps), 255, np.uint8)})["y"]
    return int(result[0, 0]) != 255 * 127 * taps


def run_onnxruntime(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every graph output of ``model`` computed by onnxruntime's CPUExecutionProvider."""
    import onnxruntime  # only the verify path needs it

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, dict(feeds))))
