"""export-fpga's accuracy report tells the truth: a post-training quantization that collapses
is measured against the user's float program, warned about, and fails --min-agreement.

The float network is a small CNN trained for a few seconds on the synthetic blobs (1x12x12,
10 classes), so its labels mean something. Two measured collapses (issue 7):

* the rescaled CNN: 8 of conv1's 16 channels x1000 and conv2's weights reading them /1000 —
  the same float function (ReLU and max pooling commute with a positive scale), but one
  per-tensor activation range now has to hold both halves, and the small half rounds to 0;
* W2A2 post-training quantization of the unchanged CNN.
"""

import copy
import json

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import toolchain
from fpga_sim import Simulator
from toolchain.accuracy import WARN_AGREEMENT
from toolchain.data import synthetic
from toolchain.export_cli import main

SHAPE = (1, 12, 12)


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 3 * 3, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    data = synthetic(2000, SHAPE, seed=0)
    model = Cnn()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(3):
        for idx in torch.randperm(len(data.x)).split(64):
            loss = nn.functional.cross_entropy(model(data.x[idx]), data.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def _rescaled(model: Cnn) -> Cnn:
    out = copy.deepcopy(model)
    with torch.no_grad():
        out.conv1.weight[:8] *= 1000
        out.conv1.bias[:8] *= 1000
        out.conv2.weight[:, :8] /= 1000
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory, trained):
    root = tmp_path_factory.mktemp("acc")
    test = synthetic(300, SHAPE, seed=1)
    np.savez(root / "cal.npz", x=test.x.numpy(), y=test.y.numpy())
    for name, model in (("cnn", trained), ("rescaled", _rescaled(trained))):
        torch.export.save(torch.export.export(model, (torch.rand(2, *SHAPE),)), root / f"{name}.pt2")
    return root, test


def _export(root, name, out, *extra):
    return main([str(root / f"{name}.pt2"), "-o", str(out), "--calibration", str(root / "cal.npz"), "--hls", "none",
                 "--quiet", *extra])


def _float_top1(model, x) -> np.ndarray:
    with torch.no_grad():
        return model(x).argmax(1).numpy()


def _integer_top1(out) -> np.ndarray:
    """The exported ONNX file run by the simulator on the exported inputs: the integers the user gets."""
    proto = onnx.load(out / "model.onnx")
    with np.load(out / "inputs.npz") as feeds:
        (logits,) = Simulator(proto).run([proto.graph.output[0].name], dict(feeds))  # the output integers
    return logits.argmax(1)


def test_the_rescaled_cnn_computes_the_same_float_function(trained, files):
    x = files[1].x
    with torch.no_grad():
        a, b = trained(x), _rescaled(trained)(x)
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-3)


def test_a_collapsed_ptq_export_is_measured_against_the_float_program_and_warns(tmp_path, files, trained, capsys):
    root, test = files
    out = tmp_path / "out"
    assert _export(root, "rescaled", out) == 0  # a warning, not a failure, without --min-agreement
    err = capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    a = report["accuracy"]
    float_pred, int_pred = _float_top1(_rescaled(trained), test.x), _integer_top1(out)
    assert a["samples"] == 300 and a["agreement_checked"] == "float_program_vs_integer_top1_agreement"
    assert a["float_program_vs_integer_top1_agreement"] == pytest.approx(float(np.mean(float_pred == int_pred)))
    assert a["float_program_top1"] == pytest.approx(float(np.mean(float_pred == test.y.numpy())))
    assert a["integer_top1"] == pytest.approx(float(np.mean(int_pred == test.y.numpy())))
    print(f"rescaled CNN: float {a['float_program_top1']:.3f}, integer {a['integer_top1']:.3f}, "
          f"agreement {a['float_program_vs_integer_top1_agreement']:.3f}, "
          f"fake-quant vs integer {a['fake_quant_vs_integer_top1_agreement']:.3f}")
    assert a["float_program_top1"] > 0.8 and a["integer_top1"] < 0.3  # measured: 0.92 -> 0.10
    assert a["fake_quant_vs_integer_top1_agreement"] > 0.95  # the old, misleading figure stays high
    assert len(report["warnings"]) == 1 and "agrees with the float program on only" in report["warnings"][0]
    lines = err.splitlines()
    assert lines == [f"export-fpga: WARNING: {report['warnings'][0]}"]
    for advice in ("calibrate on real data", "fpga-compress", "more bits", "per-channel activation ranges"):
        assert advice in lines[0]


