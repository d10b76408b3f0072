"""IntegerModel -> ONNX of standard ops that onnxruntime runs as is, exactly.

Graph scheme (opset 21; every name below is stable and documented in docs/integer-format.md):

* graph input ``input``: float32 ``(N, *shape)``; ``QuantizeLinear`` (int8, zero point 0,
  half-to-even as the contract says for the host) then ``Clip`` to the narrow grid.
* Conv / AvgPool / GlobalAvgPool: ``ConvInteger(x, w, x_zero_point)`` -> int32, of the layer's
  rank (1-D on ``(N, C, L)``). Padded taps hold the zero point (ONNX: taps contribute
  ``(x - z_x) = 0``), as the contract's folded form needs; ceil mode is end padding and dilation
  the ``dilations`` attribute (``Window.onnx``). Average pooling is a depthwise ConvInteger with
  all-ones weights (the layer's ``convolution`` view, :mod:`exporters.layers.avg_pool`); where its
  edge windows divide by their own count the tail's constants are per output position.
* Linear: ``MatMulInteger(x, w^T, x_zero_point)`` -> int32.
* bias: int32 ``Add`` (the accumulator bound is proven to fit 32 bits first).
* requantization (:func:`_requant`), all in exact integer arithmetic:

      a = Cast<int64>(acc) * M                    |acc| < 2^31, M < 2^16  => |a| < 2^47
      v = a + (2^(n-1) + K * 2^n)                 K = floor(A*M / 2^n) + 1 => v >= 0, v < 2^62
      q = Cast<int64>(BitShift_RIGHT(Cast<uint64>(v), n))   = floor(a + 2^(n-1)) / 2^n) + K
      y = Cast<int8|uint8>(Clip(q + (z_y - K), lo, hi))

  where ``A`` is the layer's proven per-channel accumulator bound. BitShift exists only
  for unsigned types in ONNX; shifting the non-negative ``v`` and removing ``K`` after is
  the floor (arithmetic) shift exactly, because adding ``K * 2^n`` commutes with
  ``floor(. / 2^n)``. No float touches an integer, so no rounding mode of any runtime
  matters (onnxruntime's QLinearConv is avoided on purpose: it requantizes in fp32).
* residual Add: ``Cast<int64>(x_i) - z_i``, ``* M_i``, summed, then the same tail with M = 1.
* Concat: each input not copied is requantized by its own tail (``Cast<int64>`` -> ``Sub(z_i)``,
  then the tail with ``(M_i, n_i)``), then ``Concat(axis=1)``.
* Lookup: ``Cast<int64>`` -> ``Add(-lo_x)`` -> ``Gather`` of its table (the output integers).
* MaxPool and Flatten act on the integers directly; Upsample is ``Resize`` (nearest, floor,
  asymmetric, integer scales), which replicates them.
* outputs: first the last layer's integers (int8), named after the layer; then
  ``<name>_float``, its ``DequantizeLinear``.

One emitter per layer type, registered in :data:`EXPORTERS`.

Every (M, n), scale, zero point and bit width stays readable: initializers are named
``<layer>.<field>``, each layer's first node carries a doc string, and the whole integer
model (minus the weight and bias arrays, which are referenced by initializer name) is
JSON in ``metadata_props['foldline.integer_model']`` — enough for
:func:`exporters.onnx_import.load_integer_model` to rebuild the exact model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from exporters import integer_model as im
from exporters.grid import Grid
from exporters.requant import nonnegative_offset, rounding_term

OPSET = 21
FORMAT = "foldline-integer-onnx/1"
INPUT_NAME = "input"
METADATA_KEY = "foldline.integer_model"
FORMAT_KEY = "foldline.format"

_DTYPE = {"int8": TensorProto.INT8, "uint8": TensorProto.UINT8}


class _GraphBuilder:
    """Collects nodes and initializers with the naming scheme ``<layer>/<Op>`` and ``<layer>.<field>``."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counts: dict[str, int] = {}

    def const(self, name: str, value, dtype) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, layer: str, op: str, inputs: list[str], output: str | None = None, doc: str = "", **attrs) -> str:
        base = f"{layer}/{op}"
        index = self._counts[base] = self._counts.get(base, -1) + 1
        node_name = base + (f"_{index}" if index else "")
        output = output or node_name
        node = helper.make_node(op, inputs, [output], name=node_name, **attrs)
        if doc:
            node.doc_string = doc
        self.nodes.append(node)
        return output


