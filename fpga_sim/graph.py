"""Loading an ONNX model into a validated, topologically ordered list of ops.

Everything that can be refused is refused here, at load time: unreadable or
truncated files, unsupported opsets, op types, attributes, dtypes and shapes
(where the graph or shape inference states them), dangling inputs and cycles.
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from fpga_sim.errors import ModelLoadError, UnsupportedModelError, UnsupportedNodeError
from fpga_sim.numeric import ONNX_TO_NUMPY, onnx_dtype_name
from fpga_sim.ops import REGISTRY, SUPPORTED_OPS
from fpga_sim.ops.base import Known, Op

OPSETS = range(13, 24)
"""Default-domain opset versions whose semantics for the supported ops match."""

Dim = int | str | None


@dataclass(frozen=True)
class TensorInfo:
    """Name, dtype and shape of a graph input or output.

    ``shape`` is ``None`` when unknown; a dimension is an int when fixed, a str
    when symbolic (``dim_param``) and ``None`` when unnamed.
    """

    name: str
    dtype: np.dtype
    shape: tuple[Dim, ...] | None

    def describe(self) -> str:
        """E.g. ``uint8 [N, 1, 28, 28]``."""
        if self.shape is None:
            return f"{self.dtype} [unknown shape]"
        return f"{self.dtype} [{', '.join('?' if d is None else str(d) for d in self.shape)}]"


@dataclass(frozen=True)
class Node:
    """One validated node: its op instance and the tensor names it reads and writes."""

    name: str
    op_type: str
    op: Op
    inputs: tuple[str, ...]
    """Tensor names, padded with "" for absent optional inputs to the op's input count."""
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Graph:
    """A loaded model: nodes in topological order, interface and constants."""

    nodes: tuple[Node, ...]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    initializers: Mapping[str, np.ndarray]
    model: onnx.ModelProto


