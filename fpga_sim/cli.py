"""``fpga-sim``: run a model through the simulator, or verify it against onnxruntime.

Exit codes: 0 success, 1 verify found a divergence, 2 bad input (one line on
stderr, no traceback; ``--debug`` re-raises instead), 130 interrupted (Ctrl-C; 143 for
SIGTERM), with nothing written.

Float feeds follow :mod:`fpga_sim.inputs` (no NaN or infinity; float64 only when exactly
float32), the same rule as ``fpga-hls --inputs``.
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from exporters.errors import FoldlineError, run_cli
from exporters.staging import staging_file
from fpga_sim.inputs import float32_input, load_npz
from fpga_sim.simulator import Simulator
from fpga_sim.platform import cpu_has_vnni
from fpga_sim.verify import (
    INTEGER_GEMM_OPS,
    compare,
    expose_all_tensors,
    first_divergence,
    onnxruntime_saturates_u8s8,
    run_onnxruntime,
)


class CliError(FoldlineError):
    """A user-facing failure outside the simulator (files, onnxruntime)."""


def load_feeds(simulator: Simulator, path: str) -> dict[str, np.ndarray]:
    """The arrays of ``path`` as feeds: those for a float32 graph input follow :mod:`fpga_sim.inputs`."""
    floats = {i.name for i in simulator.get_inputs() if i.dtype == np.float32}
    return {name: float32_input(array, f"{path}: array {name!r}") if name in floats else array
            for name, array in load_npz(path).items()}


def save_npz(path: str, arrays: Mapping[str, np.ndarray], force: bool) -> None:
    """Write ``arrays`` as an .npz (names kept verbatim); refuses to overwrite unless forced.

    Written to a staging file beside ``path`` first (:mod:`exporters.staging`), so an
    interrupted run leaves neither a partial ``path`` nor a temporary file.
    """
    target = Path(path)
    if target.exists() and not force:
        raise CliError(f"{path} exists; use --force to overwrite it")
    try:
        staged = staging_file(target, suffix=".npz")
        try:
            with open(staged, "wb") as handle, zipfile.ZipFile(handle, "w") as archive:
                for name, array in arrays.items():
                    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
            os.replace(staged, target)
        finally:
            staged.unlink(missing_ok=True)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _run(args: argparse.Namespace) -> int:
    if os.path.exists(args.out) and not args.force:
        raise CliError(f"{args.out} exists; use --force to overwrite it")
    simulator = Simulator(args.model)
    feeds = load_feeds(simulator, args.inputs)
    names = [o.name for o in simulator.get_outputs()]
    outputs = dict(zip(names, simulator.run(names, feeds)))
    save_npz(args.out, outputs, args.force)
    for name, value in outputs.items():
        print(f"{name}: {value.dtype} {list(value.shape)}")
    print(f"wrote {len(outputs)} output(s) to {args.out}")
    return 0


def _onnxruntime(model, feeds: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray] | bool:
    """run_onnxruntime(model, feeds), or the VNNI probe when ``model`` is None; CliError on failure."""
    try:
        return onnxruntime_saturates_u8s8() if model is None else run_onnxruntime(model, feeds)
    except ImportError as exc:
        raise CliError("verify needs onnxruntime, which is not installed") from exc
    except Exception as exc:  # onnxruntime raises its own, unrelated exception types
        text = str(exc).strip().splitlines()
        raise CliError(f"onnxruntime failed: {text[0] if text else type(exc).__name__}") from exc


def _verify(args: argparse.Namespace) -> int:
    simulator = Simulator(args.model)
    feeds = load_feeds(simulator, args.inputs)
    traced = simulator.trace(feeds)
    model = simulator.graph.model
    known = {**simulator.graph.initializers, **feeds, **traced}
    ort_outputs = _onnxruntime(model, feeds)
    ort_all = _onnxruntime(expose_all_tensors(model, {k: v.dtype for k, v in traced.items()}), feeds)

    producers = {out: node for node in simulator.nodes for out in node.outputs if out}
    total = equal = 0
    output_divergence = None
    for info in simulator.get_outputs():
        sim, ort = known[info.name], ort_outputs[info.name]
        total += sim.size
        found = compare(info.name, sim, ort, producers.get(info.name))
        equal += sim.size if found is None else (found.total - found.differing)
        output_divergence = output_divergence or found

    divergence = first_divergence(simulator.nodes, traced, ort_all)
    if divergence is None and output_divergence is None:
        print(f"{total}/{total} elements equal "
              f"({len(simulator.get_outputs())} graph output(s); all {len(traced)} node outputs equal too)")
        return 0
    print(f"{equal}/{total} elements of the graph outputs equal")
    found = divergence or output_divergence
    vnni = cpu_has_vnni()
    saturates = _onnxruntime(None) if found.op_type in INTEGER_GEMM_OPS and not vnni else None
    print(found.describe(vnni, saturates))
    if divergence is None:
        print("  (every intermediate agrees when exposed as an output; onnxruntime optimised "
              "the original graph differently)")
    return 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate for documentation and tests)."""
    debug_help = "show the full traceback instead of a one-line error"
    common = argparse.ArgumentParser(add_help=False)  # --debug after the command, too
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    parser = argparse.ArgumentParser(
        prog="fpga-sim",
        description="Bit-accurate integer reference simulator for Foldline ONNX graphs.",
        epilog="Exit codes: 0 success, 1 verify found a divergence, 2 bad input, 130 interrupted.",
    )
    parser.add_argument("--debug", action="store_true", help=debug_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", parents=[common], help="run a model on inputs from an .npz",
                              description="Run MODEL on the arrays of --inputs (named by graph input) "
                                          "and write the graph outputs, by name, to --out.")
    run.add_argument("model", metavar="MODEL.onnx")
    run.add_argument("--inputs", required=True, metavar="X.npz", help="feeds, one array per graph input")
    run.add_argument("--out", required=True, metavar="Y.npz", help="where to write the outputs")
    run.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    run.set_defaults(handler=_run)

    verify = commands.add_parser("verify", parents=[common], help="compare with onnxruntime, tensor by tensor",
                                 description="Run MODEL in the simulator and in onnxruntime (CPU) and compare "
                                             "every graph output and every intermediate tensor. Prints "
                                             "'N/N elements equal' or the first divergent node.")
    verify.add_argument("model", metavar="MODEL.onnx")
    verify.add_argument("--inputs", required=True, metavar="X.npz", help="feeds, one array per graph input")
    verify.set_defaults(handler=_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fpga-sim`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        args = build_parser().parse_args(argv)
        return args.handler(args)

    return run_cli("fpga-sim", body, debug="--debug" in argv)


if __name__ == "__main__":
    sys.exit(main())
