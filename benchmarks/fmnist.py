"""Fashion-MNIST from model to kernel, every method side by side.

One command::

    python3 benchmarks/fmnist.py            # the full run -> benchmarks/results/fmnist.{md,json,*.png}
    python3 benchmarks/fmnist.py --quick    # a few minutes on a data subset (what the tests smoke-run)

What it does (docs/benchmark.md says why each choice):

1. **Data** in the work folder (``--work``, default ``build/fmnist`` or ``build/fmnist-quick``):
   ``tune.npz`` (the training images every method fine-tunes on, and the test split every
   accuracy is measured on) and ``verify.npz`` (the first test images export-fpga verifies in
   full: PyTorch integer mode, onnxruntime and the C simulation, each against the simulator).
2. **Float baseline** ``baseline.pt``: the built-in ``cnn`` trained in float by fpga-compress
   (no pruning, no fine-tuning); reused when its command line is unchanged.
3. **The sweep** (``toolchain.sweep``, the grid ``benchmarks/sweeps/fmnist.toml``): every method at
   matched targets, each ``--init baseline.pt``, then ``export-fpga --hls templates``. The runs go
   to two worker processes, each pinned to one CPU (one torch thread each: two 2-thread processes
   on 2 cores slow each other down many times over).
4. **Every exported model on the whole test split**: simulator vs onnxruntime (every output
   element), the integer top-1 from the simulator's logits; then C simulation of the whole test
   split for as many models as the time left before ``--csim-deadline-min`` allows (best first).
5. **hls4ml baseline**: hls4ml's direct conversion of the float baseline (``ap_fixed<16,6>`` and
   ``ap_fixed<8,3>``), compiled with hls4ml's own ``compile()`` (g++) and run with ``predict()``.
6. **Results** in ``--out`` (default ``benchmarks/results``): ``fmnist.md``, ``fmnist.json``
   (strict JSON), plots, and the goals each stated met or missed with its figure.

Exit status: 0 when the tables are written and every check that ran found equality; 1 when a
check found a mismatch or an expected file is missing; 2 bad command line. Configurations a
method refuses are rows of their own (status ``failed``, with the error), not a failed run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROG = "fmnist"
FORMAT = "foldline-fmnist-benchmark/1"
CLOCK_MHZ = 200.0  # the estimates' 5 ns clock

#: Per mode: baseline training, data sizes, verification sizes. The grid itself is the TOML.
MODES = {
    "full": dict(sweep="benchmarks/sweeps/fmnist.toml", work="build/fmnist", out="benchmarks/results",
                 baseline_epochs=6, baseline_train=None, tune_train=20_000, test=None, verify=500,
                 hls4ml_samples=2_000, csim_deadline_min=45.0),
    "quick": dict(sweep="benchmarks/sweeps/fmnist_quick.toml", work="build/fmnist-quick",
                  out="build/fmnist-quick/results",
                  baseline_epochs=1, baseline_train=1_500, tune_train=1_500, test=500, verify=50,
                  hls4ml_samples=200, csim_deadline_min=4.0),
}
GOAL_TOP1, GOAL_RATIO, GOAL_LATENCY_US = 0.910, 150.0, 5.0
HLS4ML_PRECISIONS = ("ap_fixed<16,6>", "ap_fixed<8,3>")


def log(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


# -- 1. data ----------------------------------------------------------------------------

def prepare_data(work: Path, mode: dict) -> dict:
    """``tune.npz`` (x, y = first training images; x_test, y_test = the test split or its first
    ``test``) and ``verify.npz`` (x, y = the first ``verify`` test images); written once."""
    import numpy as np

    from toolchain.data import load_dataset

    tune, verify = work / "tune.npz", work / "verify.npz"
    if not (tune.is_file() and verify.is_file()):
        train = load_dataset("fashion-mnist", "train", mode["tune_train"])
        test = load_dataset("fashion-mnist", "test", mode["test"])
        x_test, y_test = test.x.numpy(), test.y.numpy()
        np.savez(work / "tune.tmp.npz", x=train.x.numpy(), y=train.y.numpy(), x_test=x_test, y_test=y_test)
        os.replace(work / "tune.tmp.npz", tune)
        np.savez(work / "verify.tmp.npz", x=x_test[:mode["verify"]], y=y_test[:mode["verify"]])
        os.replace(work / "verify.tmp.npz", verify)
    return {"tune": str(tune), "verify": str(verify)}


def test_split(work: Path):
    """The test split every accuracy here is on: ``tune.npz``'s (as fpga-compress reads it)."""
    from toolchain.data import load_dataset

    return load_dataset(str(work / "tune.npz"), "test")


# -- 2. the float baseline ---------------------------------------------------------------

def baseline_argv(work: Path, mode: dict) -> list[str]:
    """fpga-compress training the float baseline: no pruning (one-shot at sparsity 0 over one
    step), no fine-tuning; the quantizers only watch (their statistics are the start of QAT)."""
    data = "fashion-mnist" if mode["baseline_train"] is None else str(work / "baseline_data.npz")
    return ["--method", "one-shot", "--data", data, "--model", "cnn", "--sparsity", "0",
            "--epochs", "0", "--pretrain-epochs", str(mode["baseline_epochs"]),
            "--option", "steps_per_group=1", "--seed", "0", "--quiet",
            "--output", str(work / "baseline.pt")]


def train_baseline(work: Path, mode: dict) -> tuple[dict, bool]:
    """Train ``baseline.pt`` unless one made by the same command line is there: (its record, reused)."""
    import numpy as np

    from toolchain.checkpoint import load_metadata
    from toolchain.data import load_dataset

    record_path, ckpt = work / "baseline.json", work / "baseline.pt"
    argv = baseline_argv(work, mode)
    if record_path.is_file() and ckpt.is_file():
        record = json.loads(record_path.read_text())
        if record.get("argv") == argv and load_metadata(ckpt)["fpga-compress"]["argv"] == argv:
            log(f"float baseline: reusing {ckpt} (same command line; trained in {record['wall_s']:.0f} s)")
            return record, True
    if mode["baseline_train"] is not None:
        train = load_dataset("fashion-mnist", "train", mode["baseline_train"])
        test = load_dataset(str(work / "tune.npz"), "test")
        np.savez(work / "baseline_data.npz", x=train.x.numpy(), y=train.y.numpy(),
                 x_test=test.x.numpy(), y_test=test.y.numpy())
    log(f"float baseline: fpga-compress {' '.join(argv)} (one worker, one CPU)")
    start = time.perf_counter()
    in_workers(baseline_worker, [argv], str(work))
    record = {"argv": argv, "wall_s": round(time.perf_counter() - start, 1)}
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    log(f"float baseline: trained in {record['wall_s']:.0f} s")
    return record, False


