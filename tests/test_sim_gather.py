"""Gather against onnxruntime on random single-node graphs (and hand-computed values)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.test_sim_elementwise import NUMERIC_TYPES, values
from tests.test_sim_support import assert_matches_onnxruntime, one_node_model, run_onnxruntime

from fpga_sim import NodeExecutionError, Simulator, UnsupportedNodeError


@settings(deadline=None, max_examples=120)
@given(data=st.data(), dtype=st.sampled_from(NUMERIC_TYPES), index_dtype=st.sampled_from([np.int32, np.int64]),
       data_shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
       index_shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
       constant=st.sampled_from([(), ("data",), ("indices",)]))
def test_gather_matches_onnxruntime(data, dtype, index_dtype, data_shape, index_shape, constant):
    axis = data.draw(st.integers(-len(data_shape), len(data_shape) - 1))
    size = data_shape[axis]
    table = data.draw(hnp.arrays(dtype, data_shape, elements=values(dtype)))
    indices = data.draw(hnp.arrays(index_dtype, index_shape, elements=st.integers(-size, size - 1)))
    model, feeds = one_node_model("Gather", {"data": table, "indices": indices}, dtype, constants=constant,
                                  attrs={"axis": axis})
    assert_matches_onnxruntime(model, feeds)


def test_gather_hand_computed_lookup():
    table = np.array([10, 20, 30, 40], np.uint8)
    idx = np.array([[3, 0], [-1, -4]], np.int64)
    model, feeds = one_node_model("Gather", {"table": table, "idx": idx}, np.uint8, constants=("table",))
    assert assert_matches_onnxruntime(model, feeds).tolist() == [[40, 10], [40, 10]]


@pytest.mark.parametrize("bad", [4, -5])
def test_gather_out_of_range_index_is_refused_like_onnxruntime(bad):
    table = np.arange(4, dtype=np.int8)
    idx = np.array([0, bad], np.int64)
    model, feeds = one_node_model("Gather", {"table": table, "idx": idx}, np.int8, constants=("table",))
    with pytest.raises(Exception):
        run_onnxruntime(model, feeds)
    with pytest.raises(NodeExecutionError, match=f"gather_node.*index {bad} is out of range"):
        Simulator(model).run(None, feeds)
    constant, _ = one_node_model("Gather", {"table": table, "idx": idx}, np.int8, constants=("table", "idx"))
    with pytest.raises(UnsupportedNodeError, match="out of range"):
        Simulator(constant)


def test_gather_axis_and_index_dtype_checked_at_load():
    table = np.zeros((2, 3), np.float32)
    model, _ = one_node_model("Gather", {"table": table, "idx": np.zeros(1, np.int64)}, np.float32,
                              constants=("table",), attrs={"axis": 2})
    with pytest.raises(UnsupportedNodeError, match="axis 2 out of range"):
        Simulator(model)
    model, _ = one_node_model("Gather", {"table": table, "idx": np.zeros(1, np.uint8)}, np.float32,
                              constants=("table",))
    with pytest.raises(UnsupportedNodeError, match="indices"):
        Simulator(model)
