"""The QuantNet window layers: QuantConv1d / MaxPool1d / AvgPool1d, QuantConv2d's dilation, ceil mode and
count_include_pad — their float forward is torch's, their spec round-trips (older specs load with the
defaults), conversion keeps every field, and torch modules without a counterpart are refused by name."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import toolchain
from toolchain import nn as qnn
from toolchain.convert import UnsupportedModuleError, to_integer_model
from toolchain.integer_mode import run_integer

from tests.test_export_windows import LENGTH, time_series_quantnet
from tests.test_tc_common import qat


def test_1d_layers_compute_torchs_1d_functions_with_quantizers_off():
    torch.manual_seed(0)
    conv = qnn.QuantConv1d(2, 3, 5, stride=2, padding=3, dilation=2, groups=1)
    assert tuple(conv.weight.shape) == (3, 2, 5) and conv.config()["dilation"] == [2]
    x = torch.randn(4, 2, 17)
    qnn.set_quantization(conv, False)
    conv.eval()
    q = qnn.QuantInput()
    qnn.set_quantization(q, False)
    got = conv(q(x)).value
    torch.testing.assert_close(got, F.conv1d(x, conv.weight, conv.bias, 2, 3, 2))
    pooled = qnn.AvgPool1d(3, 2, 1, ceil_mode=True, count_include_pad=False)
    qnn.set_quantization(pooled, False)
    torch.testing.assert_close(pooled(q(x)).value, F.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False))
    torch.testing.assert_close(qnn.MaxPool1d(2, ceil_mode=True)(q(x)).value, F.max_pool1d(x, 2, ceil_mode=True))


def test_spec_and_checkpoint_round_trip_the_new_fields(tmp_path):
    torch.manual_seed(1)
    model = qat(time_series_quantnet(), steps=2, shape=(1, LENGTH), lr=0.01).eval()
    spec = model.spec()
    args = {d["name"]: d["args"] for d in spec["layers"]}
    assert args["c1"]["dilation"] == [2] and args["p1"]["ceil_mode"] is True
    assert args["p2"]["count_include_pad"] is False
    toolchain.save(model, tmp_path / "m.pt")
    again = toolchain.load(tmp_path / "m.pt")
    x = torch.randn(8, 1, LENGTH)
    assert torch.equal(run_integer(to_integer_model(model), x), run_integer(to_integer_model(again), x))
    layer = to_integer_model(again).layer("c1")
    assert layer.dilation == (2,) and layer.kernel == (5,)


def test_a_spec_written_before_the_fields_loads_with_their_defaults():
    net = qnn.QuantNet([("x", qnn.QuantInput()), ("c", qnn.QuantConv2d(1, 2, 3)), ("p", qnn.MaxPool2d(2)),
                        ("q", qnn.AvgPool2d(2)), ("g", qnn.GlobalAvgPool()),
                        ("fc", qnn.QuantLinear(2, 2, signed_output=True))], input_shape=(1, 9, 9))
    spec = net.spec()
    for d in spec["layers"]:
        for key in ("dilation", "ceil_mode", "count_include_pad", "signed_output"):
            if d["type"] != "QuantLinear":
                d["args"].pop(key, None)
    old = qnn.QuantNet.from_spec(spec)
    assert old.layers["c"].dilation == (1, 1) and old.layers["p"].ceil_mode is False
    assert old.layers["q"].count_include_pad is True and old.layers["g"].signed_output is False


@pytest.mark.parametrize("module, hint", [
    (nn.Conv1d(1, 2, 3), "use toolchain.nn.QuantConv1d"),
    (nn.ConvTranspose2d(1, 2, 2), "transposed convolution is not supported; use toolchain.nn.Upsample"),
    (nn.AvgPool1d(2), "use toolchain.nn.AvgPool1d"),
    (nn.Conv3d(1, 2, 1), "3-D convolution is not supported"),
])
def test_torch_modules_are_refused_with_the_nearest_alternative(module, hint):
    with pytest.raises(UnsupportedModuleError, match=hint):
        to_integer_model(nn.Sequential(module))