def load_model(source: str | os.PathLike | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """Read ``source`` (a path or a ModelProto); returns the model and a label for messages."""
    if isinstance(source, onnx.ModelProto):
        model, label = source, "<model>"
    else:
        label = os.fspath(source)
        if not os.path.isfile(label):
            raise ModelLoadError(f"{label}: no such file")
        try:
            model = onnx.load(label)
        except (DecodeError, ValueError, OSError, RuntimeError) as exc:
            raise ModelLoadError(f"{label}: not an ONNX model or truncated ({_first_line(exc)})") from exc
    # onnx.checker is stricter than onnxruntime (e.g. it wants every output's shape);
    # these are the facts a parsed-but-meaningless or truncated file lacks.
    if model.ir_version <= 0 or not model.opset_import or not model.HasField("graph"):
        raise ModelLoadError(f"{label}: not an ONNX model or truncated (no IR version, opset or graph)")
    if not model.graph.output:
        raise ModelLoadError(f"{label}: not an ONNX model or truncated (the graph has no outputs)")
    return model, label


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def tensor_info(value_info: onnx.ValueInfoProto) -> TensorInfo:
    """TensorInfo of a graph input/output; refuses non-tensor or unsupported types."""
    kind = value_info.type.WhichOneof("value")
    if kind != "tensor_type":
        raise UnsupportedModelError(f"tensor {value_info.name!r}: only tensor types are supported, got {kind}")
    tensor_type = value_info.type.tensor_type
    if tensor_type.elem_type not in ONNX_TO_NUMPY:
        raise UnsupportedModelError(
            f"tensor {value_info.name!r}: dtype {onnx_dtype_name(tensor_type.elem_type)} is not supported"
        )
    shape = None
    if tensor_type.HasField("shape"):
        shape = tuple(_dim(d) for d in tensor_type.shape.dim)
    return TensorInfo(value_info.name, ONNX_TO_NUMPY[tensor_type.elem_type], shape)


def _dim(dim: onnx.TensorShapeProto.Dimension) -> Dim:
    if dim.HasField("dim_value"):
        return dim.dim_value
    return dim.dim_param or None


def _inferred_types(model: onnx.ModelProto) -> dict[str, Known]:
    """dtype/shape of every tensor that the graph declares or shape inference finds."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # inference is best effort: run-time checks still apply
        inferred = model
    known: dict[str, Known] = {}
    graph = inferred.graph
    for value_info in [*graph.value_info, *graph.input, *graph.output]:
        tensor_type = value_info.type.tensor_type
        if value_info.type.WhichOneof("value") != "tensor_type" or tensor_type.elem_type not in ONNX_TO_NUMPY:
            continue
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim) \
            if tensor_type.HasField("shape") else None
        known[value_info.name] = Known(ONNX_TO_NUMPY[tensor_type.elem_type], shape)
    return known


def _check_opset(model: onnx.ModelProto) -> None:
    versions = {o.domain: o.version for o in model.opset_import}
    version = versions.get("", versions.get("ai.onnx"))
    if version is None or version not in OPSETS:
        raise UnsupportedModelError(
            f"default-domain opset {version} is not supported (supported: {OPSETS.start}..{OPSETS.stop - 1})"
        )


def _initializers(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    if graph.sparse_initializer:
        raise UnsupportedModelError("sparse initializers are not supported")
    arrays = {}
    for tensor in graph.initializer:
        if tensor.data_type not in ONNX_TO_NUMPY:
            raise UnsupportedModelError(
                f"initializer {tensor.name!r}: dtype {onnx_dtype_name(tensor.data_type)} is not supported"
            )
        arrays[tensor.name] = numpy_helper.to_array(tensor)
    return arrays


def _make_node(index: int, proto: onnx.NodeProto, known: Mapping[str, Known],
               initializers: Mapping[str, np.ndarray]) -> Node:
    name = proto.name or f"{proto.op_type}_{index}"
    if proto.domain not in ("", "ai.onnx"):
        raise UnsupportedNodeError(name, proto.op_type, f"domain {proto.domain!r} is not supported")
    if proto.op_type not in SUPPORTED_OPS:
        raise UnsupportedNodeError(
            name, proto.op_type, f"unsupported op type (supported: {', '.join(sorted(SUPPORTED_OPS))})"
        )
    op_class = REGISTRY[proto.op_type]
    infos = []
    for tensor in proto.input:
        if not tensor:
            infos.append(None)
            continue
        info = known.get(tensor, Known())
        if tensor in initializers:
            value = initializers[tensor]
            info = Known(value.dtype, value.shape, value)
        infos.append(info)
    op = op_class(proto, infos, name)
    inputs = tuple(proto.input) + ("",) * (len(op_class.inputs) - len(proto.input))
    return Node(name, proto.op_type, op, inputs, tuple(proto.output))


def _topological(nodes: list[Node], available: set[str]) -> tuple[Node, ...]:
    """Kahn's algorithm; among ready nodes the earliest in the file goes first."""
    producer: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for out in node.outputs:
            if not out:
                continue
            if out in producer or out in available:
                raise UnsupportedModelError(f"tensor {out!r} is produced more than once")
            producer[out] = i
    waiting = [0] * len(nodes)
    consumers: dict[int, list[int]] = {i: [] for i in range(len(nodes))}
    for i, node in enumerate(nodes):
        for tensor in node.inputs:
            if not tensor or tensor in available:
                continue
            if tensor not in producer:
                raise UnsupportedModelError(f"node {node.name!r} ({node.op_type}): input {tensor!r} is never produced")
            waiting[i] += 1
            consumers[producer[tensor]].append(i)
    ready = [i for i, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for j in consumers[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(nodes):
        raise UnsupportedModelError("the graph has a cycle")
    return tuple(order)


def build_graph(model: onnx.ModelProto) -> Graph:
    """Validate every node and order them; raises UnsupportedModelError subclasses."""
    _check_opset(model)
    graph = model.graph
    initializers = _initializers(graph)
    inputs = tuple(tensor_info(v) for v in graph.input if v.name not in initializers)
    outputs = tuple(tensor_info(v) for v in graph.output)
    known = _inferred_types(model)
    nodes = [_make_node(i, proto, known, initializers) for i, proto in enumerate(graph.node)]
    available = set(initializers) | {i.name for i in inputs}
    ordered = _topological(nodes, available)
    produced = {out for node in nodes for out in node.outputs}
    for output in outputs:
        if output.name not in produced and output.name not in available:
            raise UnsupportedModelError(f"graph output {output.name!r} is never produced")
    return Graph(ordered, inputs, outputs, initializers, model)
