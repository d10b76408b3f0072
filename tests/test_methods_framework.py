"""rule-framework (Ding et al.'s Algorithm 1), two-stage, their rules, steps and trainer snapshots."""

import json

import numpy as np
import pytest
import torch

import toolchain
from toolchain.compress_cli import main as compress
from toolchain.data import synthetic
from toolchain.export_cli import main as export
from toolchain.methods import METHODS, MethodConfig, MethodError
from toolchain.methods.framework import parse_candidates
from toolchain.methods.hardware import HardwareProbe, HardwareTarget
from toolchain.methods.rules import RuleError, parse_rule
from toolchain.train import Trainer

SHAPE = (1, 12, 12)
DATA = synthetic(192, shape=SHAPE, classes=4)
VAL = synthetic(96, shape=SHAPE, classes=4, seed=3)


def _net():
    torch.manual_seed(0)
    return toolchain.build("cnn", input_shape=SHAPE, num_classes=4, width=0.5)


# --- the snapshot every candidate starts from ------------------------------------------------

def test_restore_returns_weights_optimizer_and_batches_to_the_snapshot():
    net = _net()
    trainer = Trainer(net, DATA, lr=1e-2, batch_size=32)
    trainer.train_steps(3)
    state = trainer.snapshot()
    first = trainer.train_steps(4)
    after = {k: v.clone() for k, v in net.state_dict().items()}
    moments = {k: v["exp_avg"].clone() for k, v in trainer.optimizer.state_dict()["state"].items()}
    trainer.restore(state)
    assert trainer.step == 3
    assert trainer.train_steps(4) == first  # same start, same batches: the same losses
    assert all(torch.equal(after[k], v) for k, v in net.state_dict().items())
    assert all(torch.equal(moments[k], v["exp_avg"]) for k, v in trainer.optimizer.state_dict()["state"].items())


# --- rules and steps --------------------------------------------------------------------------

def test_rules_score_presets_and_weighted_expressions():
    values = {"accuracy": 90.0, "latency_us": 4.0, "dsp": 12.0, "bops": 1e6}
    assert parse_rule("accuracy").score(values) == 90.0
    assert parse_rule("latency").score(values) == -4.0 and parse_rule("dsp").score(values) == -12.0
    assert parse_rule("bops").score(values) == -1e6
    assert parse_rule("accuracy-0.5*latency_us").score(values) == 88.0
    assert parse_rule("(accuracy - dsp) / 2 + -latency_us").score(values) == 35.0
    assert parse_rule("latency").needs_hardware and not parse_rule("accuracy").needs_hardware


