"""Run a sweep's jobs (in this process, or as Ray tasks), skip finished ones, report progress.

A configuration is *finished* when its run folder holds a complete ``result.json``: one
that parses and names the same key and configuration (it is written atomically, last, by
this process once the job has returned, so a job killed half-way leaves none). A re-run
skips finished configurations; ``retry_failed`` runs the failed ones again, ``force``
every one. Rows come back in the sweep file's order whatever order the jobs finish in;
one progress line per configuration goes to ``progress`` (stderr) as it finishes.

On Ray, each job is ``ray.remote(run_job)``, one CPU each; the sweep's output folder must
be one every worker sees (the same path on a shared file system, for a cluster). The
rows travel back to this process, which writes every ``result.json`` and the tables.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from exporters.errors import Interrupted, one_line
from toolchain.sweep import jobs as jobs_module
from toolchain.sweep.grid import SweepError
from toolchain.sweep.jobs import Job, RunFolder
from toolchain.sweep.table import label, varying, write_json

RAY_MISSING = "Ray is not installed (--ray or RAY_ADDRESS): pip install -e '.[sweep]'"


def run_folder(out: Path, job: Job) -> RunFolder:
    return RunFolder(out / "runs" / job.key)


def finished(run: RunFolder, job: Job) -> dict | None:
    """The row of an earlier, complete run of ``job``, or None."""
    try:
        with open(run.result, encoding="utf-8") as f:
            row = json.load(f)
    except (OSError, ValueError):
        return None
    complete = isinstance(row, dict) and row.get("key") == job.key and row.get("config") == job.config
    return row if complete and row.get("status") in ("ok", "failed") else None


def run_sweep(jobs: list[Job], out: Path, *, ray_address: str | None = None, use_ray: bool = False,
              num_cpus: int | None = None, force: bool = False, retry_failed: bool = False,
              progress=None) -> list[dict]:
    """Run every job not finished before; return every job's row, in ``jobs``' order."""
    progress = progress or sys.stderr
    out = Path(out).resolve()
    paths = varying([j.config for j in jobs])
    rows, todo = {}, []
    for job in jobs:
        previous = None if force else finished(run_folder(out, job), job)
        if previous is not None and not (retry_failed and previous["status"] == "failed"):
            rows[job.key] = previous
        else:
            todo.append(job)
    count = _Counter(len(jobs), progress)
    for key in rows:
        count.line(key, f"skipped: finished before ({rows[key]['status']})")
    start = time.perf_counter()
    # (Ray is started only when there is something to run)
    results = _on_ray(todo, out, ray_address, num_cpus) if use_ray and todo else _here(todo, out)
    for job, row in results:
        text = label(job.config, paths)
        if row["status"] == "interrupted":
            count.line(job.key, f"interrupted, not kept  {text}")
            if not use_ray:  # the user stopped a stage: stop the sweep, with the stage's signal
                raise Interrupted(max(c for c in row["exit_codes"].values() if c is not None) - 128)
            continue
        write_json(run_folder(out, job).result, row)
        rows[job.key] = row
        seconds = sum(s for s in row["wall_s"].values() if s is not None)
        verdict = row["status"] if row["error"] is None else f"{row['status']}: {row['error']}"
        count.line(job.key, f"{verdict}  {text}  ({seconds:.1f} s)")
    count.done(time.perf_counter() - start)
    return [rows[j.key] for j in jobs if j.key in rows]


class _Counter:
    def __init__(self, total: int, stream):
        self.total, self.stream, self.n = total, stream, 0

    def line(self, key: str, text: str) -> None:
        self.n += 1
        print(f"fpga-sweep: [{self.n}/{self.total}] {key} {text}", file=self.stream, flush=True)

    def done(self, seconds: float) -> None:
        print(f"fpga-sweep: {self.n}/{self.total} configurations in {seconds:.1f} s", file=self.stream,
              flush=True)


def _here(todo: list[Job], out: Path) -> Iterator[tuple[Job, dict]]:
    """Run the jobs one after the other in this process."""
    for job in todo:
        yield job, jobs_module.run_job(job, str(run_folder(out, job).path))


def _on_ray(todo: list[Job], out: Path, address: str | None, num_cpus: int | None
            ) -> Iterator[tuple[Job, dict]]:
    """Run the jobs as Ray tasks; yield each as it finishes. Starts (and stops) a local Ray
    instance, or connects to ``address``, unless Ray is already initialised."""
    ray = import_ray()
    owned = not ray.is_initialized()
    if owned and address:
        ray.init(address=address)
    elif owned:
        ray.init(num_cpus=num_cpus, include_dashboard=False)
    try:
        remote = ray.remote(num_cpus=1)(jobs_module.run_job)
        pending = {remote.remote(job, str(run_folder(out, job).path)): job for job in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(done[0])
            try:
                row = ray.get(done[0])
            except ray.exceptions.RayError as exc:  # the worker died: record it, go on
                row = jobs_module.new_row(job, run_folder(out, job))
                row.update(status="failed", error=f"ray: {type(exc).__name__}: {one_line(exc)[:300]}")
            yield job, row
    finally:
        if owned:
            ray.shutdown()


def import_ray():
    """Ray, imported only when a sweep uses it (an optional dependency)."""
    try:
        import ray
    except ImportError:
        raise SweepError(RAY_MISSING) from None
    return ray
