"""Test vectors for a generated project: quantized inputs and golden outputs from the simulator.

The golden model is :class:`fpga_sim.Simulator` on the Foldline ONNX file; the quantized input
integers are read from the simulator's own trace (the Input layer's tensor), so the testbench
sees exactly what the reference computed from. Integer inputs are accepted as already
quantized: they are checked against the input grid and fed as ``q * scale`` (checked to
quantize back to ``q``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from exporters import integer_model as im
from exporters.onnx_export import INPUT_NAME, to_onnx
from hls_templates.errors import ProjectError


def as_batch(model: im.IntegerModel, x: np.ndarray, what: str = "inputs") -> np.ndarray:
    """``x`` with a batch dimension: ``(N, *input_shape)``; refuses other shapes."""
    x = np.asarray(x)
    shape = tuple(model.input.shape)
    if x.shape == shape:
        x = x[None]
    if x.shape[1:] != shape or x.shape[0] < 1:
        raise ProjectError(f"{what} have shape {x.shape}; expected (N, {', '.join(map(str, shape))}) "
                           f"or one sample {shape}")
    return x


def golden_vectors(model: im.IntegerModel, inputs: np.ndarray,
                   source: str | Path | onnx.ModelProto | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(quantized inputs, golden outputs)`` as int64 arrays, computed by the simulator.

    ``source`` is the model's ONNX file or proto when the caller has it (the CLI passes the
    file it loaded); otherwise the model is exported with :func:`exporters.onnx_export.to_onnx`.
    """
    from fpga_sim import Simulator  # imported here: the simulator is only needed for test vectors

    x = as_batch(model, inputs)
    g = model.input.grid
    given = None
    if np.issubdtype(x.dtype, np.integer):
        given = x.astype(np.int64)
        if given.min() < g.lo or given.max() > g.hi:
            raise ProjectError(f"integer inputs span [{given.min()}, {given.max()}], outside the input grid "
                               f"[{g.lo}, {g.hi}]")
        x = (given * g.scale).astype(np.float32)
    elif x.dtype != np.float32:
        x = x.astype(np.float32)
    sim = Simulator(source if source is not None else to_onnx(model))
    q_in, q_out = sim.run([model.input.name, model.output.name], {INPUT_NAME: x})
    q_in, q_out = q_in.astype(np.int64), q_out.astype(np.int64)
    if given is not None and not np.array_equal(q_in, given):
        raise ProjectError("integer inputs do not survive dequantize/quantize exactly; pass float inputs")
    return q_in, q_out


def write_dat(path: Path, values: np.ndarray) -> None:
    """One sample per line, integers separated by spaces, in the model's (C-major) order."""
    rows = np.asarray(values, dtype=np.int64).reshape(len(values), -1)
    with open(path, "w", encoding="ascii") as f:
        for row in rows:
            f.write(" ".join(str(int(v)) for v in row) + "\n")


def read_dat(path: Path) -> np.ndarray:
    """The inverse of :func:`write_dat`: an ``(N, size)`` int64 array."""
    with open(path, encoding="ascii") as f:
        rows = [[int(v) for v in line.split()] for line in f if line.strip()]
    return np.array(rows, dtype=np.int64)
