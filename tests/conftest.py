"""Shared test helpers: run an ONNX model in onnxruntime with every intermediate exposed."""

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import settings

from fpga_sim.verify import expose_all_tensors, run_onnxruntime

# CI runs more random models than a local run; both are deterministic per seed.
settings.register_profile("ci", max_examples=250, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def ort_session(proto: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def ort_trace(proto: onnx.ModelProto, feeds: dict) -> dict[str, np.ndarray]:
    """Every node output, computed by onnxruntime (fpga_sim.verify exposes them as outputs)."""
    return run_onnxruntime(expose_all_tensors(proto, {}), feeds)


def assert_identical(expected: np.ndarray, got: np.ndarray, what: str = "") -> None:
    """Bit-exactness: same dtype, same shape, every element equal."""
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} != {expected.dtype}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    diff = np.flatnonzero(got.ravel() != expected.ravel())
    assert diff.size == 0, (f"{what}: {diff.size}/{got.size} elements differ, first at {diff[0]}: "
                            f"{got.ravel()[diff[0]]} != {expected.ravel()[diff[0]]}")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
