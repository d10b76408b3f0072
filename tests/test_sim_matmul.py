"""MatMulInteger against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.test_sim_support import assert_matches_onnxruntime, int_values, one_node_model

from fpga_sim import Simulator, UnsupportedNodeError


def matmul_model(a, b, a_zp, b_zp, constants=("b", "a_zp", "b_zp")):
    return one_node_model("MatMulInteger", {"a": a, "b": b, "a_zp": a_zp, "b_zp": b_zp}, np.int32,
                          constants=constants)


@st.composite
def matmul_cases(draw):
    n, k, c = draw(st.integers(1, 8)), draw(st.integers(1, 40)), draw(st.integers(1, 8))
    a_dtype, b_dtype = draw(st.sampled_from([np.uint8, np.int8])), draw(st.sampled_from([np.uint8, np.int8]))
    a = draw(hnp.arrays(a_dtype, (n, k), elements=int_values(a_dtype)))
    b = draw(hnp.arrays(b_dtype, (k, c), elements=int_values(b_dtype)))
    a_zp = draw(st.one_of(st.none(), int_values(a_dtype).map(lambda v: np.array(v, a_dtype))))
    b_zp = draw(st.one_of(st.none(), int_values(b_dtype).map(lambda v: np.array(v, b_dtype)),
                          hnp.arrays(b_dtype, (c,), elements=int_values(b_dtype))))
    return a, b, a_zp, b_zp


@settings(deadline=None, max_examples=100)
@given(case=matmul_cases(), constants=st.sampled_from([("b", "a_zp", "b_zp"), ()]))
def test_matmul_integer_matches_onnxruntime(case, constants):
    model, feeds = matmul_model(*case, constants=constants)
    assert_matches_onnxruntime(model, feeds)


def test_matmul_integer_hand_computed():
    a = np.array([[5, 5, 5]], np.uint8)
    b = np.array([[1, 2], [1, 2], [1, 2]], np.int8)
    model, feeds = matmul_model(a, b, np.array(1, np.uint8), np.array([0, 3], np.int8))
    out = assert_matches_onnxruntime(model, feeds)
    assert out.tolist() == [[(5 - 1) * 1 * 3, (5 - 1) * (2 - 3) * 3]]


def test_matmul_integer_row_blocks_match_onnxruntime(monkeypatch):
    monkeypatch.setattr("fpga_sim.ops.matmul_integer.CHUNK_BYTES", 1)  # one row per block
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (7, 33), dtype=np.uint8)
    b = rng.integers(-128, 128, (33, 5), dtype=np.int8)
    model, feeds = matmul_model(a, b, np.array(255, np.uint8), np.array(-128, np.int8))
    assert_matches_onnxruntime(model, feeds)


def test_matmul_integer_per_row_a_zero_point_refused():
    model, _ = matmul_model(np.zeros((2, 3), np.uint8), np.zeros((3, 4), np.int8),
                            np.array([1, 2], np.uint8), None)
    with pytest.raises(UnsupportedNodeError, match="matmulinteger_node.*a_zero_point.*scalar"):
        Simulator(model)


def test_matmul_integer_batched_refused():
    model, _ = matmul_model(np.zeros((2, 2, 3), np.uint8), np.zeros((3, 4), np.int8), None, None)
    with pytest.raises(UnsupportedNodeError, match="2-D"):
        Simulator(model)
