"""The facts each layer type holds once (exporters/layers), checked against independent derivations."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import toolchain
from exporters import examples
from exporters import integer_model as im
from exporters.bounds import signed_width
from exporters.errors import ModelError
from exporters.grid import Grid, quantize_host
from exporters.layers import grouped_input_channels
from toolchain.convert import to_integer_model
from toolchain.methods.costs import layer_costs
from toolchain.nn import QuantConv2d


def _add_model(rng, bits_a, bits_b, m, n):
    grids = [Grid(0.1, int(rng.integers(0, (1 << b))), b, False) for b in (bits_a, bits_b)]
    x = im.Input("x", (2,), Grid(0.1, 0, 8, True))
    one = im.Requant([1, 1], [0, 0], grids[0])
    a = im.Linear("a", "x", np.eye(2, dtype=np.int64), np.zeros(2), 8, np.ones(2), one)
    b = im.Linear("b", "x", np.eye(2, dtype=np.int64), np.zeros(2), 8, np.ones(2),
                  im.Requant([1, 1], [0, 0], grids[1]))
    add = im.Add("add", "a", "b", m, n, Grid(0.1, 0, 8, True))
    model = im.IntegerModel([x, a, b, add])
    model.validate()
    return model, add, grids


@pytest.mark.parametrize("seed", range(6))
def test_add_sum_bounds_equal_brute_force_enumeration(seed):
    rng = np.random.default_rng(seed)
    bits = [int(b) for b in rng.integers(2, 5, 2)]
    m = [int(v) for v in rng.integers(1, 1 << 16, 2)]
    model, add, (ga, gb) = _add_model(rng, *bits, m, 16)
    sums = [m[0] * (x1 - ga.zero_point) + m[1] * (x2 - gb.zero_point)
            for x1, x2 in itertools.product(range(ga.lo, ga.hi + 1), range(gb.lo, gb.hi + 1))]
    assert add.sum_bounds(model) == (min(sums), max(sums))
    # the HLS sum width holds every sum and every raw input, and is the narrowest that does
    values = sums + list(range(min(ga.lo, gb.lo), max(ga.hi, gb.hi) + 1))
    assert add.sum_bits(model) == signed_width(min(values), max(values))


@pytest.mark.parametrize("out_channels,in_channels,groups", [(4, 4, 1), (6, 4, 2), (4, 4, 4), (8, 4, 4), (6, 6, 3)])
def test_grouped_tap_map_equals_torch_conv2d_on_one_hot_inputs(out_channels, in_channels, groups):
    """Filter f reads input channel c iff a one-hot input on c reaches output f."""
    per_group = in_channels // groups
    channel = grouped_input_channels(out_channels, per_group, groups)
    weight = torch.ones(out_channels, per_group, 1, 1, dtype=torch.float64)
    for c in range(in_channels):
        x = torch.zeros(1, in_channels, 1, 1, dtype=torch.float64)
        x[0, c] = 1
        reached = F.conv2d(x, weight, groups=groups)[0, :, 0, 0] != 0
        assert reached.tolist() == (channel == c).any(axis=1).tolist()
    # the QuantNet side's view of the same map (toolchain/nn/mac.py) agrees entry by entry
    module = QuantConv2d(in_channels, out_channels, 1, groups=groups)
    for c in range(in_channels):
        onehot = torch.zeros(in_channels)
        onehot[c] = 1
        view = module.input_mask_view(onehot)[:, :, 0, 0].numpy()
        assert np.array_equal(view != 0, channel == c)


def test_conv_layer_reports_its_own_tap_map():
    model = examples.depthwise_separable(np.random.default_rng(0))
    depthwise = model.layer("conv2")
    view = depthwise.convolution(model)
    assert view.input_channel.ravel().tolist() == list(range(depthwise.out_channels))


def test_average_pooling_is_an_all_ones_depthwise_convolution():
    model = examples.residual(np.random.default_rng(0))
    pool = next(layer for layer in model if isinstance(layer, im.AvgPool))
    view = pool.convolution(model)
    c = model.shape(pool.input)[0]
    assert view.weight.shape == (c, 1, *pool.kernel) and (view.weight == 1).all() and view.groups == c
    assert pool.weight_rows(model).shape == (c, pool.kernel[0] * pool.kernel[1])


@pytest.mark.parametrize("name", ["cnn", "resnet", "dsconv", "mlp"])
def test_integer_model_macs_equal_the_quantnet_count(name):
    """Two representations, one definition: the QuantNet count mid-training (methods/costs.py)
    and the integer layers' ``work`` give the same MACs and BOPs."""
    torch.manual_seed(0)
    net = toolchain.build(name, input_shape=(2, 8, 8), width=0.5)
    net(torch.randn(8, 2, 8, 8))
    model = to_integer_model(net)
    work = {layer.name: layer.work(model) for layer in model if isinstance(layer, im.MacLayer)}
    for cost in layer_costs(net):
        assert (work[cost.name].macs, work[cost.name].bops) == (cost.macs, cost.bops)


def test_conv_macs_count_the_products_of_an_all_ones_convolution():
    layer_model = examples.cnn(np.random.default_rng(1))
    conv = layer_model.layer("conv1")
    shape = layer_model.shape(conv.input)
    ones = torch.ones(1, *shape, dtype=torch.float64)
    # padding 1 zero-pads, so count products over the padded input of ones
    padded = F.pad(ones, [conv.padding[1]] * 2 + [conv.padding[0]] * 2, value=1.0)
    products = F.conv2d(padded, torch.ones(conv.weight.shape, dtype=torch.float64), stride=conv.stride).sum()
    assert conv.work(layer_model).macs == int(products)


def test_host_quantization_matches_onnx_quantize_linear_on_ties():
    import onnxruntime as ort
    from onnx import TensorProto, helper

    grid = Grid(0.5, 0, 4, True)
    x = np.array([[0.25, 0.75, -0.25, -0.75, 1.25, 3.4, -9.0, 9.0]], np.float32)
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         helper.make_node("Clip", ["q", "lo", "hi"], ["y"])], "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 8])],
        [helper.make_tensor(name, dtype, [], [value]) for name, dtype, value in
         (("s", TensorProto.FLOAT, grid.scale), ("z", TensorProto.INT8, 0), ("lo", TensorProto.INT8, grid.lo),
          ("hi", TensorProto.INT8, grid.hi))])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    proto.ir_version = 10
    want = ort.InferenceSession(proto.SerializeToString()).run(None, {"x": x})[0]
    assert np.array_equal(quantize_host(x, grid), want.astype(np.int64))


def test_metadata_of_a_field_added_later_loads_with_its_default():
    model = examples.cnn(np.random.default_rng(0))
    conv = model.layer("conv1")
    d = conv.to_dict(model)
    arrays = {f"{conv.name}.weight": conv.weight.astype(np.int8), f"{conv.name}.bias": conv.bias.astype(np.int32)}
    del d["groups"]  # as if written before Conv had groups
    assert im.Conv.from_dict(d, arrays).groups == 1
    del d["weight_bits"]  # a field without a default cannot be guessed
    with pytest.raises(ModelError, match="layer 'conv1': Conv field 'weight_bits' is missing"):
        im.Conv.from_dict(d, arrays)


def test_only_computing_layers_have_kernels_costs_and_stats_rows():
    model = examples.cnn(np.random.default_rng(0))
    assert [layer.name for layer in model if not layer.computes] == ["input_q", "flatten5"]
