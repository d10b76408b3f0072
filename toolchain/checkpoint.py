"""Checkpoints: architecture as plain data + state_dict tensors, one file, no code.

File layout (a ``torch.save`` of one dict, read back with ``torch.load(path,
weights_only=True)`` — never a full unpickle):

    {"format": "foldline-checkpoint/1",
     "spec": QuantNet.spec(),          # dicts/lists/str/int/float/bool/None
     "state_dict": model.state_dict(), # weights, BN statistics, quantizer statistics, masks
     "metadata": {...}}                # optional plain data from the caller

A missing, corrupt or non-PyTorch file, a pickle that would need code execution to load,
or a file that is not a Foldline checkpoint raises :class:`CheckpointError` with one line
naming the path and saying what the file is, as far as its bytes tell without running
anything (:func:`describe_foreign`): an ONNX model (for fpga-sim / fpga-hls), a
``torch.export`` program (a ``.pt2``), another zip archive, a pickle that references Python
code (refused: loading it could run that code), or bytes that are no PyTorch file at all.
torch's multi-line "Detected pickle protocol" warning is silenced: the refusal says it all.

>>> import tempfile, os
>>> from toolchain.models import build
>>> net = build("mlp", input_shape=(4,), hidden=(3,))
>>> path = os.path.join(tempfile.mkdtemp(), "m.pt")
>>> _ = save(net, path, metadata={"epochs": 2}); load_metadata(path)
{'epochs': 2}
>>> load(path).spec() == net.spec()
True
"""

from __future__ import annotations

import pickletools
import warnings
import zipfile
from pathlib import Path

import torch

from exporters.errors import FoldlineError, ModelError
from toolchain.nn.net import QuantNet

FORMAT = "foldline-checkpoint/1"
_PLAIN = (str, int, float, bool, type(None))


class CheckpointError(FoldlineError):
    """A checkpoint that cannot be read safely or is not a Foldline checkpoint."""


def _check_plain(value, where: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise CheckpointError(f"{where}: keys must be strings, got {k!r}")
            _check_plain(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise CheckpointError(f"{where}: {type(value).__name__} is not plain data (dict/list/str/int/float/bool/None)")


def save(model: QuantNet, path, metadata: dict | None = None) -> Path:
    """Write ``model`` (a QuantNet) and optional plain-data ``metadata`` to ``path``."""
    if not isinstance(model, QuantNet):
        raise CheckpointError(f"{path}: only a toolchain.nn.QuantNet can be saved, got {type(model).__name__}")
    try:
        spec = model.spec()
    except ModelError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    metadata = dict(metadata or {})
    _check_plain(spec, "spec")
    _check_plain(metadata, "metadata")
    path = Path(path)
    torch.save({"format": FORMAT, "spec": spec, "state_dict": model.state_dict(), "metadata": metadata}, path)
    return path


_REFUSED = "refused, the file would need code execution to load (not a Foldline checkpoint; loaded with weights_only=True)"
_CODE_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX"}  # import or call


def _pickle_opcodes(data: bytes) -> set[str] | None:
    """The opcode names of the pickle ``data`` (parsed, never executed); None if it is no pickle."""
    try:
        return {op.name for op, _arg, _pos in pickletools.genops(data)}
    except Exception:  # pickletools raises ValueError and friends for bytes that are no pickle
        return None


def _is_onnx(data: bytes) -> bool:
    import onnx
    from google.protobuf.message import DecodeError

    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, ValueError):
        return False
    return proto.ir_version > 0 and proto.HasField("graph")


def describe_foreign(path: Path) -> str | None:
    """What ``path`` is when it cannot be a ``torch.save`` file, from its bytes alone; None when it may be one.

    A ``torch.save`` file is a zip archive holding ``data.pkl`` or (the legacy format) a
    pickle, which starts with the PROTO opcode ``0x80``.
    """
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return "a damaged zip archive"
        if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
            return None
        if any(n.endswith("/archive_format") or n.endswith("/models/model.json") for n in names):
            return ("a torch.export program, not a Foldline checkpoint (export-fpga quantizes one "
                    "post-training when its name ends in .pt2)")
        return "a zip archive but not a PyTorch file (no data.pkl)"
    with open(path, "rb") as f:
        if f.read(1) == b"\x80":
            return None
    if _is_onnx(path.read_bytes()):
        return "an ONNX file, not a PyTorch checkpoint: use fpga-sim / fpga-hls on it"
    return "not a PyTorch file (neither a torch.save zip archive nor a pickle)"


def _why_unreadable(path: Path, exc: Exception) -> str:
    """The one-line reason ``torch.load(weights_only=True)`` refused ``path`` with ``exc``."""
    if "unsupported global" in str(exc).lower():  # a real pickle of Python objects torch does not allow
        return _REFUSED
    if not zipfile.is_zipfile(path):
        opcodes = _pickle_opcodes(path.read_bytes())
        if opcodes is not None:
            return _REFUSED if opcodes & _CODE_OPCODES else "a plain pickle, not a PyTorch file written by torch.save"
    return f"not a readable PyTorch file (damaged: {type(exc).__name__})"


def _read(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    foreign = describe_foreign(path)
    if foreign is not None:
        raise CheckpointError(f"{path}: {foreign}")
    try:
        with warnings.catch_warnings():  # torch warns in 3 lines about pickle protocols it was not written with
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError/RuntimeError/EOFError/ValueError/... for such bytes
        raise CheckpointError(f"{path}: {_why_unreadable(path, exc)}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path}: a PyTorch file but not a Foldline checkpoint (format {FORMAT!r} expected)")
    return blob


def load(path) -> QuantNet:
    """Rebuild the QuantNet saved at ``path`` (architecture from data, then its state_dict)."""
    blob = _read(path)
    try:
        model = QuantNet.from_spec(blob["spec"])
        model.load_state_dict(blob["state_dict"], strict=True)
    except (ModelError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{Path(path)}: damaged Foldline checkpoint ({type(exc).__name__}: {detail})") from None
    return model


def load_metadata(path) -> dict:
    """The plain-data ``metadata`` dict stored with the checkpoint."""
    return dict(_read(path).get("metadata") or {})
