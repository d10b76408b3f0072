"""Shared helpers for the simulator tests (and tests of the helpers themselves).

Other ``test_sim_*`` files import from here (``tests`` is a package). Expectations in these tests come
from onnxruntime or from independent, hand-written references (``reference_conv``),
never from the simulator itself.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import onnx
import onnxruntime
from hypothesis import strategies as st
from onnx import helper, numpy_helper

from fpga_sim import Simulator
from fpga_sim.numeric import NUMPY_TO_ONNX

OPSET = 21


def value_info(name: str, dtype, shape: Sequence[int | str | None] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, NUMPY_TO_ONNX[np.dtype(dtype)], shape)


def one_node_model(op_type: str, inputs: Mapping[str, np.ndarray | None], output_dtype,
                   constants: Sequence[str] = (), attrs: Mapping | None = None,
                   symbolic_batch: bool = False) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """A model holding one node, as onnx's backend tests build them.

    ``inputs`` maps input names (in order) to example arrays; ``None`` leaves an
    optional input out. Names in ``constants`` become initializers, the others
    graph inputs. Returns the model and the feeds for the graph inputs.
    """
    names = list(inputs)
    while names and inputs[names[-1]] is None:
        names.pop()
    node = helper.make_node(op_type, [n if inputs[n] is not None else "" for n in names], ["y"],
                            name=f"{op_type.lower()}_node", **(attrs or {}))
    graph_inputs, initializers, feeds = [], [], {}
    for name in names:
        array = inputs[name]
        if array is None:
            continue
        if name in constants:
            initializers.append(numpy_helper.from_array(np.asarray(array), name))
        else:
            shape = list(array.shape)
            if symbolic_batch and shape:
                shape[0] = "N"
            graph_inputs.append(value_info(name, array.dtype, shape))
            feeds[name] = array
    graph = helper.make_graph([node], "one_node", graph_inputs, [value_info("y", output_dtype, None)],
                              initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10
    return model, feeds


def run_onnxruntime(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    return session.run(None, dict(feeds))


def assert_identical(actual: np.ndarray, expected: np.ndarray) -> None:
    """Same dtype, same shape, every element equal (NaN equal to NaN)."""
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert np.array_equal(actual, expected, equal_nan=actual.dtype.kind == "f"), (actual, expected)


def assert_matches_onnxruntime(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
    """Run both; assert identical outputs; return the simulator's output."""
    (expected,) = run_onnxruntime(model, feeds)
    (actual,) = Simulator(model).run(None, feeds)
    assert_identical(actual, expected)
    return actual


def int_values(dtype) -> st.SearchStrategy[int]:
    """Hypothesis integers of ``dtype``, drawing the extremes (and 0) often."""
    info = np.iinfo(dtype)
    return st.one_of(st.sampled_from([int(info.min), int(info.max), 0]), st.integers(int(info.min), int(info.max)))


def reference_conv(x: np.ndarray, w: np.ndarray, x_zp: int, w_zp: np.ndarray, group: int,
                   pads: Sequence[int], strides: Sequence[int], dilations: Sequence[int]) -> np.ndarray:
    """Direct-loop ConvInteger in Python ints (an independent oracle), wrapped to int32.

    ``w_zp`` has one entry per output channel. Padded taps are skipped (they
    hold x_zp, so they contribute 0).
    """
    n, c, h, wd = x.shape
    out_c, c_g, k_h, k_w = w.shape
    pad_t, pad_l, pad_b, pad_r = pads
    out_h = (h + pad_t + pad_b - dilations[0] * (k_h - 1) - 1) // strides[0] + 1
    out_w = (wd + pad_l + pad_r - dilations[1] * (k_w - 1) - 1) // strides[1] + 1
    xs = x.astype(np.int64) - x_zp
    ws = w.astype(np.int64) - np.asarray(w_zp, np.int64).reshape(-1, 1, 1, 1)
    out = np.zeros((n, out_c, out_h, out_w), np.int64)
    per_group = out_c // group
    for o in range(out_c):
        g = o // per_group
        for oy in range(out_h):
            for ox in range(out_w):
                total = np.zeros(n, np.int64)
                for ci in range(c_g):
                    for i in range(k_h):
                        y = oy * strides[0] - pad_t + i * dilations[0]
                        if not 0 <= y < h:
                            continue
                        for j in range(k_w):
                            xx = ox * strides[1] - pad_l + j * dilations[1]
                            if 0 <= xx < wd:
                                total += xs[:, g * c_g + ci, y, xx] * ws[o, ci, i, j]
                out[:, o, oy, ox] = total
    return out.astype(np.int32)


# -- tests of the helpers ---------------------------------------------------------


def test_reference_conv_hand_computed():
    # x = [[1, 2], [3, 4]] (zero point 1), w = 2x2 of ones (zero point 0), pad 1 on top/left only:
    # centred x = [[0, 1], [2, 3]]; outputs are sums of the 2x2 windows of the padded grid.
    x = np.array([[[[1, 2], [3, 4]]]], np.uint8)
    w = np.ones((1, 1, 2, 2), np.int8)
    got = reference_conv(x, w, 1, np.array([0]), 1, (1, 1, 0, 0), (1, 1), (1, 1))
    assert got.tolist() == [[[[0, 1], [2, 6]]]]


def test_reference_conv_weight_zero_point_and_group():
    x = np.array([[[[5]], [[7]]]], np.uint8)  # two channels, 1x1
    w = np.array([[[[3]]], [[[4]]]], np.int8)  # depthwise: one 1x1 filter per channel
    got = reference_conv(x, w, 2, np.array([1, -1]), 2, (0, 0, 0, 0), (1, 1), (1, 1))
    assert got.tolist() == [[[[(5 - 2) * (3 - 1)]], [[(7 - 2) * (4 + 1)]]]]


def test_one_node_model_matches_onnxruntime_for_identity():
    model, feeds = one_node_model("Identity", {"x": np.arange(6, dtype=np.int64).reshape(2, 3)}, np.int64)
    out = assert_matches_onnxruntime(model, feeds)
    assert out.tolist() == [[0, 1, 2], [3, 4, 5]]
