"""fpga-compress end to end on synthetic data, and its error handling."""

import json
import os
import stat

import numpy as np
import pytest
import torch

import toolchain
from toolchain.compress_cli import main
from toolchain.data import load_dataset
from toolchain.pruning import channel_groups, count_parameters

FAST = ["--data", "synthetic", "--limit", "120", "--epochs", "0.5", "--batch-size", "32", "--quiet"]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_end_to_end_writes_a_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "model.pt"
    code, stdout, err = _run(capsys, "--method", "layerwise", "--sparsity", "0.5", "--weight-bits", "4",
                             "--act-bits", "6", "--round-to", "2", "-o", str(out),
                             "--option", "steps_per_group=3", *FAST)
    assert code == 0, err
    model = toolchain.load(out)
    meta = toolchain.load_metadata(out)["summary"]
    assert meta["method"] == "layerwise" and meta["sparsity"] >= 0.5
    assert all(g.channels % 2 == 0 for g in channel_groups(model))
    assert {l.weight_bits for l in model.layers.values() if hasattr(l, "weight_bits")} == {4}
    # the reported integer accuracy is what the saved model computes
    test = load_dataset("synthetic", "test", limit=120)
    pred = toolchain.run_integer(toolchain.to_integer_model(model), test.x).argmax(1)
    assert meta["integer_accuracy"] == pytest.approx(float((pred == test.y).float().mean()))
    assert meta["bops"] < meta["bops_before"] and meta["parameters"] < meta["parameters_before"]
    for word in ("sparsity", "accuracy", "integer", "parameters", "BOPs", str(out)):
        assert word in stdout
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]       # no temporary left


def test_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "model.pt"
    out.write_bytes(b"precious")
    code, stdout, err = _run(capsys, "--method", "one-shot", "-o", str(out), *FAST)
    assert code == 2 and out.read_bytes() == b"precious"
    assert err.strip() == f"fpga-compress: error: {out} exists (use --force to overwrite)"
    code, _, err = _run(capsys, "--method", "one-shot", "-o", str(out), "--force",
                        "--option", "steps_per_group=2", *FAST)
    assert code == 0, err
    assert toolchain.load(out) is not None


def test_init_continues_from_a_checkpoint_and_npz_data_works(tmp_path, capsys):
    data = load_dataset("synthetic", "all")
    npz = tmp_path / "d.npz"
    np.savez(npz, x=data.x[:150].numpy(), y=data.y[:150].numpy())
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    fast = ["--data", str(npz), "--epochs", "0.5", "--batch-size", "32", "--quiet"]
    assert main(["--method", "stepwise", "--model", "mlp", "-o", str(first),
                 "--option", "steps_per_group=2", *fast]) == 0
    code, _, err = _run(capsys, "--method", "iterative-magnitude", "--init", str(first), "--sparsity", "0.6",
                        "--option", "iterations=2", "--option", "retrain_steps=2", "-o", str(second), *fast)
    assert code == 0, err
    a, b = toolchain.load(first), toolchain.load(second)
    assert a.spec() == b.spec()                              # continued, same architecture
    masks = [l.weight_mask for l in b.layers.values() if hasattr(l, "weight_mask")]
    assert sum(int((m == 0).sum()) for m in masks) / sum(m.numel() for m in masks) >= 0.6


@pytest.mark.parametrize("argv, message", [
    (["--method", "layerwize", "--data", "synthetic", "-o", "{out}"], "unknown method 'layerwize'"),
    (["--data", "synthetic", "-o", "{out}"], "required: --method"),
    (["--method", "layerwise", "--data", "synthetic", "-o", "{out}", "--sparsity", "1.5"], "sparsity"),
    (["--method", "layerwise", "--data", "synthetic", "-o", "{out}", "--sparsity", "x"], "invalid float"),
    (["--method", "layerwise", "--data", "synthetic", "-o", "{out}", "--weight-bits", "1"], "weight_bits"),
    (["--method", "layerwise", "--data", "mnist", "-o", "{out}"], "unknown dataset"),
    (["--method", "layerwise", "--data", "{tmp}/none.npz", "-o", "{out}"], "no such file"),
    (["--method", "layerwise", "--data", "synthetic", "-o", "{out}", "--option", "nope"], "KEY=VALUE"),
    (["--method", "layerwise", "--data", "synthetic", "-o", "{out}", "--option", "x=1"], "unknown option"),
    (["--method", "layerwise", "--data", "synthetic", "-o", "{out}", "--init", "{tmp}/no.pt"], "no such file"),
    (["--method", "layerwise", "--data", "synthetic", "-o", "{tmp}/nodir/m.pt"], "does not exist"),
    (["--method", "layerwise", "--data", "synthetic", "-o", "{out}", "--model", "vgg"], "invalid choice"),
])
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, capsys, argv, message):
    argv = [a.format(out=tmp_path / "m.pt", tmp=tmp_path) for a in argv]
    code, stdout, err = _run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fpga-compress: error: ") and message in lines[0]
    assert "Traceback" not in err and not (tmp_path / "m.pt").exists()


