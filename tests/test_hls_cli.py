"""fpga-hls end to end: ONNX file in, project out, C simulation equal to the simulator."""

import shutil

import numpy as np
import pytest

from exporters import examples
from exporters.onnx_export import export_onnx
from hls_templates.cli import main
from hls_templates.golden import read_dat


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "mlp.onnx"
    export_onnx(examples.mlp(np.random.default_rng(11), features=(12, 16, 6)), path)
    return path


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is needed for C simulation")
def test_end_to_end_with_csim(onnx_file, tmp_path, capsys):
    out = tmp_path / "hls"
    assert main([str(onnx_file), "-o", str(out), "--csim", "--samples", "5", "--part", "xczu9eg-ffvb1156-2-e",
                 "--clock-ns", "4"]) == 0
    text = capsys.readouterr().out
    assert "csim: 30/30 elements equal" in text
    assert "set part {xczu9eg-ffvb1156-2-e}" in (out / "project.tcl").read_text()
    assert "set clock_period {4}" in (out / "project.tcl").read_text()
    assert "#pragma HLS PIPELINE" in (out / "firmware" / "foldline_top.cpp").read_text()  # auto: parallel MLP


def test_inputs_npz_and_force(onnx_file, tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(3, 12)).astype(np.float32)
    np.savez(tmp_path / "x.npz", input=x)
    out = tmp_path / "hls"
    args = [str(onnx_file), "-o", str(out), "--inputs", str(tmp_path / "x.npz"), "--architecture", "dataflow"]
    assert main(args) == 0
    assert read_dat(out / "tb_data" / "tb_input_features.dat").shape == (3, 12)
    assert main(args) == 2
    assert "already exists (use --force" in capsys.readouterr().err
    assert main(args + ["--force", "--reuse-factor", "2"]) == 0
    assert "reuse_factor = 2;" in (out / "firmware" / "parameters.h").read_text()


@pytest.mark.parametrize("extra, message", [
    (["--part", "virtex9"], "unknown FPGA part 'virtex9'"),
    (["--clock-ns", "0"], "clock period must be a positive number"),
    (["--reuse-factor", "0"], "reuse factor must be a positive integer"),
    (["--architecture", "systolic"], "invalid choice"),
    (["--inputs", "/nonexistent.npz"], "no such file"),
])
def test_errors_are_one_line(onnx_file, tmp_path, capsys, extra, message):
    assert main([str(onnx_file), "-o", str(tmp_path / "hls"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fpga-hls: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "hls").exists()


def test_not_a_foldline_file(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    assert main([str(bad), "-o", str(tmp_path / "hls")]) == 2
    assert "fpga-hls: error:" in capsys.readouterr().err
