"""Errors of the HLS backend. Each message is one line; the CLI prints it as is."""

from __future__ import annotations

from exporters.errors import FoldlineError


class HlsError(FoldlineError):
    """Base of every error the HLS backend raises for bad input or a failing tool."""


class HlsConfigError(HlsError):
    """An :class:`~hls_templates.config.HlsConfig` value that cannot be used (part, clock, ...)."""


class UnsupportedModelError(HlsError):
    """A valid integer model that the HLS backend cannot generate (names the layer and why)."""


class ProjectError(HlsError):
    """A project directory that cannot be written or is not a Foldline project."""


class ToolError(HlsError):
    """An external tool (g++, tclsh) is missing or failed; the message quotes its first errors.

    ``log_path``: the file holding the tool's full output, when one was kept (the message names
    it too), so a caller can point the user at it or keep it.
    """

    def __init__(self, message: str, log_path=None) -> None:
        super().__init__(message)
        self.log_path = log_path
