"""export-fpga end to end on networks with clamps and lookups, as QuantNet checkpoints and as
``.pt2`` float programs through post-training quantization: a MobileNetV2-style net (inverted
residuals with ReLU6), a net with sigmoid and hardswish, and each other activation. Every check
is bit-exact: the report's verification counts, and the four representations' outputs compared
here element for element (torch integer mode on the exported file, the simulator, onnxruntime,
and what the C simulation wrote)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import toolchain
import toolchain.nn as q
from exporters import integer_model as im
from exporters.onnx_import import load_integer_model
from fpga_sim import Simulator
from hls_templates.golden import read_dat
from tests.conftest import assert_identical, ort_trace
from tests.test_sim_support import run_onnxruntime
from toolchain.export_cli import main
from toolchain.integer_mode import run_integer
from toolchain.nn.functions import ACTIVATIONS, describe, float64_function, resolve
from tests.test_tc_common import needs_gxx

pytestmark = needs_gxx

SHAPE = (3, 8, 8)
CLASSES = 4
SAMPLES = 12


# -- the networks, as QuantNets and as float modules ---------------------------------------------

def quant_mobilenet_v2(c: int = 8, expand: int = 2) -> q.QuantNet:
    """Stem conv + ReLU6; inverted residual (1x1 expand + ReLU6, depthwise 3x3 + ReLU6 — here a
    separate QuantClamp, fused at conversion — 1x1 linear projection, residual add); a stride-2
    inverted residual without the add; global pool; linear."""
    e = c * expand
    conv = dict(bn=True, bias=False)
    return q.QuantNet([
        ("x", q.QuantInput()),
        ("stem", q.QuantConv2d(SHAPE[0], c, 3, padding=1, clamp=(0, 6), **conv)),
        ("b1_expand", q.QuantConv2d(c, e, 1, clamp=(0, 6), **conv)),
        ("b1_dw", q.QuantConv2d(e, e, 3, padding=1, groups=e, **conv)),
        ("b1_relu6", q.QuantClamp(0, 6)),
        ("b1_project", q.QuantConv2d(e, c, 1, **conv)),
        ("b1_add", q.QuantAdd(), ["stem", "b1_project"]),
        ("b2_expand", q.QuantConv2d(c, e, 1, clamp=(0, 6), **conv)),
        ("b2_dw", q.QuantConv2d(e, e, 3, stride=2, padding=1, groups=e, clamp=(0, 6), **conv)),
        ("b2_project", q.QuantConv2d(e, c, 1, **conv)),
        ("gap", q.GlobalAvgPool()),
        ("fc", q.QuantLinear(c, CLASSES, signed_output=True)),
    ], SHAPE, name="mobilenet_v2")


def _inverted_residual(c, e, stride):
    return nn.Sequential(nn.Conv2d(c, e, 1, bias=False), nn.BatchNorm2d(e), nn.ReLU6(),
                         nn.Conv2d(e, e, 3, stride, 1, groups=e, bias=False), nn.BatchNorm2d(e), nn.ReLU6(),
                         nn.Conv2d(e, c, 1, bias=False), nn.BatchNorm2d(c))


class FloatMobileNetV2(nn.Module):
    def __init__(self, c: int = 8, expand: int = 2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(SHAPE[0], c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU6())
        self.b1, self.b2 = _inverted_residual(c, c * expand, 1), _inverted_residual(c, c * expand, 2)
        self.fc = nn.Linear(c, CLASSES)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.b1(x)
        return self.fc(self.b2(x).mean((2, 3)))


def quant_sigmoid_hardswish(function: str = "hardswish", params: dict | None = None) -> q.QuantNet:
    """conv -> ``function`` -> depthwise conv -> sigmoid -> conv -> hardswish -> pool -> linear."""
    return q.QuantNet([
        ("x", q.QuantInput()),
        ("c1", q.QuantConv2d(SHAPE[0], 6, 3, padding=1, bn=True)),
        ("f1", q.QuantActivation(function, params)),
        ("c2", q.QuantConv2d(6, 6, 3, padding=1, groups=6)),
        ("sigmoid", q.QuantActivation("sigmoid")),
        ("c3", q.QuantConv2d(6, 6, 1)),
        ("hardswish", q.QuantActivation("hardswish")),
        ("gap", q.GlobalAvgPool()),
        ("fc", q.QuantLinear(6, CLASSES, signed_output=True)),
    ], SHAPE, name="sigmoid_hardswish")


class FloatSigmoidHardswish(nn.Module):
    def __init__(self, first=F.hardswish):
        super().__init__()
        self.first = first
        self.c1 = nn.Sequential(nn.Conv2d(SHAPE[0], 6, 3, padding=1), nn.BatchNorm2d(6))
        self.c2, self.c3, self.fc = nn.Conv2d(6, 6, 3, padding=1, groups=6), nn.Conv2d(6, 6, 1), nn.Linear(6, CLASSES)

    def forward(self, x):
        x = torch.sigmoid(self.c2(self.first(self.c1(x))))
        return self.fc(F.hardswish(self.c3(x)).mean((2, 3)))


def _randomize_batch_norm(module: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(3)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return module.eval()


# -- export and the element-for-element check -------------------------------------------------------

@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("cal") / "cal.npz"
    np.savez(path, x=(rng.standard_normal((SAMPLES, *SHAPE)) * 1.5).astype(np.float32),
             y=rng.integers(0, CLASSES, SAMPLES))
    return path


def checkpoint(net: q.QuantNet, path: Path) -> Path:
    """A few QAT steps on random data (train mode updates the statistics and BN), saved."""
    torch.manual_seed(0)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    net.train()
    for step in range(4):
        x = torch.randn(16, *SHAPE) * 1.5
        loss = F.cross_entropy(net(x), torch.randint(0, CLASSES, (16,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    toolchain.save(net.eval(), path)
    return path


def program(module: nn.Module, path: Path) -> Path:
    torch.manual_seed(0)
    for p in module.parameters():
        nn.init.normal_(p, std=0.3) if p.dim() > 1 else None
    torch.export.save(torch.export.export(_randomize_batch_norm(module), (torch.randn(2, *SHAPE),)), path)
    return path


def export_bit_exact(model_path: Path, calibration: Path, out: Path, hls: str = "templates") -> dict:
    assert main([str(model_path), "-o", str(out), "--calibration", str(calibration), "--hls", hls, "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    checks = ("torch_integer", "onnxruntime") + (("csim",) if hls != "none" else ())
    for name in checks:
        v = report["verification"][name]
        assert (v["samples"], v["elements"], v["mismatches"]) == (SAMPLES, SAMPLES * CLASSES, 0), (name, v)
    # the four representations, each computed here from the written files, element for element
    proto = onnx.load(str(out / "model.onnx"))
    integer = load_integer_model(proto)
    with np.load(out / "inputs.npz") as saved:
        x = saved["input"]
    torch_q = run_integer(integer, torch.from_numpy(x)).numpy()
    sim_q = Simulator(proto).run([integer.output.name], {"input": x})[0].astype(np.int64)
    ort_q = run_onnxruntime(proto, {"input": x})[0].astype(np.int64)
    assert torch_q.shape == (SAMPLES, CLASSES)
    assert np.array_equal(torch_q, sim_q) and np.array_equal(ort_q, sim_q)
    if hls != "none":
        assert np.array_equal(read_dat(out / "hls" / "tb_data" / "csim_results.log"), sim_q)
    return report


def _types(report: dict) -> set[str]:
    return {row["op"] for row in report["layers"]}


@pytest.mark.slow
def test_mobilenet_v2_checkpoint(tmp_path, calibration):
    report = export_bit_exact(checkpoint(quant_mobilenet_v2(), tmp_path / "m.pt"), calibration, tmp_path / "out")
    model = load_integer_model(tmp_path / "out" / "model.onnx")
    clamped = [layer.name for layer in model.layers if layer.output_clamp is not None]
    assert clamped == ["stem", "b1_expand", "b1_relu6", "b2_expand", "b2_dw"]  # b1_relu6: the fused QuantClamp
    assert "Lookup" not in _types(report)


@pytest.mark.slow
def test_mobilenet_v2_pt2(tmp_path, calibration):
    report = export_bit_exact(program(FloatMobileNetV2(), tmp_path / "m.pt2"), calibration, tmp_path / "out")
    model = load_integer_model(tmp_path / "out" / "model.onnx")
    assert sum(layer.output_clamp is not None for layer in model.layers) == 5  # every ReLU6 fused
    assert "Lookup" not in _types(report) and report["accuracy"]["float_program_vs_integer_top1_agreement"] >= 0.75


@pytest.mark.slow
def test_sigmoid_hardswish_checkpoint(tmp_path, calibration):
    report = export_bit_exact(checkpoint(quant_sigmoid_hardswish(), tmp_path / "m.pt"), calibration, tmp_path / "out")
    assert [row["name"] for row in report["layers"] if row["op"] == "Lookup"] == ["f1", "sigmoid", "hardswish"]


@pytest.mark.slow
def test_sigmoid_hardswish_pt2(tmp_path, calibration):
    report = export_bit_exact(program(FloatSigmoidHardswish(), tmp_path / "m.pt2"), calibration, tmp_path / "out")
    assert sum(row["op"] == "Lookup" for row in report["layers"]) == 3


#: Every other function: (name, parameters, the float op a .pt2 writes, or None when none maps to it).
OTHERS = [
    ("tanh", {}, torch.tanh), ("hardsigmoid", {}, F.hardsigmoid), ("silu", {}, F.silu),
    ("gelu", {}, F.gelu), ("gelu", {"approximate": "tanh"}, lambda x: F.gelu(x, approximate="tanh")),
    ("elu", {"alpha": 0.5}, lambda x: F.elu(x, 0.5)), ("selu", {}, F.selu),
    ("celu", {"alpha": 0.7}, lambda x: F.celu(x, 0.7)),
    ("leaky_relu", {"negative_slope": 0.1}, lambda x: F.leaky_relu(x, 0.1)),
    ("softplus", {"beta": 2.0}, lambda x: F.softplus(x, 2.0)), ("mish", {}, F.mish),
    ("logsigmoid", {}, F.logsigmoid), ("softsign", {}, None),
    ("hardtanh", {"min_val": 0.25, "max_val": 1.0}, lambda x: F.hardtanh(x, 0.25, 1.0)),
    ("clamp", {"min": -2.0, "max": -0.5}, lambda x: torch.clamp(x, -2.0, -0.5)),
]


def quant_every_function() -> q.QuantNet:
    """conv, then per function: the function and a 1x1 conv (so every one reaches the output)."""
    layers = [("x", q.QuantInput()), ("c0", q.QuantConv2d(SHAPE[0], 4, 3, padding=1))]
    for i, (name, params, _) in enumerate(OTHERS):
        layers += [(f"f{i}", q.QuantActivation(name, params)), (f"c{i + 1}", q.QuantConv2d(4, 4, 1))]
    layers += [("gap", q.GlobalAvgPool()), ("fc", q.QuantLinear(4, CLASSES, signed_output=True))]
    return q.QuantNet(layers, SHAPE, name="every_function")


class FloatEveryFunction(nn.Module):
    def __init__(self):
        super().__init__()
        self.ops = [op for _, _, op in OTHERS if op is not None]
        self.c0 = nn.Conv2d(SHAPE[0], 4, 3, padding=1)
        self.convs = nn.ModuleList(nn.Conv2d(4, 4, 1) for _ in self.ops)
        self.fc = nn.Linear(4, CLASSES)

    def forward(self, x):
        x = self.c0(x)
        for op, conv in zip(self.ops, self.convs):
            x = conv(op(x))
        return self.fc(x.mean((2, 3)))


@pytest.fixture(scope="module")
def every_function(tmp_path_factory, calibration):
    """Both ways through export-fpga (C simulation included), with every layer's integers in torch
    integer mode, the simulator and onnxruntime: ``{"checkpoint" | "pt2": (integer model, traces)}``."""
    tmp = tmp_path_factory.mktemp("every")
    result = {}
    for kind, path in (("checkpoint", checkpoint(quant_every_function(), tmp / "m.pt")),
                       ("pt2", program(FloatEveryFunction(), tmp / "m.pt2"))):
        export_bit_exact(path, calibration, tmp / kind)
        proto = onnx.load(str(tmp / kind / "model.onnx"))
        with np.load(tmp / kind / "inputs.npz") as saved:
            x = saved["input"]
        traces = (run_integer(load_integer_model(proto), torch.from_numpy(x), intermediate=True),
                  Simulator(proto).trace({"input": x}), ort_trace(proto, {"input": x}))
        result[kind] = (load_integer_model(proto), traces)
    return result


def test_the_parametrized_cases_cover_every_function():
    assert {name for name, _, _ in OTHERS} | {"sigmoid", "hardswish"} == set(ACTIVATIONS)


@pytest.mark.slow
@pytest.mark.parametrize("function, params, op", OTHERS, ids=[f"{n}{p or ''}" for n, p, _ in OTHERS])
def test_every_other_function(every_function, function, params, op):
    """Its Lookup, in the checkpoint and (when a float op maps to it) the .pt2 exports, holds the
    contract's table and computes the same integers in torch integer mode, the simulator and
    onnxruntime on every element; the C simulation matched the outputs it feeds (the fixture)."""
    for kind in ("checkpoint", "pt2") if op is not None else ("checkpoint",):
        if kind == "pt2" and function == "hardtanh":  # PTQ maps every clamp that cannot fuse to a clamp lookup
            function, params = "clamp", {"min": params["min_val"], "max": params["max_val"]}
        params = resolve(function, params)
        model, (torch_trace, sim_trace, ort) = every_function[kind]
        (layer,) = [layer for layer in model.layers
                    if isinstance(layer, im.Lookup) and layer.function == describe(function, params)]
        expected = im.tabulate(float64_function(function, params), model.grid(layer.input), layer.out)
        assert np.array_equal(layer.table, expected)
        assert np.array_equal(torch_trace[layer.name].numpy(), sim_trace[layer.name].astype(np.int64))
        assert_identical(ort[layer.name], sim_trace[layer.name], layer.name)
        assert len(np.unique(sim_trace[layer.input])) > 1  # a real range of inputs went through the table


@pytest.mark.parametrize("head, name", [(lambda x: F.softmax(x, dim=1), "softmax"),
                                        (lambda x: F.log_softmax(x, dim=1), "log_softmax")])
def test_softmax_is_refused_before_anything_is_written(tmp_path, calibration, capsys, head, name):
    class WithSoftmax(FloatSigmoidHardswish):
        def forward(self, x):
            return head(super().forward(x))

    path = program(WithSoftmax(), tmp_path / "m.pt2")
    assert main([str(path), "-o", str(tmp_path / "out"), "--calibration", str(calibration)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"({name}): not exported; the integer logits' argmax equals {name}'s" in err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
