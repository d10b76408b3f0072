"""Simulator as a whole: loading, validation, feeds, run/trace, memory, a full CNN."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.test_sim_support import assert_identical, one_node_model, run_onnxruntime, value_info

import fpga_sim
from fpga_sim import (
    SUPPORTED_OPS,
    FeedError,
    ModelLoadError,
    Simulator,
    SimulatorError,
    UnsupportedModelError,
    UnsupportedNodeError,
)
from fpga_sim.simulator import Simulator as SimulatorClass

REPO = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("sim_speed", REPO / "benchmarks" / "sim_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chain_model() -> onnx.ModelProto:
    """x(uint8) -> Cast(int32) -> Add(c) -> Mul(c) -> Cast(uint8) = y, plus an Identity of x as z."""
    nodes = [
        helper.make_node("Cast", ["x"], ["x32"], name="cast_in", to=TensorProto.INT32),
        helper.make_node("Add", ["x32", "c"], ["sum"], name="add"),
        helper.make_node("Mul", ["sum", "c"], ["prod"], name="mul"),
        helper.make_node("Cast", ["prod"], ["y"], name="cast_out", to=TensorProto.UINT8),
        helper.make_node("Identity", ["x"], ["z"], name="ident"),
    ]
    graph = helper.make_graph(nodes, "chain", [value_info("x", np.uint8, ["N", 4])],
                              [value_info("y", np.uint8, ["N", 4]), value_info("z", np.uint8, ["N", 4])],
                              initializer=[numpy_helper.from_array(np.array([3], np.int32), "c")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model


# -- public API -------------------------------------------------------------------


def test_supported_ops_come_from_the_registration_table():
    assert SUPPORTED_OPS == {
        "QuantizeLinear", "DequantizeLinear", "ConvInteger", "MatMulInteger", "Cast", "Add", "Sub", "Mul",
        "BitShift", "Clip", "MaxPool", "Flatten", "Reshape", "Identity", "Concat", "Resize", "Gather",
    }
    assert fpga_sim.Simulator is SimulatorClass
    assert issubclass(FeedError, SimulatorError) and issubclass(UnsupportedNodeError, SimulatorError)


def test_module_docstring_example_runs():
    import doctest

    assert doctest.testmod(fpga_sim).failed == 0


def test_get_inputs_and_outputs():
    sim = Simulator(chain_model())
    (x,) = sim.get_inputs()
    assert (x.name, x.dtype, x.shape) == ("x", np.dtype(np.uint8), ("N", 4))
    assert [(o.name, o.dtype) for o in sim.get_outputs()] == [("y", np.uint8), ("z", np.uint8)]


def test_run_matches_onnxruntime_and_named_outputs():
    model = chain_model()
    feeds = {"x": np.array([[0, 1, 100, 255]], np.uint8)}
    sim = Simulator(model)
    for got, expected in zip(sim.run(None, feeds), run_onnxruntime(model, feeds)):
        assert_identical(got, expected)
    (prod,) = sim.run(["prod"], feeds)  # an intermediate can be asked for by name
    assert prod.tolist() == [[9, 12, 309, 774]]  # (x + 3) * 3, by hand
    with pytest.raises(SimulatorError, match="unknown output 'nope'"):
        sim.run(["nope"], feeds)


def test_trace_returns_every_node_output_in_order():
    feeds = {"x": np.array([[1, 2, 3, 4]], np.uint8)}
    traced = Simulator(chain_model()).trace(feeds)
    assert list(traced) == ["x32", "sum", "prod", "y", "z"]
    assert traced["sum"].tolist() == [[4, 5, 6, 7]] and traced["sum"].dtype == np.int32
    assert traced["y"].tolist() == [[12, 15, 18, 21]]


def test_run_releases_intermediates_after_their_last_consumer(monkeypatch):
    seen = []
    original = SimulatorClass._execute

    def spy(node, env, out=None):
        seen.append((node.name, set(env)))
        original(node, env, out)

    monkeypatch.setattr(SimulatorClass, "_execute", staticmethod(spy))
    Simulator(chain_model()).run(None, {"x": np.zeros((2, 4), np.uint8)})
    alive = dict(seen)
    assert "x32" not in alive["mul"]  # consumed by add only
    assert "sum" not in alive["cast_out"]  # consumed by mul only
    assert "prod" in alive["cast_out"]


def test_run_never_writes_into_feeds_or_initializers():
    # x is viewed by Reshape (a view of the feed) and then added in place-able position.
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
        helper.make_node("Add", ["r", "c"], ["y"], name="add"),
        helper.make_node("Add", ["c2", "r"], ["w"], name="add2"),
        helper.make_node("Identity", ["c2"], ["c2v"], name="ident"),
        helper.make_node("Mul", ["c2v", "c2v"], ["v"], name="mul"),
    ]
    graph = helper.make_graph(nodes, "alias", [value_info("x", np.int64, [4])],
                              [value_info("y", np.int64, [2, 2]), value_info("w", np.int64, [2, 2]),
                               value_info("v", np.int64, [2, 2])],
                              initializer=[numpy_helper.from_array(np.array([2, 2], np.int64), "shape"),
                                           numpy_helper.from_array(np.array(10, np.int64), "c"),
                                           numpy_helper.from_array(np.full((2, 2), 5, np.int64), "c2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    x = np.array([1, 2, 3, 4], np.int64)
    sim = Simulator(model)
    for _ in range(2):
        y, w, v = sim.run(None, {"x": x})
        assert x.tolist() == [1, 2, 3, 4]
        assert y.tolist() == [[11, 12], [13, 14]] and w.tolist() == [[6, 7], [8, 9]] and v.tolist() == [[25] * 2] * 2
    assert sim.graph.initializers["c2"].tolist() == [[5, 5], [5, 5]]


def test_benchmark_cnn_matches_onnxruntime_on_every_intermediate():
    model = load_benchmark().build_cnn(seed=7, channels=(1, 4, 8, 8))
    feeds = {"image": np.random.default_rng(2).normal(0, 0.7, (3, 1, 28, 28)).astype(np.float32)}
    from fpga_sim.verify import expose_all_tensors

    sim = Simulator(model)
    traced = sim.trace(feeds)
    exposed = expose_all_tensors(model, {k: v.dtype for k, v in traced.items()})
    session_outputs = [o.name for o in exposed.graph.output]
    for name, expected in zip(session_outputs, run_onnxruntime(exposed, feeds)):
        assert_identical(traced[name], expected)
    (out,) = sim.run(None, feeds)
    assert_identical(out, traced[sim.get_outputs()[0].name])
    assert len(np.unique(out)) > 20  # the requantization spreads values over the grid


# -- load-time refusals -----------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError, match="no such file"):
        Simulator(tmp_path / "absent.onnx")


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a protobuf, just some text\n" * 20)
    with pytest.raises(ModelLoadError, match=str(path)):
        Simulator(path)


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_truncated_file(tmp_path, fraction):
    data = load_benchmark().build_cnn(channels=(1, 2, 2, 2)).SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(SimulatorError, match="cut.onnx|never produced|no outputs"):
        Simulator(path)


def test_unsupported_op_names_node_and_type():
    model, _ = one_node_model("Relu", {"x": np.zeros(3, np.float32)}, np.float32)
    with pytest.raises(UnsupportedNodeError, match=r"node 'relu_node' \(Relu\): unsupported op type"):
        Simulator(model)


def test_unsupported_opset():
    model, _ = one_node_model("Identity", {"x": np.zeros(3, np.float32)}, np.float32)
    model.opset_import[0].version = 11
    with pytest.raises(UnsupportedModelError, match="opset 11"):
        Simulator(model)


def test_unknown_input_and_cycle():
    node = helper.make_node("Identity", ["ghost"], ["y"], name="orphan")
    graph = helper.make_graph([node], "g", [], [value_info("y", np.int8, [1])])
    with pytest.raises(UnsupportedModelError, match="'ghost' is never produced"):
        Simulator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    nodes = [helper.make_node("Identity", ["b"], ["a"], name="n1"),
             helper.make_node("Identity", ["a"], ["b"], name="n2")]
    graph = helper.make_graph(nodes, "g", [], [value_info("a", np.int8, [1])])
    with pytest.raises(UnsupportedModelError, match="cycle"):
        Simulator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))


def test_nodes_out_of_order_are_sorted():
    model = chain_model()
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    sim = Simulator(model)
    assert [n.name for n in sim.nodes] == ["ident", "cast_in", "add", "mul", "cast_out"]
    feeds = {"x": np.array([[7, 8, 9, 10]], np.uint8)}
    assert_identical(sim.run(None, feeds)[0], run_onnxruntime(model, feeds)[0])


# -- feeds ------------------------------------------------------------------------


@pytest.mark.parametrize("feeds, match", [
    ({}, "missing feed for input 'x' \\(expected uint8 \\[N, 4\\]\\)"),
    ({"x": np.zeros((1, 4), np.uint8), "extra": np.zeros(1)}, "unexpected feed 'extra'"),
    ({"x": np.zeros((1, 4), np.int8)}, "input 'x': expected dtype uint8, got int8"),
    ({"x": np.zeros((1, 5), np.uint8)}, r"input 'x': expected shape \[N, 4\], got \[1, 5\]"),
    ({"x": np.zeros((4,), np.uint8)}, r"input 'x': expected shape \[N, 4\], got \[4\]"),
    ({"x": [[1, 2, 3, 4]]}, "expected a numpy array"),
])
def test_bad_feeds(feeds, match):
    with pytest.raises(FeedError, match=match):
        Simulator(chain_model()).run(None, feeds)


def test_symbolic_dimension_accepts_any_size():
    sim = Simulator(chain_model())
    for batch in (0, 1, 5):
        y, _ = sim.run(None, {"x": np.zeros((batch, 4), np.uint8)})
        assert y.shape == (batch, 4)


def test_an_input_without_a_declared_shape_runs_like_onnxruntime():
    """A graph input may leave its shape out (ONNX allows it): the conv's rank comes from the weight,
    and the run equals onnxruntime's on every element (it was a TypeError in prepare)."""
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (1, 2, 5, 5), dtype=np.int8)
    model, feeds = one_node_model("ConvInteger", {"x": x, "w": rng.integers(-8, 8, (3, 2, 3, 3), dtype=np.int8)},
                                  np.int32, constants=("w",))
    del model.graph.input[0].type.tensor_type.shape.dim[:]
    model.graph.input[0].type.tensor_type.ClearField("shape")
    (expected,) = run_onnxruntime(model, feeds)
    (actual,) = Simulator(model).run(None, feeds)
    assert_identical(actual, expected)
