"""Estimator vs C simulation vs hls4ml compile, on the same power-of-two CNN and MLP.

For each model (built with ``exporters.examples`` and made hls4ml-exact with
``power_of_two_copy``) this measures, in one run:

* the analytical estimate (``hls_templates.estimate``), best of ``--repeat`` calls;
* Foldline's C simulation: ``write_project`` then ``run_csim`` (g++ compile + run of the
  testbench against the simulator's golden vectors), once;
* hls4ml's path: ``write_hls4ml_project`` then ``compile()`` (g++ of hls4ml's C++), once,
  plus a check that its predictions equal the simulator's integers.

Usage: python benchmarks/hls_speed.py [--repeat 20] [--batch 100]
Wall-clock seconds on this machine; the ratios are taken within this run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from exporters import examples
from exporters.onnx_export import to_onnx
from fpga_sim import Simulator
from hls_templates.estimate import estimate
from hls_templates.hls4ml_bridge import power_of_two_copy, write_hls4ml_project


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _csim(model, x, workdir: Path):
    try:
        from hls_templates import HlsConfig, run_csim, write_project
    except ImportError as exc:  # the generator is another module; say so rather than fail
        print(f"  C simulation: not available ({exc})")
        return None
    t_write, path = _timed(lambda: write_project(model, workdir / "foldline_prj", HlsConfig(), inputs=x))
    t_csim, result = _timed(lambda: run_csim(path))
    print(f"  C simulation: write_project {t_write:.3f} s, run_csim (g++ + run) {t_csim:.2f} s, "
          f"{'all equal' if result.ok else 'MISMATCH'} ({result.elements} elements)")
    return t_write + t_csim


def _hls4ml(model, q, expected, workdir: Path):
    t_write, project = _timed(lambda: write_hls4ml_project(model, workdir / "hls4ml_prj"))
    t_compile, _ = _timed(project.compile)
    exact = np.array_equal(project.predict_integers(q), expected.astype(np.int64))
    print(f"  hls4ml: write {t_write:.2f} s, compile() {t_compile:.2f} s, predictions == simulator: {exact}")
    return t_write + t_compile


def bench(name: str, model, repeat: int, batch: int) -> None:
    rng = np.random.default_rng(1)
    x = examples.random_inputs(rng, model, batch)
    q, expected = Simulator(to_onnx(model)).run([model.input.name, model.output.name], {"input": x})
    times = [_timed(lambda: estimate(model))[0] for _ in range(repeat)]
    est = estimate(model)
    t_est = min(times)
    print(f"{name}: {est}")
    print(f"  estimator: best of {repeat} {t_est * 1e3:.2f} ms (median {np.median(times) * 1e3:.2f} ms)")
    with tempfile.TemporaryDirectory() as tmp:
        t_csim = _csim(model, x, Path(tmp))
        t_hls4ml = _hls4ml(model, q, expected, Path(tmp))
    if t_csim is not None:
        print(f"  ratio C simulation / estimator: {t_csim / t_est:.0f}x")
        print(f"  ratio hls4ml write+compile / C simulation: {t_hls4ml / t_csim:.2f}x")
    print(f"  ratio hls4ml write+compile / estimator: {t_hls4ml / t_est:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    import hls4ml  # noqa: F401  - one-time imports (torch, hls4ml) stay out of the timings
    import torch  # noqa: F401

    rng = np.random.default_rng(0)
    cnn = power_of_two_copy(examples.cnn(rng, power_of_two=True))
    mlp = power_of_two_copy(examples.mlp(rng, power_of_two=True))
    bench("cnn (1x12x12, conv 4 + conv 8, 5 classes)", cnn, args.repeat, args.batch)
    bench("mlp (16-32-10)", mlp, args.repeat, args.batch)


if __name__ == "__main__":
    main()
