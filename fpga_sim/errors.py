"""Exceptions raised by the simulator.

Every error the simulator raises on purpose derives from :class:`SimulatorError`,
so callers (the CLI in particular) can catch one class and print one line. It is a
:class:`~exporters.errors.FoldlineError`: every Foldline CLI that runs the simulator
(export-fpga, fpga-hls) reports its errors as one line with exit code 2, like its own.
``exporters.errors`` imports nothing of Foldline, so the simulator stays independent
of the toolchain.
"""

from __future__ import annotations

from exporters.errors import FoldlineError


class SimulatorError(FoldlineError):
    """Base class of every error raised on purpose by ``fpga_sim``."""


class ModelLoadError(SimulatorError):
    """The file is missing, unreadable, not an ONNX model, or truncated."""


class UnsupportedModelError(SimulatorError):
    """The model is valid ONNX but uses something the simulator refuses."""


class UnsupportedNodeError(UnsupportedModelError):
    """One node is refused at load time (op type, attribute, dtype, shape)."""

    def __init__(self, node_name: str, op_type: str, reason: str) -> None:
        super().__init__(f"node {node_name!r} ({op_type}): {reason}")
        self.node_name = node_name
        self.op_type = op_type
        self.reason = reason


class FeedError(SimulatorError):
    """A feed is missing, unexpected, or has the wrong dtype or shape."""


class NodeExecutionError(SimulatorError):
    """A node failed (or refused its inputs) while running."""

    def __init__(self, node_name: str, op_type: str, reason: str) -> None:
        super().__init__(f"node {node_name!r} ({op_type}): {reason}")
        self.node_name = node_name
        self.op_type = op_type
        self.reason = reason