def baseline_worker(cpu: int, argv: list[str], work: str) -> None:
    """fpga-compress for the baseline, pinned to one CPU like the sweep's runs."""
    pinned(cpu)
    from toolchain import compress_cli

    code = compress_cli.main([*argv, "--force"])
    if code != 0:
        raise SystemExit(f"{PROG}: error: the float baseline's fpga-compress exited {code}")


def float_network(ckpt: Path):
    """The checkpoint's network with its quantizers off: the float model."""
    import toolchain
    from toolchain.nn import set_quantization

    net = toolchain.load(ckpt).eval()
    set_quantization(net, False)
    return net


def float_top1(ckpt: Path, test) -> tuple[float, "object"]:
    from toolchain.train import predict

    pred = predict(float_network(ckpt), test).argmax(1)
    return float((pred == test.y).float().mean()), pred.numpy()


# -- 3 and 4. the sweep and the verification on the whole test split, in pinned workers -----

def pinned(cpu: int) -> None:
    """Run this process (and the torch thread count ``configure_threads`` derives) on one CPU."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[cpu % len(cpus)]})


def sweep_worker(cpu: int, jobs: list, work: str, out: str) -> None:
    """One shard of the sweep: run its jobs (toolchain.sweep's runner), then check each exported
    model on the whole test split."""
    pinned(cpu)
    os.chdir(work)  # the grid's relative paths (tune.npz, baseline.pt, verify.npz)
    from toolchain.sweep.runner import run_sweep

    rows = run_sweep(jobs, Path(out))
    test = test_split(Path(work))
    for row in rows:
        if row["export"] is not None:
            verify_full(Path(out) / "runs" / row["key"], test)


def verify_full(run: Path, test) -> dict:
    """Simulator vs onnxruntime on every test image (every output element), the simulator's
    integer top-1 and the compressed network's float top-1 (quantizers off); cached in the run."""
    import numpy as np
    import onnx

    from exporters.onnx_export import INPUT_NAME
    from fpga_sim import Simulator
    from fpga_sim.verify import run_onnxruntime

    path = run / "verify_test.json"
    if path.is_file():
        return json.loads(path.read_text())
    start = time.perf_counter()
    proto = onnx.load(run / "export" / "model.onnx")
    sim = Simulator(proto)
    x, y = test.x.numpy(), test.y.numpy()
    equal = elements = 0
    logits = []
    for lo in range(0, len(x), 2000):  # chunks: bounded memory
        feeds = {INPUT_NAME: np.ascontiguousarray(x[lo:lo + 2000])}
        ref = sim.run(None, feeds)[0]
        ort = run_onnxruntime(proto, feeds)[proto.graph.output[0].name]
        equal += int(np.count_nonzero(ref == ort)) if ref.shape == ort.shape else 0
        elements += int(ref.size)
        logits.append(ref)
    logits = np.concatenate(logits)
    np.save(run / "simulator_logits_test.npy", logits)
    fl, _ = float_top1(run / "model.pt", test)
    record = {"samples": int(len(x)), "onnxruntime": {"equal": equal, "elements": elements},
              "integer_top1": float((logits.argmax(1) == y).mean()), "float_top1": fl,
              "seconds": round(time.perf_counter() - start, 1)}
    path.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    return record


def csim_worker(cpu: int, runs: list[str], work: str, deadline: float) -> None:
    """C simulation of the whole test split for ``runs`` in order, until the wall clock passes
    ``deadline`` (seconds since the epoch) — a run is started only if its expected end is before it."""
    pinned(cpu)
    test = test_split(Path(work))
    spent = []
    for run in map(Path, runs):
        expected = max(spent) if spent else 0.0
        if time.time() + expected > deadline:
            log(f"C simulation of the test split: skipped {run.name} (deadline)")
            continue
        start = time.perf_counter()
        record = csim_full(run, test)
        spent.append(time.perf_counter() - start)
        verdict = "not run: " + record["error"] if record.get("error") else \
            f"{record['equal']:,}/{record['elements']:,} elements equal"
        log(f"C simulation of the test split: {run.name} {verdict} ({spent[-1]:.0f} s)")


def csim_full(run: Path, test) -> dict:
    """The exported model's HLS project (the design export-fpga built) with every test image, its
    g++ C simulation against the simulator's logits; cached in the run."""
    import numpy as np

    from exporters.onnx_import import as_integer_model
    from hls_templates import HlsConfig, run_csim, write_project
    from hls_templates.errors import ToolError

    path = run / "csim_test.json"
    if path.is_file():
        return json.loads(path.read_text())
    report = json.loads((run / "export" / "report.json").read_text())
    h = report["hls"]
    config = HlsConfig(part=h["part"], clock_ns=h["clock_ns"], architecture=h["architecture"],
                       reuse_factor=h["reuse_factor"], layer_reuse=h["layer_reuse"])
    golden = np.load(run / "simulator_logits_test.npy")
    project = run / "csim_test"
    shutil.rmtree(project, ignore_errors=True)
    start = time.perf_counter()
    try:
        write_project(as_integer_model(run / "export" / "model.onnx"), project, config,
                      inputs=test.x.numpy(), golden=golden)
        result = run_csim(project)
        record = {"samples": result.samples, "elements": result.elements,
                  "equal": result.elements - result.mismatches}
    except ToolError as exc:
        record = {"samples": int(len(test)), "error": str(exc).splitlines()[0]}
    record["seconds"] = round(time.perf_counter() - start, 1)
    shutil.rmtree(project / "tb_data", ignore_errors=True)  # the test vectors: 30 MB of text
    path.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    return record


def in_workers(target, shards: list[list], *args) -> None:
    """Run ``target(cpu, shard, *args)`` for each shard in its own process (spawned: no forked
    torch threads), each on its own CPU; wait for all; a worker that dies is an error."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=(i, shard, *args)) for i, shard in enumerate(shards) if shard]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except BaseException:
        for p in procs:
            p.terminate()
        raise
    bad = [p.exitcode for p in procs if p.exitcode != 0]
    if bad:
        raise SystemExit(f"{PROG}: error: a worker process exited {bad[0]}")


# -- 5. the hls4ml baseline ---------------------------------------------------------------

def plain_torch(net):
    """The float baseline as plain torch layers hls4ml's PyTorch front end reads: each conv /
    linear with its batch norm folded in (eval statistics), ReLU, max pooling, flatten."""
    import torch
    from torch import nn

    from toolchain.nn import Flatten, MaxPool2d, QuantConv2d, QuantInput, QuantLinear

    layers = []
    for name, module in net.layers.items():
        if isinstance(module, QuantInput):
            continue
        if isinstance(module, (QuantConv2d, QuantLinear)):
            with torch.no_grad():
                w, b = module.folded()
            if isinstance(module, QuantConv2d):
                if module.groups != 1 or module.dilation != (1, 1):
                    raise ValueError(f"{name}: only plain convolutions here")
                layer = nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size,
                                  stride=module.stride, padding=module.padding)
            else:
                layer = nn.Linear(module.in_features, module.out_features)
            with torch.no_grad():
                layer.weight.copy_(w)
                layer.bias.copy_(b)
            layers.append(layer)
            if module.relu:
                layers.append(nn.ReLU())
        elif isinstance(module, MaxPool2d):
            layers.append(nn.MaxPool2d(module.kernel_size, module.stride))
        elif isinstance(module, Flatten):
            layers.append(nn.Flatten())
        else:
            raise ValueError(f"{name}: {type(module).__name__} has no plain torch twin here")
    return nn.Sequential(*layers).eval()


def hls4ml_worker(cpu: int, precisions: list[str], work: str, samples: int | None) -> None:
    """hls4ml's direct conversion of the float baseline at each of ``precisions``, in this process
    (pinned to one CPU); each result to ``work/hls4ml/<precision>.json``."""
    pinned(cpu)
    work = Path(work)
    test = test_split(work)
    for precision in precisions:
        entry = hls4ml_convert(work / "baseline.pt", test, work / "hls4ml", precision, samples)
        (work / "hls4ml" / f"{_slug(precision)}.json").write_text(json.dumps(entry, indent=2, allow_nan=False))


def _slug(precision: str) -> str:
    return precision.replace("<", "_").replace(">", "").replace(",", "_")


def _hls4ml_inputs(ckpt: Path, test, samples: int | None):
    import torch

    net = plain_torch(float_network(ckpt))
    x, y = test.x.numpy(), test.y.numpy()
    if samples is not None:
        x, y = x[:samples], y[:samples]
    with torch.no_grad():
        logits = net(torch.from_numpy(x)).numpy()
    return net, x, y, logits


def hls4ml_summary(ckpt: Path, test, samples: int | None) -> dict:
    """PyTorch's side of the hls4ml comparison: the plain torch twin's top-1 on the same images,
    and whether its argmax equals the checkpoint's float network's (the twin is faithful)."""
    import numpy as np
    import torch

    _, x, y, logits = _hls4ml_inputs(ckpt, test, samples)
    with torch.no_grad():
        check = float_network(ckpt)(torch.from_numpy(x)).numpy()
    record = {"samples": int(len(x)), "torch_top1": float((logits.argmax(1) == y).mean()),
              "plain_torch_matches_checkpoint": bool(np.array_equal(logits.argmax(1), check.argmax(1)))}
    try:
        import hls4ml

        record["hls4ml_version"] = hls4ml.__version__
    except ImportError as exc:
        record["error"] = f"hls4ml is not importable: {exc}"
    return record


def hls4ml_convert(ckpt: Path, test, hls_dir: Path, precision: str, samples: int | None) -> dict:
    """hls4ml's direct conversion of the float baseline at one model-wide ``precision`` (hls4ml's
    Latency strategy, io_parallel, reuse factor 1): top-1 and argmax agreement with PyTorch on the
    test images, C simulation through hls4ml's own ``compile()`` (g++) / ``predict()``."""
    import contextlib
    import io

    import numpy as np

    entry = {"precision": precision}
    start = time.perf_counter()
    try:
        import hls4ml

        net, x, y, torch_logits = _hls4ml_inputs(ckpt, test, samples)
        out_dir = hls_dir / _slug(precision)
        shutil.rmtree(out_dir, ignore_errors=True)
        config = hls4ml.utils.config_from_pytorch_model(
            net, input_shape=tuple(x.shape[1:]), granularity="model", default_precision=precision,
            default_reuse_factor=1)
        config["Model"]["Strategy"] = "Latency"
        with contextlib.redirect_stdout(io.StringIO()):
            graph = hls4ml.converters.convert_from_pytorch_model(
                net, hls_config=config, backend="Vivado", io_type="io_parallel", output_dir=str(out_dir),
                project_name="fmnist_float", part="xcu250-figd2104-2L-e", clock_period=5)
            graph.compile()
        compiled = time.perf_counter() - start
        logits = np.concatenate([np.asarray(graph.predict(np.ascontiguousarray(x[i:i + 1000])),
                                            dtype=np.float64).reshape(-1, torch_logits.shape[1])
                                 for i in range(0, len(x), 1000)])
        pred = logits.argmax(1)
        entry.update(samples=int(len(x)), top1=float((pred == y).mean()),
                     agreement_with_torch=float((pred == torch_logits.argmax(1)).mean()),
                     compile_s=round(compiled, 1), predict_s=round(time.perf_counter() - start - compiled, 1))
    except Exception as exc:  # recorded and said in the results: this baseline could not be made
        entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    entry["seconds"] = round(time.perf_counter() - start, 1)
    log(f"hls4ml {precision}: " + (f"top-1 {100 * entry['top1']:.2f} %, agreement with PyTorch "
                                  f"{100 * entry['agreement_with_torch']:.2f} %" if "top1" in entry
                                  else f"FAILED: {entry['error']}") + f" ({entry['seconds']:.0f} s)")
    return entry