def _channel_shape(channels: int, dims: int) -> tuple[int, ...]:
    """Per-channel constants broadcast over (N, C, *spatial) as (C, 1, ..., 1): ``dims`` spatial axes
    (2 for (N, C, H, W), 1 for (N, C, L), 0 for (N, C))."""
    return (channels,) + (1,) * dims


def _requant(b: _GraphBuilder, layer: str, value: str, multiplier, shift, bound, out: Grid, relu: bool,
             dims: int, output: str, suffix: str = "", clamp: tuple[int, int] | None = None,
             per_position: bool = False) -> str:
    """Append the exact integer requantization tail (see module docstring); returns ``output``.
    ``suffix`` ends its initializers' names (a layer with one tail per input: Concat); ``clamp``
    is a fused ReLU6 / hardtanh (integer bounds, ``Grid.output_bounds``). ``per_position``: the
    multiplier and shift are arrays of the output's spatial shape (an AvgPool dividing each
    window by its count), broadcast over the batch and the channels as they are."""
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if per_position:
        shape = multiplier.shape
    else:
        shape = _channel_shape(multiplier.size, dims) if multiplier.size > 1 else ()
    k = nonnegative_offset(np.asarray(bound, dtype=np.int64) * multiplier, shift)
    lo, hi = out.output_bounds(relu, clamp)
    v = value
    if not (multiplier == 1).all():
        m = b.const(f"{layer}.multiplier{suffix}", multiplier.reshape(shape), np.int64)
        v = b.node(layer, "Mul", [v, m])
    offset = rounding_term(shift) + (k << shift)
    v = b.node(layer, "Add", [v, b.const(f"{layer}.round_offset{suffix}", offset.reshape(shape), np.int64)])
    v = b.node(layer, "Cast", [v], to=TensorProto.UINT64)
    v = b.node(layer, "BitShift", [v, b.const(f"{layer}.shift{suffix}", shift.reshape(shape), np.uint64)],
               direction="RIGHT")
    v = b.node(layer, "Cast", [v], to=TensorProto.INT64)
    v = b.node(layer, "Add", [v, b.const(f"{layer}.out_offset{suffix}", (out.zero_point - k).reshape(shape),
                                         np.int64)])
    v = b.node(layer, "Clip", [v, b.const(f"{layer}.lo{suffix}", lo, np.int64),
                               b.const(f"{layer}.hi{suffix}", hi, np.int64)])
    return b.node(layer, "Cast", [v], output=output, to=_DTYPE[out.dtype])


def _requant_doc(rq: im.Requant) -> str:
    lo, hi = rq.bounds
    return (f"requant: y = clamp({rq.out.zero_point} + ((acc*M + 2^(n-1)) >> n), {lo}, {hi}); "
            f"M={rq.multiplier.tolist()} n={rq.shift.tolist()}; out scale={rq.out.scale!r} "
            f"zero_point={rq.out.zero_point} bits={rq.out.bits}")


def _export_input(b: _GraphBuilder, model: im.IntegerModel, layer: im.Input) -> None:
    name, g = layer.name, layer.grid
    q = b.node(name, "QuantizeLinear", [INPUT_NAME, b.const(f"{name}.scale", g.scale, np.float32),
                                        b.const(f"{name}.zero_point", 0, np.int8)],
               doc=f"input grid: scale={g.scale!r} zero_point=0 bits={g.bits} range [{g.lo}, {g.hi}]")
    b.node(name, "Clip", [q, b.const(f"{name}.lo", g.lo, np.int8), b.const(f"{name}.hi", g.hi, np.int8)], output=name)


def _export_flatten(b: _GraphBuilder, model: im.IntegerModel, layer: im.Flatten) -> None:
    b.node(layer.name, "Flatten", [layer.input], output=layer.name, axis=1)


def _export_maxpool(b: _GraphBuilder, model: im.IntegerModel, layer: im.MaxPool) -> None:
    """ONNX MaxPool of the layer's rank; ceil mode as explicit end padding (``Window.extra``, never a
    maximum) with ``ceil_mode`` 0: onnx 1.23's shape inference ignores ceil mode's rule that a window
    starting in the right padding is dropped (e.g. L = 3, k = 2, s = 2, p = 1: it infers 3, PyTorch and
    onnxruntime compute 2), so a file with ``ceil_mode=1`` would declare shapes its runtime contradicts."""
    b.node(layer.name, "MaxPool", [layer.input], output=layer.name, **layer.geometry(model).onnx())


def _export_add(b: _GraphBuilder, model: im.IntegerModel, layer: im.Add) -> None:
    name = layer.name
    terms = []
    for i, (src, m) in enumerate(zip(layer.inputs, layer.multipliers), start=1):
        g = model.grid(src)
        t = b.node(name, "Cast", [src], to=TensorProto.INT64)
        t = b.node(name, "Sub", [t, b.const(f"{name}.zero_point{i}", g.zero_point, np.int64)])
        terms.append(b.node(name, "Mul", [t, b.const(f"{name}.multiplier{i}", m, np.int64)]))
    total = b.node(name, "Add", terms, doc=(f"residual add: M1={layer.multipliers[0]} M2={layer.multipliers[1]} "
                                           f"n={layer.shift}; out scale={layer.out.scale!r} "
                                           f"zero_point={layer.out.zero_point}"))
    bound = sum(max(-lo, hi) for lo, hi in layer.term_bounds(model))  # a bound of |sum|: each term's magnitude
    _requant(b, name, total, np.ones(1, np.int64), np.array([layer.shift]), bound, layer.out, layer.relu,
             dims=0, output=name, clamp=layer.clamp)


def _export_concat(b: _GraphBuilder, model: im.IntegerModel, layer: im.Concat) -> None:
    """Per input: copied as is (:meth:`~exporters.layers.concat.Concat.copies`), or ``Cast<int64>``
    -> ``Sub(.zero_point<i>)`` -> requant tail with ``(M_i, n_i)``; then ``Concat(axis=1)``."""
    name = layer.name
    parts = []
    for i, (src, copy, m, n) in enumerate(zip(layer.sources, layer.copies(model), layer.multipliers, layer.shifts),
                                          start=1):
        if copy:
            parts.append(src)
            continue
        g = model.grid(src)
        t = b.node(name, "Cast", [src], to=TensorProto.INT64)
        t = b.node(name, "Sub", [t, b.const(f"{name}.zero_point{i}", g.zero_point, np.int64)])
        bound = max(g.zero_point - g.lo, g.hi - g.zero_point)  # of |x_i - z_i|
        parts.append(_requant(b, name, t, np.array([m]), np.array([n]), bound, layer.out, layer.relu,
                              dims=0, output=f"{name}/input{i}", suffix=str(i), clamp=layer.clamp))
    b.node(name, "Concat", parts, output=name, axis=1,
           doc=(f"concat: per input (M, n) = {list(zip(layer.multipliers, layer.shifts))}, copied: "
                f"{list(layer.copies(model))}; out scale={layer.out.scale!r} zero_point={layer.out.zero_point}"))


def _export_lookup(b: _GraphBuilder, model: im.IntegerModel, layer: im.Lookup) -> None:
    """``Cast<int64>`` -> ``Add(.index_offset = -lo_x)`` (omitted when 0) -> ``Gather(.table, axis 0)``:
    the table's dtype is the output grid's, so Gather writes the output integers directly."""
    name = layer.name
    index = b.node(name, "Cast", [layer.input], to=TensorProto.INT64,
                   doc=f"lookup {layer.function}: y = table[x + {layer.index_offset(model)}]; out scale="
                       f"{layer.out.scale!r} zero_point={layer.out.zero_point} bits={layer.out.bits}")
    if layer.index_offset(model):
        index = b.node(name, "Add", [index, b.const(f"{name}.index_offset", layer.index_offset(model), np.int64)])
    table = b.const(f"{name}.table", layer.table, np.dtype(layer.out.dtype))
    b.node(name, "Gather", [table, index], output=name, axis=0)


def _export_upsample(b: _GraphBuilder, model: im.IntegerModel, layer: im.Upsample) -> None:
    scales = b.const(f"{layer.name}.scales", [1, 1, *layer.factor], np.float32)
    b.node(layer.name, "Resize", [layer.input, "", scales], output=layer.name, mode="nearest",
           nearest_mode="floor", coordinate_transformation_mode="asymmetric")


# Accumulating layers: ConvInteger / MatMulInteger (+ bias), then requantization.
def _accumulator_input(b: _GraphBuilder, model: im.IntegerModel, layer) -> tuple[str, str, im.AccumulatorAnalysis]:
    """The input zero point initializer, the first node's doc string and the proven bounds."""
    g = model.grid(layer.input)
    zp = b.const(f"{layer.name}.x_zero_point", g.zero_point, np.dtype(g.dtype))
    analysis = im.accumulator_analysis(model, layer)
    doc = _requant_doc(layer.requant) + f"; input zero_point={g.zero_point}; acc bits (folded/HLS)={analysis.bits}"
    return zp, doc, analysis


def _conv_integer(b: _GraphBuilder, model: im.IntegerModel, layer, doc_extra: str = ""):
    """``ConvInteger`` of the layer's :class:`~exporters.layers.window.ConvolutionView` (int32)."""
    zp, doc, analysis = _accumulator_input(b, model, layer)
    view = layer.convolution(model)
    w = b.const(f"{layer.name}.weight", view.weight, np.int8)
    acc = b.node(layer.name, "ConvInteger", [layer.input, w, zp], doc=doc + doc_extra, group=int(view.groups),
                 **view.window.onnx())
    return acc, analysis


def _spatial_dims(model: im.IntegerModel, layer) -> int:
    """Spatial axes of the layer's output: 2 for (C, H, W), 1 for (C, L), 0 for a vector."""
    return len(model.shape(layer.name)) - 1


def _add_bias(b: _GraphBuilder, layer: im.MacLayer, acc: str, dims: int) -> str:
    bias = layer.bias.reshape(_channel_shape(layer.out_channels, dims))
    return b.node(layer.name, "Add", [acc, b.const(f"{layer.name}.bias", bias, np.int32)])


def _requant_accumulator(b: _GraphBuilder, layer, acc: str, analysis, dims: int) -> None:
    rq = layer.requant
    acc64 = b.node(layer.name, "Cast", [acc], to=TensorProto.INT64)
    _requant(b, layer.name, acc64, rq.multiplier, rq.shift, analysis.requant_input, rq.out, rq.relu,
             dims=dims, output=layer.name, clamp=rq.clamp)


def _export_conv(b: _GraphBuilder, model: im.IntegerModel, layer: im.Conv) -> None:
    acc, analysis = _conv_integer(b, model, layer, f"; weight bits={layer.weight_bits}")
    dims = _spatial_dims(model, layer)
    _requant_accumulator(b, layer, _add_bias(b, layer, acc, dims), analysis, dims)


def _export_linear(b: _GraphBuilder, model: im.IntegerModel, layer: im.Linear) -> None:
    zp, doc, analysis = _accumulator_input(b, model, layer)
    w = b.const(f"{layer.name}.weight", layer.weight.T, np.int8)
    acc = b.node(layer.name, "MatMulInteger", [layer.input, w, zp], doc=doc + f"; weight bits={layer.weight_bits}")
    _requant_accumulator(b, layer, _add_bias(b, layer, acc, 0), analysis, 0)


