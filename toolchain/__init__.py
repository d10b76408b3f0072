"""Foldline's PyTorch toolchain: quantization-aware layers, pruning, conversion to the
shared integer model, a bit-exact torch integer mode, and checkpoints (docs/toolchain.md)."""

from toolchain.checkpoint import CheckpointError, load, load_metadata, save
from toolchain.convert import UnsupportedModuleError, to_integer_model
from toolchain.integer_mode import agreement, integer_forward, run_integer
from toolchain.models import MODELS, build
from toolchain import models, nn, pruning, quant  # noqa: E402  (subpackages as attributes)
from toolchain.methods import METHODS

__all__ = [
    "METHODS", "MODELS", "CheckpointError", "UnsupportedModuleError", "agreement", "build", "integer_forward", "load",
    "load_metadata", "run_integer", "save", "to_integer_model",
]