# -- 6. the table -------------------------------------------------------------------------

def target_of(config: dict) -> str:
    """A short name of a configuration's target (its sparsity, bits and budgets)."""
    c = config["compress"]
    parts = []
    budgets = [(k, c[k]) for k in ("latency_budget_us", "dsp_budget", "lut_budget") if k in c]
    if budgets:
        parts.append("budget " + ", ".join(f"{k.replace('_budget', '').replace('_us', ' µs')} ≤ {v:g}"
                                           for k, v in budgets))
    elif c.get("method") == "djpq":
        parts.append("sparsity learned")
    else:
        s = c.get("sparsity", 0.5)
        parts.append("no pruning" if s == 0 else f"{100 * s:g} % " + (
            "weights" if c.get("method") == "iterative-magnitude" else "channels"))
    parts.append(f"W{c.get('weight_bits', 8)}A{c.get('act_bits', 8)}" +
                 (f" + {c['layer_bits']}" if c.get("layer_bits") else ""))
    return ", ".join(parts)


def float32_bops(report: dict) -> int:
    """MACs of the float baseline x 32 x 32 (every multiplicand a float32)."""
    return int(report["totals"]["macs"]) * 32 * 32


def make_row(row: dict, run: Path, float32: int) -> dict:
    """One result row: the sweep's row, the run's report and the whole-test-split checks."""
    c = row["config"]["compress"]
    s = (row["compress"] or {}).get("summary") or {}
    ex = row["export"] or {}
    t, v = ex.get("totals") or {}, ex.get("verification") or {}
    full = json.loads((run / "verify_test.json").read_text()) if (run / "verify_test.json").is_file() else None
    csim = json.loads((run / "csim_test.json").read_text()) if (run / "csim_test.json").is_file() else None
    report = json.loads((run / "export" / "report.json").read_text()) if (run / "export" / "report.json").is_file() else None
    hw = (s.get("hardware") or {})
    est = (ex.get("estimate") or {}).get("totals") or {}
    out = {
        "key": row["key"], "method": c["method"], "target": target_of(row["config"]), "status": row["status"],
        "error": row["error"], "log": row["log"],
        "sparsity_kind": s.get("sparsity_kind"), "sparsity": s.get("sparsity"),
        "target_sparsity": s.get("target_sparsity"),
        "layer_bits": s.get("layer_bits"),
        "test_samples": s.get("test_samples"),
        "float_top1": None if full is None else full["float_top1"],
        "fake_quant_top1": s.get("float_accuracy"), "integer_top1_torch": s.get("integer_accuracy"),
        "integer_top1": None if full is None else full["integer_top1"],
        "bops": t.get("bops"), "bops_ratio": (float32 / t["bops"]) if t.get("bops") else None,
        "nonzero_bops": t.get("nonzero_bops"),
        "params": t.get("params"), "weight_memory_bits": t.get("weight_memory_bits"),
        "latency_cycles": t.get("latency_cycles"), "latency_us": t.get("latency_us"),
        "ii_cycles": est.get("ii_cycles"), "dsp": t.get("dsp"), "lut": t.get("lut"), "ff": t.get("ff"),
        "architecture": est.get("architecture"), "layer_reuse": (ex.get("hls") or {}).get("layer_reuse"),
        "budgets": hw.get("budgets"), "budgets_met": hw.get("met"),
        "verification_export": {name: {"samples": c_["samples"], "equal": None if c_["mismatches"] is None
                                       else c_["elements"] - c_["mismatches"], "elements": c_["elements"],
                                       "error": c_.get("error")} for name, c_ in v.items()},
        "verification_test": None if full is None else {
            "samples": full["samples"], "onnxruntime": full["onnxruntime"],
            "csim": None if csim is None else {k: csim.get(k) for k in ("samples", "equal", "elements", "error")}},
        "wall_s": row["wall_s"],
        "per_layer": None if report is None else [
            {k: layer.get(k) for k in ("name", "op", "in_channels", "out_channels", "weight_bits", "act_bits",
                                       "macs", "bops", "params", "latency_cycles", "ii", "dsp", "lut")}
            for layer in report["layers"]],
    }
    return out


