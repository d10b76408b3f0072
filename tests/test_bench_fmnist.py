"""benchmarks/fmnist.py, smoke-run: the quick mode on a two-configuration grid, into tmp_path.

One configuration runs (layerwise, 50 % channels, W4A8) and one must be refused
(iterative-magnitude under a hardware budget), so the test sees both an exported model and
how a refusal reads. hls4ml is skipped here (its g++ build of the CNN takes minutes); the
helpers that decide the goals are checked on rows made up to fail.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from toolchain.data import FASHION_MNIST_DIR

ROOT = Path(__file__).resolve().parents[1]
GRID = """
[compress]
data = "tune.npz"
init = "baseline.pt"
round_to = 4
epochs = 0.5
seed = 0
quiet = true

[export]
calibration = "verify.npz"
hls = "templates"

[[configs]]
compress = { method = "layerwise", sparsity = 0.5, weight_bits = 4, act_bits = 8, option = { steps_per_group = 5 } }
[[configs]]
compress = { method = "iterative-magnitude", weight_bits = 4, act_bits = 8, latency_budget_us = 5.0, lut_budget = 60000 }
"""


def _fmnist():
    spec = importlib.util.spec_from_file_location("fmnist_bench", ROOT / "benchmarks" / "fmnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    if not any((FASHION_MNIST_DIR / f).exists()
               for f in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte")):
        pytest.skip("needs the dataset-fashion-mnist package")
    tmp = tmp_path_factory.mktemp("fmnist")
    (tmp / "grid.toml").write_text(GRID)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fmnist.py"), "--quick", "--no-hls4ml",
                           "--sweep", str(tmp / "grid.toml"), "--work", str(tmp / "work"), "--out", str(tmp / "out")],
                          capture_output=True, text=True, timeout=600)
    return tmp, proc


def test_quick_run_writes_the_tables_and_plots(quick_run):
    tmp, proc = quick_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp / "out"
    for name in ("fmnist.md", "fmnist.json", "fmnist_accuracy_bops.png", "fmnist_accuracy_latency.png",
                 "fmnist_layers.png"):
        assert (out / name).is_file(), name
    doc = _strict((out / "fmnist.json").read_text())
    assert doc["mode"] == "quick" and doc["test_samples"] == 500
    assert doc["commit"] and doc["machine"]["cpus"] >= 1 and "--quick" in doc["command"]
    ok, refused = doc["rows"]
    assert (ok["method"], ok["status"], refused["method"], refused["status"]) == (
        "layerwise", "ok", "iterative-magnitude", "failed")
    # the exported model, checked on every test image of the quick split
    assert ok["sparsity"] == pytest.approx(0.5) and ok["bops"] > 0 and ok["bops_ratio"] > 1
    assert 0.0 < ok["integer_top1"] <= 1.0
    assert ok["integer_top1"] * 500 == pytest.approx(ok["integer_top1_torch"] * 500, abs=0.01)
    vt = ok["verification_test"]
    assert vt["samples"] == 500 and vt["onnxruntime"] == {"equal": 5000, "elements": 5000}
    assert vt["csim"]["samples"] == 500 and vt["csim"]["equal"] == vt["csim"]["elements"] == 5000
    for check in ("torch_integer", "onnxruntime", "csim"):
        assert ok["verification_export"][check]["samples"] == 50
        assert ok["verification_export"][check]["equal"] == ok["verification_export"][check]["elements"]
    assert ok["latency_us"] > 0 and ok["lut"] > 0 and ok["per_layer"]
    # the refusal is a row with the CLI's own error line, in the table too
    assert "structured (channel) method" in refused["error"] and refused["integer_top1"] is None
    md = (out / "fmnist.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| method |"))
    for column in ("float top-1", "fake-quant top-1", "integer top-1", "BOPs", "x fewer than float32",
                   "weight memory bits", "latency µs @200 MHz (est.)", "II (est.)", "DSP (est.)", "LUT (est.)",
                   "onnxruntime equal (all 500)", "csim equal (all 500)", "compress s"):
        assert column in header, column
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert len(rows) == 2 and "**failed**" in rows[1] and "structured (channel) method" in rows[1]
    assert md.count("**MET**") + md.count("**MISSED**") == 3
    assert "skipped (--no-hls4ml)" in md
    assert "FAILED configuration" in proc.stderr and "goal MISSED" in proc.stderr


def test_goals_are_missed_loudly_on_a_mismatch():
    fmnist = _fmnist()
    row = {"key": "k", "method": "layerwise", "target": "t", "integer_top1": 0.95, "bops": 1, "bops_ratio": 1e3,
           "latency_us": 1.0, "verification_export": {"csim": {"equal": 9, "elements": 10, "error": None}},
           "verification_test": {"onnxruntime": {"equal": 10, "elements": 10},
                                 "csim": {"samples": 1, "equal": 10, "elements": 10}}}
    assert fmnist.equal_everywhere(row) is False
    g = fmnist.goals([row], 1)
    assert g["bit_exact"]["met"] is False and g["accuracy_bops_latency"]["met"] is True
    row["verification_export"]["csim"]["equal"] = 10
    row["verification_test"]["csim"] = None  # C simulation of the whole split did not run: not met
    assert fmnist.equal_everywhere(row) is True and fmnist.goals([row], 1)["bit_exact"]["met"] is False


def test_pareto_front():
    fmnist = _fmnist()
    assert fmnist.pareto([(1, 0.5), (2, 0.9), (3, 0.8), (1, 0.4), (4, 0.95)]) == [0, 1, 4]


def test_a_bad_grid_is_one_line_before_anything_runs(tmp_path):
    (tmp_path / "bad.toml").write_text('[compress]\nnot_a_flag = 1\n[[configs]]\ncompress = { method = "layerwise" }\n')
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fmnist.py"), "--quick",
                           "--sweep", str(tmp_path / "bad.toml"), "--work", str(tmp_path / "w"),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not_a_flag" in proc.stderr
    assert not (tmp_path / "o" / "fmnist.json").exists() and not (tmp_path / "w" / "tune.npz").exists()


def test_a_quick_run_never_writes_over_the_committed_results():
    fmnist = _fmnist()
    full, quick = (Path(fmnist.MODES[m]["out"]) for m in ("full", "quick"))
    assert full == Path("benchmarks/results") and quick.parts[0] == "build"  # build/ is ignored by git
    assert fmnist.build_parser().parse_args(["--quick"]).out is None        # so the mode's folder is used
