"""Run a generated project here: C simulation with g++, and a dry run of build_prj.tcl.

:func:`run_csim` compiles the firmware and the testbench with g++ against the ``ap_types``
headers shipped in the hls4ml wheel (the same Xilinx headers the vendor tools use; no vendor
tool needed) and runs the testbench on ``tb_data/``. Build products go to ``<project>/csim/``
(the compiler's output to ``csim/build.log``, the testbench's to ``csim/csim.log``); nothing is
deleted, so a failing project stays there for inspection, and a :class:`ToolError` names the
log (``.log_path``).

:func:`dry_run_tcl` runs ``build_prj.tcl`` under plain ``tclsh`` with every HLS command
replaced by a stub that records it, and checks the sequence and that every file exists.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hls_templates.errors import ProjectError, ToolError
from hls_templates.project import CSIM_STD, _package_file

SETUP = ("open_project", "set_top", "add_files", "open_solution", "set_part", "create_clock")
STEPS = ("csim_design", "csynth_design", "cosim_design", "export_design")
_SUMMARY = re.compile(r"^FOLDLINE CSIM samples=(\d+) elements=(\d+) mismatches=(\d+)$", re.M)
_FIRST = re.compile(r"^FOLDLINE FIRST_MISMATCH sample=(\d+) index=(\d+) got=(-?\d+) expected=(-?\d+)$", re.M)
_STREAM_WARNING = re.compile(r"^WARNING: Hls::stream .*$", re.M)
_NONZERO = re.compile(r"\bn_nonzero = (\d+);")
BUILD_LOG = "build.log"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mismatch:
    sample: int
    index: int
    got: int
    expected: int

    def __str__(self) -> str:
        return (f"sample {self.sample}, output {self.index} (model order): got {self.got}, "
                f"expected {self.expected}")


@dataclass(frozen=True)
class CsimResult:
    """Outcome of one C simulation: counts over every output element of every sample."""

    samples: int
    elements: int
    mismatches: int
    first_mismatch: Mismatch | None
    project_dir: Path | None = None
    log: str = field(default="", repr=False)
    stream_warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and not self.stream_warnings

    def __str__(self) -> str:
        text = f"csim: {self.elements - self.mismatches}/{self.elements} elements equal"
        if self.first_mismatch:
            text += f"; first mismatch: {self.first_mismatch}"
        if self.stream_warnings:
            text += f"; {len(self.stream_warnings)} hls::stream warnings (e.g. {self.stream_warnings[0]})"
        return text


def ap_types_dir() -> Path:
    """The Xilinx ``ap_types`` headers: ``$FOLDLINE_AP_TYPES``, else the copy in the hls4ml wheel."""
    env = os.environ.get("FOLDLINE_AP_TYPES")
    candidates = [Path(env)] if env else []
    spec = importlib.util.find_spec("hls4ml")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            candidates.append(Path(root) / "templates" / "vivado" / "ap_types")
    for path in candidates:
        if (path / "ap_int.h").is_file():
            return path
    raise ToolError("ap_types headers (ap_int.h) not found: install hls4ml (pip install hls4ml==1.3.0) "
                    "or set FOLDLINE_AP_TYPES to a directory holding ap_int.h")


def _top_name(project: Path) -> str:
    tests = sorted(project.glob("*_test.cpp"))
    if len(tests) != 1 or not (project / "firmware").is_dir():
        raise ProjectError(f"{project} is not a Foldline HLS project (expected one *_test.cpp and firmware/)")
    return tests[0].name[: -len("_test.cpp")]


def _first_errors(text: str, limit: int = 6) -> str:
    lines = [ln for ln in text.splitlines() if "error" in ln.lower()]
    return " | ".join((lines or text.strip().splitlines() or ["(no output)"])[:limit])


def compile_testbench(project_dir, *, cxx: str = "g++", opt: str = "-O2", extra_flags=()) -> Path:
    """Compile the project's firmware and testbench (two g++ processes in parallel, then link);
    returns the executable ``<project>/csim/<top>_csim``. Skipped when the executable is newer
    than every source and was built with the same command.

    Every command and its output go to ``<project>/csim/build.log`` (kept on success too); a
    failure raises :class:`~hls_templates.errors.ToolError` quoting the first error lines and
    naming that log (also as ``.log_path``). A line says before the build what is compiled and
    after it how long it took (:func:`_progress`).
    """
    project = Path(project_dir).resolve()
    top = _top_name(project)
    compiler = shutil.which(cxx)
    if compiler is None:
        raise ToolError(f"C++ compiler '{cxx}' not found on PATH; install g++ (e.g. apt-get install g++) to run csim")
    build = project / "csim"
    build.mkdir(exist_ok=True)
    # paths relative to the project (the commands run there), so a copied project stays built
    flags = [CSIM_STD, opt, "-I", "firmware", "-I", str(ap_types_dir()), *extra_flags]
    sources = [f"firmware/{top}.cpp", f"{top}_test.cpp"]
    objects = [f"csim/{Path(s).stem}.o" for s in sources]
    exe = build / f"{top}_csim"
    stamp = build / "build.txt"
    signature = " ".join([compiler, *flags])
    if _up_to_date(exe, stamp, signature, [*project.joinpath("firmware").rglob("*"), project / sources[1]]):
        return exe
    log_path = build / BUILD_LOG
    stamp.unlink(missing_ok=True)
    _progress(f"compiling C simulation of {project.name} ({_weight_count(project):,} nonzero weights)...")
    start = time.perf_counter()
    compiles = [(f"g++ failed on {s}", [compiler, *flags, "-c", s, "-o", o]) for s, o in zip(sources, objects)]
    procs = [subprocess.Popen(c, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _, c in compiles]
    try:
        steps = [(what, c, p.communicate()[0], p.returncode) for (what, c), p in zip(compiles, procs)]
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): no compiler keeps running on its own
        for p in procs:
            p.kill()
            p.wait()
        raise
    if all(code == 0 for *_, code in steps):
        link = [compiler, *objects, "-o", f"csim/{exe.name}"]
        run = subprocess.run(link, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        steps.append(("linking the C simulation failed", link, run.stdout, run.returncode))
    log_path.write_text("".join(f"$ {shlex.join(c)}\n{out}[exit {code}]\n\n" for _, c, out, code in steps))
    for what, _, out, code in steps:
        if code != 0:
            killed = f" (killed by signal {-code}: out of memory?)" if code < 0 else ""
            raise ToolError(f"{what}{killed}: {_first_errors(out)} (full log: {log_path})", log_path=log_path)
    stamp.write_text(signature)
    _progress(f"compiled in {time.perf_counter() - start:.1f} s")
    return exe


def _weight_count(project: Path) -> int:
    """The nonzero weights of every layer (``n_nonzero`` in ``parameters.h``): what g++ reads."""
    params = project / "firmware" / "parameters.h"
    text = params.read_text() if params.is_file() else ""
    return sum(int(n) for n in _NONZERO.findall(text))


def _progress(line: str) -> None:
    """One plain progress line: through the ``hls_templates.csim`` logger (INFO) when the
    application has configured logging, else on stderr, so a CLI that configures nothing still
    tells a user reading its log file that a compile is under way. A quiet CLI silences it by
    raising the logger's level above INFO."""
    if not _log.isEnabledFor(logging.INFO) and _log.level > logging.NOTSET:
        return
    if _log.hasHandlers():
        _log.info(line)
    else:
        print(line, file=sys.stderr, flush=True)


