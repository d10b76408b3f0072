"""export-fpga end to end on a small CNN: report contents, verification, and bad input."""

import json

import numpy as np
import pytest
import torch

import toolchain
from toolchain.export_cli import main

SHAPE = (1, 12, 12)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = toolchain.build("cnn", input_shape=SHAPE, num_classes=4)
    model.train()
    with torch.no_grad():  # let the moving-average activation ranges settle
        for _ in range(5):
            model(torch.rand(16, *SHAPE))
    model.eval()
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    toolchain.save(model, path)
    return path


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("cal") / "cal.npz"
    np.savez(path, x=rng.random((24, *SHAPE), dtype=np.float32), y=rng.integers(0, 4, 24))
    return path


def test_export_writes_a_verified_model_and_report(tmp_path, checkpoint, calibration, capsys):
    out = tmp_path / "out"
    assert main([str(checkpoint), "-o", str(out), "--calibration", str(calibration)]) == 0
    report = json.loads((out / "report.json").read_text())
    for name in ("torch_integer", "onnxruntime", "csim"):
        v = report["verification"][name]
        assert v["samples"] == 24 and v["mismatches"] == 0 and v["elements"] == 24 * 4
    layer_keys = {"name", "op", "in_channels", "out_channels", "kernel", "weight_bits", "act_bits", "acc_bits",
                  "macs", "bops", "params", "latency_cycles", "ii", "dsp", "lut", "bram"}
    assert report["layers"] and all(layer_keys <= set(r) for r in report["layers"])
    assert report["totals"]["params"] == sum(r["params"] for r in report["layers"])
    assert {"macs", "bops", "params", "weight_memory_bits", "latency_cycles", "latency_us", "clock_ns", "dsp", "lut",
            "bram", "ff"} <= set(report["totals"])
    assert (out / "hls" / "build_prj.tcl").is_file()
    with np.load(out / "inputs.npz") as saved:
        assert saved.files == ["input"] and saved["input"].shape == (24, *SHAPE)
    assert 0.0 <= report["accuracy"]["integer_top1"] <= 1.0
    assert (out / "model.onnx").is_file()
    printed = capsys.readouterr().out
    assert printed.count("96/96 elements equal") == 3  # torch, onnxruntime, csim


def test_hls4ml_backend_refuses_a_non_power_of_two_model(tmp_path, checkpoint, calibration, capsys):
    out = tmp_path / "out"
    assert main([str(checkpoint), "-o", str(out), "--calibration", str(calibration), "--hls", "hls4ml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("export-fpga: error:") and "power" in err and err.count("\n") == 1
    assert not out.exists()


def test_bad_part_is_refused(tmp_path, checkpoint, calibration, capsys):
    assert main([str(checkpoint), "-o", str(tmp_path / "o"), "--calibration", str(calibration),
                 "--part", "nonsense"]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_existing_output_is_refused_without_force(tmp_path, checkpoint, calibration, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main([str(checkpoint), "-o", str(out), "--calibration", str(calibration)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"
    assert main([str(checkpoint), "-o", str(out), "--calibration", str(calibration), "--force", "--quiet", "--hls", "none"]) == 0
    assert not (out / "keep.txt").exists() and (out / "report.json").is_file()


@pytest.mark.parametrize("make_bad,match", [
    (lambda p: np.savez(p, x=np.zeros((3, 1, 10, 10), np.float32)), "shape"),
    (lambda p: np.savez(p, images=np.zeros((3, *SHAPE), np.float32)), "no array named 'x'"),
    (lambda p: p.write_bytes(b"not a zip"), "not a readable .npz"),
])
def test_bad_calibration_is_one_line_and_writes_nothing(tmp_path, checkpoint, capsys, make_bad, match):
    bad = tmp_path / "bad.npz"
    make_bad(bad)
    out = tmp_path / "out"
    assert main([str(checkpoint), "-o", str(out), "--calibration", str(bad), "--hls", "none"]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_corrupt_checkpoint_is_refused(tmp_path, calibration, capsys):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x80\x04garbage")
    assert main([str(bad), "-o", str(tmp_path / "out"), "--calibration", str(calibration)]) == 2
    assert "model.pt" in capsys.readouterr().err


def test_report_bops_match_the_compress_summary(checkpoint):
    """One definition of BOPs: the report (integer model) equals toolchain.methods.costs (QuantNet)."""
    from exporters import stats
    from toolchain.methods import costs
    from toolchain.pruning import remove_channels

    model = remove_channels(toolchain.load(checkpoint))
    rows = stats.layer_stats(toolchain.to_integer_model(model))
    assert stats.totals(rows)["bops"] == costs.bops(model)