def equal_everywhere(r: dict) -> bool | None:
    """True when every check that ran on this row found equality; None when none could run."""
    checks = [(c["equal"], c["elements"]) for c in r["verification_export"].values() if c.get("error") is None]
    vt = r["verification_test"]
    if vt:
        checks.append((vt["onnxruntime"]["equal"], vt["onnxruntime"]["elements"]))
        if vt["csim"] and not vt["csim"].get("error"):
            checks.append((vt["csim"]["equal"], vt["csim"]["elements"]))
    return None if not checks else all(e == n for e, n in checks)


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and accuracy (higher)."""
    front = []
    for i, (cost, acc) in enumerate(points):
        if not any((c2 <= cost and a2 >= acc) and (c2 < cost or a2 > acc) for c2, a2 in points):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def goals(rows: list[dict], n_test: int) -> dict:
    """The issue's three goals, each met or missed with its figures."""
    ok = [r for r in rows if r["integer_top1"] is not None]
    qualifying = [r for r in ok if r["bops_ratio"] >= GOAL_RATIO and r["latency_us"] <= GOAL_LATENCY_US]
    best = max(qualifying, key=lambda r: r["integer_top1"]) if qualifying else None
    most_accurate = max(ok, key=lambda r: r["integer_top1"]) if ok else None
    g1 = {"goal": f"best compressed model >= {100 * GOAL_TOP1:.1f} % integer top-1 with >= {GOAL_RATIO:g}x "
                  f"fewer BOPs than float32 and estimated latency <= {GOAL_LATENCY_US:g} µs at 200 MHz",
          "met": bool(best is not None and best["integer_top1"] >= GOAL_TOP1),
          "best_within_bops_and_latency": None if best is None else _brief(best),
          "most_accurate_compressed": None if most_accurate is None else _brief(most_accurate),
          "models_within_bops_and_latency": len(qualifying)}
    full_csim = [r for r in ok if r["verification_test"]["csim"] and not r["verification_test"]["csim"].get("error")]
    all_equal = [r for r in ok if equal_everywhere(r)]
    g2 = {"goal": f"every exported model equal on all {n_test:,} test images across onnxruntime, simulator "
                  "and C simulation",
          "met": bool(ok) and len(all_equal) == len(ok) and len(full_csim) == len(ok),
          "exported_models": len(ok), "equal_in_every_check_that_ran": len(all_equal),
          "onnxruntime_vs_simulator_on_all_test_images": sum(
              r["verification_test"]["onnxruntime"]["equal"] == r["verification_test"]["onnxruntime"]["elements"]
              for r in ok),
          "csim_on_all_test_images": len(full_csim),
          "csim_on_all_test_images_equal": sum(r["verification_test"]["csim"]["equal"] ==
                                               r["verification_test"]["csim"]["elements"] for r in full_csim)}
    comparisons = []
    for target in dict.fromkeys(r["target"] for r in ok):
        same = [r for r in ok if r["target"] == target]
        base = [r for r in same if r["method"] == "two-stage"]
        if not base:
            continue
        b = base[0]
        joint = [r for r in same if r["method"] != "two-stage" and r["bops"] <= b["bops"]]
        if joint:
            best_joint = max(joint, key=lambda r: r["integer_top1"])
            comparisons.append({"target": target, "bops": b["bops"], "two_stage_top1": b["integer_top1"],
                                "joint": {r["method"]: r["integer_top1"] for r in joint},
                                "joint_bops": {r["method"]: r["bops"] for r in joint},
                                "best_joint": best_joint["method"],
                                "best_joint_minus_two_stage": best_joint["integer_top1"] - b["integer_top1"],
                                "joint_at_or_above_two_stage": sum(r["integer_top1"] >= b["integer_top1"]
                                                                    for r in joint)})
    g3 = {"goal": "joint methods vs two-stage at equal BOPs",
          "note": "two-stage ranks channels over all groups at once, so at the same sparsity its BOPs differ "
                  "from the per-group methods'; joint methods are compared only where their BOPs are at most "
                  "two-stage's (equal, or in two-stage's favour)",
          "met": bool(comparisons) and all(c["best_joint_minus_two_stage"] >= 0 for c in comparisons),
          "criterion": "joint methods: every method but two-stage; met when at every target, the best joint "
                       "method with at most two-stage's BOPs has "
                       "an integer top-1 at least two-stage's (one run each: differences under about half a "
                       "point are noise)",
          "comparisons": comparisons}
    return {"accuracy_bops_latency": g1, "bit_exact": g2, "joint_vs_two_stage": g3}


