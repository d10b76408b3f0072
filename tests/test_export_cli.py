"""export-fpga end to end on a small CNN: report contents, verification, and bad input."""

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

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


def test_report_estimate_is_of_the_chosen_design_on_the_part_given(tmp_path, checkpoint, calibration):
    """--hls none estimates Foldline's templates and says so; --part, --architecture and
    --reuse-factor reach the estimate (a 7-series part is labelled uncalibrated)."""
    from exporters.onnx_import import load_integer_model
    from hls_templates import HlsConfig
    from hls_templates.estimate import estimate

    out = tmp_path / "out"
    flags = ["--part", "xc7z020clg400-1", "--architecture", "parallel", "--reuse-factor", "2"]
    assert main([str(checkpoint), "-o", str(out), "--calibration", str(calibration), "--hls", "none", "--quiet",
                 *flags]) == 0
    report = json.loads((out / "report.json").read_text())
    e = report["estimate"]
    assert (e["kind"], e["backend"], e["estimated_design"]) == ("analytical estimate (not a synthesis result)",
                                                                "none", "templates")
    assert any("--hls none" in note for note in e["notes"]) and any("xc7z020" in note for note in e["notes"])
    assert (e["part"], e["part_calibrated"], e["architecture"], e["reuse_factor"]) == ("xc7z020clg400-1", False,
                                                                                       "parallel", 2)
    assert "Vivado HLS 2019.2" in e["calibration"] and "measured error" in e["calibration"]
    config = HlsConfig(part="xc7z020clg400-1", architecture="parallel", reuse_factor=2)
    alone = estimate(load_integer_model(out / "model.onnx"), config).totals
    assert report["totals"]["latency_cycles"] == e["totals"]["latency_cycles"] == alone["latency_cycles"]
    assert [row["lut"] for row in e["layers"]] == [row["lut"] for row in estimate(load_integer_model(
        out / "model.onnx"), config).layers]
    ultrascale = estimate(load_integer_model(out / "model.onnx"), HlsConfig(architecture="parallel", reuse_factor=2))
    assert ultrascale.totals != alone       # the 7-series delays are slower: the part matters


