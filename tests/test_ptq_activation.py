"""Post-training quantization of activations and clamps from a ``.pt2``: what each ATen op
becomes (fused clamp or lookup), and the refusals that name the node and the alternative."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from exporters import integer_model as im
from toolchain.convert import to_integer_model
from toolchain.nn import MaxPool2d, QuantActivation, QuantConv2d
from toolchain.ptq import PtqError, quantize_exported

SHAPE = (2, 6, 6)


class Net(nn.Module):
    """conv -> ``act`` -> conv -> global pool -> linear."""

    def __init__(self, act, pool: bool = False):
        super().__init__()
        self.act, self.pool = act, pool
        self.c1, self.c2, self.fc = nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.Linear(4, 3)

    def forward(self, x):
        y = self.c1(x)
        y = self.act(F.max_pool2d(y, 2) if self.pool else y)
        return self.fc(self.c2(y).mean((2, 3)))


def quantize(act, pool=False):
    torch.manual_seed(0)
    program = torch.export.export(Net(act, pool).eval(), (torch.randn(2, *SHAPE),))
    return quantize_exported(program, torch.randn(64, *SHAPE) * 2)


@pytest.mark.parametrize("act, clamp", [
    (F.relu6, [0.0, 6.0]), (nn.ReLU6(), [0.0, 6.0]), (F.hardtanh, [-1.0, 1.0]),
    (lambda x: F.hardtanh(x, -2.0, 0.5), [-2.0, 0.5]), (lambda x: torch.clamp(x, 0, 6), [0.0, 6.0]),
    (lambda x: torch.clamp(x, min=0.0), [0.0, None]), (lambda x: torch.clamp_max(x, 1.5), [None, 1.5]),
    (lambda x: torch.clamp(F.relu6(x), -1, 4), [0.0, 4.0]),
], ids=["relu6", "ReLU6", "hardtanh", "hardtanh-2,0.5", "clamp0,6", "clamp_min", "clamp_max", "two_clamps"])
def test_clamps_around_zero_fuse_into_the_conv(act, clamp):
    model = quantize(act)
    assert model.layers["conv2d"].clamp is not None and list(model.layers["conv2d"].clamp) == clamp
    assert not any(isinstance(m, QuantActivation) for m in model.layers.values())
    assert to_integer_model(model).layers[1].requant.clamp is not None


def test_a_clamp_fuses_through_a_max_pool():
    model = quantize(F.relu6, pool=True)
    assert list(model.layers["conv2d"].clamp) == [0.0, 6.0] and isinstance(model.layers["max_pool2d"], MaxPool2d)


@pytest.mark.parametrize("act, bounds", [(lambda x: torch.clamp(x, 0.5, 2.0), {"min": 0.5, "max": 2.0}),
                                         (lambda x: F.hardtanh(x, -3.0, -1.0), {"min": -3.0, "max": -1.0})])
def test_a_clamp_away_from_zero_is_a_lookup(act, bounds):
    model = quantize(act)
    layer = model.layers["clamp" if "clamp" in model.layers else "hardtanh"]
    assert isinstance(layer, QuantActivation) and layer.function == "clamp" and layer.params == bounds


@pytest.mark.parametrize("act, function, params", [
    (torch.sigmoid, "sigmoid", {}), (torch.tanh, "tanh", {}), (F.hardsigmoid, "hardsigmoid", {}),
    (F.hardswish, "hardswish", {}), (F.silu, "silu", {}), (F.gelu, "gelu", {"approximate": "none"}),
    (lambda x: F.gelu(x, approximate="tanh"), "gelu", {"approximate": "tanh"}),
    (lambda x: F.elu(x, 0.5), "elu", {"alpha": 0.5, "scale": 1.0, "input_scale": 1.0}), (F.selu, "selu", {}),
    (lambda x: F.celu(x, 0.7), "celu", {"alpha": 0.7}),
    (lambda x: F.leaky_relu(x, 0.2), "leaky_relu", {"negative_slope": 0.2}),
    (lambda x: F.softplus(x, 2.0), "softplus", {"beta": 2.0, "threshold": 20.0}), (F.mish, "mish", {}),
    (F.logsigmoid, "logsigmoid", {}),
])
def test_activations_become_lookups(act, function, params):
    model = quantize(act)
    (layer,) = [m for m in model.layers.values() if isinstance(m, QuantActivation)]
    assert (layer.function, layer.params) == (function, params)
    assert model.ptq_info["float_program_vs_fake_quant_top1_agreement"] >= 0.9
    integer = to_integer_model(model)
    assert sum(isinstance(layer, im.Lookup) for layer in integer.layers) == 1
    assert isinstance(model.layers["conv2d"], QuantConv2d) and model.layers["conv2d"].clamp is None


@pytest.mark.parametrize("act, message", [
    (lambda x: F.softmax(x, 1), "node 'softmax' (softmax): not exported; the integer logits' argmax equals softmax's"),
    (lambda x: F.log_softmax(x, 1), "node 'log_softmax' (log_softmax): not exported; the integer logits' argmax "
                                    "equals log_softmax's"),
])
def test_softmax_is_refused_with_the_alternative(act, message):
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return act(self.fc(x))

    program = torch.export.export(Head().eval(), (torch.randn(2, 4),))
    with pytest.raises(PtqError) as err:
        quantize_exported(program, torch.randn(8, 4))
    assert str(err.value).startswith(message)


def test_decomposed_hardswish_is_refused_naming_the_cure():
    program = torch.export.export(Net(F.hardswish).eval(), (torch.randn(2, *SHAPE),)).run_decompositions()
    with pytest.raises(PtqError, match=r"\(mul\): mul of two activations is not supported.*before decompositions"):
        quantize_exported(program, torch.randn(8, *SHAPE))


def test_an_activation_can_be_the_output():
    class Out(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return torch.tanh(self.fc(x))

    model = quantize_exported(torch.export.export(Out().eval(), (torch.randn(2, 4),)), torch.randn(32, 4))
    assert model.layers["tanh"].signed_output and model.layers["tanh"].act_bits == 8
    assert to_integer_model(model).output.out.signed
