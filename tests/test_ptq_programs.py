"""What post-training quantization of ordinary ``.pt2`` programs used to refuse (issue 8, each reproduced
first): input normalisation, a batch norm that does not follow a conv, squeeze after a global pool, a
global pool as the output, a ReLU after an average pool. Each tiny program is exported bit-exact
(every element of every check), and its mapping is checked: the QuantNet with its quantizers off
computes the float program's function (the folds are exact algebra), and the layers it was mapped
onto are the ones docs/toolchain.md says. Unsupported variants are refused naming the node and the
nearest supported alternative."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from toolchain.nn import set_quantization
from toolchain.ptq import PtqError, quantize_exported

from tests.test_tc_common import export_fpga_bit_exact

SHAPE = (2, 6, 6)
CLASSES = 3


class Program(nn.Module):
    """A network from a forward function, modules and constant buffers (export it in eval mode)."""

    def __init__(self, forward, modules=None, buffers=None) -> None:
        super().__init__()
        self.fn = forward
        for name, module in (modules or {}).items():
            setattr(self, name, module)
        for name, value in (buffers or {}).items():
            self.register_buffer(name, value)

    def forward(self, x):
        return self.fn(self, x)


def _conv(padding=1):
    return nn.Conv2d(2, 4, 3, padding=padding)


def _bn(channels):
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():  # statistics that are not the identity
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.3, 0.3)
    return bn


MEAN = torch.tensor([0.5, -0.2]).view(1, 2, 1, 1)
STD = torch.tensor([2.0, 0.5]).view(1, 2, 1, 1)

#: name: (program, the QuantNet layer types it maps onto)
PROGRAMS = {
    "normalised input, per tensor, folded into an unpadded conv": (
        Program(lambda s, x: s.fc(F.relu(s.c((x - 0.5) / 0.25)).flatten(1)),
                {"c": _conv(0), "fc": nn.Linear(64, CLASSES)}),
        ["QuantInput", "QuantConv2d", "Flatten", "QuantLinear"]),
    "normalised input, per channel, before a padded conv: an affine layer": (
        Program(lambda s, x: s.fc(F.relu(s.c((x - s.m) / s.sd)).flatten(1)),
                {"c": _conv(), "fc": nn.Linear(144, CLASSES)}, {"m": MEAN, "sd": STD}),
        ["QuantInput", "QuantConv2d", "QuantConv2d", "Flatten", "QuantLinear"]),
    "scaled input (no mean) folded into a padded conv": (
        Program(lambda s, x: s.fc(F.relu(s.c(x * s.sd)).flatten(1)), {"c": _conv(), "fc": nn.Linear(144, CLASSES)},
                {"sd": STD}),
        ["QuantInput", "QuantConv2d", "Flatten", "QuantLinear"]),
    "batch norm before the first conv": (
        Program(lambda s, x: s.fc(F.relu(s.c(s.bn(x))).flatten(1)),
                {"bn": _bn(2), "c": _conv(0), "fc": nn.Linear(64, CLASSES)}),
        ["QuantInput", "QuantConv2d", "Flatten", "QuantLinear"]),
    "batch norm after a ReLU: an affine layer before the flatten": (
        Program(lambda s, x: s.fc(s.bn(F.relu(s.c(x))).flatten(1)),
                {"bn": _bn(4), "c": _conv(), "fc": nn.Linear(144, CLASSES)}),
        ["QuantInput", "QuantConv2d", "QuantConv2d", "Flatten", "QuantLinear"]),
    "a constant gain and offset after a conv: folded into it": (
        Program(lambda s, x: s.fc(F.relu(s.c(x) * 0.5 - 1.0).flatten(1)), {"c": _conv(), "fc": nn.Linear(144, CLASSES)}),
        ["QuantInput", "QuantConv2d", "Flatten", "QuantLinear"]),
    "ReLU after a batch norm on the input: fused into its affine layer": (
        Program(lambda s, x: s.fc(F.relu(s.c(F.relu(s.bn(x)))).flatten(1)),
                {"bn": _bn(2), "c": _conv(), "fc": nn.Linear(144, CLASSES)}),
        ["QuantInput", "QuantConv2d", "QuantConv2d", "Flatten", "QuantLinear"]),
    "ReLU after a batch norm on a residual sum (pre-activation): fused into its affine layer": (
        Program(lambda s, x: s.fc(F.relu(s.bn(s.a(x) + s.b(x))).flatten(1)),
                {"a": _conv(), "b": _conv(), "bn": _bn(4), "fc": nn.Linear(144, CLASSES)}),
        ["QuantInput", "QuantConv2d", "QuantConv2d", "QuantAdd", "QuantConv2d", "Flatten", "QuantLinear"]),
    "squeeze after a global pool": (
        Program(lambda s, x: s.fc(F.adaptive_avg_pool2d(F.relu(s.c(x)), 1).squeeze(-1).squeeze(-1)),
                {"c": _conv(), "fc": nn.Linear(4, CLASSES)}),
        ["QuantInput", "QuantConv2d", "GlobalAvgPool", "QuantLinear"]),
    "a global pool as the output": (
        Program(lambda s, x: F.adaptive_avg_pool2d(s.c(x), 1).flatten(1), {"c": nn.Conv2d(2, CLASSES, 3)}),
        ["QuantInput", "QuantConv2d", "GlobalAvgPool"]),
    "ReLU after an average pool, batch norm on the features": (
        Program(lambda s, x: s.fc(s.bn1(F.relu(F.avg_pool2d(s.c(x), 2)).flatten(1))),
                {"c": _conv(), "bn1": nn.BatchNorm1d(36).eval(), "fc": nn.Linear(36, CLASSES)}),
        ["QuantInput", "QuantConv2d", "AvgPool2d", "QuantReLU", "Flatten", "QuantLinear"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PROGRAMS))
@pytest.mark.parametrize("decompose", [False, True], ids=["training-ir", "core-aten"])
def test_program_is_mapped_exactly_and_exported_bit_exact(tmp_path, name, decompose):
    torch.manual_seed(0)
    net, kinds = PROGRAMS[name]
    net.eval()
    x = torch.randn(24, *SHAPE)
    program = torch.export.export(net, (x[:2],))
    if decompose:
        program = program.run_decompositions()
    model = quantize_exported(program, x)
    assert [type(m).__name__ for m in model.layers.values()] == kinds
    set_quantization(model, False)  # the float function it was mapped onto: the program's, up to float rounding
    with torch.no_grad():
        torch.testing.assert_close(model(x).reshape(len(x), -1), net(x).reshape(len(x), -1), rtol=1e-4, atol=1e-4)
    if decompose:  # the export itself, once per program
        return
    export_fpga_bit_exact(program, x, tmp_path, CLASSES)


REFUSED = {
    "transposed convolution": (Program(lambda s, x: s.t(x).flatten(1), {"t": nn.ConvTranspose2d(2, 2, 2)}),
                               "transposed convolution is not supported; nearest upsampling"),
    "reflect padding": (Program(lambda s, x: s.c(x).flatten(1), {"c": nn.Conv2d(2, 2, 3, padding=1,
                                                                                padding_mode="reflect")}),
                        "padding"),
    "dilated max pool": (Program(lambda s, x: F.max_pool2d(s.c(x), 2, dilation=2).flatten(1), {"c": _conv()}),
                         "max pooling with dilation \\[2, 2\\] is not supported; use dilation=1"),
    "divisor_override": (Program(lambda s, x: F.avg_pool2d(s.c(x), 2, divisor_override=3).flatten(1),
                                 {"c": _conv()}), "divisor_override is not supported"),
    "a constant varying over H": (Program(lambda s, x: s.c(x * s.k).flatten(1), {"c": _conv()},
                                          {"k": torch.linspace(1, 2, 6).view(1, 1, 6, 1)}),
                                  "varies along other dims than the channels; only a per-tensor or per-channel"),
}


def test_a_volume_input_is_refused_naming_conv3d():
    net = Program(lambda s, x: s.c(x).flatten(1), {"c": nn.Conv3d(2, 2, 1)}).eval()
    x = torch.randn(4, 2, 3, 4, 4)
    with pytest.raises(PtqError, match=r"\(N, C, D, H, W\) and Conv3d are not supported; Conv1d and Conv2d are"):
        quantize_exported(torch.export.export(net, (x[:2],)), x)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_unsupported_variants_are_refused_by_name(name):
    net, match = REFUSED[name]
    x = torch.randn(4, *SHAPE)
    program = torch.export.export(net.eval(), (x[:2],))
    with pytest.raises(PtqError, match=r"node '\w+' \(\w+\): .*" + match):
        quantize_exported(program, x)


def test_export_fpga_refuses_an_unsupported_layer_in_one_line_writing_nothing(tmp_path, capsys):
    import numpy as np

    from toolchain.export_cli import main

    net, _ = REFUSED["transposed convolution"]
    x = torch.randn(4, *SHAPE)
    torch.export.save(torch.export.export(net.eval(), (x[:2],)), tmp_path / "net.pt2")
    np.savez(tmp_path / "cal.npz", x=x.numpy())
    assert main([str(tmp_path / "net.pt2"), "-o", str(tmp_path / "out"), "--calibration",
                 str(tmp_path / "cal.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "transposed convolution is not supported; nearest upsampling" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal.npz", "net.pt2"]