def test_bad_reuse_factor_is_refused(tmp_path, checkpoint, calibration, capsys):
    out = tmp_path / "o"
    assert main([str(checkpoint), "-o", str(out), "--calibration", str(calibration), "--reuse-factor", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("export-fpga: error:") and "reuse factor" in err and err.count("\n") == 1
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


# -- bad inputs that used to escape as tracebacks or wrong answers (issue 7) -------------------

def _one_error_line(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("export-fpga: error: "), err
    assert "Traceback" not in err and all(w in lines[0] for w in words), (words, err)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_calibration_is_one_line_naming_file_and_array(tmp_path, checkpoint, capsys, bad):
    x = np.random.default_rng(0).random((6, *SHAPE), dtype=np.float32)
    x[4, 0, 2, 3] = bad
    path = tmp_path / "cal.npz"
    np.savez(path, x=x)
    out = tmp_path / "out"
    assert main([str(checkpoint), "-o", str(out), "--calibration", str(path), "--hls", "none"]) == 2
    _one_error_line(capsys.readouterr().err, "cal.npz", "'x'", "(4, 0, 2, 3)")
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


@pytest.mark.parametrize("samples", ["0", "-5"])
def test_samples_below_one_is_refused(tmp_path, checkpoint, calibration, capsys, samples):
    out = tmp_path / "out"
    assert main([str(checkpoint), "-o", str(out), "--calibration", str(calibration), "--samples", samples,
                 "--hls", "none"]) == 2
    _one_error_line(capsys.readouterr().err, "--samples", samples)
    assert not out.exists()


def test_an_empty_calibration_set_is_refused(tmp_path, checkpoint, capsys):
    path = tmp_path / "empty.npz"
    np.savez(path, x=np.zeros((0, *SHAPE), np.float32))
    out = tmp_path / "out"
    assert main([str(checkpoint), "-o", str(out), "--calibration", str(path), "--hls", "none"]) == 2
    _one_error_line(capsys.readouterr().err, "empty.npz", "no samples")
    assert not out.exists()


def test_samples_limits_the_calibration_set_and_report_is_strict_json(tmp_path, checkpoint, calibration):
    out = tmp_path / "out"
    assert main([str(checkpoint), "-o", str(out), "--calibration", str(calibration), "--samples", "5",
                 "--hls", "none", "--quiet"]) == 0

    def no_constants(name):  # NaN, Infinity, -Infinity: not JSON
        raise AssertionError(f"report.json holds {name}")

    report = json.loads((out / "report.json").read_text(), parse_constant=no_constants)
    assert {v["samples"] for v in report["verification"].values()} == {5}


def _other_files(tmp_path):
    from exporters import examples
    from exporters.onnx_export import export_onnx

    onnx_as_pt = tmp_path / "onnx.pt"
    export_onnx(examples.mlp(np.random.default_rng(1), features=(4, 3)), onnx_as_pt)
    noise = tmp_path / "noise.pt"
    noise.write_bytes(np.random.default_rng(2).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    noise.write_bytes(b"\x13" + noise.read_bytes()[1:])  # not a pickle's 0x80 by chance
    return onnx_as_pt, noise


def test_foreign_files_as_model_pt_say_what_they_are(tmp_path, calibration, capsys):
    import pickle
    import warnings

    onnx_as_pt, noise = _other_files(tmp_path)
    plain_pickle = tmp_path / "objects.pt"
    plain_pickle.write_bytes(pickle.dumps({"net": Path}, protocol=4))   # references a class: code
    expected = {onnx_as_pt: ("an ONNX file", "fpga-sim / fpga-hls"), noise: ("not a PyTorch file",),
                plain_pickle: ("code execution",)}
    for path, words in expected.items():
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            code = main([str(path), "-o", str(tmp_path / "out"), "--calibration", str(calibration), "--hls", "none"])
        assert code == 2
        err = capsys.readouterr().err
        _one_error_line(err, path.name, *words)
        assert not [w for w in seen if "pickle protocol" in str(w.message)]  # torch's 3-line warning silenced
        assert ("code execution" in err) == (path is plain_pickle)
    assert not (tmp_path / "out").exists()


# -- interruptions, debris, permissions -----------------------------------------------------------

def test_ctrl_c_prints_interrupted_exits_130_and_leaves_nothing(tmp_path, checkpoint, calibration, capsys,
                                                                 monkeypatch):
    import toolchain.export_pipeline as pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "check_onnxruntime", interrupted)
    out = tmp_path / "out"
    assert main([str(checkpoint), "-o", str(out), "--calibration", str(calibration), "--hls", "none"]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "export-fpga: interrupted" and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


SLOW_EXPORT = """
import sys, time
import toolchain.export_pipeline as pipeline
from toolchain.export_cli import main
def stalled(*args, **kwargs):
    print("stalled", flush=True)
    time.sleep(120)
pipeline.check_onnxruntime = stalled
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_mid_export_exits_cleanly_and_leaves_no_staging_folder(tmp_path, checkpoint, calibration,
                                                                        signum):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_EXPORT, str(checkpoint), "-o", str(out), "--calibration",
                             str(calibration), "--hls", "none"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "stalled"  # inside the export, staging folder written
    assert [p.name.startswith(".out.staging-") for p in tmp_path.iterdir()] == [True]
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum
    assert err.strip().splitlines()[-1] == "export-fpga: interrupted" and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_staging_folders_of_dead_runs_are_removed_live_ones_kept(tmp_path, checkpoint, calibration):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f".out.staging-{gone.pid}-abcd1234"
    (dead / "hls").mkdir(parents=True)
    (dead / "model.onnx").write_bytes(b"half")
    alive = tmp_path / f".out.staging-{os.getppid()}-efgh5678"  # pytest's parent process runs
    alive.mkdir()
    unrelated = tmp_path / ".outer.staging-1-x"
    unrelated.mkdir()
    out = tmp_path / "out"
    assert main([str(checkpoint), "-o", str(out), "--calibration", str(calibration), "--hls", "none",
                 "--quiet"]) == 0
    assert not dead.exists() and alive.is_dir() and unrelated.is_dir() and (out / "report.json").is_file()


def test_outputs_honour_the_umask(tmp_path, checkpoint, calibration):
    previous = os.umask(0o027)
    try:
        out = tmp_path / "out"
        assert main([str(checkpoint), "-o", str(out), "--calibration", str(calibration), "--quiet"]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    assert stat.S_IMODE((out / "hls").stat().st_mode) == 0o750
    assert stat.S_IMODE((out / "report.json").stat().st_mode) == 0o640


# -- progress, parameter names, a C simulation that cannot build ---------------------------------

def test_phase_lines_on_stderr_unless_quiet(tmp_path, checkpoint, calibration, capsys):
    assert main([str(checkpoint), "-o", str(tmp_path / "a"), "--calibration", str(calibration),
                 "--hls", "none"]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    for phase in ("exporting ONNX", "verifying 24 samples", "accuracy, estimate and report"):
        assert f"export-fpga: {phase}" in captured.err
        assert any(line.startswith(f"export-fpga: {phase}") and ": done in " in line for line in lines)
    assert "parameters: " in captured.out and "integer (weights + folded biases" in captured.out
    assert main([str(checkpoint), "-o", str(tmp_path / "b"), "--calibration", str(calibration),
                 "--hls", "none", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_a_c_simulation_that_fails_to_build_keeps_the_output_and_exits_3(tmp_path, checkpoint, calibration,
                                                                         capsys, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "g++"
    fake.write_text("#!/bin/sh\necho 'firmware/foldline_top.cpp:1: internal compiler error: Segmentation fault' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    assert main([str(checkpoint), "-o", str(out), "--calibration", str(calibration)]) == 3
    captured = capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    csim = report["verification"]["csim"]
    assert csim["mismatches"] is None and "internal compiler error" in csim["error"]
    log = Path(csim["log"])
    assert log.is_file() and out.resolve() in log.resolve().parents and "internal compiler error" in log.read_text()
    assert "staging" not in csim["error"] + csim["log"]
    for name in ("torch_integer", "onnxruntime"):
        assert report["verification"][name]["mismatches"] == 0
    assert (out / "model.onnx").is_file() and (out / "hls" / "build_prj.tcl").is_file()
    assert "verify csim vs simulator: could not run: " in captured.out and str(log) in captured.out
    assert "csim could not run" in captured.err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
