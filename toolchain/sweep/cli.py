"""``fpga-sweep``: run every configuration of a sweep file, collect one table (docs/sweep.md).

Exit codes: 0 every configuration finished and ok; 1 some configuration failed (the
tables are written, the error and log of each failure in them); 2 a bad sweep file or
command line (one line on stderr, nothing run, nothing written); 130 interrupted (143
SIGTERM, 129 SIGHUP; finished configurations are kept, the next run resumes).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shlex
import sys
from pathlib import Path

from exporters.errors import run_cli
from toolchain.sweep.grid import STAGES, SweepError, load_sweep
from toolchain.sweep.jobs import make_jobs, prog, stage_argv
from toolchain.sweep.runner import import_ray, run_folder, run_sweep
from toolchain.sweep.table import write_tables

PROG = "fpga-sweep"
EXIT_FAILED = 1
LOCK = ".fpga-sweep.lock"

EPILOG = """\
examples:
  fpga-sweep benchmarks/sweeps/quick.toml -o sweep_out            # in this process, one after the other
  fpga-sweep benchmarks/sweeps/quick.toml -o sweep_out --list     # show the commands, run nothing
  fpga-sweep benchmarks/sweeps/quick.toml -o sweep_out --ray --num-cpus 2   # a local Ray instance
  RAY_ADDRESS=ray://head:10001 fpga-sweep sweep.toml -o /shared/out         # a Ray cluster

A re-run skips configurations already finished (runs/<key>/result.json); --retry-failed
runs the failed ones again, --force every one. Results: OUT/results.json, OUT/results.md.

exit codes:
  0 all ok   1 some configuration failed (tables written)   2 bad input (nothing run)
  130 interrupted (finished configurations kept)
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse would print the usage too)
        raise SweepError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Run fpga-compress + export-fpga for every configuration of a sweep file "
                            "(a TOML grid) and collect their reports into one table.")
    p.add_argument("sweep", type=Path, help="sweep file (TOML; format: docs/sweep.md)")
    p.add_argument("-o", "--out", required=True, type=Path,
                   help="output folder: runs/<key>/ per configuration, results.json, results.md")
    p.add_argument("--ray", action="store_true",
                   help="run the configurations as Ray tasks (also when RAY_ADDRESS is set); "
                        "needs pip install -e '.[sweep]'")
    p.add_argument("--num-cpus", type=int, default=None, metavar="N",
                   help="CPUs of the local Ray instance (default: all); not with RAY_ADDRESS")
    p.add_argument("--force", action="store_true", help="run every configuration, finished or not")
    p.add_argument("--retry-failed", action="store_true", help="run failed configurations again")
    p.add_argument("--list", action="store_true", help="print each configuration's commands; run nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_cli(PROG, lambda: _run(build_parser().parse_args(argv), argv))


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    address = os.environ.get("RAY_ADDRESS") or None
    if args.num_cpus is not None and (address or not args.ray):
        raise SweepError("--num-cpus sizes a local Ray instance: use it with --ray and without RAY_ADDRESS")
    if args.num_cpus is not None and args.num_cpus < 1:
        raise SweepError(f"--num-cpus must be at least 1, got {args.num_cpus}")
    if args.out.exists() and not args.out.is_dir():
        raise SweepError(f"{args.out} exists and is not a folder")
    use_ray = args.ray or address is not None
    if use_ray and not args.list:
        import_ray()
    configs = load_sweep(args.sweep)
    try:
        jobs = make_jobs(configs)
    except SweepError as exc:
        raise SweepError(f"{args.sweep}: {exc}") from None
    out = args.out.resolve()
    if args.list:
        for job in jobs:
            run = run_folder(out, job)
            print(job.key)
            for stage in STAGES:
                print(f"  {prog(stage)} {shlex.join(stage_argv(job, stage, run))}")
        return 0
    (out / "runs").mkdir(parents=True, exist_ok=True)
    with _only_sweep_in(out):
        rows = run_sweep(jobs, out, ray_address=address, use_ray=use_ray,
                         num_cpus=args.num_cpus, force=args.force, retry_failed=args.retry_failed)
        write_tables(out, rows, [PROG, *argv])
    print(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    all_ok = len(rows) == len(jobs) and all(r["status"] == "ok" for r in rows)
    return 0 if all_ok else EXIT_FAILED


@contextlib.contextmanager
def _only_sweep_in(out: Path):
    """Hold ``out/.fpga-sweep.lock`` (an advisory lock, released when the process ends): a
    second sweep on the same folder would remove the run folders the first is writing."""
    with open(out / LOCK, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepError(f"{out} is in use by another fpga-sweep (it holds {out / LOCK})") from None
        yield
