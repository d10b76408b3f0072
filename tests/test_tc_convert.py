"""Conversion: supported modules only, BN folding, the arithmetic of M/n, bias and scales."""

import numpy as np
import pytest
import torch
from torch import nn

import toolchain
from exporters import integer_model as im
from exporters.errors import FoldlineError, ModelError
from exporters.requant import quantize_multiplier
from toolchain import nn as qnn
from toolchain.quant import CalibrationError

from tests.test_tc_common import SHAPE, qat, synthetic_batch


def test_unsupported_module_error_names_path_and_type():
    net = toolchain.build("cnn", input_shape=SHAPE)
    net.layers["conv2"] = nn.Conv2d(16, 32, 3, padding=1)
    with pytest.raises(toolchain.UnsupportedModuleError) as err:
        toolchain.to_integer_model(net)
    message = str(err.value)
    assert "layers.conv2" in message and "Conv2d" in message and "QuantLinear" in message
    assert "\n" not in message and isinstance(err.value, FoldlineError)


def test_plain_torch_model_is_refused_naming_the_first_unsupported_module():
    model = nn.Sequential(qnn.QuantInput(), nn.Sequential(nn.Flatten(), nn.Dropout()))
    with pytest.raises(toolchain.UnsupportedModuleError, match=r"module '1\.0' \(torch\.nn\.modules\.flatten\.Flatten\)"):
        toolchain.to_integer_model(model)


def test_uncalibrated_or_unquantized_models_are_refused():
    net = toolchain.build("mlp", input_shape=SHAPE)
    with pytest.raises(CalibrationError, match="train mode"):
        toolchain.to_integer_model(net)
    qat(net, steps=1)
    qnn.set_quantization(net, False)
    with pytest.raises(CalibrationError, match="disabled"):
        toolchain.to_integer_model(net)


def test_relu_that_cannot_be_fused_is_refused():
    net = qnn.QuantNet([("x", qnn.QuantInput()), ("fc", qnn.QuantLinear(4, 4)), ("relu", qnn.QuantReLU()),
                        ("add", qnn.QuantAdd(signed_output=True), ["fc", "relu"])], input_shape=(4,))
    net(torch.randn(8, 4))
    with pytest.raises(ModelError, match="'fc' also feeds"):
        toolchain.to_integer_model(net)


def test_requantization_parameters_follow_the_contract():
    torch.manual_seed(0)
    net = qat(toolchain.build("cnn", input_shape=SHAPE), steps=3)
    integer_model = toolchain.to_integer_model(net)
    metas = net.eval().trace(torch.zeros(1, *SHAPE))
    conv = integer_model.layer("conv2")
    s_x, s_y = float(metas["pool1"].scale), float(metas["conv2"].scale)
    for c in range(conv.out_channels):
        assert (int(conv.requant.multiplier[c]), int(conv.requant.shift[c])) == quantize_multiplier(
            s_x * conv.weight_scale[c] / s_y)
    # bias = round(b_folded / (s_x * s_w)), with b_folded from the running BN statistics
    layer = net.layers["conv2"]
    bn = layer.bn
    b_folded = (-bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps) + bn.bias).double()
    expected = torch.round(b_folded.detach() / (s_x * torch.tensor(conv.weight_scale)))
    assert np.array_equal(conv.bias, expected.numpy().astype(np.int64))
    assert conv.requant.relu and integer_model.grid("conv2").zero_point == 0  # ReLU range starts at 0
    assert isinstance(integer_model.layer("pool1"), im.MaxPool)
    net.train()


def test_bn_folding_matches_conv_then_batchnorm_in_float():
    torch.manual_seed(0)
    layer = qnn.QuantConv2d(3, 5, 3, padding=1, bn=True)
    x = torch.randn(16, 3, 6, 6)
    with torch.no_grad():
        for _ in range(3):  # training updates BN running statistics like nn.BatchNorm2d
            layer.folded(None, x)
        reference = nn.BatchNorm2d(5)
        conv = nn.functional.conv2d(x, layer.weight, layer.bias, padding=1)
        for _ in range(3):
            reference.train()(conv)
        assert torch.allclose(layer.bn.running_mean, reference.running_mean, atol=1e-6)
        assert torch.allclose(layer.bn.running_var, reference.running_var, atol=1e-5)
        layer.eval()
        w, b = layer.folded()
        folded = nn.functional.conv2d(x, w, b, padding=1)
        assert torch.allclose(folded, reference.eval()(conv), atol=1e-5)


def test_quantizer_metadata_travels_to_the_integer_model():
    torch.manual_seed(1)
    net = qat(toolchain.build("resnet", input_shape=SHAPE, act_bits=6, weight_bits=5, output_bits=7), steps=2)
    integer_model = toolchain.to_integer_model(net)
    metas = net.eval().trace(synthetic_batch(4, 0)[0])
    for name, meta in metas.items():
        if name in {layer.name for layer in integer_model}:
            assert integer_model.grid(name) == meta.grid(), name
    assert integer_model.grid("head").bits == 7 and integer_model.grid("head").signed
    assert integer_model.grid("block1_add").bits == 6
    net.train()
