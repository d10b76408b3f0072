"""Checkpoints: architecture as plain data + state_dict tensors, one file, no code.

File layout (a ``torch.save`` of one dict, read back with ``torch.load(path,
weights_only=True)`` — never a full unpickle):

    {"format": "foldline-checkpoint/1",
     "spec": QuantNet.spec(),          # dicts/lists/str/int/float/bool/None
     "state_dict": model.state_dict(), # weights, BN statistics, quantizer statistics, masks
     "metadata": {...}}                # optional plain data from the caller

A missing, corrupt or non-PyTorch file, a pickle that would need code execution to load,
or a file that is not a Foldline checkpoint raises :class:`CheckpointError` with one line
naming the path.

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

import pickle
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


def _read(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise CheckpointError(f"{path}: refused, the file would need code execution to load "
                                  "(not a Foldline checkpoint; loaded with weights_only=True)") from None
        raise CheckpointError(f"{path}: not a readable PyTorch file ({type(exc).__name__})") from None
    except Exception as exc:  # torch raises RuntimeError/EOFError/ValueError/... for damaged bytes
        raise CheckpointError(f"{path}: not a readable PyTorch file ({type(exc).__name__})") from None
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