def _up_to_date(exe: Path, stamp: Path, signature: str, inputs) -> bool:
    """The executable exists, was built with the same command, and is newer than every input."""
    if not (exe.is_file() and stamp.is_file()) or stamp.read_text() != signature:
        return False
    built = exe.stat().st_mtime
    return all(p.stat().st_mtime <= built for p in inputs if p.is_file())


def run_csim(project_dir, *, cxx: str = "g++", opt: str = "-O2", timeout: float = 600.0) -> CsimResult:
    """Compile and run the project's testbench; returns the element counts.

    A mismatch is reported in the result (and printed by the testbench), not raised; a missing
    compiler, a compile error or unusable test data raise :class:`~hls_templates.errors.ToolError`.
    """
    project = Path(project_dir).resolve()
    exe = compile_testbench(project, cxx=cxx, opt=opt)
    if not (project / "tb_data" / "tb_input_features.dat").is_file():
        raise ProjectError(f"{project}/tb_data/tb_input_features.dat is missing: write the project with inputs")
    try:
        run = subprocess.run([str(exe)], cwd=project, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"C simulation of {project} did not finish in {timeout:g} s") from None
    log = run.stdout + run.stderr
    log_path = project / "csim" / "csim.log"
    log_path.write_text(log)
    summary = _SUMMARY.search(log)
    if summary is None or run.returncode not in (0, 1):
        raise ToolError(f"C simulation of {project} failed (exit {run.returncode}): {_first_errors(log)}",
                        log_path=log_path)
    samples, elements, mismatches = map(int, summary.groups())
    first = _FIRST.search(log)
    return CsimResult(samples, elements, mismatches, Mismatch(*map(int, first.groups())) if first else None,
                      project, log, tuple(_STREAM_WARNING.findall(log)))


