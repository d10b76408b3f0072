"""``fpga-hls``: Foldline ONNX file -> HLS project (and optionally its C simulation).

    fpga-hls MODEL.onnx -o DIR [--part P] [--clock-ns T] [--architecture auto|dataflow|parallel]
             [--reuse-factor R] [--inputs X.npz] [--samples N] [--seed S] [--csim] [--force] [--debug]

Test vectors: the inputs of ``--inputs`` (an .npz holding one array, or an array named
``input``), else ``--samples`` random inputs (default 8) from
``exporters.examples.random_inputs(numpy.random.default_rng(--seed))`` (seed 0); golden outputs
come from the simulator on MODEL.onnx itself. Float inputs follow :mod:`fpga_sim.inputs`, the
rule ``fpga-sim`` applies too (no NaN or infinity; float64 only when every value is exactly a
float32); integer inputs are taken as already quantized.

Exit codes: 0 success; 1 the C simulation differs from the simulator (the project is kept);
2 bad input or a failing tool (one line, ``fpga-hls: error: ...``; ``--debug`` shows the
traceback instead); 130 interrupted (Ctrl-C; 143 SIGTERM), no partial project left.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from exporters.errors import FoldlineError, run_cli
from exporters.examples import random_inputs
from exporters.onnx_import import load_integer_model
from fpga_sim.inputs import float32_input, load_npz
from hls_templates.config import ARCHITECTURES, HlsConfig
from hls_templates.csim import run_csim
from hls_templates.errors import ProjectError
from hls_templates.golden import golden_vectors
from hls_templates.project import write_project

PROG = "fpga-hls"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every Foldline CLI error
        raise _UsageError(message)


class _UsageError(FoldlineError):
    """A bad command line (argparse's message, as one line)."""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Generate a Vitis/Vivado HLS project from a Foldline ONNX file.")
    p.add_argument("model", type=Path, help="Foldline ONNX file (written by export-fpga)")
    p.add_argument("-o", "--output", type=Path, required=True, help="project directory to create")
    p.add_argument("--part", default=HlsConfig.part, help=f"FPGA part (default {HlsConfig.part})")
    p.add_argument("--clock-ns", type=float, default=HlsConfig.clock_ns, help="clock period in ns (default 5)")
    p.add_argument("--architecture", choices=ARCHITECTURES, default="auto",
                   help="dataflow (streams), parallel (arrays) or auto (parallel for vector inputs)")
    p.add_argument("--reuse-factor", type=int, default=1, help="cycles per multiplier for every layer (default 1)")
    p.add_argument("--top", default=HlsConfig.top, help="top function name (default foldline_top)")
    p.add_argument("--inputs", type=Path, help=".npz with float inputs (N, *input_shape) for the testbench")
    p.add_argument("--samples", type=int, default=8, help="random test samples when --inputs is absent (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random test samples (default 0)")
    p.add_argument("--csim", action="store_true", help="compile and run the C simulation with g++")
    p.add_argument("--force", action="store_true", help="replace an existing output directory")
    p.add_argument("--debug", action="store_true", help="show the full traceback instead of a one-line error")
    return p


def _load_inputs(path: Path) -> np.ndarray:
    """The test inputs of ``path``: its array ``input``, or its only array (floats checked by
    :func:`fpga_sim.inputs.float32_input`)."""
    arrays = load_npz(str(path))
    name = "input" if "input" in arrays else (next(iter(arrays)) if len(arrays) == 1 else None)
    if name is None:
        raise ProjectError(f"{path}: expected one array or an array named 'input', found "
                           f"{', '.join(arrays) if arrays else 'no arrays (an empty .npz)'}")
    return float32_input(arrays[name], f"{path}: array {name!r}")


def run(args: argparse.Namespace) -> int:
    out = args.output
    if out.exists() and not args.force:
        raise ProjectError(f"{out} already exists (use --force to replace it)")
    if args.samples < 1:
        raise ProjectError(f"--samples must be >= 1, got {args.samples}")
    config = HlsConfig(part=args.part, clock_ns=args.clock_ns, architecture=args.architecture,
                       reuse_factor=args.reuse_factor, top=args.top)
    model = load_integer_model(args.model)
    if args.inputs is not None:
        x = _load_inputs(args.inputs)
    else:
        x = random_inputs(np.random.default_rng(args.seed), model, args.samples)
    q_in, q_out = golden_vectors(model, x, source=args.model)
    path = write_project(model, out, config, q_in, q_out, overwrite=args.force)
    print(f"{PROG}: wrote {path} ({config.resolve_architecture(model.input.shape)} architecture, "
          f"{len(q_in)} test samples)")
    if not args.csim:
        return 0
    result = run_csim(path)
    print(result)
    if not result.ok:
        print(f"{PROG}: C simulation differs from the simulator; project kept at {path}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_cli(PROG, lambda: run(build_parser().parse_args(argv)), debug="--debug" in argv)


if __name__ == "__main__":
    sys.exit(main())
