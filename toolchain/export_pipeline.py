"""``export-fpga``'s work, as functions: load -> remove channels -> integer model -> ONNX
-> verify (PyTorch integer mode, simulator, onnxruntime) -> report.

The simulator is the reference every other representation is compared with. A check
counts the elements of the network's integer output; on a mismatch it also finds the
first divergent layer (PyTorch) or node (onnxruntime) from the full traces. A check
that could not run (the C simulation failed to build) says why and where its log is;
everything else is still written.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import onnx
import torch

from exporters import stats
from exporters.errors import FoldlineError
from exporters.integer_model import IntegerModel
from exporters.onnx_export import INPUT_NAME, to_onnx
from exporters.staging import remove_stale, replace_dir, staging_dir
from fpga_sim import Simulator
from fpga_sim.inputs import check_finite
from fpga_sim.verify import expose_all_tensors, first_divergence, run_onnxruntime

EXAMPLE_MODEL = "fashion_cnn.pt"
EXAMPLE_DATA = "fashion_sample.npz"


class ExportError(FoldlineError):
    """Bad input to export-fpga: file, data or output directory."""


def example_path(name: str) -> Path:
    """A file shipped in ``toolchain/data/`` (the embedded default)."""
    return Path(str(resources.files("toolchain") / "data" / name))


@dataclass
class Check:
    """Element-wise comparison of one representation against the simulator.

    A check that could not run has ``mismatches`` None, ``error`` (one line: why) and,
    where the tool wrote one, ``log`` (its path inside the output directory).
    """

    samples: int
    elements: int
    mismatches: int | None
    first_divergence: dict | None = None
    error: str | None = None
    log: str | None = None

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.first_divergence is None and self.error is None


@dataclass
class ExportResult:
    onnx_path: Path
    report_path: Path
    report: dict = field(repr=False)

    @property
    def ok(self) -> bool:
        return all(v["mismatches"] == 0 and not v.get("first_divergence") and not v.get("error")
                   for v in self.report["verification"].values())

    @property
    def agreement_ok(self) -> bool:
        """False only when ``--min-agreement`` was given and the checked agreement is below it."""
        return self.report["accuracy"]["min_agreement_met"] is not False

    @property
    def mismatched(self) -> bool:
        """A check ran and found a difference (not merely a check that could not run)."""
        return any(v["mismatches"] or v.get("first_divergence") for v in self.report["verification"].values())

    @property
    def not_run(self) -> list[str]:
        """The checks that could not run (their ``error`` says why); the output is written all the same."""
        return [name for name, v in self.report["verification"].items() if v.get("error")]


# -- loading ------------------------------------------------------------------------

def load_calibration(path: str | Path | None, input_shape: tuple[int, ...],
                     limit: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` (float32, N x input_shape) and optional ``y`` labels from an ``.npz``.

    ``x`` may hold any float dtype: it is rounded to float32, the model's input type, and
    ``inputs.npz`` keeps the float32 values every check used. NaN and infinity are refused
    (:func:`fpga_sim.inputs.check_finite`), as are an empty ``x`` and ``limit < 1``.
    """
    if limit is not None and limit < 1:
        raise ExportError(f"--samples must be a positive number of samples, got {limit}")
    path = Path(path) if path is not None else example_path(EXAMPLE_DATA)
    if not path.is_file():
        raise ExportError(f"{path}: no such calibration file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:
        raise ExportError(f"{path}: not a readable .npz file ({type(exc).__name__})") from None
    if "x" not in arrays:
        raise ExportError(f"{path}: no array named 'x' (found {sorted(arrays)})")
    x, y = arrays["x"], arrays.get("y")
    if x.ndim != 1 + len(input_shape) or tuple(x.shape[1:]) != tuple(input_shape):
        raise ExportError(f"{path}: 'x' has shape {x.shape}, the model needs (N, {', '.join(map(str, input_shape))})")
    if not np.issubdtype(x.dtype, np.floating):
        raise ExportError(f"{path}: 'x' has dtype {x.dtype}, expected float32")
    if len(x) == 0:
        raise ExportError(f"{path}: 'x' holds no samples")
    check_finite(x, f"{path}: array 'x'")
    if y is not None and (y.ndim != 1 or len(y) != len(x)):
        raise ExportError(f"{path}: 'y' has shape {y.shape}, expected ({len(x)},)")
    if limit is not None:
        x, y = x[:limit], (y[:limit] if y is not None else None)
    return np.ascontiguousarray(x, dtype=np.float32), (None if y is None else y.astype(np.int64))


def hls_settings(checkpoint_design: dict | None, explicit: dict) -> dict:
    """``HlsConfig`` keyword arguments: the design ``fpga-compress`` chose and recorded in the
    checkpoint's metadata (``hardware``: part, clock, architecture, reuse factors — so the
    exported design is the one that was budgeted), overridden by the options given
    ``explicit``ly; an explicit ``reuse_factor`` applies to every layer (drops the per-layer ones).

    >>> hls_settings({"clock_ns": 4.0, "reuse_factor": 1, "layer_reuse": {"conv1": 2}}, {"reuse_factor": 4})
    {'clock_ns': 4.0, 'reuse_factor': 4}
    """
    design = dict(checkpoint_design or {})
    if "reuse_factor" in explicit:
        design.pop("layer_reuse", None)
    return {**design, **explicit}


def integer_model_of(model) -> IntegerModel:
    """Remove pruned channels physically, fold, and convert to the integer model."""
    import toolchain
    from toolchain.pruning import remove_channels

    return toolchain.to_integer_model(remove_channels(model))


# -- verification -------------------------------------------------------------------

def _first_index(expected: np.ndarray, got: np.ndarray) -> tuple[int, ...] | None:
    diff = np.argwhere(expected.astype(np.int64) != got.astype(np.int64))
    return tuple(int(i) for i in diff[0]) if len(diff) else None


def check_torch(integer_model: IntegerModel, x: np.ndarray, sim_trace: dict[str, np.ndarray]) -> Check:
    """PyTorch integer mode vs simulator: the output, then the first divergent layer."""
    from toolchain import run_integer

    with torch.no_grad():
        layers = run_integer(integer_model, torch.from_numpy(x), intermediate=True)
    out = integer_model.output.name
    ref, got = sim_trace[out].astype(np.int64), layers[out].numpy().astype(np.int64)
    check = Check(len(x), int(ref.size), int(np.count_nonzero(ref != got)) if ref.shape == got.shape else int(ref.size))
    for layer in integer_model.layers:
        name = layer.name
        if name not in layers or name not in sim_trace:
            continue
        a, b = sim_trace[name], layers[name].numpy()
        index = _first_index(a, b) if a.shape == b.shape else ()
        if index is not None:
            check.first_divergence = {"layer": name, "index": list(index),
                                      "simulator": int(a[index]) if index else None,
                                      "torch": int(b[index]) if index else None,
                                      "note": None if index else f"shape {b.shape} != {a.shape}"}
            break
    return check


def check_onnxruntime(proto: onnx.ModelProto, sim: Simulator, feeds: dict, sim_trace: dict) -> Check:
    ort = run_onnxruntime(expose_all_tensors(proto, {k: v.dtype for k, v in sim_trace.items()}), feeds)
    out = proto.graph.output[0].name
    ref = sim_trace[out]
    check = Check(len(feeds[INPUT_NAME]), int(ref.size), int(np.count_nonzero(ref != ort[out])))
    divergence = first_divergence(sim.nodes, sim_trace, ort)
    if divergence is not None:
        check.first_divergence = {"node": divergence.node_name, "tensor": divergence.tensor,
                                  "detail": divergence.describe()}
    return check


# -- the whole job ------------------------------------------------------------------

HARDWARE_LAYER_KEYS = ("latency_cycles", "ii", "dsp", "lut", "bram", "ff")
HARDWARE_TOTAL_KEYS = ("latency_cycles", "latency_us", "clock_ns", "dsp", "lut", "bram", "ff")


def build_report(integer_model: IntegerModel, checks: dict[str, Check], accuracy: dict | None,
                 hardware=None, extra: dict | None = None) -> dict:
    """``hardware``: an estimate with ``layers`` and ``totals`` (``backend_estimate``), merged into
    layers and totals."""
    rows = stats.layer_stats(integer_model)
    keep = ("name", "op", "in_channels", "out_channels", "kernel", "weight_bits", "act_bits", "acc_bits",
            "macs", "bops", "params")
    layers = [{k: r[k] for k in keep} | {"nonzero_macs": r["nonzero_macs"], "nonzero_bops": r["nonzero_bops"]}
              for r in rows]
    totals = stats.totals(rows)
    if hardware is not None:
        by_name = {row["name"]: row for row in hardware.layers}
        for layer in layers:
            est = by_name.get(layer["name"], {})
            layer.update({k: est.get(k, 0) for k in HARDWARE_LAYER_KEYS})
        totals.update({k: hardware.totals[k] for k in HARDWARE_TOTAL_KEYS})
    report = {"model": integer_model.name, "layers": layers, "totals": totals,
              "verification": {name: asdict(c) for name, c in checks.items()}}
    if accuracy:
        report["accuracy"] = accuracy
    if extra:
        report.update(extra)
    return report


HLS_BACKENDS = ("templates", "hls4ml", "none")


def check_hls(backend: str, config, integer_model: IntegerModel, out_dir: Path, x: np.ndarray,
              sim_trace: dict[str, np.ndarray], final_dir: Path | None = None) -> Check | None:
    """Write the HLS project into ``out_dir`` and check its C simulation against the simulator.

    ``templates``: our kernels, compiled with g++ (``hls_templates.run_csim``);
    ``hls4ml``: an hls4ml project, refused unless exactly representable, checked through
    hls4ml's own ``compile()``/``predict()``; ``none``: nothing.
    A C simulation that fails to build or run (``ToolError``) is a check that could not
    run, not an error: the project stays, and the check names its log at ``final_dir``,
    where ``out_dir`` will be once the export is committed (default: ``out_dir``).
    """
    if backend == "none":
        return None
    golden = sim_trace[integer_model.output.name]
    if backend == "templates":
        from hls_templates import run_csim, write_project
        from hls_templates.errors import ToolError

        project = write_project(integer_model, out_dir, config, inputs=x, golden=golden)
        try:
            result = run_csim(project)
        except ToolError as exc:
            return _not_run(exc, project, final_dir or project, len(x), int(golden.size))
        first = result.first_mismatch
        return Check(result.samples, result.elements, result.mismatches,
                     None if first is None else {"sample": first.sample, "index": first.index,
                                                 "csim": first.got, "simulator": first.expected})
    from hls_templates import check_hls4ml_exact, write_hls4ml_project

    check_hls4ml_exact(integer_model)
    project = write_hls4ml_project(integer_model, out_dir, config).compile()
    got = project.predict_integers(sim_trace[integer_model.input.name]).reshape(golden.shape)
    index = _first_index(golden, got)
    return Check(len(x), int(golden.size), int(np.count_nonzero(golden.astype(np.int64) != got.astype(np.int64))),
                 None if index is None else {"index": list(index), "hls4ml": int(got[index]),
                                             "simulator": int(golden[index])})


def _not_run(exc, project: Path, final: Path, samples: int, elements: int) -> Check:
    """The check of a C simulation that raised ``exc`` (a ``ToolError``), its message and log
    path moved from ``project`` (in the staging directory) to ``final`` (where it is committed)."""
    def moved(text: str) -> str:
        for staged in (str(project.resolve()), str(project)):
            text = text.replace(staged, str(final))
        return text

    log = None if exc.log_path is None else moved(str(exc.log_path))
    return Check(samples, elements, None, error=moved(str(exc)), log=log)


def prepare_output_dir(out: Path, force: bool) -> Path:
    """A fresh staging directory beside ``out`` (:mod:`exporters.staging`, which also removes
    what killed runs left); refuses an existing ``out`` without force."""
    remove_stale(out)
    if out.exists() and not force:
        raise ExportError(f"{out} exists; pass --force to replace it")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory")
    return staging_dir(out)


def export(model, out: str | Path, x: np.ndarray, y: np.ndarray | None = None, force: bool = False,
           hls: str = "none", hls_config=None, float_logits: np.ndarray | None = None,
           min_agreement: float | None = None, progress=None) -> ExportResult:
    """Run the whole export for a loaded toolchain model; writes ``out/`` atomically.

    Writes ``model.onnx``, ``report.json`` and ``inputs.npz`` (the verification inputs, keyed
    by graph input, as ``fpga-sim`` and ``fpga-hls --inputs`` read them).
    ``hls``: one of :data:`HLS_BACKENDS`; a project goes to ``out/hls/`` and its C
    simulation becomes ``verification.csim``. ``hls_config``: an ``HlsConfig`` (part,
    clock, architecture, reuse); the latency/resource estimate is always reported, with it or
    the defaults, of the backend chosen (``none``: Foldline's templates), as report.json's
    ``estimate`` (:func:`hls_templates.estimate.report.backend_estimate`: what it is, what it was
    calibrated on and its measured error there) and in the per-layer statistics.
    ``float_logits``: the user's float program's outputs on ``x`` (a ``.pt2``), which the
    report's accuracy compares the integers with; ``min_agreement``: see
    :mod:`toolchain.accuracy` (``ExportResult.agreement_ok``).
    ``progress``: a :class:`toolchain.progress.Progress` told each phase (default: silent).
    """
    from hls_templates import HlsConfig
    from hls_templates.estimate.report import backend_estimate
    from toolchain.accuracy import accuracy_report
    from toolchain.progress import Progress

    if hls not in HLS_BACKENDS:
        raise ExportError(f"unknown --hls backend '{hls}' (choose from {', '.join(HLS_BACKENDS)})")
    hls_config = hls_config or HlsConfig()
    progress = progress or Progress(quiet=True)

    out = Path(out)
    tmp = prepare_output_dir(out, force)
    try:
        integer_model = integer_model_of(model)
        if hls == "hls4ml":  # refuse before the slow steps, and before any progress line
            from hls_templates import check_hls4ml_exact

            check_hls4ml_exact(integer_model)
        progress.phase("exporting ONNX")
        proto = to_onnx(integer_model)
        onnx_path = tmp / "model.onnx"
        onnx.save(proto, onnx_path)
        feeds = {INPUT_NAME: x}
        np.savez_compressed(tmp / "inputs.npz", **feeds)  # for fpga-sim verify / fpga-hls --inputs
        progress.phase(f"verifying {len(x):,} samples (simulator, PyTorch integer mode, onnxruntime)")
        sim = Simulator(proto)
        sim_trace = sim.trace(feeds)
        checks = {"torch_integer": check_torch(integer_model, x, sim_trace),
                  "onnxruntime": check_onnxruntime(proto, sim, feeds, sim_trace)}
        if hls != "none":
            progress.phase("HLS project and its C simulation" + (" (g++)" if hls == "templates" else " (hls4ml)"))
        csim = check_hls(hls, hls_config, integer_model, tmp / "hls", x, sim_trace, final_dir=out / "hls")
        progress.phase("accuracy, estimate and report")
        if csim is not None:
            checks["csim"] = csim
        logits = sim_trace[integer_model.output.name]  # the integers every check matched against
        accuracy = accuracy_report(model, x, y, logits, float_logits, min_agreement)
        hardware = backend_estimate(hls, integer_model, hls_config)
        report = build_report(integer_model, checks, accuracy.fields, hardware,
                              {"hls": {"backend": hls, "part": hls_config.part, "clock_ns": hls_config.clock_ns,
                                       "architecture": hls_config.architecture,
                                       "reuse_factor": hls_config.reuse_factor,
                                       "layer_reuse": dict(hls_config.layer_reuse)},
                               "estimate": hardware.section, "warnings": accuracy.warnings})
        with open(tmp / "report.json", "w") as f:
            json.dump(report, f, indent=2, allow_nan=False)  # strict JSON: no NaN/Infinity
        replace_dir(tmp, out)
        progress.done()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out / "model.onnx", out / "report.json", report)
