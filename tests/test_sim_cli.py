"""The fpga-sim command line: run, verify, and one-line errors with exit code 2."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import onnx
import pytest

from tests.test_sim_model import chain_model, load_benchmark
from tests.test_sim_support import assert_identical, run_onnxruntime

from fpga_sim import SimulatorError
from fpga_sim.cli import main
from fpga_sim.ops.conv_integer import ConvInteger
from fpga_sim.ops.elementwise import Add
from fpga_sim.verify import onnxruntime_saturates_u8s8

FEEDS = {"x": np.array([[0, 1, 100, 255], [9, 8, 7, 6]], np.uint8)}


@pytest.fixture
def files(tmp_path):
    model_path = tmp_path / "chain.onnx"
    onnx.save(chain_model(), model_path)
    inputs = tmp_path / "x.npz"
    np.savez(inputs, **FEEDS)
    return model_path, inputs, tmp_path


def cnn_files(tmp_path, batch=2):
    model = load_benchmark().build_cnn(seed=3, channels=(1, 3, 4, 2))
    model_path = tmp_path / "cnn.onnx"
    onnx.save(model, model_path)
    inputs = tmp_path / "img.npz"
    np.savez(inputs, image=np.random.default_rng(0).normal(0, 0.7, (batch, 1, 28, 28)).astype(np.float32))
    return model, model_path, inputs


def one_error_line(captured) -> str:
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("fpga-sim: error: ")
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


# -- run -------------------------------------------------------------------------


def test_run_writes_outputs_named_by_graph_output(files, capsys):
    model_path, inputs, tmp = files
    out = tmp / "y.npz"
    assert main(["run", str(model_path), "--inputs", str(inputs), "--out", str(out)]) == 0
    expected = run_onnxruntime(chain_model(), FEEDS)
    with np.load(out) as written:
        assert sorted(written.files) == ["y", "z"]
        assert_identical(written["y"], expected[0])
        assert_identical(written["z"], expected[1])
    assert "wrote 2 output(s)" in capsys.readouterr().out


def test_run_refuses_to_overwrite_without_force(files, capsys):
    model_path, inputs, tmp = files
    out = tmp / "y.npz"
    out.write_bytes(b"keep me")
    assert main(["run", str(model_path), "--inputs", str(inputs), "--out", str(out)]) == 2
    assert "--force" in one_error_line(capsys.readouterr())
    assert out.read_bytes() == b"keep me"
    assert main(["run", str(model_path), "--inputs", str(inputs), "--out", str(out), "--force"]) == 0
    with np.load(out) as written:
        assert written["y"].shape == (2, 4)


# -- verify ----------------------------------------------------------------------


def test_verify_success_prints_element_count(files, capsys):
    model_path, inputs, _ = files
    assert main(["verify", str(model_path), "--inputs", str(inputs)]) == 0
    assert "16/16 elements equal" in capsys.readouterr().out  # y and z: 2 x (2 x 4)


def test_verify_success_on_the_benchmark_cnn(tmp_path, capsys):
    _, model_path, inputs = cnn_files(tmp_path)
    assert main(["verify", str(model_path), "--inputs", str(inputs)]) == 0
    assert f"{2 * 2 * 28 * 28}/{2 * 2 * 28 * 28} elements equal" in capsys.readouterr().out


def test_verify_reports_first_divergent_node(files, capsys, monkeypatch):
    model_path, inputs, _ = files
    original = Add._run
    monkeypatch.setattr(Add, "_run", lambda self, A, B, out=None: original(self, A, B) + np.int32(1))
    assert main(["verify", str(model_path), "--inputs", str(inputs)]) == 1
    report = capsys.readouterr().out
    assert "node 'add' (Add), tensor 'sum'" in report
    assert "flat index 0, index [0, 0]: simulator 4 vs onnxruntime 3" in report  # 0 + 3 (+1)
    assert "8 of 8 elements differ" in report
    assert "elements of the graph outputs equal" in report


def test_verify_mentions_vnni_for_integer_gemm_divergence(tmp_path, capsys, monkeypatch):
    _, model_path, inputs = cnn_files(tmp_path, batch=1)
    original = ConvInteger._run
    monkeypatch.setattr(ConvInteger, "_run", lambda self, *a, **k: original(self, *a, **k) - np.int32(1))
    monkeypatch.setattr("fpga_sim.cli.cpu_has_vnni", lambda: False)
    assert main(["verify", str(model_path), "--inputs", str(inputs)]) == 1
    report = capsys.readouterr().out
    assert "node 'l1_conv' (ConvInteger), tensor 'l1_acc'" in report
    assert "VNNI" in report and "saturated" in report
    probe = onnxruntime_saturates_u8s8()  # this machine's answer, whatever it is
    assert f"{'shows' if probe else 'does not show'} onnxruntime saturating" in report


def test_vnni_note_only_without_vnni(files, capsys, monkeypatch):
    model_path, inputs, _ = files
    monkeypatch.setattr(Add, "_run", lambda self, A, B, out=None: np.add(A, B) + np.int32(1))
    monkeypatch.setattr("fpga_sim.cli.cpu_has_vnni", lambda: False)
    assert main(["verify", str(model_path), "--inputs", str(inputs)]) == 1
    assert "VNNI" not in capsys.readouterr().out  # Add is no integer GEMM


# -- bad input -------------------------------------------------------------------


def test_missing_model_file(files, capsys):
    _, inputs, tmp = files
    assert main(["verify", str(tmp / "absent.onnx"), "--inputs", str(inputs)]) == 2
    assert "absent.onnx: no such file" in one_error_line(capsys.readouterr())


def test_not_an_onnx_model(files, capsys):
    _, inputs, tmp = files
    bad = tmp / "bad.onnx"
    bad.write_text("hello\n" * 50)
    assert main(["run", str(bad), "--inputs", str(inputs), "--out", str(tmp / "o.npz")]) == 2
    assert "bad.onnx: not an ONNX model" in one_error_line(capsys.readouterr())


def test_truncated_model(files, capsys):
    model_path, inputs, tmp = files
    cut = tmp / "cut.onnx"
    cut.write_bytes(model_path.read_bytes()[:-40])
    assert main(["verify", str(cut), "--inputs", str(inputs)]) == 2
    one_error_line(capsys.readouterr())


@pytest.mark.parametrize("write, match", [
    (lambda h: h.write(b"not a zip"), "not a valid .npz"),
    (lambda h: np.savez(h, x=np.zeros((2, 4), np.int16)), "expected dtype uint8, got int16"),
    (lambda h: np.savez(h, x=np.zeros((2, 3), np.uint8)), r"expected shape \[N, 4\], got \[2, 3\]"),
    (lambda h: np.savez(h, other=np.zeros((2, 4), np.uint8)), "unexpected feed 'other'"),
    (lambda h: np.savez(h), "missing feed for input 'x'"),
    (lambda h: np.save(h, np.zeros(3)), "not an .npz archive"),
], ids=["not-zip", "dtype", "shape", "extra", "missing", "npy"])
@pytest.mark.parametrize("command", ["run", "verify"])
def test_bad_inputs_file(files, capsys, write, match, command):
    model_path, _, tmp = files
    bad = tmp / "bad_inputs.npz"
    with open(bad, "wb") as handle:  # through a handle numpy keeps the file name as is
        write(handle)
    extra = ["--out", str(tmp / "o.npz")] if command == "run" else []
    assert main([command, str(model_path), "--inputs", str(bad), *extra]) == 2
    assert re.search(match, one_error_line(capsys.readouterr()))
    assert not (tmp / "o.npz").exists()


def test_missing_inputs_file(files, capsys):
    model_path, _, tmp = files
    assert main(["verify", str(model_path), "--inputs", str(tmp / "none.npz")]) == 2
    assert "none.npz: no such file" in one_error_line(capsys.readouterr())


def test_debug_reraises(files):
    _, inputs, tmp = files
    with pytest.raises(SimulatorError):
        main(["verify", str(tmp / "absent.onnx"), "--inputs", str(inputs), "--debug"])


def test_console_entry_point_in_a_subprocess(files):
    _, inputs, tmp = files
    result = subprocess.run([sys.executable, "-m", "fpga_sim.cli", "verify", str(tmp / "absent.onnx"),
                             "--inputs", str(inputs)], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("fpga-sim: error:")
    assert "Traceback" not in result.stderr
    helped = subprocess.run([sys.executable, "-m", "fpga_sim.cli", "--help"], capture_output=True, text=True,
                            check=True)
    assert "usage: fpga-sim" in helped.stdout and "verify" in helped.stdout


# -- issue 7: one error family, non-finite inputs, interruptions ---------------------------------


def test_simulator_errors_are_foldline_errors():
    from exporters.errors import FoldlineError

    assert issubclass(SimulatorError, FoldlineError)


@pytest.mark.parametrize("command", ["run", "verify"])
def test_nan_input_names_the_file_and_array(tmp_path, capsys, command):
    _, model_path, inputs = cnn_files(tmp_path)
    with np.load(inputs) as data:
        image = data["image"].copy()
    image[1, 0, 3, 4] = np.nan
    bad = tmp_path / "nan.npz"
    np.savez(bad, image=image)
    extra = ["--out", str(tmp_path / "o.npz")] if command == "run" else []
    assert main([command, str(model_path), "--inputs", str(bad), *extra]) == 2
    line = one_error_line(capsys.readouterr())
    assert "nan.npz: array 'image' holds NaN at index (1, 0, 3, 4)" in line
    assert not (tmp_path / "o.npz").exists()


def test_ctrl_c_prints_interrupted_and_leaves_no_partial_output(files, capsys, monkeypatch):
    model_path, inputs, tmp = files

    def interrupted(member, array, allow_pickle):
        member.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", interrupted)
    before = set(tmp.iterdir())
    assert main(["run", str(model_path), "--inputs", str(inputs), "--out", str(tmp / "y.npz")]) == 130
    assert capsys.readouterr().err.strip() == "fpga-sim: interrupted"
    assert set(tmp.iterdir()) == before