def test_min_agreement_fails_a_collapse_with_exit_4_and_keeps_the_output(tmp_path, files, capsys):
    root, _ = files
    out = tmp_path / "out"
    assert _export(root, "rescaled", out, "--min-agreement", "0.9") == 4
    err = capsys.readouterr().err
    assert "is below --min-agreement 0.9" in err and str(out) in err
    report = json.loads((out / "report.json").read_text())
    assert report["accuracy"]["min_agreement"] == 0.9 and report["accuracy"]["min_agreement_met"] is False
    assert (out / "model.onnx").is_file()  # written, for inspection


def test_w2a2_ptq_warns_and_a_sound_8_bit_ptq_does_not(tmp_path, files, capsys):
    root, _ = files
    assert _export(root, "cnn", tmp_path / "w2a2", "--weight-bits", "2", "--act-bits", "2",
                   "--min-agreement", "0.9") == 4
    low = json.loads((tmp_path / "w2a2" / "report.json").read_text())
    assert low["accuracy"]["float_program_vs_integer_top1_agreement"] < WARN_AGREEMENT
    assert "WARNING" in capsys.readouterr().err
    assert _export(root, "cnn", tmp_path / "w8a8", "--min-agreement", "0.9") == 0
    ok = json.loads((tmp_path / "w8a8" / "report.json").read_text())
    print(f"W2A2 agreement {low['accuracy']['float_program_vs_integer_top1_agreement']:.3f}, "
          f"W8A8 {ok['accuracy']['float_program_vs_integer_top1_agreement']:.3f}")
    assert ok["warnings"] == [] and ok["accuracy"]["min_agreement_met"] is True
    assert capsys.readouterr().err == ""


def test_an_all_zero_calibration_set_names_the_degenerate_range(tmp_path, files, capsys):
    root, _ = files
    np.savez(tmp_path / "zeros.npz", x=np.zeros((20, *SHAPE), np.float32))
    out = tmp_path / "out"
    assert main([str(root / "cnn.pt2"), "-o", str(out), "--calibration", str(tmp_path / "zeros.npz"),
                 "--hls", "none", "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    degenerate = [w for w in report["warnings"] if "degenerate" in w]
    assert degenerate and degenerate[0].startswith("input 'quant_in': calibration range [-0, 0] is degenerate")
    assert "calibrate on real data" in degenerate[0]
    assert report["accuracy"]["integer_top1"] is None  # no labels in this .npz
    assert f"export-fpga: WARNING: {degenerate[0]}" in capsys.readouterr().err.splitlines()


def test_a_checkpoint_has_no_separate_float_program(tmp_path, files, capsys):
    root, _ = files
    torch.manual_seed(0)
    model = toolchain.build("cnn", input_shape=SHAPE, num_classes=10).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(16, *SHAPE))
    toolchain.save(model.eval(), tmp_path / "m.pt")
    out = tmp_path / "out"
    assert main([str(tmp_path / "m.pt"), "-o", str(out), "--calibration", str(root / "cal.npz"), "--hls", "none",
                 "--quiet"]) == 0
    a = json.loads((out / "report.json").read_text())["accuracy"]
    assert a["float_program_vs_integer_top1_agreement"] is None and a["float_program_top1"] is None
    assert a["agreement_checked"] == "fake_quant_vs_integer_top1_agreement" and "no separate float program" in a["note"]
    assert 0.0 <= a["fake_quant_top1"] <= 1.0 and a["samples"] == 300


@pytest.mark.parametrize("value", ["1.5", "-0.1"])
def test_min_agreement_outside_0_1_is_refused(tmp_path, files, capsys, value):
    root, _ = files
    assert _export(root, "cnn", tmp_path / "out", "--min-agreement", value) == 2
    assert "--min-agreement" in capsys.readouterr().err and not (tmp_path / "out").exists()
