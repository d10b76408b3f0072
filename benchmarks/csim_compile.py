"""How long g++ takes to compile the C simulation of Foldline's HLS projects, against the goals.

Issue 7 measured ``g++ -O2`` dying with an internal compiler error on the weight table of a
``1568 -> 64`` Linear, and 157-224 s for layers of 26-30k weights: the tables were arrays of
ap types, built by a static initializer that g++ compiles in superlinear time. They are now
plain constant data under g++ (``foldline::table_element``, docs/hls.md "C simulation here"). Each
model below goes through ``write_project`` and ``compile_testbench`` (the g++ build only,
timed), then ``run_csim`` checks the C simulation against the simulator on every element.

Goals: a 1568 -> 64 (-> 10) head compiles in <= 30 s; a model of 1M weights in <= 60 s.

Usage: python benchmarks/csim_compile.py [--samples 4] [--only head,conv,1m]
Wall-clock seconds on this machine, one run each (the two g++ processes of a build run in
parallel, so a loaded machine reads slower).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from exporters.examples import Builder, random_inputs
from hls_templates import HlsConfig, run_csim, write_project
from hls_templates.csim import compile_testbench


def head(rng):
    """LeNet/VGG-style classifier head: (32, 7, 7) -> Flatten -> Linear 64 -> Linear 10."""
    b = Builder(rng, (32, 7, 7))
    x = b.linear(b.flatten("input_q"), 64)
    b.linear(x, 10, relu=False, signed_out=True)
    return b.build("head_1568x64")


def conv(rng):
    """One 3x3 Conv 32 -> 96 on 16x16 (27,648 weights), the size issue 7 measured at 157-224 s."""
    b = Builder(rng, (32, 16, 16))
    b.conv("input_q", 96, relu=False, signed_out=True)
    return b.build("conv_32x96")


def dense_1m(rng):
    """A dense MLP of about 1M weights: 1024 -> 1000 -> 10."""
    b = Builder(rng, (1024,))
    b.linear(b.linear("input_q", 1000), 10, relu=False, signed_out=True)
    return b.build("mlp_1m")


# name: (builder, architecture, goal in seconds or None)
CASES = {
    "head": [(head, "dataflow", 30.0), (head, "parallel", 30.0)],
    "conv": [(conv, "dataflow", None), (conv, "parallel", None)],
    "1m": [(dense_1m, "parallel", 60.0)],
}


def bench(build, arch: str, goal, samples: int, workdir: Path) -> bool:
    rng = np.random.default_rng(0)
    model = build(rng)
    weights = sum(int(np.count_nonzero(getattr(layer, "weight", 0))) for layer in model.layers)
    x = random_inputs(rng, model, samples)
    start = time.perf_counter()
    project = write_project(model, workdir / f"{model.name}_{arch}", HlsConfig(architecture=arch), x)
    t_write = time.perf_counter() - start
    start = time.perf_counter()
    compile_testbench(project)
    t_compile = time.perf_counter() - start
    result = run_csim(project)
    verdict = "" if goal is None else f"; goal <= {goal:g} s: {'met' if t_compile <= goal else 'MISSED'}"
    print(f"{model.name} ({arch}, {weights:,} nonzero weights): g++ {t_compile:.1f} s, "
          f"write_project {t_write:.1f} s, {result}{verdict}", flush=True)
    return result.ok and (goal is None or t_compile <= goal)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4, help="test vectors per model (default 4)")
    parser.add_argument("--only", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}; choose from {list(CASES)}")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for build, arch, goal in CASES[name]:
                ok &= bench(build, arch, goal, args.samples, Path(tmp))
    print("all goals met, every C simulation equal to the simulator" if ok else "SOME GOAL MISSED OR A MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
