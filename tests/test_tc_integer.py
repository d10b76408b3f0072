"""Torch integer mode == the reference simulator (and onnxruntime), every element, every layer."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import toolchain
from exporters import integer_model as im
from exporters.requant import requantize as numpy_requantize
from toolchain import nn as qnn
from toolchain.integer_mode import requantize, run_integer

from tests.test_tc_common import ORT_EXACT, SHAPE, onnxruntime_output, qat, simulate, synthetic_batch


@pytest.fixture(scope="module", params=toolchain.MODELS)
def trained(request):
    torch.manual_seed(0)
    return qat(toolchain.build(request.param, input_shape=SHAPE), steps=4)


def test_integer_mode_equals_simulator_every_element(trained):
    x, _ = synthetic_batch(96, seed=7)
    x = x * 1.7  # some inputs saturate the input grid
    integer_model = toolchain.to_integer_model(trained)
    ours = run_integer(integer_model, x)
    sim = simulate(integer_model, x)
    assert sim.dtype == np.int8 and ours.shape == sim.shape
    assert np.array_equal(ours.numpy(), sim)
    if ORT_EXACT:
        assert np.array_equal(ours.numpy(), onnxruntime_output(integer_model, x))


def test_every_intermediate_layer_equals_simulator(trained):
    x, _ = synthetic_batch(8, seed=8)
    integer_model = toolchain.to_integer_model(trained)
    ours = run_integer(integer_model, x, intermediate=True)
    sim = simulate(integer_model, x, every_layer=True)
    for name, value in ours.items():
        assert np.array_equal(value.numpy(), sim[name]), f"first divergence at layer '{name}'"


def test_float_fake_quant_agreement_is_reported(trained):
    x, _ = synthetic_batch(128, seed=9)
    rate = toolchain.agreement(trained, x)
    print(f"{trained.name}: float fake-quant vs integer top-1 agreement {rate:.3f}")
    assert 0.9 <= rate <= 1.0


def test_input_ties_round_half_to_even_like_quantize_linear():
    torch.manual_seed(1)
    model = qat(toolchain.build("mlp", input_shape=SHAPE, hidden=(8,)), steps=2)
    integer_model = toolchain.to_integer_model(model)
    scale = torch.tensor(integer_model.input.grid.scale, dtype=torch.float32)
    k = torch.randint(-140, 140, (16, *SHAPE)).float()
    x = (k + 0.5) * scale  # many exact .5 ties of x / s
    q_in = run_integer(integer_model, x, intermediate=True)[integer_model.input.name]
    assert np.array_equal(q_in.numpy(), simulate(integer_model, x, every_layer=True)[integer_model.input.name])
    assert np.array_equal(run_integer(integer_model, x).numpy(), simulate(integer_model, x))


@settings(max_examples=6, deadline=None)
@given(wbits=st.integers(2, 8), abits=st.integers(2, 8), seed=st.integers(0, 100))
def test_any_bit_widths_stay_bit_exact(wbits, abits, seed):
    torch.manual_seed(seed)
    model = qat(toolchain.build("resnet", input_shape=(1, 8, 8), weight_bits=wbits, act_bits=abits,
                                output_bits=abits), steps=2, seed=seed, shape=(1, 8, 8))
    integer_model = toolchain.to_integer_model(model)
    assert all(layer.weight_bits == wbits for layer in integer_model if isinstance(layer, im.MacLayer))
    x, _ = synthetic_batch(16, seed, (1, 8, 8))
    assert np.array_equal(run_integer(integer_model, x).numpy(), simulate(integer_model, x))


def test_standalone_relu_is_fused_into_requantization():
    torch.manual_seed(2)
    net = qnn.QuantNet([
        ("x", qnn.QuantInput()),
        ("conv", qnn.QuantConv2d(1, 4, 3, padding=1)),
        ("relu", qnn.QuantReLU()),
        ("pool", qnn.AvgPool2d(2, padding=1)),
        ("flat", qnn.Flatten()),
        ("fc", qnn.QuantLinear(4 * 7 * 7, 10, signed_output=True)),
    ], input_shape=SHAPE)
    qat(net, steps=2)
    integer_model = toolchain.to_integer_model(net)
    assert [layer.name for layer in integer_model] == ["x", "relu", "pool", "flat", "fc"]
    assert integer_model.layer("relu").requant.relu
    x, _ = synthetic_batch(16, seed=3)
    assert np.array_equal(run_integer(integer_model, x).numpy(), simulate(integer_model, x))
    # the fused clamp equals the float model's ReLU on the grid: outputs are >= the zero point
    relu_out = run_integer(integer_model, x, intermediate=True)["relu"]
    assert int(relu_out.min()) >= integer_model.grid("relu").zero_point


@settings(max_examples=30, deadline=None)
@given(acc=st.lists(st.integers(-(2 ** 31), 2 ** 31 - 1), min_size=1, max_size=8),
       multiplier=st.integers(1, 2 ** 16 - 1), shift=st.integers(0, 60), zero_point=st.integers(0, 255))
def test_torch_requantize_equals_the_numpy_rule(acc, multiplier, shift, zero_point):
    from exporters.grid import Grid

    rq = im.Requant([multiplier], [shift], Grid(0.1, zero_point, 8, False))
    ours = requantize(torch.tensor(acc).reshape(-1, 1), rq).reshape(-1)
    expected = numpy_requantize(np.array(acc), multiplier, shift, zero_point, 0, 255)
    assert ours.tolist() == expected.tolist()


def test_layer_zoo_padding_strides_groups_and_signed_add_output():
    torch.manual_seed(4)
    net = qnn.QuantNet([
        ("x", qnn.QuantInput(bits=6)),
        ("conv", qnn.QuantConv2d(1, 4, 3, stride=2, padding=0, weight_bits=3, act_bits=5)),
        ("pool", qnn.MaxPool2d(3, stride=2, padding=1)),
        ("grouped", qnn.QuantConv2d(4, 6, 1, groups=2, relu=True)),
        ("gap", qnn.GlobalAvgPool(act_bits=4)),
        ("fc_a", qnn.QuantLinear(6, 10, bn=True, weight_bits=2)),
        ("fc_b", qnn.QuantLinear(6, 10, relu=True), ["gap"]),
        ("out", qnn.QuantAdd(act_bits=8, signed_output=True), ["fc_a", "fc_b"]),
    ], input_shape=SHAPE)
    qat(net, steps=3)
    integer_model = toolchain.to_integer_model(net)
    x, _ = synthetic_batch(32, seed=12)
    ours = run_integer(integer_model, x, intermediate=True)
    sim = simulate(integer_model, x, every_layer=True)
    for name, value in ours.items():
        assert np.array_equal(value.numpy(), sim[name]), name
    from toolchain.pruning import channel_groups

    fixed = {g.name: g.prunable for g in channel_groups(net, include_fixed=True)}
    assert fixed["conv"] is False and fixed["grouped"] is False  # grouped conv couples channels unevenly