def _brief(r: dict) -> dict:
    return {k: r[k] for k in ("key", "method", "target", "integer_top1", "bops", "bops_ratio", "latency_us")}


def machine() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "processor": platform.processor() or platform.machine()}


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.strip()
        return head + (" dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.2f} %"


def _int(x) -> str:
    return "–" if x is None else f"{int(x):,}"


def _eq(c) -> str:
    if not c:
        return "–"
    if c.get("error"):
        return "not run"
    return f"{c['equal']:,}/{c['elements']:,}"


def markdown(doc: dict) -> str:
    """``fmnist.md``: the goals, the main table, the hls4ml baseline, the plots, the notes."""
    b, rows, g, h = doc["baseline"], doc["rows"], doc["goals"], doc["hls4ml"]
    n = doc["test_samples"]
    out = [f"# Fashion-MNIST: every method from model to kernel ({doc['mode']} run)", "",
           f"Command: `{doc['command']}`  ",
           f"Commit: `{doc['commit']}`" + ("" if doc.get("commit_at_end", doc["commit"]) == doc["commit"] else
                                            f" when the run started, `{doc['commit_at_end']}` when it ended") +
           (f" ({doc['commit_note']})" if doc.get("commit_note") else "") + "  ",
           f"Machine: {doc['machine']['platform']}, {doc['machine']['cpus']} CPUs "
           f"({doc['machine']['cpus_usable']} usable), Python {doc['machine']['python']}  ",
           f"Started {doc['started']}, wall time {doc['wall_s'] / 60:.1f} min (float baseline "
           f"{'reused, trained in' if b['reused'] else 'trained in'} {b['wall_s']:.0f} s).", "",
           "## Goals", ""]
    g1, g2, g3 = g["accuracy_bops_latency"], g["bit_exact"], g["joint_vs_two_stage"]
    best, top = g1["best_within_bops_and_latency"], g1["most_accurate_compressed"]
    verdict = lambda met: "**MET**" if met else "**MISSED**"  # noqa: E731
    line1 = f"1. {g1['goal']}: {verdict(g1['met'])}. "
    if best:
        line1 += (f"Best within ≥ {GOAL_RATIO:g}x and ≤ {GOAL_LATENCY_US:g} µs: `{best['method']}` "
                  f"({best['target']}) at {_pct(best['integer_top1'])} integer top-1, {best['bops_ratio']:.0f}x, "
                  f"{best['latency_us']:.2f} µs. ")
    else:
        line1 += f"No exported model reaches ≥ {GOAL_RATIO:g}x fewer BOPs with ≤ {GOAL_LATENCY_US:g} µs. "
    if top:
        line1 += (f"Most accurate compressed model: `{top['method']}` ({top['target']}) at "
                  f"{_pct(top['integer_top1'])}, {top['bops_ratio']:.0f}x, {top['latency_us']:.2f} µs.")
    out.append(line1)
    out.append(f"2. {g2['goal']}: {verdict(g2['met'])}. {g2['exported_models']} exported models; "
               f"onnxruntime = simulator on all {n:,} test images (every output element) for "
               f"{g2['onnxruntime_vs_simulator_on_all_test_images']}; C simulation on all {n:,} test images for "
               f"{g2['csim_on_all_test_images']} (equal: {g2['csim_on_all_test_images_equal']})" +
               ("" if g2["csim_on_all_test_images"] == g2["exported_models"] else
                f", the others' C simulation on the first {doc['verify_samples']:,} test images only") +
               f"; export-fpga's own checks (PyTorch integer mode, onnxruntime, C simulation) on the first "
               f"{doc['verify_samples']:,} for every model; {g2['equal_in_every_check_that_ran']} of "
               f"{g2['exported_models']} equal in every check that ran.")
    line3 = f"3. {g3['goal']}: {verdict(g3['met'])} ({g3['criterion']}; {g3.get('note', '')})."
    if not g3["comparisons"]:
        line3 += " No target has both a two-stage row and a joint row with at most its BOPs."
    for c in g3["comparisons"]:
        joint = ", ".join(f"`{m}` {_pct(a)} ({_int(c['joint_bops'][m])} BOPs)" for m, a in c["joint"].items())
        line3 += (f" {c['target']}: two-stage {_pct(c['two_stage_top1'])} ({_int(c['bops'])} BOPs); {joint}; "
                  f"best joint − two-stage = {100 * c['best_joint_minus_two_stage']:+.2f} points.")
    out += [line3, "", "## Results", "",
            f"Float baseline: the built-in `cnn` (conv 16 – conv 32 – linear), {b['epochs']:g} epochs of float "
            f"training: **{_pct(b['float_top1'])}** float32 top-1 on {n:,} test images; "
            f"{_int(b['macs'])} MACs = {_int(b['float32_bops'])} float32 BOPs (MACs x 32 x 32). "
            "Every row below starts from it (`--init`).", ""]
    head = ["method", "target", "status", "sparsity", "float top-1", "fake-quant top-1", "integer top-1",
            "BOPs", "x fewer than float32", "params", "weight memory bits", "latency cycles (est.)",
            "latency µs @200 MHz (est.)", "II (est.)", "DSP (est.)", "LUT (est.)",
            f"export: torch / onnxruntime / csim equal (first {doc['verify_samples']:,})",
            f"onnxruntime equal (all {n:,})", f"csim equal (all {n:,})", "compress s", "export s"]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ve, vt = r["verification_export"], r["verification_test"] or {}
        sparsity = "–" if r["sparsity"] is None else f"{r['sparsity']:.3f} {r['sparsity_kind']}"
        status = r["status"] if r["status"] == "ok" else f"**{r['status']}**: {r['error']} (log: {r['log']})"
        if r["budgets_met"] is False:  # fpga-compress exits 1, the checkpoint written and exported
            missed = ", ".join(f"{k.replace('_us', ' µs')} {b['estimate']:g} > {b['limit']:g}"
                               for k, b in (r["budgets"] or {}).items() if not b["met"])
            status = f"**budget missed** ({missed}; exported all the same)"
        cells = [f"`{r['method']}`", r["target"], status, sparsity, _pct(r["float_top1"]),
                 _pct(r["fake_quant_top1"]), _pct(r["integer_top1"]), _int(r["bops"]),
                 "–" if r["bops_ratio"] is None else f"{r['bops_ratio']:.0f}x", _int(r["params"]),
                 _int(r["weight_memory_bits"]), _int(r["latency_cycles"]),
                 "–" if r["latency_us"] is None else f"{r['latency_us']:.2f}", _int(r["ii_cycles"]),
                 _int(r["dsp"]), _int(r["lut"]),
                 " / ".join(_eq(ve.get(k)) for k in ("torch_integer", "onnxruntime", "csim")),
                 _eq(vt.get("onnxruntime")), _eq(vt.get("csim")) if vt.get("csim") else "not run (time)",
                 "–" if r["wall_s"].get("compress") is None else f"{r['wall_s']['compress']:.0f}",
                 "–" if r["wall_s"].get("export") is None else f"{r['wall_s']['export']:.0f}"]
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    out += ["", "## The baseline a user would pick today: hls4ml", ""]
    if h.get("error"):
        out.append(f"hls4ml could not be run: {h['error']}")
    else:
        out += [f"hls4ml {h.get('hls4ml_version')} converting the float baseline directly (batch norm folded "
                "into the convolutions; one model-wide precision; Latency strategy, io_parallel), C simulation "
                f"through hls4ml's own `compile()` (g++) and `predict()` on the first {h['samples']:,} test images "
                "(hls4ml's predict of this io_parallel CNN costs about 30 ms an image). PyTorch "
                f"float top-1 on them: {_pct(h['torch_top1'])}.", "",
                "| precision | top-1 | argmax agreement with PyTorch | BOPs (MACs x bits x bits) | compile s | predict s |",
                "|---|---|---|---|---|---|"]
        for p, e in h["precisions"].items():
            bits = int(p.split("<")[1].split(",")[0])
            if e.get("error"):
                out.append(f"| `{p}` | FAILED: {e['error']} | – | – | – | – |")
            else:
                out.append(f"| `{p}` | {_pct(e['top1'])} | {_pct(e['agreement_with_torch'])} | "
                           f"{_int(b['macs'] * bits * bits)} | {e['compile_s']:.0f} | {e['predict_s']:.0f} |")
    out += ["", "## Plots", "",
            "![accuracy vs BOPs](fmnist_accuracy_bops.png)", "",
            "![accuracy vs latency](fmnist_accuracy_latency.png)", "",
            f"![per-layer latency of the best model](fmnist_layers.png)", ""]
    if doc.get("rule_framework_plot"):
        out += [f"Rule framework's per-epoch choices ({doc['rule_framework_plot']['target']}):", "",
                f"![rule framework choices]({doc['rule_framework_plot']['file']})", ""]
    out += ["## What each figure is", "", NOTES.format(n=n, verify=doc["verify_samples"]), ""]
    return "\n".join(out)


NOTES = """\
- **float top-1**: the compressed network with its quantizers switched off (its float weights,
  pruned channels removed), on the {n:,} test images; the baseline's float32 top-1 is above the table.
- **fake-quant top-1**: the compressed network as trained (quantizers on, float arithmetic), from
  fpga-compress's evaluation on the same {n:,} test images.
- **integer top-1**: the argmax of the exported integer ONNX model's logits as the simulator computes
  them, on the same {n:,} images (it equals fpga-compress's torch integer mode wherever both ran:
  `integer_top1_torch` in fmnist.json).
- **BOPs**: sum over Conv/Linear layers of MACs x weight bits x input activation bits (pruned
  channels removed; masked weights still count). x fewer: the float baseline's MACs x 32 x 32 over them.
- **params**: integer weights + folded biases; **weight memory bits**: export-fpga's
  `weight_memory_bits` (weights at their bits, biases at 32).
- **latency, II, DSP, LUT**: export-fpga's analytical estimate of the Foldline templates design
  (dataflow for this CNN; reuse factors as chosen under a budget, else 1; 5 ns clock =
  200 MHz) — estimates, **not synthesis results** (no Vivado here). II: the design's
  initiation interval in cycles.
- **verification**: elements equal to the simulator's, out of the elements compared (10 logits per
  image). "export": export-fpga's own checks on the first {verify:,} test images (PyTorch integer
  mode, onnxruntime, g++ C simulation of the HLS project). "all": onnxruntime on every test image,
  and the C simulation of the same design with every test image where time allowed.
- **compress s / export s**: wall time of fpga-compress (fine-tuning from the baseline, and its
  evaluation) and export-fpga for the row, with two runs side by side, each on one CPU.
- A `failed` row is a configuration the method refused or could not finish; its error is the
  CLI's own line and its log is in the work folder. DJPQ learns its own sparsity (`--sparsity` is
  refused), so its rows have none to match; iterative-magnitude prunes weights, not channels (its
  BOPs count masked weights, as a dense engine would).
- Without pruning (W8A8), `layerwise`, `stepwise` and `one-shot` are one procedure (the same
  training steps, no mask ever changes), and so are `two-stage` and `rule-framework` (only the Q
  step is offered): equal rows there are expected, not a copy.
- `increg`'s two budget rows are not IncReg pruning: under a budget its regularisation phase
  removes nothing (a known gap, docs/methods.md "Hardware in the loop"), and the budget is met by
  the repair rounds every structured method shares (activation importance after fine-tuning)."""


def plots(doc: dict, out: Path) -> None:
    """Accuracy vs BOPs (Pareto front), accuracy vs estimated latency, per-layer latency of the best model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in doc["rows"] if r["integer_top1"] is not None]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    markers = dict(zip(methods, "osD^v<>ph*"))
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for m in methods:
        pts = [r for r in rows if r["method"] == m]
        ax.scatter([r["bops"] for r in pts], [100 * r["integer_top1"] for r in pts], marker=markers[m], label=m)
    front = pareto([(r["bops"], -0.0 + r["integer_top1"]) for r in rows])
    ax.plot([rows[i]["bops"] for i in front], [100 * rows[i]["integer_top1"] for i in front], "k--", lw=1,
            label="Pareto front")
    b = doc["baseline"]
    ax.scatter([b["float32_bops"]], [100 * b["float_top1"]], marker="*", s=160, c="k", label="float32 baseline")
    accs = [100 * r["integer_top1"] for r in rows] + [100 * b["float_top1"]]
    low = min(accs) - 2  # a collapsed point (hls4ml at 8 bits) would squash the rest: drawn at the edge
    for p, e in doc["hls4ml"].get("precisions", {}).items():
        if "top1" in e:
            bits = int(p.split("<")[1].split(",")[0])
            y = max(100 * e["top1"], low + 0.3)
            ax.scatter([b["macs"] * bits * bits], [y], marker="x", s=80, label=f"hls4ml {p}")
            if 100 * e["top1"] < low:
                ax.annotate(f"hls4ml {p}: {100 * e['top1']:.1f} % (off the axis)", (b["macs"] * bits * bits, y),
                            textcoords="offset points", xytext=(-230, -3), fontsize=8)
    ax.set_ylim(low, max(accs + [100 * GOAL_TOP1]) + 1)
    ax.axvline(b["float32_bops"] / GOAL_RATIO, color="grey", lw=0.8, ls=":")
    ax.axhline(100 * GOAL_TOP1, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("BOPs (MACs x weight bits x activation bits; log)")
    h = doc["hls4ml"]
    ax.set_ylabel(f"top-1 (%): integer models and float32 on {doc['test_samples']:,} test images"
                  + (f",\nhls4ml on the first {h['samples']:,}" if h.get("samples") else ""), fontsize=9)
    ax.set_title("Fashion-MNIST: accuracy vs BOPs (dotted: the goal's 91 % and 150x)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "fmnist_accuracy_bops.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for m in methods:
        pts = [r for r in rows if r["method"] == m]
        ax.scatter([r["latency_us"] for r in pts], [100 * r["integer_top1"] for r in pts], marker=markers[m], label=m)
    ax.axvline(GOAL_LATENCY_US, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("estimated latency at 200 MHz (µs; analytical estimate, not synthesis)")
    ax.set_ylabel(f"integer top-1 on {doc['test_samples']:,} test images (%)")
    ax.set_title("Fashion-MNIST: accuracy vs estimated latency")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "fmnist_accuracy_latency.png", dpi=120)
    plt.close(fig)

    best = doc.get("best_model")
    if best:
        r = next(r for r in rows if r["key"] == best["key"])
        layers = r["per_layer"]
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.bar([l["name"] for l in layers], [l["latency_cycles"] or 0 for l in layers], label="latency (cycles)")
        ax.bar([l["name"] for l in layers], [l["ii"] or 0 for l in layers], width=0.4, label="II (cycles)")
        ax.set_ylabel("cycles (estimate, 5 ns clock)")
        ax.set_title(f"per-layer estimate: {r['method']}, {r['target']}\n"
                     f"{r['latency_cycles']:,} cycles = {r['latency_us']:.2f} µs in all (dataflow: layers overlap)",
                     fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "fmnist_layers.png", dpi=120)
        plt.close(fig)


# -- main ----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="the quick grid on a data subset (a few minutes)")
    p.add_argument("--sweep", type=Path, help="grid to run instead of the mode's (benchmarks/sweeps/fmnist*.toml)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder of fmnist.md, fmnist.json and the plots (default benchmarks/results; with "
                        "--quick build/fmnist-quick/results, so a quick run never replaces the committed full run)")
    p.add_argument("--work", type=Path, help="work folder: data, baseline, run folders (default build/fmnist[-quick])")
    p.add_argument("--workers", type=int, default=2, help="worker processes, one CPU each (default 2)")
    p.add_argument("--csim-deadline-min", type=float,
                   help="start no C simulation of the whole test split after this many minutes of the run "
                        "(default 45 full, 4 quick)")
    p.add_argument("--no-hls4ml", action="store_true", help="skip the hls4ml baseline (recorded as skipped)")
    p.add_argument("--render", action="store_true",
                   help="only write fmnist.md and the plots again from OUT/fmnist.json (no runs)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    started, t0, commit = time.strftime("%Y-%m-%d %H:%M:%S %Z"), time.time(), git_commit()
    mode_name = "quick" if args.quick else "full"
    mode = MODES[mode_name]
    sweep_file = (args.sweep or ROOT / mode["sweep"]).resolve()
    work = (args.work or ROOT / mode["work"]).resolve()
    out = (args.out or ROOT / mode["out"]).resolve()
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    if args.render:
        doc = json.loads((out / "fmnist.json").read_text())
        plots(doc, out)
        from toolchain.sweep.table import write_text

        write_text(out / "fmnist.md", markdown(doc))
        log(f"wrote {out / 'fmnist.md'} and the plots from {out / 'fmnist.json'}")
        return 0
    deadline_min = args.csim_deadline_min if args.csim_deadline_min is not None else mode["csim_deadline_min"]

    from toolchain.sweep.grid import load_sweep
    from toolchain.sweep.jobs import make_jobs
    from toolchain.sweep.runner import finished, run_folder
    from toolchain.sweep.table import write_json, write_tables, write_text

    jobs = make_jobs(load_sweep(sweep_file))  # a bad grid fails here, before anything runs
    log(f"{mode_name} run: {len(jobs)} configurations from {sweep_file.relative_to(ROOT) if sweep_file.is_relative_to(ROOT) else sweep_file}, "
        f"work folder {work}")
    prepare_data(work, mode)
    base, base_reused = train_baseline(work, mode)
    test = test_split(work)
    fl, _ = float_top1(work / "baseline.pt", test)
    log(f"float baseline: float32 top-1 {100 * fl:.2f} % on {len(test):,} test images")

    sweep_out = work / "sweep"
    (sweep_out / "runs").mkdir(parents=True, exist_ok=True)
    t_sweep = time.time()
    shards = [jobs[i::args.workers] for i in range(args.workers)]
    log(f"sweep: {len(jobs)} configurations in {args.workers} workers (progress: fpga-sweep lines)")
    in_workers(sweep_worker, shards, str(work), str(sweep_out))
    rows = [finished(run_folder(sweep_out, j), j) for j in jobs]
    missing = [j.key for j, r in zip(jobs, rows) if r is None]
    rows = [r for r in rows if r is not None]
    write_tables(sweep_out, rows, [sys.executable, *sys.argv])
    log(f"sweep: done in {(time.time() - t_sweep) / 60:.1f} min; {sum(r['status'] == 'ok' for r in rows)} ok, "
        f"{sum(r['status'] != 'ok' for r in rows)} failed, {len(missing)} missing")

    macs = _baseline_macs(work / "baseline.pt")
    float32 = macs * 32 * 32
    table_rows = [make_row(r, sweep_out / "runs" / r["key"], float32) for r in rows]

    if args.no_hls4ml:
        h = {"error": "skipped (--no-hls4ml)", "precisions": {}}
    else:
        log(f"hls4ml baseline: converting the float model at {', '.join(HLS4ML_PRECISIONS)} (one worker each)")
        h = hls4ml_summary(work / "baseline.pt", test, mode["hls4ml_samples"])
        h["precisions"] = {}
        if not h.get("error"):
            (work / "hls4ml").mkdir(exist_ok=True)
            for p in HLS4ML_PRECISIONS:
                (work / "hls4ml" / f"{_slug(p)}.json").unlink(missing_ok=True)
            in_workers(hls4ml_worker, [[p] for p in HLS4ML_PRECISIONS], str(work), mode["hls4ml_samples"])
            for p in HLS4ML_PRECISIONS:
                f = work / "hls4ml" / f"{_slug(p)}.json"
                h["precisions"][p] = json.loads(f.read_text()) if f.is_file() else {
                    "precision": p, "error": "the worker wrote no result"}


    # C simulation of the whole test split, best first, until the deadline
    ranked = sorted([r for r in table_rows if r["integer_top1"] is not None],
                    key=lambda r: (not (r["bops_ratio"] >= GOAL_RATIO and r["latency_us"] <= GOAL_LATENCY_US),
                                   -r["integer_top1"]))
    deadline = t0 + 60 * deadline_min
    runs = [str(sweep_out / "runs" / r["key"]) for r in ranked]
    log(f"C simulation of all {len(test):,} test images: {len(runs)} models, best first, none started after "
        f"minute {deadline_min:g} of the run")
    in_workers(csim_worker, [runs[i::args.workers] for i in range(args.workers)], str(work), deadline)
    table_rows = [make_row(r, sweep_out / "runs" / r["key"], float32) for r in rows]

    doc = {"format": FORMAT, "mode": mode_name,
           "command": " ".join(["python3", "benchmarks/fmnist.py", *argv]),
           "commit": commit, "commit_at_end": git_commit(), "machine": machine(), "started": started,
           "sweep_file": str(sweep_file.relative_to(ROOT)) if sweep_file.is_relative_to(ROOT) else str(sweep_file),
           "test_samples": len(test), "verify_samples": mode["verify"], "workers": args.workers,
           "baseline": {"argv": base["argv"], "wall_s": base["wall_s"], "reused": base_reused,
                        "epochs": mode["baseline_epochs"], "float_top1": fl, "macs": macs, "float32_bops": float32},
           "rows": table_rows, "missing": missing, "hls4ml": h}
    doc["goals"] = goals(table_rows, len(test))
    g1 = doc["goals"]["accuracy_bops_latency"]
    best = g1["best_within_bops_and_latency"] or g1["most_accurate_compressed"]
    doc["best_model"] = best
    rf = [r for r in table_rows if r["method"] == "rule-framework"
          and (sweep_out / "runs" / r["key"] / "model.choices.png").is_file()]
    if rf:
        name = "fmnist_rule_framework_choices.png"
        shutil.copyfile(sweep_out / "runs" / rf[0]["key"] / "model.choices.png", out / name)
        doc["rule_framework_plot"] = {"file": name, "key": rf[0]["key"], "target": rf[0]["target"]}
    doc["wall_s"] = round(time.time() - t0, 1)
    plots(doc, out)
    write_json(out / "fmnist.json", doc)
    write_text(out / "fmnist.md", markdown(doc))

    problems = []
    for r in table_rows:
        if equal_everywhere(r) is False:
            problems.append(f"{r['method']} ({r['target']}): a verification found a MISMATCH")
        if r["integer_top1"] is not None and r["integer_top1_torch"] is not None and \
                abs(r["integer_top1"] - r["integer_top1_torch"]) * len(test) > 0.01:  # (float32 in the summary)
            problems.append(f"{r['method']} ({r['target']}): simulator top-1 {r['integer_top1']} != torch "
                            f"integer mode {r['integer_top1_torch']}")
    for r in table_rows:
        if r["status"] != "ok":
            log(f"FAILED configuration {r['key']} {r['method']} ({r['target']}): {r['error']}")
    for name, g in doc["goals"].items():
        log(f"goal {'MET' if g['met'] else 'MISSED'}: {g['goal']}")
    for p in problems + [f"configuration {k} has no result" for k in missing]:
        log(f"ERROR: {p}")
    log(f"wrote {out / 'fmnist.md'} and {out / 'fmnist.json'} in {doc['wall_s'] / 60:.1f} min")
    return 1 if problems or missing else 0


def _baseline_macs(ckpt: Path) -> int:
    """The float baseline's MACs (toolchain.methods.costs, the count BOPs are built on)."""
    import toolchain
    from toolchain.methods.costs import macs

    return int(macs(toolchain.load(ckpt)))


def cli(argv: list[str] | None = None) -> int:
    """``main`` with a user's mistakes (a bad grid, a missing data set) as one line and exit 2, and an
    interruption as every Foldline CLI ends one (exporters.errors.run_cli)."""
    from exporters.errors import run_cli

    return run_cli(PROG, lambda: main(argv))


if __name__ == "__main__":
    sys.exit(cli())
