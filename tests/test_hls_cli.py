"""fpga-hls end to end: ONNX file in, project out, C simulation equal to the simulator."""

import numpy as np
import pytest

from exporters import examples
from exporters.onnx_export import export_onnx
from hls_templates.cli import main
from hls_templates.golden import read_dat
from tests.test_tc_common import needs_gxx


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "mlp.onnx"
    export_onnx(examples.mlp(np.random.default_rng(11), features=(12, 16, 6)), path)
    return path


@needs_gxx
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


# -- issue 7: bad inputs, --debug, one float rule with fpga-sim, interruptions --------------------

def _one_line(err: str, *words: str) -> None:
    assert err.startswith("fpga-hls: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert all(w in err for w in words), (words, err)


@pytest.mark.parametrize("bad", [np.nan, -np.inf])
def test_non_finite_inputs_are_one_line_naming_file_and_array(onnx_file, tmp_path, capsys, bad):
    x = np.random.default_rng(0).normal(size=(3, 12)).astype(np.float32)
    x[2, 5] = bad
    np.savez(tmp_path / "x.npz", input=x)
    out = tmp_path / "hls"
    assert main([str(onnx_file), "-o", str(out), "--inputs", str(tmp_path / "x.npz")]) == 2
    _one_line(capsys.readouterr().err, "x.npz", "'input'", "(2, 5)")
    assert list(tmp_path.iterdir()) == [tmp_path / "x.npz"]


@pytest.mark.parametrize("write, words", [
    (lambda p: np.savez(p), ("x.npz", "no arrays", "empty")),
    (lambda p: p.write_bytes(b""), ("x.npz", "not a valid .npz")),
    (lambda p: np.save(open(p, "wb"), np.zeros(3)), ("x.npz", "single array")),
], ids=["empty-npz", "zero-bytes", "npy"])
def test_unusable_inputs_files_are_one_line(onnx_file, tmp_path, capsys, write, words):
    write(tmp_path / "x.npz")
    assert main([str(onnx_file), "-o", str(tmp_path / "hls"), "--inputs", str(tmp_path / "x.npz")]) == 2
    _one_line(capsys.readouterr().err, *words)
    assert not (tmp_path / "hls").exists()


def test_debug_shows_the_traceback(onnx_file, tmp_path):
    from exporters.errors import FoldlineError

    with pytest.raises(FoldlineError, match="no such file"):
        main([str(onnx_file), "-o", str(tmp_path / "hls"), "--inputs", str(tmp_path / "none.npz"), "--debug"])


def test_fpga_sim_and_fpga_hls_accept_and_refuse_the_same_float64_inputs(onnx_file, tmp_path, capsys):
    from fpga_sim.cli import main as sim_main

    exact = np.random.default_rng(0).normal(size=(3, 12)).astype(np.float32)
    np.savez(tmp_path / "exact.npz", input=exact.astype(np.float64))  # every value a float32
    np.savez(tmp_path / "inexact.npz", input=np.full((3, 12), 0.1))   # 0.1 is no float32
    np.savez(tmp_path / "float32.npz", input=exact)

    def both(name):
        hls = main([str(onnx_file), "-o", str(tmp_path / f"hls_{name}"), "--inputs", str(tmp_path / f"{name}.npz")])
        sim = sim_main(["run", str(onnx_file), "--inputs", str(tmp_path / f"{name}.npz"),
                        "--out", str(tmp_path / f"y_{name}.npz")])
        return hls, sim, capsys.readouterr().err

    assert both("exact")[:2] == (0, 0) and both("float32")[:2] == (0, 0)
    # the float64 run computed from the same values as the float32 one
    assert (tmp_path / "hls_exact" / "tb_data" / "tb_input_features.dat").read_text() == \
        (tmp_path / "hls_float32" / "tb_data" / "tb_input_features.dat").read_text()
    with np.load(tmp_path / "y_exact.npz") as a, np.load(tmp_path / "y_float32.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in b.files)
    hls, sim, err = both("inexact")
    assert (hls, sim) == (2, 2)
    hls_line, sim_line = err.strip().splitlines()
    assert hls_line.removeprefix("fpga-hls: error: ") == sim_line.removeprefix("fpga-sim: error: ")
    assert "float64" in hls_line and "0.1" in hls_line and "astype(numpy.float32)" in hls_line
    assert not (tmp_path / "hls_inexact").exists() and not (tmp_path / "y_inexact.npz").exists()


def test_ctrl_c_prints_interrupted_and_leaves_no_partial_project(onnx_file, tmp_path, capsys, monkeypatch):
    import hls_templates.project as project

    def interrupted(root, *args):
        (root / "half.txt").write_text("half a project")
        raise KeyboardInterrupt

    monkeypatch.setattr(project, "_write_files", interrupted)
    assert main([str(onnx_file), "-o", str(tmp_path / "hls")]) == 130
    assert capsys.readouterr().err.strip() == "fpga-hls: interrupted"
    assert list(tmp_path.iterdir()) == []