@pytest.mark.parametrize("text, message", [
    ("accuracy - speed", "unknown metric 'speed'"),
    ("accuracy -", "cannot parse it"),
    ("__import__('os').system('true')", "only numbers, metric names"),
    ("accuracy.real", "only numbers, metric names"),
    ("accuracy ** 2", "only numbers, metric names"),
    ("'a'", "is not a number"),
])
def test_bad_rules_are_one_line_errors(text, message):
    with pytest.raises(RuleError, match=message) as e:
        parse_rule(text)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text, message", [
    ("P0,W8A8", "the pruning fraction must be in (0, 1)"),
    ("P1.5,W8A8", "the pruning fraction must be in (0, 1)"),
    ("W9A8", "bits must be in 2..8"),
    ("W1A8", "bits must be in 2..8"),
    ("Q8,W8A8", "expected P, P<fraction> or W<bits>A<bits>"),
])
def test_bad_candidates_are_one_line_errors(text, message):
    with pytest.raises(MethodError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_candidates(text, 0.1)


@pytest.mark.parametrize("config, message", [
    ({"epochs": 2, "sparsity": 0.5}, "at least 6"),
    ({"epochs": 6.5, "sparsity": 0.5}, "whole number of epochs"),
    ({"epochs": 3, "options": {"candidates": "P,W8A8"}, "weight_bits": 4}, "must include the target bits W4A8"),
    ({"epochs": 3, "options": {"prune_step": 1.0}}, "prune_step must be in (0, 1)"),
])
def test_framework_configurations_that_cannot_work_are_refused(config, message):
    with pytest.raises(MethodError, match=message.replace("(", r"\(").replace(")", r"\)")):
        METHODS["rule-framework"](MethodConfig(**config))


# --- the choices ------------------------------------------------------------------------------

def _framework(rule, hardware=None):
    """Prune half the channels in one P step or quantize to W8A8 first: one free epoch to choose.

    Pruning half of a narrow CNN costs accuracy that quantizing to 8 bits does not (and W8A8
    comes first, winning ties); with a LUT budget the dense design meets only at a higher reuse
    factor, which pruning lets fall, so P cuts the estimated latency and quantizing does not
    (the network's declared bits are 8 before and after)."""
    options = {"candidates": "W8A8,P0.5", "rule": rule, "eval_samples": 96}
    cfg = MethodConfig(sparsity=0.5, epochs=3, pretrain_epochs=2, lr=1e-2, batch_size=32, weight_bits=8,
                       act_bits=8, hardware=hardware, options=options)
    return METHODS["rule-framework"](cfg).run(_net(), DATA, VAL)


def _lut_budget():
    net = _net()
    net.train()
    with torch.no_grad():
        net(DATA.x[:64])
    return int(0.9 * HardwareProbe(HardwareTarget()).measure(net).totals["lut"])


def test_the_accuracy_and_latency_rules_choose_differently():
    by_accuracy = _framework("accuracy")
    by_latency = _framework("latency", HardwareTarget(reuse="auto", lut=_lut_budget()))
    a, b = by_accuracy.details["framework"], by_latency.details["framework"]
    assert a["map"]["1"] == "W8A8" and b["map"]["1"] == "P0.5", (a["epochs"][0], b["epochs"][0])
    first_a, first_b = a["epochs"][0], b["epochs"][0]
    assert first_a["scores"]["W8A8"] >= first_a["scores"]["P0.5"]
    assert first_b["metrics"]["P0.5"]["latency_us"] < first_b["metrics"]["W8A8"]["latency_us"]
    for result in (by_accuracy, by_latency):  # both end at the targets
        fw = result.details["framework"]
        steps = list(fw["map"].values())
        assert steps.count("P0.5") == 1 and steps.count("W8A8") == 2
        assert result.sparsity == pytest.approx(0.5)
        assert all(m.weight_bits == 8 for m in result.model.modules() if hasattr(m, "weight_bits"))


def test_two_stage_prunes_fully_then_quantizes_then_trains():
    cfg = MethodConfig(sparsity=0.5, epochs=5, pretrain_epochs=1, batch_size=32, weight_bits=4, act_bits=6,
                       options={"prune_step": 0.25})
    result = METHODS["two-stage"](cfg).run(_net(), DATA, VAL)
    assert result.details["framework"]["map"] == {"1": "P0.25", "2": "P0.25", "3": "W4A6", "4": "train", "5": "train"}
    assert result.sparsity == pytest.approx(0.5) and not result.details["framework"]["searched"]
    assert {m.weight_bits for m in result.model.modules() if hasattr(m, "weight_bits")} == {4}


# --- end to end: fpga-compress, the plot, export-fpga bit-exact -------------------------------

@pytest.mark.parametrize("method, extra", [
    ("rule-framework", ["--rule", "accuracy - 0.1*latency_us", "--candidates", "P0.25,W6A8"]),
    ("two-stage", ["--option", "prune_step=0.25"]),
])
def test_framework_methods_export_bit_exact_with_their_choices_and_plot(tmp_path, method, extra):
    npz, cal = tmp_path / "d.npz", tmp_path / "cal.npz"
    np.savez(npz, x=DATA.x.numpy(), y=DATA.y.numpy(), x_test=VAL.x.numpy(), y_test=VAL.y.numpy())
    np.savez(cal, x=VAL.x[:20].numpy(), y=VAL.y[:20].numpy())
    out = tmp_path / "m.pt"
    assert compress(["--method", method, "--data", str(npz), "--sparsity", "0.5", "--epochs", "3",
                     "--pretrain-epochs", "1", "--weight-bits", "6", "--width", "0.5", "--batch-size", "32",
                     "--quiet", "-o", str(out), *extra]) == 0
    meta = toolchain.load_metadata(out)
    choices = meta["result"]["details"]["framework"]["map"]
    assert sorted(choices) == ["1", "2", "3"] and "W6A8" in choices.values()
    png = tmp_path / "m.choices.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and meta["summary"]["choices_plot"] == str(png)
    assert export([str(out), "-o", str(tmp_path / "out"), "--calibration", str(cal), "--quiet"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    for name in ("torch_integer", "onnxruntime", "csim"):
        v = report["verification"][name]
        assert v["mismatches"] == 0 and v["elements"] == 20 * 4, (name, v)


@pytest.mark.parametrize("flags, message", [
    (["--rule", "accuracy - speed"], "unknown metric 'speed'"),
    (["--rule", "accuracy -* 2"], "cannot parse it"),
    (["--candidates", "P,W9A8"], "bits must be in 2..8"),
    (["--candidates", "P1.5,W8A8"], "the pruning fraction must be in (0, 1)"),
    (["--option", "prune_step=0"], "prune_step must be in (0, 1)"),
    (["--epochs", "2"], "at least 6"),
])
def test_bad_framework_input_is_one_line_before_training(tmp_path, capsys, flags, message):
    code = compress(["--method", "rule-framework", "--data", "synthetic", "--limit", "50", "--epochs", "6",
                     "--quiet", "-o", str(tmp_path / "m.pt"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []
