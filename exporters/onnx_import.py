"""Read a Foldline ONNX file back into the exact :class:`IntegerModel` it was written from.

The exporter stores the model's structure and every integer parameter except the weight
and bias arrays as JSON metadata, and the arrays as named initializers; this reverses it.
Each layer type rebuilds itself from its entry (``Layer.from_dict``, driven by its fields).
A file without that metadata (not written by Foldline's exporter) is refused with a
message saying so, rather than guessed at.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from onnx import numpy_helper

from exporters import integer_model as im
from exporters.errors import ModelError
from exporters.onnx_export import FORMAT, FORMAT_KEY, METADATA_KEY


def load_onnx(path: str | Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf raises several types for damaged bytes
        raise ModelError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from None


def load_integer_model(model: str | Path | onnx.ModelProto) -> im.IntegerModel:
    proto = model if isinstance(model, onnx.ModelProto) else load_onnx(model)
    props = {p.key: p.value for p in proto.metadata_props}
    if props.get(FORMAT_KEY) != FORMAT or METADATA_KEY not in props:
        raise ModelError(
            "this ONNX file was not written by Foldline's exporter (no 'foldline.integer_model' metadata); "
            f"ops found: {sorted({n.op_type for n in proto.graph.node})}"
        )
    arrays = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    layers = [_layer(d, arrays) for d in json.loads(props[METADATA_KEY])]
    result = im.IntegerModel(layers, name=proto.graph.name)
    result.validate()
    return result


def as_integer_model(model) -> im.IntegerModel:
    """An IntegerModel as is; an ONNX ModelProto or a path is read with :func:`load_integer_model`."""
    if isinstance(model, im.IntegerModel):
        return model
    if isinstance(model, (str, Path, onnx.ModelProto)):
        return load_integer_model(model)
    raise TypeError(f"expected an IntegerModel, an onnx.ModelProto or a path, got {type(model).__name__}")


def _layer(d: dict, arrays: dict) -> im.Layer:
    cls = im.LAYER_TYPES.get(d["type"])
    if cls is None:
        raise ModelError(f"layer '{d['name']}': unknown layer type '{d['type']}' in Foldline metadata")
    return cls.from_dict(d, arrays)
