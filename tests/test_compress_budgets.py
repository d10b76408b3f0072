"""fpga-compress with hardware budgets, judged on what export-fpga builds and reports.

Each budget is asserted on the exported design's estimate (report.json, from the checkpoint
export-fpga loads), not on the method's own bookkeeping; every export is checked bit-exact
across PyTorch integer mode, the simulator, onnxruntime and C simulation.
"""

import json
import re

import numpy as np
import pytest

import toolchain
from hls_templates import HlsConfig
from hls_templates.estimate import estimate
from toolchain.compress_cli import EXIT_BUDGET_MISSED
from toolchain.compress_cli import main as compress
from toolchain.data import synthetic
from toolchain.export_cli import main as export
from toolchain.export_pipeline import integer_model_of

SHAPE = (1, 12, 12)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A 12 x 12, 4-class version of the synthetic blobs, as an .npz (train + test) and a calibration set."""
    folder = tmp_path_factory.mktemp("data")
    train, test = synthetic(240, shape=SHAPE, classes=4), synthetic(60, shape=SHAPE, classes=4, seed=1)
    np.savez(folder / "d.npz", x=train.x.numpy(), y=train.y.numpy(), x_test=test.x.numpy(), y_test=test.y.numpy())
    np.savez(folder / "cal.npz", x=test.x[:24].numpy(), y=test.y[:24].numpy())
    return folder


def _fast(data):
    return ["--data", str(data / "d.npz"), "--width", "0.5", "--batch-size", "32", "--quiet"]


@pytest.fixture(scope="module")
def dense(data, tmp_path_factory):
    """A trained, unpruned checkpoint (one-shot at sparsity 0)."""
    path = tmp_path_factory.mktemp("dense") / "dense.pt"
    assert compress(["--method", "one-shot", "--sparsity", "0", "--epochs", "1", "-o", str(path),
                     "--option", "steps_per_group=2", *_fast(data)]) == 0
    return path


def _export(checkpoint, data, out):
    code = export([str(checkpoint), "-o", str(out), "--calibration", str(data / "cal.npz"), "--quiet"])
    report = json.loads((out / "report.json").read_text())
    for name in ("torch_integer", "onnxruntime", "csim"):
        v = report["verification"][name]
        assert v["mismatches"] == 0 and v["elements"] == 24 * 4, (name, v)
    assert code == 0
    return report


def test_a_dsp_budget_holds_in_the_exported_design(data, dense, tmp_path, capsys):
    dense_dsp = estimate(integer_model_of(toolchain.load(dense)), HlsConfig()).totals["dsp"]
    budget = dense_dsp - 8
    out = tmp_path / "dsp.pt"
    code = compress(["--method", "stepwise", "--init", str(dense), "--dsp-budget", str(budget), "--epochs", "0.5",
                     "--option", "steps_per_group=3", "-o", str(out), *_fast(data)])
    printed = capsys.readouterr().out
    assert code == 0 and re.search(rf"budgets +DSP \d+ \(budget {budget}\) met", printed), printed
    report = _export(out, data, tmp_path / "dsp")
    assert report["totals"]["dsp"] <= budget < dense_dsp
    meta = toolchain.load_metadata(out)
    assert meta["hardware"]["reuse_factor"] == 1 and meta["summary"]["hardware"]["met"]


def test_30_percent_less_latency_than_reuse_4_within_its_lut_count(data, dense, tmp_path):
    reference = estimate(integer_model_of(toolchain.load(dense)), HlsConfig(reuse_factor=4)).totals
    latency, lut = 0.7 * reference["latency_us"], reference["lut"]
    out = tmp_path / "fast.pt"
    assert compress(["--method", "one-shot", "--init", str(dense), "--latency-budget-us", f"{latency:.6f}",
                     "--lut-budget", str(lut), "--epochs", "0.5", "--option", "steps_per_group=3",
                     "-o", str(out), *_fast(data)]) == 0
    report = _export(out, data, tmp_path / "fast")
    assert report["totals"]["latency_us"] <= latency and report["totals"]["lut"] <= lut
    design = toolchain.load_metadata(out)["hardware"]
    assert report["hls"]["layer_reuse"] == design["layer_reuse"] and design["layer_reuse"]  # auto: per layer
    # an explicit export-fpga setting wins over the recorded design
    assert export([str(out), "-o", str(tmp_path / "r1"), "--calibration", str(data / "cal.npz"), "--quiet",
                   "--clock-ns", "10", "--hls", "none"]) == 0
    again = json.loads((tmp_path / "r1" / "report.json").read_text())
    assert again["hls"]["clock_ns"] == 10 and again["hls"]["layer_reuse"] == design["layer_reuse"]


def test_a_missed_budget_is_said_with_its_miss_and_exit_1(data, dense, tmp_path, capsys, monkeypatch):
    from toolchain.methods.budget import BudgetPruner

    monkeypatch.setattr(BudgetPruner, "prune", lambda self, ctx, groups, importance, limits: self.measure(ctx.model))
    dense_dsp = estimate(integer_model_of(toolchain.load(dense)), HlsConfig()).totals["dsp"]
    out = tmp_path / "miss.pt"
    code = compress(["--method", "one-shot", "--init", str(dense), "--dsp-budget", str(dense_dsp - 5),
                     "--epochs", "0", "--option", "steps_per_group=1", "-o", str(out), *_fast(data)])
    captured = capsys.readouterr()
    assert code == EXIT_BUDGET_MISSED == 1 and out.is_file()
    assert "MISSED by 5" in captured.out and "hardware budget missed: DSP over by 5" in captured.err


@pytest.mark.parametrize("flags, message", [
    (["--dsp-budget", "-3"], "DSP budget must be a non-negative integer, got -3"),
    (["--latency-budget-us", "-1"], "latency budget must be a positive number"),
    (["--dsp-budget", "1"], "DSP budget 1 is below the"),
    (["--lut-budget", "10", "--reuse-factor", "auto"], "LUT budget 10 is below the"),
    (["--reuse-factor", "0"], "expected an integer >= 1 or auto"),
    (["--dsp-budget", "20", "--sparsity", "0.5"], "--sparsity and hardware budgets both set"),
    (["--rule", "accuracy"], "--rule applies to --method rule-framework"),
])
def test_bad_budgets_are_one_line_errors_before_training(data, tmp_path, capsys, flags, message):
    out = tmp_path / "m.pt"
    code = compress(["--method", "one-shot", "-o", str(out), "--epochs", "1", *flags, *_fast(data)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []
