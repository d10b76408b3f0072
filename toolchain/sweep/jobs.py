"""One configuration of a sweep as an independent job: fpga-compress, then export-fpga, then a row.

:func:`run_job` is the unit of work both runners use, in this process or as a Ray task:
it takes only plain data (a :class:`Job`, a folder path), writes only inside its run
folder, and returns the row as plain data, so any machine that sees the folder can run it.

The run folder ``<sweep out>/runs/<key>/`` holds

- ``model.pt``   the checkpoint fpga-compress writes (``--output``);
- ``export/``    export-fpga's output folder (``--out``): model.onnx, report.json, ...;
- ``log.txt``    both commands' stdout and stderr, each after a ``$ command`` line;
- ``result.json`` the row, written by the runner once the job has returned.

A job starts from an empty run folder (an earlier, unfinished attempt is removed: the
folder belongs to the sweep), so the CLIs never need ``--force``.

A stage that raises or exits nonzero fails the configuration: the row's ``error`` is one
line (the CLI's own ``PROG: error: ...`` line when it printed one) and ``log`` names the
log file; nothing is raised. A stage that was interrupted (its CLI returned
``128 + SIGINT/SIGTERM/SIGHUP``) makes the row ``interrupted``: the runner does not keep
it, so the next run tries the configuration again.
"""

from __future__ import annotations

import io
import json
import math
import shlex
import shutil
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from exporters.errors import STOP_SIGNALS, FoldlineError, one_line
from toolchain import compress_cli, export_cli
from toolchain.checkpoint import load_metadata
from toolchain.sweep.flags import to_argv
from toolchain.sweep.grid import STAGES, SweepError, config_key

#: Exit codes of a CLI stopped by the user (``exporters.errors.run_cli``).
INTERRUPTED_CODES = frozenset(128 + int(sig) for sig in STOP_SIGNALS)
#: Options the sweep gives each CLI itself (the run folder's paths).
RESERVED = {"compress": ("output",), "export": ("out", "example")}
CLIS: dict[str, ModuleType] = {"compress": compress_cli, "export": export_cli}
REPORT_OMITTED = ("layers",)  # per-layer detail stays in the run folder's report.json
METADATA_OMITTED = ("fpga-compress",)  # the argv: the configuration already says it


@dataclass(frozen=True)
class Job:
    """A resolved configuration, its key, and each stage's arguments (without the run paths)."""

    key: str
    config: dict
    argv: dict


@dataclass(frozen=True)
class RunFolder:
    """The paths of one configuration's run (see the module docstring)."""

    path: Path

    @property
    def checkpoint(self) -> Path:
        return self.path / "model.pt"

    @property
    def export(self) -> Path:
        return self.path / "export"

    @property
    def log(self) -> Path:
        return self.path / "log.txt"

    @property
    def result(self) -> Path:
        return self.path / "result.json"


def make_jobs(configs: list[dict]) -> list[Job]:
    """A :class:`Job` per configuration; raises :class:`SweepError` for an option a CLI lacks."""
    parsers = {stage: CLIS[stage].build_parser() for stage in STAGES}
    jobs = []
    for config in configs:
        for stage in STAGES:
            taken = [k for k in RESERVED[stage] if k in config[stage]]
            if taken:
                raise SweepError(f"{stage}.{taken[0]}: the sweep sets {parsers[stage].prog}'s paths itself "
                                 "(runs/<key>/ under the sweep's output folder)")
        argv = {stage: to_argv(parsers[stage], config[stage], stage) for stage in STAGES}
        jobs.append(Job(config_key(config), config, argv))
    return jobs


def prog(stage: str) -> str:
    """The name the stage's CLI calls itself (its parser's ``prog``)."""
    return CLIS[stage].build_parser().prog


def stage_argv(job: Job, stage: str, run: RunFolder) -> list[str]:
    """The full command line of ``stage``: the run folder's paths, then the configuration's options."""
    paths = {"compress": ["--output", str(run.checkpoint)],
             "export": [str(run.checkpoint), "--out", str(run.export)]}
    return paths[stage] + job.argv[stage]


def run_job(job: Job, folder: str) -> dict:
    """Run ``job`` in the run folder ``folder`` and return its row (never raises for a failed stage)."""
    run = RunFolder(Path(folder))
    if run.path.exists():
        shutil.rmtree(run.path)
    run.path.mkdir(parents=True)
    row = new_row(job, run)
    with open(run.log, "w", encoding="utf-8") as log:
        for stage in STAGES:
            code, error, seconds = _run_stage(stage, stage_argv(job, stage, run), log)
            row["exit_codes"][stage], row["wall_s"][stage] = code, round(seconds, 3)
            if code in INTERRUPTED_CODES:
                row.update(status="interrupted", error=error)
                return row
            if code != 0 and row["error"] is None:
                row.update(status="failed", error=error)
            if not run.checkpoint.is_file():
                break  # nothing for the next stage to read
    try:
        row.update(_outputs(run))
    except (OSError, ValueError, FoldlineError) as exc:  # an unreadable checkpoint or report
        row.update(status="failed", error=row["error"] or f"reading the outputs: {one_line(exc)}")
    return _finite(row)


def new_row(job: Job, run: RunFolder) -> dict:
    """The row of a job that has not run a stage yet (``log`` is relative to the sweep folder)."""
    return {"key": job.key, "config": job.config, "status": "ok", "error": None,
            "log": str(Path(run.path.parent.name, run.path.name, run.log.name)),
            "exit_codes": dict.fromkeys(STAGES), "wall_s": dict.fromkeys(STAGES),
            "compress": None, "export": None}


class _StderrLog(io.TextIOBase):
    """A stage's stderr: written to the log, and the last ``PROG: error:`` line remembered."""

    def __init__(self, log, prog: str):
        self._log, self._marker, self._pending, self.error_line = log, f"{prog}: error:", "", None

    def write(self, text: str) -> int:
        self._log.write(text)
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            if line.startswith(self._marker):
                self.error_line = line.strip()
        return len(text)

    def finish(self) -> None:
        """Look at a last line that had no newline."""
        if self._pending:
            self.write("\n")


def _run_stage(stage: str, argv: list[str], log) -> tuple[int | None, str, float]:
    """Run one stage's CLI in this process with its output in ``log``: (exit code, error line, seconds)."""
    name = prog(stage)
    print(f"$ {name} {shlex.join(argv)}", file=log, flush=True)
    err = _StderrLog(log, name)
    start = time.perf_counter()
    try:
        with redirect_stdout(log), redirect_stderr(err):
            code = CLIS[stage].main(argv)
    except Exception as exc:  # a bug in one configuration's run must not end the sweep
        traceback.print_exc(file=log)
        return None, f"{name} raised {type(exc).__name__}: {one_line(exc)}", time.perf_counter() - start
    finally:
        err.finish()
        log.flush()
    error = err.error_line or f"{name} exited {code}"
    return code, error, time.perf_counter() - start


def _outputs(run: RunFolder) -> dict:
    """The checkpoint's metadata and export-fpga's report, where the stages wrote them."""
    out = {}
    if run.checkpoint.is_file():
        metadata = load_metadata(run.checkpoint)
        out["compress"] = {k: v for k, v in metadata.items() if k not in METADATA_OMITTED}
    report = run.export / "report.json"
    if report.is_file():
        with open(report, encoding="utf-8") as f:
            out["export"] = {k: v for k, v in json.load(f).items() if k not in REPORT_OMITTED}
    return out


def _finite(value):
    """``value`` with every NaN or infinity replaced by None: rows are strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