def test_debug_re_raises(tmp_path):
    from exporters.errors import FoldlineError
    with pytest.raises(FoldlineError):
        main(["--method", "nope", "--data", "synthetic", "-o", str(tmp_path / "m.pt"), "--debug"])


def test_init_with_the_wrong_input_shape_is_refused(tmp_path, capsys):
    ckpt = tmp_path / "small.pt"
    net = toolchain.build("mlp", input_shape=(1, 4, 4))
    net(torch.rand(4, 1, 4, 4))
    toolchain.save(net, ckpt)
    code, _, err = _run(capsys, "--method", "layerwise", "--init", str(ckpt), "-o",
                        str(tmp_path / "m.pt"), *FAST)
    assert code == 2 and "expects inputs of shape (1, 4, 4)" in err


def test_help_is_readable_with_examples(capsys):
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    assert "examples:" in out and "fpga-compress --method layerwise" in out
    for name in ("layerwise", "stepwise", "one-shot", "iterative-magnitude"):
        assert name in out


# -- issue 7: bad widths, progress in a log, parameter names, interruptions, permissions -----------

@pytest.mark.parametrize("width", ["0", "-1", "nan", "inf"])
def test_a_width_that_is_not_a_positive_number_is_refused(tmp_path, capsys, width):
    out = tmp_path / "m.pt"
    code, _, err = _run(capsys, "--method", "layerwise", "--width", width, "-o", str(out), *FAST)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0] == (f"fpga-compress: error: argument --width: must be a positive number, "
                                            f"got {width}")
    assert not out.exists()


def test_progress_lines_off_a_terminal_and_both_parameter_counts(tmp_path, capsys):
    from toolchain.export_cli import main as export_main

    out = tmp_path / "model.pt"
    not_quiet = [a for a in FAST if a != "--quiet"]
    code, stdout, err = _run(capsys, "--method", "one-shot", "-o", str(out), "--option", "steps_per_group=2",
                             *not_quiet)
    assert code == 0, err
    lines = err.splitlines()                                 # capsys: stderr is no terminal
    assert "pretrain: 2 steps" in lines and "finetune: 2 steps" in lines
    assert any(line.startswith("pretrain: done in ") and "loss " in line for line in lines)
    assert any(line.startswith("evaluating on ") and " done in " in line for line in lines)
    assert "\r" not in err                                   # no bar redraws in a log file

    meta = toolchain.load_metadata(out)["summary"]
    assert meta["parameters"] == count_parameters(toolchain.load(out))
    assert export_main([str(out), "-o", str(tmp_path / "exported"), "--hls", "none", "--quiet",
                        "--calibration", str(_calibration(tmp_path))]) == 0
    report = json.loads((tmp_path / "exported" / "report.json").read_text())
    assert meta["integer_parameters"] == report["totals"]["params"] < meta["parameters"]  # BN folded away
    assert (f"-> {meta['parameters']:,} trainable (incl. batch-norm scales and shifts); "
            f"{meta['integer_parameters']:,} integer after export (weights + folded biases)") in stdout


def _calibration(tmp_path):
    path = tmp_path / "cal.npz"
    np.savez(path, x=load_dataset("synthetic", "test", limit=8).x.numpy())
    return path


def test_quiet_prints_no_progress(tmp_path, capsys):
    code, _, err = _run(capsys, "--method", "one-shot", "-o", str(tmp_path / "m.pt"),
                        "--option", "steps_per_group=2", *FAST)
    assert code == 0 and err == ""


def test_ctrl_c_leaves_no_checkpoint_and_no_temporary(tmp_path, capsys, monkeypatch):
    def interrupted(model, path, metadata=None):
        path.write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(toolchain, "save", interrupted)
    code, _, err = _run(capsys, "--method", "one-shot", "-o", str(tmp_path / "m.pt"),
                        "--option", "steps_per_group=2", *FAST)
    assert code == 130 and err.strip() == "fpga-compress: interrupted"
    assert list(tmp_path.iterdir()) == []


def test_the_checkpoint_honours_the_umask(tmp_path, capsys):
    previous = os.umask(0o027)
    try:
        code, _, err = _run(capsys, "--method", "one-shot", "-o", str(tmp_path / "m.pt"),
                            "--option", "steps_per_group=2", *FAST)
    finally:
        os.umask(previous)
    assert code == 0, err
    assert stat.S_IMODE((tmp_path / "m.pt").stat().st_mode) == 0o640


def test_the_same_seed_gives_the_same_model_in_one_process(tmp_path, capsys):
    """--seed fixes the new model's initial weights too, not only training (a sweep runs
    configurations one after another in one process)."""
    states = []
    for run in ("a", "b"):
        torch.rand(7)  # whatever ran before in this process must not matter
        code, _, err = _run(capsys, "--method", "one-shot", "--model", "mlp", "-o", str(tmp_path / f"{run}.pt"), *FAST)
        assert code == 0, err
        states.append(toolchain.load(tmp_path / f"{run}.pt").state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