def dry_run_tcl(project_dir, args=(), *, tool: str = "vitis") -> list[tuple[str, ...]]:
    """Run ``build_prj.tcl`` under tclsh with stub HLS commands; return the recorded calls.

    ``args`` are the script's ``key=value`` arguments (e.g. ``["cosim=0"]``). Raises
    :class:`~hls_templates.errors.ProjectError` when a referenced file is missing, the script
    fails, or the calls are out of the expected order (setup, then csim, csynth, cosim, export,
    each at most once, then exit 0).
    """
    project = Path(project_dir).resolve()
    if not (project / "build_prj.tcl").is_file():
        raise ProjectError(f"{project} has no build_prj.tcl")
    tclsh = shutil.which("tclsh")
    if tclsh is None:
        raise ToolError("tclsh not found on PATH; install Tcl (e.g. apt-get install tcl) for the dry run")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "calls.txt"
        run = subprocess.run([tclsh, str(_package_file("templates/dry_run.tcl")), str(project), str(out),
                              f"tool={tool}", *args], capture_output=True, text=True, timeout=60)
        if not out.is_file():
            raise ToolError(f"tclsh dry run failed: {_first_errors(run.stdout + run.stderr)}")
        rows = [_unescape(line) for line in out.read_text().splitlines()]
    calls = [tuple(r[1:]) for r in rows if r[0] == "CALL"]
    errors = [r[1] for r in rows if r[0] == "ERROR"]
    if errors:
        raise ProjectError(f"build_prj.tcl dry run: {'; '.join(errors)}")
    check_sequence(calls, run.stdout)
    return calls


def _unescape(line: str) -> list[str]:
    table = {"\\\\": "\\", "\\t": "\t", "\\n": "\n"}
    return [re.sub(r"\\[\\tn]", lambda m: table[m.group(0)], f) for f in line.split("\t")]


def check_sequence(calls: list[tuple[str, ...]], output: str = "") -> None:
    """Setup commands first (in :data:`SETUP` order), then the enabled steps in :data:`STEPS`
    order, then ``exit 0``."""
    names = [c[0] for c in calls if not c[0].startswith("config_")]
    if not names or names[-1] != "exit" or calls[-1][1:] != ("0",):
        detail = output.strip().splitlines()[-1:] or ["no exit"]
        raise ProjectError(f"build_prj.tcl did not finish with 'exit 0': {detail[0]}")
    body = names[:-1]
    setup = [n for n in body if n not in STEPS]
    steps = [n for n in body if n in STEPS]
    if body[: len(setup)] != setup:
        raise ProjectError(f"build_prj.tcl runs a step before its setup is complete: {body}")
    collapsed = [n for i, n in enumerate(setup) if i == 0 or n != setup[i - 1]]
    if collapsed != list(SETUP):
        raise ProjectError(f"build_prj.tcl setup is {collapsed}, expected {list(SETUP)}")
    if steps != [s for s in STEPS if s in steps]:
        raise ProjectError(f"build_prj.tcl steps {steps} are out of order (expected a subsequence of {list(STEPS)})")
