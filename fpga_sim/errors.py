"""Exceptions raised by the simulator.

Every error the simulator raises on purpose derives from :class:`SimulatorError`,
so callers (the CLI in particular) can catch one class and print one line.
"""

from __future__ import annotations


class SimulatorError(Exception):
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