def _export_avgpool(b: _GraphBuilder, model: im.IntegerModel, layer: im.AvgPool) -> None:
    """ConvInteger over the window with its ceil-mode end padding (padded taps are real zero), then the
    requant tail: per channel, or, when edge windows divide by their own count, per output position
    (``AvgPool.position_requant``; every |acc| is within the full window's bound)."""
    acc, analysis = _conv_integer(b, model, layer)
    rules = layer.position_requant(model)
    if rules is None:
        _requant_accumulator(b, layer, acc, analysis, _spatial_dims(model, layer))
        return
    rq = layer.requant
    acc64 = b.node(layer.name, "Cast", [acc], to=TensorProto.INT64)
    _requant(b, layer.name, acc64, rules[0], rules[1], int(analysis.requant_input.max()), rq.out, rq.relu,
             dims=_spatial_dims(model, layer), output=layer.name, clamp=rq.clamp, per_position=True)


def _export_global_avgpool(b: _GraphBuilder, model: im.IntegerModel, layer: im.GlobalAvgPool) -> None:
    acc, analysis = _conv_integer(b, model, layer)
    _requant_accumulator(b, layer, b.node(layer.name, "Flatten", [acc], axis=1), analysis, 0)


#: One ONNX emitter per layer type (nodes named ``<layer>/<Op>``; docs/integer-format.md).
EXPORTERS = {
    im.Input: _export_input,
    im.Conv: _export_conv,
    im.Linear: _export_linear,
    im.MaxPool: _export_maxpool,
    im.AvgPool: _export_avgpool,
    im.GlobalAvgPool: _export_global_avgpool,
    im.Add: _export_add,
    im.Flatten: _export_flatten,
    im.Concat: _export_concat,
    im.Upsample: _export_upsample,
    im.Lookup: _export_lookup,
}


def layer_metadata(model: im.IntegerModel) -> list[dict]:
    """The integer model as JSON-ready dicts; arrays too big to be metadata are named, not copied."""
    return [layer.to_dict(model) for layer in model.layers]


def to_onnx(model: im.IntegerModel, float_output: bool = True) -> onnx.ModelProto:
    """Build the ONNX model (validated by onnx.checker). Refuses a model breaking the contract."""
    model.validate()
    b = _GraphBuilder()
    for layer in model.layers:
        EXPORTERS[type(layer)](b, model, layer)
    last = model.output
    final = model.grid(last.name)
    batch = "N"
    outputs = [helper.make_tensor_value_info(last.name, _DTYPE[final.dtype], [batch, *model.shape(last.name)])]
    if float_output:
        deq = b.node(last.name, "DequantizeLinear", [last.name, b.const(f"{last.name}.out_scale", final.scale,
                     np.float32)], output=f"{last.name}_float")
        outputs.append(helper.make_tensor_value_info(deq, TensorProto.FLOAT, [batch, *model.shape(last.name)]))
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [batch, *model.input.shape])]
    graph = helper.make_graph(b.nodes, model.name, inputs, outputs, b.initializers,
                              doc_string="Foldline integer model; see metadata foldline.integer_model")
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="foldline",
                              doc_string="Integer-folded network: integer weights, int32 biases, integer requantization")
    proto.ir_version = 10
    metadata = json.dumps(layer_metadata(model), allow_nan=False)  # strict JSON, like every file Foldline writes
    helper.set_model_props(proto, {FORMAT_KEY: FORMAT, METADATA_KEY: metadata})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: im.IntegerModel, path: str | Path, float_output: bool = True) -> Path:
    """Write ``to_onnx(model)`` to ``path`` and return it."""
    path = Path(path)
    onnx.save(to_onnx(model, float_output), path)
    return path
