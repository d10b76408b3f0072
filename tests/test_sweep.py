"""fpga-sweep: a TOML grid -> fpga-compress + export-fpga per configuration -> one table.

The runs are tiny (an MLP on 64 synthetic samples, one epoch, export without HLS). Every
configuration starts from one saved checkpoint (``--init``): fpga-compress seeds its
training but not a new model's initial weights, and the Ray test needs runs that repeat.
"""

import argparse
import fcntl
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import toolchain
from toolchain import export_cli
from toolchain.sweep import cli, jobs
from toolchain.sweep.flags import to_argv
from toolchain.sweep.grid import SweepError, config_key

ROOT = Path(__file__).resolve().parents[1]
SAMPLES, CLASSES, LIMIT = 16, 10, 64
METHODS = ("one-shot", "stepwise")


def _sweep_text(init: Path, extra: str = "") -> str:
    return f"""
[compress]
data = "synthetic"
init = "{init}"
epochs = 0.5
limit = {LIMIT}
quiet = true

[export]
hls = "none"
samples = {SAMPLES}
quiet = true

[grid.compress]
method = {json.dumps(list(METHODS))}
{extra}"""


@pytest.fixture(scope="module")
def init(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("init") / "init.pt"
    toolchain.save(toolchain.build("mlp", input_shape=(1, 28, 28), num_classes=CLASSES, hidden=(16, 8)), path)
    return path


@pytest.fixture(scope="module")
def local(tmp_path_factory, init):
    """The two-configuration sweep, run once in this process: (sweep file, output folder, exit code)."""
    folder = tmp_path_factory.mktemp("sweep")
    sweep = folder / "sweep.toml"
    sweep.write_text(_sweep_text(init))
    out = folder / "out"
    return sweep, out, cli.main([str(sweep), "-o", str(out)])


def _rows(out: Path) -> list[dict]:
    with open(out / "results.json") as f:
        return json.load(f)["rows"]


def _without_times(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


class _Counting:
    """Wraps jobs.run_job to count the jobs that really run."""

    def __init__(self):
        self.calls, self._run = 0, jobs.run_job

    def __call__(self, job, folder):
        self.calls += 1
        return self._run(job, folder)


def test_two_configurations_in_process(local, init):
    sweep, out, code = local
    assert code == 0
    rows = _rows(out)
    expected = [{"compress": {"data": "synthetic", "init": str(init), "epochs": 0.5, "limit": LIMIT, "quiet": True,
                              "method": m},
                 "export": {"hls": "none", "samples": SAMPLES, "quiet": True}} for m in METHODS]
    assert [r["config"] for r in rows] == expected
    assert [r["key"] for r in rows] == [config_key(c) for c in expected]
    for row, method in zip(rows, METHODS):
        assert row["status"] == "ok" and row["error"] is None
        assert row["exit_codes"] == {"compress": 0, "export": 0}
        assert all(s > 0 for s in row["wall_s"].values())
        # the options reached the CLIs: the method, --limit (test split size), --samples
        summary = row["compress"]["summary"]
        assert (summary["method"], summary["test_samples"]) == (method, LIMIT)
        for name, check in row["export"]["verification"].items():
            assert (check["samples"], check["elements"], check["mismatches"]) == (SAMPLES, SAMPLES * CLASSES, 0), name
        assert "layers" not in row["export"] and row["export"]["totals"]["bops"] > 0
        assert 0.0 <= summary["integer_accuracy"] <= 1.0
        log = (out / row["log"]).read_text()
        assert log.count("$ fpga-compress") == 1 and log.count("$ export-fpga") == 1
    table = (out / "results.md").read_text()
    for row in rows:
        line = next(line for line in table.splitlines() if line.startswith(f"| {row['key']} |"))
        assert f"| {row['compress']['summary']['method']} |" in line
        assert f"{SAMPLES * CLASSES}/{SAMPLES * CLASSES}" in line


def test_ray_gives_the_same_table(local, tmp_path):
    ray = pytest.importorskip("ray")
    sweep, out, _ = local
    assert not ray.is_initialized()
    assert cli.main([str(sweep), "-o", str(tmp_path / "ray"), "--ray", "--num-cpus", "2"]) == 0
    assert not ray.is_initialized()  # the sweep stops the instance it started
    assert _without_times(_rows(tmp_path / "ray")) == _without_times(_rows(out))


def test_rerun_skips_finished_configurations(local, tmp_path, monkeypatch, capsys):
    sweep, out, _ = local
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    results = sorted(copy.glob("runs/*/result.json")) + sorted(copy.glob("runs/*/log.txt"))
    before = [p.stat().st_mtime_ns for p in results]
    counter = _Counting()
    monkeypatch.setattr(jobs, "run_job", counter)
    assert cli.main([str(sweep), "-o", str(copy)]) == 0
    assert counter.calls == 0
    assert [p.stat().st_mtime_ns for p in results] == before
    assert capsys.readouterr().err.count("skipped: finished before (ok)") == len(METHODS)
    assert _rows(copy) == _rows(out)

    assert cli.main([str(sweep), "-o", str(copy), "--force"]) == 0
    assert counter.calls == len(METHODS)
    assert _without_times(_rows(copy)) == _without_times(_rows(out))


def test_a_failed_configuration_is_recorded_and_the_sweep_goes_on(init, tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(_sweep_text(init).replace(json.dumps(list(METHODS)), '["one-shot"]')
                     + '\n[[configs]]\ncompress = { method = "one-shot", option = { no_such_option = 1 } }\n')
    out = tmp_path / "out"
    assert cli.main([str(sweep), "-o", str(out)]) == 1
    good, bad = _rows(out)
    assert good["status"] == "ok" and good["export"]["verification"]
    assert bad["status"] == "failed" and bad["exit_codes"] == {"compress": 2, "export": None}
    assert bad["error"].startswith("fpga-compress: error:") and "no_such_option" in bad["error"]
    assert "\n" not in bad["error"] and bad["error"] in (out / bad["log"]).read_text()
    assert bad["export"] is None and not (out / "runs" / bad["key"] / "model.pt").exists()
    assert bad["key"] in (out / "results.md").read_text()
    err = capsys.readouterr().err
    assert f"{bad['key']} failed: fpga-compress: error:" in err and f"{good['key']} ok" in err

    counter = _Counting()
    monkeypatch.setattr(jobs, "run_job", counter)
    assert cli.main([str(sweep), "-o", str(out)]) == 1  # still failed, not run again
    assert counter.calls == 0
    assert cli.main([str(sweep), "-o", str(out), "--retry-failed"]) == 1
    assert counter.calls == 1


def test_a_stage_that_raises_is_recorded(init, tmp_path, monkeypatch):
    def broken(argv):
        raise RuntimeError("boom\nsecond line")

    sweep = tmp_path / "sweep.toml"
    sweep.write_text(_sweep_text(init).replace(json.dumps(list(METHODS)), '["one-shot"]'))
    monkeypatch.setattr(export_cli, "main", broken)
    assert cli.main([str(sweep), "-o", str(tmp_path / "out")]) == 1
    (row,) = _rows(tmp_path / "out")
    assert row["status"] == "failed" and row["exit_codes"] == {"compress": 0, "export": None}
    assert row["error"] == "export-fpga raised RuntimeError: boom second line"
    assert row["compress"]["summary"]["method"] == "one-shot"  # what finished is still reported
    assert "Traceback" in (tmp_path / "out" / row["log"]).read_text()


def test_an_interrupted_stage_stops_the_sweep_and_is_not_kept(init, tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(_sweep_text(init))
    monkeypatch.setattr(export_cli, "main", lambda argv: 128 + signal.SIGTERM)  # what run_cli returns
    assert cli.main([str(sweep), "-o", str(tmp_path / "out")]) == 128 + signal.SIGTERM
    assert "interrupted, not kept" in capsys.readouterr().err
    assert len(list((tmp_path / "out").glob("runs/*"))) == 1  # the second configuration never started
    assert not list((tmp_path / "out").glob("runs/*/result.json"))  # the next run starts it again
    assert not (tmp_path / "out" / "results.json").exists()


BAD_SWEEPS = {
    "unknown table": ('[compres]\ndata = "synthetic"\n', "unknown table [compres]"),
    "unknown top-level key": ('method = "one-shot"\n', "unknown top-level key 'method'"),
    "empty grid": ('[compress]\ndata = "synthetic"\n[grid]\n', "[grid] has no list"),
    "empty grid list": ('[grid.compress]\nmethod = []\n', "grid.compress.method is an empty list"),
    "grid value not a list": ('[grid.compress]\nmethod = "one-shot"\n', "grid.compress.method must be a list"),
    "grid key outside a stage": ('[grid]\nmethod = ["one-shot"]\n', "grid.method: grid values live under"),
    "no configurations": ('[compress]\ndata = "synthetic"\n', "no configurations"),
    "fixed and varied": ('[compress]\nseed = 0\n[grid.compress]\nseed = [0, 1]\n', "grid.compress.seed is also set"),
    "unknown flag": ('[compress]\nno_such_flag = 1\n[grid.compress]\nseed = [0]\n',
                     "compress.no_such_flag: fpga-compress has no --no-such-flag option"),
    "switch given a number": ('[export]\nquiet = 1\n[grid.compress]\nseed = [0]\n', "export.quiet: --quiet is a switch"),
    "path the sweep sets": ('[compress]\noutput = "x.pt"\n[grid.compress]\nseed = [0]\n', "compress.output: the sweep sets"),
    "table for a single flag": ('[grid.compress]\nseed = [{ a = 1 }]\n', "compress.seed: a table"),
    "not a number": ('[grid.compress]\nsparsity = [nan]\n', "grid.compress.sparsity[0]: nan is not a finite number"),
    "invalid TOML": ('[grid.compress\n', "invalid TOML"),
}


@pytest.mark.parametrize("case", BAD_SWEEPS)
def test_bad_sweep_files_give_one_line(case, tmp_path, capsys):
    text, message = BAD_SWEEPS[case]
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(text)
    assert cli.main([str(sweep), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fpga-sweep: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "out").exists()


def test_a_second_sweep_on_a_busy_folder_is_refused(local, tmp_path, capsys):
    sweep, out, _ = local
    with open(out / ".fpga-sweep.lock", "a") as held:  # what a running sweep holds
        fcntl.flock(held, fcntl.LOCK_EX)
        assert cli.main([str(sweep), "-o", str(out), "--force"]) == 2
    assert "is in use by another fpga-sweep" in capsys.readouterr().err


def test_unreadable_sweep_file(tmp_path, capsys):
    assert cli.main([str(tmp_path / "missing.toml"), "-o", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"fpga-sweep: error: cannot read {tmp_path / 'missing.toml'}: " \
                                      "No such file or directory\n"
    assert not (tmp_path / "out").exists()


def test_values_follow_what_each_flag_expects():
    p = argparse.ArgumentParser(prog="demo")
    p.add_argument("--bits")
    p.add_argument("--fast", action="store_true")
    p.add_argument("--tag", action="append")
    assert to_argv(p, {"bits": [4, 8, 8], "fast": False, "tag": ["a", "b"]}, "s") == [
        "--bits", "4,8,8", "--tag", "a", "--tag", "b"]
    assert p.parse_args(to_argv(p, {"bits": 0.5, "fast": True}, "s")) == argparse.Namespace(
        bits="0.5", fast=True, tag=None)
    with pytest.raises(SweepError, match="s.bits: --bits takes a value, not true"):
        to_argv(p, {"bits": True}, "s")


def test_shipped_example_lists_its_commands(tmp_path):
    """benchmarks/sweeps/quick.toml stays valid for the CLIs' current flags (python -m toolchain.sweep)."""
    done = subprocess.run([sys.executable, "-m", "toolchain.sweep", str(ROOT / "benchmarks/sweeps/quick.toml"),
                           "-o", str(tmp_path / "out"), "--list"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    commands = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")]
    assert commands and commands == ["fpga-compress", "export-fpga"] * (len(commands) // 2)
    assert not (tmp_path / "out").exists()
