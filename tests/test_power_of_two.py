"""Power-of-two models, the hls4ml backend's exact mode, from every entry point: the layers'
config (and so checkpoints), the built-in models, post-training quantization, fpga-compress
--power-of-two and export-fpga --power-of-two --hls hls4ml."""

import json
import math

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import toolchain
from exporters import integer_model as im
from exporters.onnx_import import load_integer_model
from fpga_sim import Simulator
from hls_templates import check_hls4ml_exact
from hls_templates.estimate.hls4ml_project import estimate_hls4ml_project
from toolchain import compress_cli, export_cli
from toolchain.nn import QuantNet, is_power_of_two, with_power_of_two
from toolchain.ptq import load_float_program, quantize_exported

SHAPE = (1, 8, 8)


def _calibrate(model: QuantNet, n: int = 3) -> QuantNet:
    model.train()
    with torch.no_grad():
        for _ in range(n):
            model(torch.rand(16, *model.input_shape))
    return model.eval()


def _assert_power_of_two_grids(integer_model: im.IntegerModel) -> None:
    """What hls4ml needs, read off the integer model: every grid scale 2^k with zero point 0, every
    weight scale 2^k, every multiplier M a power of two."""
    for layer in integer_model.layers:
        g = integer_model.grid(layer.name)
        assert math.frexp(g.scale)[0] == 0.5 and g.zero_point == 0, layer.name
        if isinstance(layer, im.MacLayer):
            assert all(math.frexp(float(s))[0] == 0.5 for s in layer.weight_scale), layer.name
            m = layer.requant.multiplier
            assert ((m & (m - 1)) == 0).all(), layer.name


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_built_in_models_in_power_of_two_mode_pass_the_hls4ml_check(name, tmp_path):
    torch.manual_seed(0)
    model = _calibrate(toolchain.build(name, input_shape=SHAPE, power_of_two=True))
    assert is_power_of_two(model)
    integer_model = toolchain.to_integer_model(model)
    _assert_power_of_two_grids(integer_model)
    check_hls4ml_exact(integer_model)
    toolchain.save(model, tmp_path / "m.pt")  # the mode is architecture: it round-trips through the spec
    loaded = toolchain.load(tmp_path / "m.pt")
    assert is_power_of_two(loaded) and loaded.spec() == model.spec()
    x = torch.rand(32, *SHAPE)
    assert torch.equal(toolchain.integer_forward(loaded, x), toolchain.integer_forward(model, x))


def test_with_power_of_two_switches_a_trained_model_and_keeps_its_state():
    torch.manual_seed(0)
    plain = _calibrate(toolchain.build("cnn", input_shape=SHAPE))
    assert not is_power_of_two(plain)
    pow2 = with_power_of_two(plain)
    assert is_power_of_two(pow2) and with_power_of_two(pow2) is pow2
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), pow2.state_dict().values()))
    check_hls4ml_exact(toolchain.to_integer_model(pow2))


class Cnn(nn.Module):
    """What hls4ml converts: Conv (groups 1, padded), MaxPool, AvgPool (power-of-two window), Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 2 * 2, 5)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.avg_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


@pytest.fixture(scope="module")
def pt2(tmp_path_factory):
    root = tmp_path_factory.mktemp("pow2")
    torch.manual_seed(0)
    torch.export.save(torch.export.export(Cnn().eval(), (torch.rand(2, *SHAPE),)), root / "m.pt2")
    rng = np.random.default_rng(3)
    np.savez(root / "cal.npz", x=rng.random((48, *SHAPE), dtype=np.float32), y=rng.integers(0, 5, 48))
    return root


def test_ptq_power_of_two_model(pt2):
    x = torch.from_numpy(np.load(pt2 / "cal.npz")["x"])
    model = quantize_exported(load_float_program(pt2 / "m.pt2"), x, power_of_two=True)
    assert is_power_of_two(model)
    _assert_power_of_two_grids(toolchain.to_integer_model(model))


@pytest.mark.slow  # hls4ml writes and compiles its C++ (~10 s)
def test_power_of_two_pt2_export_with_hls4ml_is_bit_exact(pt2, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(pt2 / "m.pt2"), "-o", str(out), "--calibration", str(pt2 / "cal.npz"), "--hls", "hls4ml", "--quiet"]
    assert export_cli.main(argv + ["--power-of-two"]) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert set(report["verification"]) == {"torch_integer", "onnxruntime", "csim"}
    for check in report["verification"].values():
        assert check["samples"] == 48 and check["elements"] == 48 * 5 and check["mismatches"] == 0
    assert report["hls"]["backend"] == "hls4ml"
    estimate = report["estimate"]             # of the hls4ml project, labelled as an estimate
    assert (estimate["kind"], estimate["estimated_design"]) == ("analytical estimate (not a synthesis result)", "hls4ml")
    assert "Vivado HLS 2019.2" in estimate["calibration"] and "measured error" in estimate["calibration"]
    assert any("extrapolated" in note for note in estimate["notes"])      # Conv2d and pooling are beyond the data
    hls4ml_alone = estimate_hls4ml_project(load_integer_model(out / "model.onnx")).totals
    assert report["totals"]["latency_cycles"] == estimate["totals"]["latency_cycles"] == hls4ml_alone["latency_cycles"]
    assert report["totals"]["lut"] == hls4ml_alone["lut"]
    proto = onnx.load(out / "model.onnx")
    with np.load(out / "inputs.npz") as feeds:
        (logits,) = Simulator(proto).run([proto.graph.output[0].name], dict(feeds))
    assert np.unique(logits).size >= 5  # the outputs spread over the grid: a meaningful comparison


def test_without_power_of_two_hls4ml_says_it_is_its_restriction_and_how_to_get_one(pt2, tmp_path, capsys):
    out = tmp_path / "out"
    assert export_cli.main([str(pt2 / "m.pt2"), "-o", str(out), "--calibration", str(pt2 / "cal.npz"),
                            "--hls", "hls4ml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("export-fpga: error: input 'quant_in': scale ") and err.count("\n") == 1
    for words in ("is not a power of two", "the hls4ml backend is exact only for power-of-two scales",
                  "fpga-compress --power-of-two", "export-fpga --power-of-two", "--hls templates"):
        assert words in err
    assert not out.exists()


def test_power_of_two_is_for_a_pt2_only(tmp_path, capsys):
    model = _calibrate(toolchain.build("mlp", input_shape=SHAPE))
    toolchain.save(model, tmp_path / "m.pt")
    assert export_cli.main([str(tmp_path / "m.pt"), "-o", str(tmp_path / "out"), "--power-of-two"]) == 2
    err = capsys.readouterr().err
    assert "only to a .pt2" in err and "fpga-compress --power-of-two" in err and err.count("\n") == 1


def test_fpga_compress_power_of_two_trains_an_hls4ml_exact_model(tmp_path, capsys):
    out = tmp_path / "m.pt"
    code = compress_cli.main(["--method", "one-shot", "--model", "mlp", "--power-of-two", "--data", "synthetic",
                              "--limit", "120", "--epochs", "0.5", "--batch-size", "32", "--quiet",
                              "--option", "steps_per_group=2", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "power-of-two scales" in capsys.readouterr().out
    model = toolchain.load(out)
    assert is_power_of_two(model) and toolchain.load_metadata(out)["summary"]["power_of_two"] is True
    check_hls4ml_exact(toolchain.to_integer_model(model))
