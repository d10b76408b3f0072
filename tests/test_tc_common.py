"""Shared helpers of the toolchain tests (no tests here): synthetic QAT and reference runs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import onnxruntime as ort
import torch
import torch.nn.functional as F

from exporters.onnx_export import to_onnx
from fpga_sim.platform import cpu_has_vnni

try:
    from fpga_sim import Simulator
except ImportError:  # the simulator's package front may not export it
    from fpga_sim.simulator import Simulator

SHAPE = (1, 12, 12)

#: Every C simulation compiles the HLS project with g++; without it those tests are skipped.
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is needed for C simulation")


def synthetic_batch(n: int, seed: int, shape=SHAPE, classes: int = 10):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return x, y


def qat(model, steps: int = 4, seed: int = 0, shape=SHAPE, lr: float = 0.05, before_step=None):
    """A few SGD steps of quantization-aware training on synthetic data (train mode)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    for step in range(steps):
        if before_step is not None:
            before_step(model, step)
        x, y = synthetic_batch(32, seed * 1000 + step, shape)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def simulate(integer_model, x: torch.Tensor, every_layer: bool = False):
    """The reference simulator on the exported ONNX: int8 output, or every layer's tensor by name."""
    sim = Simulator(to_onnx(integer_model))
    feeds = {"input": x.numpy().astype(np.float32)}
    if every_layer:
        return sim.trace(feeds)
    return sim.run(None, feeds)[0]


def onnxruntime_output(integer_model, x: torch.Tensor) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(to_onnx(integer_model).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy().astype(np.float32)})[0]


ORT_EXACT = cpu_has_vnni()  # without VNNI, onnxruntime's u8 x s8 kernels may saturate (contract: known traps)


def export_fpga_bit_exact(model, x: torch.Tensor, tmp_path, outputs: int = 10, args=()) -> dict:
    """Save ``model`` (a QuantNet, or a ``torch.export`` program: a ``.pt2``, quantized post-training), run
    export-fpga on it with calibration ``x`` and ``args`` (C simulation included) and assert every
    verification check ran and found every element equal; returns report.json."""
    import json

    import toolchain
    from toolchain.export_cli import main as export

    path = tmp_path / ("model.pt2" if isinstance(model, torch.export.ExportedProgram) else "model.pt")
    if path.suffix == ".pt2":
        torch.export.save(model, path)
    else:
        toolchain.save(model, path)
    np.savez(tmp_path / "cal.npz", x=x.numpy())
    assert export([str(path), "-o", str(tmp_path / "out"), "--calibration", str(tmp_path / "cal.npz"), "--quiet",
                   "--force", *args]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    for name in ("torch_integer", "onnxruntime", "csim"):
        v = report["verification"][name]
        assert v["mismatches"] == 0 and v["elements"] == len(x) * outputs and not v.get("error"), (name, v)
        assert not v.get("first_divergence"), (name, v)
    return report
