"""``fpga-sim``: run a model through the simulator, or verify it against onnxruntime.

Exit codes: 0 success, 1 verify found a divergence, 2 bad input (one line on
stderr, no traceback; ``--debug`` re-raises instead).
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from typing import Mapping, Sequence

import numpy as np

from fpga_sim.errors import SimulatorError
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


class CliError(Exception):
    """A user-facing failure outside the simulator (files, onnxruntime)."""


def load_npz(path: str) -> dict[str, np.ndarray]:
    """All arrays of an .npz file, by name; CliError if it is not one."""
    if not os.path.isfile(path):
        raise CliError(f"{path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CliError(f"{path}: not a valid .npz file ({exc})") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise CliError(f"{path}: not an .npz archive (a single array)")
    try:
        with data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CliError(f"{path}: not a valid .npz file ({exc})") from exc


def save_npz(path: str, arrays: Mapping[str, np.ndarray], force: bool) -> None:
    """Write ``arrays`` as an .npz (names kept verbatim); refuses to overwrite unless forced."""
    try:
        with open(path, "wb" if force else "xb") as handle, zipfile.ZipFile(handle, "w") as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
    except FileExistsError as exc:
        raise CliError(f"{path} exists; use --force to overwrite it") from exc
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _run(args: argparse.Namespace) -> int:
    if os.path.exists(args.out) and not args.force:
        raise CliError(f"{args.out} exists; use --force to overwrite it")
    simulator = Simulator(args.model)
    feeds = load_npz(args.inputs)
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
    feeds = load_npz(args.inputs)
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
        epilog="Exit codes: 0 success, 1 verify found a divergence, 2 bad input.",
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
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (SimulatorError, CliError) as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split())
        print(f"fpga-sim: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
