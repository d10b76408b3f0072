"""The hls4ml estimate beyond the calibrated Dense/ReLU/softmax (Conv2d, pooling, Flatten, Add, the
DATAFLOW top; extrapolated, so these tests check its rules' consistency, not a report), and the
network it reads off the bridge's plan for an integer model (what --hls hls4ml writes)."""

import numpy as np
import pytest

from exporters import examples
from hls_templates.estimate import primitives as prim
from hls_templates.estimate.hls4ml_model import (AddLayer, Conv2dLayer, DenseLayer, FlattenLayer, Hls4mlEstimateError,
                                                 Hls4mlNetwork, PoolLayer, estimate_hls4ml)
from hls_templates.estimate.hls4ml_project import estimate_hls4ml_project, hls4ml_network
from hls_templates.hls4ml_bridge import Hls4mlUnsupportedError, power_of_two_copy
from hls_templates.estimate.primitives import FixedType

X, W, ACC, RES = FixedType(8, 4), FixedType(6, 1), FixedType(18, 8), FixedType(8, 4, False, "RND", "SAT")


def conv(in_shape, rng, reuse=1, name="conv"):
    weight = rng.integers(-31, 32, (3, 3, in_shape[2], 4)) / 32.0
    return Conv2dLayer(name, weight, np.zeros(4), in_shape, (1, 1), (0, 0), W, W, ACC, RES, reuse)


def test_a_conv_of_one_partition_is_the_dense_over_its_window():
    """One output pixel: one partition, no fill_buffer mux, the products and trees of a Dense whose
    inputs are the window's 3 x 3 x 2 taps."""
    rng = np.random.default_rng(0)
    c = conv((3, 3, 2), rng)
    dense = DenseLayer("dense", c.weight.reshape(18, 4), c.bias, W, W, ACC, RES)
    as_conv = estimate_hls4ml(Hls4mlNetwork(X, 18, (c,), input_shape=(3, 3, 2)))
    as_dense = estimate_hls4ml(Hls4mlNetwork(X, 18, (dense,)))
    assert as_conv.totals["top_style"] == as_dense.totals["top_style"] == "pipeline"
    for key in ("latency_cycles", "dsp", "lut", "ff"):
        assert as_conv.totals[key] == as_dense.totals[key], key


def test_a_multi_partition_conv_makes_a_dataflow_top_of_processes():
    """hls4ml's SetPipelineStyle: a convolution of more than one partition gives a DATAFLOW top. The
    conv process loops over its out_h * out_w = 16 partitions at II = R; each array between
    processes is a ping-pong pair of registers."""
    rng = np.random.default_rng(1)
    shape = (6, 6, 2)
    layers = lambda r: (conv(shape, np.random.default_rng(1), r), FlattenLayer("flat"),    # noqa: E731
                        DenseLayer("fc", rng.integers(-31, 32, (64, 3)) / 32.0, np.zeros(3), W, W, ACC, RES))
    fast = estimate_hls4ml(Hls4mlNetwork(X, 72, layers(1), input_shape=shape))
    slow = estimate_hls4ml(Hls4mlNetwork(X, 72, layers(2), input_shape=shape))
    assert fast.totals["top_style"] == "dataflow"
    conv_row = fast.layer("conv")
    assert conv_row["trips"] == 16 and conv_row["extrapolated"]
    assert conv_row["latency_cycles"] == 16 + conv_row["module_cycles"]          # trips * R + depth - 1
    assert slow.totals["latency_cycles"] - fast.totals["latency_cycles"] == 16   # 16 more iterations at R = 2
    assert conv_row["lut"] > 0 and any("extrapolated" in note for note in fast.notes)
    # ping-pong arrays: the conv's 4 x 4 x 4 outputs (8 bits) twice; the flatten is free and the fc the output
    assert fast.top["ff"] == 72 * 8 + 2 + 2 * 64 * 8                         # input register, valid, start


def test_pooling_and_a_residual_add_read_their_named_inputs():
    shape = (4, 4, 2)
    same = FixedType(8, 4, False)
    net = Hls4mlNetwork(same, 32, (PoolLayer("pool", "max", shape, (2, 2), (2, 2), same, same),
                                   PoolLayer("other", "max", shape, (2, 2), (2, 2), same, same, source="input"),
                                   AddLayer("add", ("pool", "other"), FixedType(9, 5), RES)), input_shape=shape)
    e = estimate_hls4ml(net)
    pool = e.layer("pool")
    step = prim.icmp_lut(8) + prim.select_lut(8)                     # x > y ? x : y on 8 bits
    assert pool["lut"] == 2 * 2 * 2 * 3 * step                        # 8 outputs, 3 compare-selects each
    add = e.layer("add")
    assert add["outputs"] == 8 and add["lut"] >= 8 * prim.add_lut(9)
    with pytest.raises(Hls4mlEstimateError, match="'late'"):
        estimate_hls4ml(Hls4mlNetwork(same, 32, (net.layers[0], AddLayer("add", ("pool", "late"), same, same)),
                                      input_shape=shape))


def test_the_network_of_an_integer_model_is_the_bridges_plan():
    model = power_of_two_copy(examples.residual(np.random.default_rng(3), power_of_two=True))
    net = hls4ml_network(model, {"clock_ns": 4.0})
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == ["Conv2dLayer", "Conv2dLayer", "Conv2dLayer", "AddLayer", "PoolLayer", "FlattenLayer", "DenseLayer"]
    add = net.layers[3]
    assert add.inputs == ("conv1", "conv3") and net.clock_ns == 4.0 and net.input_shape == (8, 8, 2)
    e = estimate_hls4ml_project(model, {"clock_ns": 4.0})
    assert e.totals["top_style"] == "dataflow" and e.totals["latency_cycles"] > 0
    assert {row["name"] for row in e.layers} >= {layer.name for layer in model.layers if layer.computes}


def test_a_model_the_bridge_refuses_is_refused_here_too():
    with pytest.raises(Hls4mlUnsupportedError, match="depthwise"):
        hls4ml_network(power_of_two_copy(examples.depthwise_separable(np.random.default_rng(4), power_of_two=True)))
