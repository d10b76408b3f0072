"""Issue 8's "Done when" for the window layers: a 1-D CNN on a time series and a 2-D net with dilation
and ceil-mode pooling go through export-fpga bit-exact across PyTorch integer mode, the simulator,
onnxruntime and C simulation (every element of every check), both as a QuantNet checkpoint and as a
``.pt2`` quantized post-training (the training IR and the core-ATen form), in both HLS architectures."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from toolchain import nn as qnn
from toolchain.convert import to_integer_model
from toolchain.integer_mode import run_integer
from toolchain.pruning import channel_groups, remove_channels
from toolchain.ptq import quantize_exported

from tests.test_tc_common import export_fpga_bit_exact, qat

LENGTH = 40
CLASSES = 10  # synthetic_batch labels (tests.test_tc_common.qat)


class TimeSeriesNet(nn.Module):
    """The issue's example: Conv1d(1, 8, 5, dilation=2) + ReLU + MaxPool1d(2, ceil_mode=True) + Conv1d +
    AvgPool1d(count_include_pad=False, padding=1) + global pool + Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(1, 8, 5, dilation=2)
        self.p1 = nn.MaxPool1d(2, ceil_mode=True)
        self.c2 = nn.Conv1d(8, 8, 3, padding=1)
        self.p2 = nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False)
        self.fc = nn.Linear(8, CLASSES)

    def forward(self, x):
        x = self.p2(F.relu(self.c2(self.p1(F.relu(self.c1(x))))))
        return self.fc(F.adaptive_avg_pool1d(x, 1).squeeze(-1))


class DilatedNet(nn.Module):
    """2-D: a dilated conv, a ceil-mode max pool, a ceil-mode average pool counting real taps only."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 6, 3, dilation=2, padding=2)
        self.c2 = nn.Conv2d(6, 6, 3, dilation=(1, 2), padding=(1, 2), groups=2)
        self.fc = nn.Linear(6 * 4 * 4, CLASSES)  # 11 -> 11 -> 6 (ceil) -> 6 -> 4 (ceil)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2, ceil_mode=True)
        x = F.avg_pool2d(F.relu(self.c2(x)), 3, 2, 1, ceil_mode=True, count_include_pad=False)
        return self.fc(torch.flatten(x, 1))


def time_series_quantnet() -> qnn.QuantNet:
    return qnn.QuantNet([
        ("x", qnn.QuantInput()),
        ("c1", qnn.QuantConv1d(1, 8, 5, dilation=2, bn=True, relu=True)),
        ("p1", qnn.MaxPool1d(2, ceil_mode=True)),
        ("c2", qnn.QuantConv1d(8, 8, 3, padding=1, bn=True, relu=True)),
        ("p2", qnn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False)),
        ("gap", qnn.GlobalAvgPool()),
        ("fc", qnn.QuantLinear(8, CLASSES, signed_output=True)),
    ], input_shape=(1, LENGTH))


def dilated_quantnet() -> qnn.QuantNet:
    return qnn.QuantNet([
        ("x", qnn.QuantInput()),
        ("c1", qnn.QuantConv2d(2, 6, 3, dilation=2, padding=2, relu=True)),
        ("p1", qnn.MaxPool2d(2, ceil_mode=True)),
        ("c2", qnn.QuantConv2d(6, 6, 3, dilation=(1, 2), padding=(1, 2), groups=2, relu=True)),
        ("p2", qnn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
        ("flat", qnn.Flatten()),
        ("fc", qnn.QuantLinear(6 * 4 * 4, CLASSES, signed_output=True)),
    ], input_shape=(2, 11, 11))


def _check_rows(report, ops, kernels):
    assert [r["op"] for r in report["layers"]][:len(ops)] == ops
    assert [r["kernel"] for r in report["layers"]][:len(kernels)] == kernels


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["dataflow", "parallel"])
def test_time_series_checkpoint_is_bit_exact_everywhere(tmp_path, arch):
    torch.manual_seed(0)
    model = qat(time_series_quantnet(), steps=4, shape=(1, LENGTH), lr=0.01)
    layer = to_integer_model(model).layer("p2")
    assert layer.partial_multipliers  # its edge windows divide by their own count
    x = torch.randn(24, 1, LENGTH)
    assert len(torch.unique(run_integer(to_integer_model(model), x))) >= 8  # outputs that can disagree
    report = export_fpga_bit_exact(model, x, tmp_path, CLASSES, ("--architecture", arch))
    _check_rows(report, ["Conv1d", "MaxPool1d", "Conv1d", "AvgPool1d", "GlobalAvgPool1d", "Linear"],
                [[5], [2], [3], [3], [8]])  # 40 -> 32 -> 16 -> 16 -> 8


@pytest.mark.slow
@pytest.mark.parametrize("decompose", [False, True], ids=["training-ir", "core-aten"])
def test_time_series_program_is_quantized_and_bit_exact(tmp_path, decompose):
    torch.manual_seed(1)
    net = TimeSeriesNet().eval()
    x = torch.randn(32, 1, LENGTH)
    program = torch.export.export(net, (x[:2],))
    if decompose:  # writes the 1-D pools as 2-D ones over a row (unsqueeze / squeeze)
        program = program.run_decompositions()
    kinds = [type(m).__name__ for m in quantize_exported(program, x).layers.values()]
    assert kinds == ["QuantInput", "QuantConv1d", "MaxPool1d", "QuantConv1d", "AvgPool1d", "GlobalAvgPool",
                     "QuantLinear"]
    report = export_fpga_bit_exact(program, x, tmp_path, CLASSES, ("--architecture", "parallel" if decompose
                                                                   else "dataflow"))
    _check_rows(report, ["Conv1d", "MaxPool1d", "Conv1d", "AvgPool1d", "GlobalAvgPool1d"], [[5], [2], [3], [3]])
    assert report["accuracy"]["float_program_vs_integer_top1_agreement"] >= 0.9


@pytest.mark.slow
def test_dilated_ceil_mode_checkpoint_and_program_are_bit_exact(tmp_path):
    torch.manual_seed(2)
    model = qat(dilated_quantnet(), steps=3, shape=(2, 11, 11), lr=0.01)
    x = torch.randn(16, 2, 11, 11)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "pt2").mkdir()
    export_fpga_bit_exact(model, x, tmp_path / "ckpt", CLASSES)
    program = torch.export.export(DilatedNet().eval(), (x[:2],))
    report = export_fpga_bit_exact(program, x, tmp_path / "pt2", CLASSES, ("--architecture", "parallel"))
    _check_rows(report, ["Conv", "MaxPool", "Conv", "AvgPool"], [[3, 3], [2, 2], [3, 3], [3, 3]])


def test_channel_pruning_through_the_1d_layers_removes_exactly():
    """Masked and physically removed models compute the same integers, element for element."""
    torch.manual_seed(3)
    model = qat(time_series_quantnet(), steps=3, shape=(1, LENGTH), lr=0.01)
    groups = {g.name: g for g in channel_groups(model)}
    assert set(groups) == {"c1", "c2"} and groups["c1"].consumers == (("c2", 1, 0),)
    for g in groups.values():
        g.set_mask(torch.arange(g.channels) % 3 != 1)
    model.eval()
    x = torch.randn(20, 1, LENGTH)
    small = remove_channels(model)
    assert tuple(small.layers["c2"].weight.shape) == (5, 5, 3) and small.layers["fc"].in_features == 5
    masked, removed = run_integer(to_integer_model(model), x), run_integer(to_integer_model(small), x)
    assert masked.shape == removed.shape and torch.equal(masked, removed)
