"""``export-fpga``: a Foldline checkpoint -> verified integer ONNX + report.json.

Exit codes (also in ``--help``): 0 everything equal; 1 a verification mismatch (the output
directory is still written, complete, for inspection); 2 bad input (one line on stderr,
nothing written); 3 a check could not run (the C simulation failed to build: the output
directory is written all the same, with the log the message names); 4 the top-1 agreement
is below ``--min-agreement`` (written, complete, for inspection, as for 1); 130 interrupted
(Ctrl-C; 143 SIGTERM, 129 SIGHUP; nothing written, no temporary folder left). When several
apply, the lowest of 1, 3, 4 wins. Accuracy warnings go to stderr as ``export-fpga:
WARNING: ...`` lines and into report.json's ``warnings`` (see toolchain/accuracy.py).
Unless ``--quiet``, each phase (exporting ONNX, verifying, the C simulation, ...) prints a
line to stderr as it starts and ends (:mod:`toolchain.progress`); the input checks run
before the first one, so a bad input's error stays the only line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from exporters.errors import run_cli

PROG = "export-fpga"
EXIT_MISMATCH, EXIT_NOT_RUN, EXIT_BELOW_MIN_AGREEMENT = 1, 3, 4

EPILOG = """examples:
  export-fpga --example -o out                      # the shipped Fashion-MNIST CNN and sample
  export-fpga model.pt -o out --calibration x.npz   # x: float32 N x C x H x W, optional y labels
  export-fpga model.pt -o out --force               # replace an existing out/
  export-fpga net.pt2 -o out --calibration x.npz    # a float torch.export program, quantized post-training
  export-fpga net.pt2 -o out --calibration x.npz --power-of-two --hls hls4ml   # hls4ml needs power-of-two scales
  export-fpga net.pt2 -o out --calibration x.npz --min-agreement 0.95          # exit 4 if PTQ collapses

exit codes:
  0 every check equal   1 a check found a mismatch (OUT written)   2 bad input (nothing written)
  3 a check could not run, e.g. the C simulation failed to build (OUT written, with its log)
  4 top-1 agreement below --min-agreement (OUT written)   130 interrupted (nothing written)
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Remove pruned channels, fold, export integer ONNX, and verify PyTorch integer mode, "
                    "the simulator and onnxruntime agree on every element.")
    p.add_argument("model", nargs="?", help="Foldline checkpoint (.pt) written by fpga-compress / toolchain.save, "
                                            "or a float network saved with torch.export.save (.pt2)")
    p.add_argument("--example", action="store_true", help="use the shipped Fashion-MNIST checkpoint and sample")
    p.add_argument("-o", "--out", required=True, type=Path, help="output directory (model.onnx, report.json)")
    p.add_argument("--calibration", type=Path, help=".npz with x (N,C,H,W float32) and optional y labels "
                                                   "(default: the shipped Fashion-MNIST sample)")
    for flag in ("--weight-bits", "--act-bits"):  # PTQ of a .pt2
        p.add_argument(flag, type=int, default=None, help="post-training quantization of a .pt2 float model "
                                                          "(default 8)")
    p.add_argument("--power-of-two", action="store_true",
                   help="post-training quantization of a .pt2 with power-of-two scales and zero points 0 "
                        "(what --hls hls4ml needs; a checkpoint gets them from fpga-compress --power-of-two)")
    p.add_argument("--min-agreement", type=float, default=None, metavar="X",
                   help="exit 4 when the integer model's top-1 agreement with the float program (.pt2) or the "
                        "fake-quant model (.pt) is below X in [0, 1] (the output is still written)")
    p.add_argument("--samples", type=int, default=None, help="use only the first N calibration samples (N >= 1)")
    p.add_argument("--hls", choices=("templates", "hls4ml", "none"), default="templates",
                   help="HLS project in OUT/hls/ checked by C simulation: Foldline's kernels with g++ "
                        "(default), an hls4ml project (power-of-two models only), or none")
    p.add_argument("--part", default=None, help="FPGA part for the HLS project (default: the checkpoint's "
                                                "budgeted design, else xcu250-figd2104-2L-e)")
    p.add_argument("--clock-ns", type=float, default=None, help="target clock period in ns (default: the "
                                                                "checkpoint's budgeted design, else 5.0)")
    p.add_argument("--architecture", choices=("auto", "dataflow", "parallel"), default=None,
                   help="HLS architecture, as fpga-hls (default: the checkpoint's budgeted design, else auto: "
                        "parallel for vector inputs, dataflow for maps)")
    p.add_argument("--reuse-factor", type=int, default=None,
                   help="cycles per multiplier for every layer, as fpga-hls (default: the checkpoint's budgeted "
                        "design, else 1)")
    p.add_argument("--force", action="store_true", help="replace an existing output directory")
    p.add_argument("--quiet", action="store_true", help="print only the final verdict (no table, no phase lines)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _print_summary(result, quiet: bool) -> None:
    report = result.report
    if not quiet:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{report['model']}: per-layer integer model")
        for col in ("layer", "op", "in→out", "kernel", "w/a bits", "acc", "MACs", "BOPs", "params",
                    "cycles", "LUT", "DSP"):
            table.add_column(col, justify="left" if col in ("layer", "op") else "right")
        for r in report["layers"]:
            kernel = "x".join(map(str, r["kernel"])) if r["kernel"] else "-"
            bits = f"{r['weight_bits'] or '-'}/{r['act_bits']}"
            table.add_row(r["name"], r["op"], f"{r['in_channels']}→{r['out_channels']}", kernel, bits,
                          str(r["acc_bits"] or "-"), f"{r['macs']:,}", f"{r['bops']:,}", f"{r['params']:,}",
                          f"{r['latency_cycles']:,}", f"{r['lut']:,}", f"{r['dsp']:,}")
        t = report["totals"]
        table.add_row("total", "", "", "", "", "", f"{t['macs']:,}", f"{t['bops']:,}", f"{t['params']:,}",
                      f"{t['latency_cycles']:,}", f"{t['lut']:,}", f"{t['dsp']:,}")
        Console(file=sys.stdout, width=None if sys.stdout.isatty() else 150).print(table)
        hw = report["estimate"]
        print(f"estimate of the {hw['estimated_design']} design ({hw['part']}, {t['clock_ns']} ns clock; analytical, "
              "not a synthesis result): "
              f"{t['latency_cycles']:,} cycles = {t['latency_us']:.2f} us, {t['lut']:,} LUT, {t['ff']:,} FF, "
              f"{t['dsp']:,} DSP, {t['bram']:,} BRAM")
        print(f"parameters: {t['params']:,} integer (weights + folded biases; fpga-compress's trainable count "
              "adds the batch-norm scales and shifts)")
        if "accuracy" in report:
            a = report["accuracy"]
            parts = [f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in a.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool)]  # numbers; notes are in the JSON
            print("accuracy: " + ", ".join(parts))
    for name, v in report["verification"].items():
        if v.get("error"):
            print(f"verify {name} vs simulator: could not run: {v['error']}")
            if v.get("log"):
                print(f"  log: {v['log']}")
            continue
        verdict = f"{v['elements'] - v['mismatches']}/{v['elements']} elements equal"
        print(f"verify {name} vs simulator: {verdict} ({v['samples']} samples)")
        if v.get("first_divergence"):
            print(f"  first divergence: {v['first_divergence']}")
    print(f"wrote {result.onnx_path} and {result.report_path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``export-fpga`` console script; returns the exit code (module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_cli(PROG, lambda: _run(build_parser().parse_args(argv)), debug="--debug" in argv)


def _run(args: argparse.Namespace) -> int:
    import toolchain
    from toolchain.export_pipeline import (EXAMPLE_MODEL, ExportError, example_path, export, hls_settings,
                                           load_calibration)
    from toolchain.progress import Progress

    if args.example == (args.model is not None):
        raise ExportError("give either a MODEL path or --example")
    model_path = example_path(EXAMPLE_MODEL) if args.example else Path(args.model)
    design = None  # the HLS design fpga-compress recorded in a checkpoint (its hardware budgets')
    if model_path.suffix == ".pt2":  # a float torch.export program: post-training quantization
        from toolchain.ptq import quantize_for_export

        model, x, y, float_logits = quantize_for_export(
            model_path, args.calibration, args.samples, 8 if args.weight_bits is None else args.weight_bits,
            8 if args.act_bits is None else args.act_bits, args.power_of_two)
        if not args.quiet:
            print(f"post-training quantization: float program vs fake-quant top-1 agreement "
                  f"{model.ptq_info['float_program_vs_fake_quant_top1_agreement']:.4f} "
                  f"on {len(x)} calibration samples")
    else:
        if args.weight_bits is not None or args.act_bits is not None:
            raise ExportError("--weight-bits/--act-bits apply only to a .pt2 float model")
        if args.power_of_two:
            raise ExportError("--power-of-two applies only to a .pt2 float model (post-training "
                              "quantization); train a checkpoint with fpga-compress --power-of-two")
        float_logits = None
        model = toolchain.load(model_path)
        design = toolchain.load_metadata(model_path).get("hardware")
        x, y = load_calibration(args.calibration, tuple(model.input_shape), args.samples)
    from hls_templates import HlsConfig

    overrides = {k: v for k, v in (("part", args.part), ("clock_ns", args.clock_ns), ("architecture", args.architecture),
                                   ("reuse_factor", args.reuse_factor)) if v is not None}
    overrides = hls_settings(design, overrides)
    if args.min_agreement is not None and not 0.0 <= args.min_agreement <= 1.0:
        raise ExportError(f"--min-agreement {args.min_agreement} is outside [0, 1]")
    csim_log = logging.getLogger("hls_templates.csim")
    level = csim_log.level
    if args.quiet:  # the C simulation's "compiling ..." lines too
        csim_log.setLevel(logging.WARNING)
    try:
        result = export(model, args.out, x, y, force=args.force, hls=args.hls, hls_config=HlsConfig(**overrides),
                        float_logits=float_logits, min_agreement=args.min_agreement,
                        progress=Progress(args.quiet, prefix=f"{PROG}: "))
    finally:
        csim_log.setLevel(level)
    _print_summary(result, args.quiet)
    return _verdict(result)


def _verdict(result) -> int:
    """Print the accuracy warnings (always, on stderr); the exit code (see the module docstring)."""
    for warning in result.report["warnings"]:
        print(f"{PROG}: WARNING: {warning}", file=sys.stderr)
    if result.mismatched:
        return EXIT_MISMATCH
    if result.not_run:
        print(f"{PROG}: {', '.join(result.not_run)} could not run; {result.report_path.parent} is written "
              "all the same", file=sys.stderr)
        return EXIT_NOT_RUN
    if not result.agreement_ok:
        a = result.report["accuracy"]
        print(f"{PROG}: {a['agreement_checked']} {a[a['agreement_checked']]:.4f} is below --min-agreement "
              f"{a['min_agreement']}; {result.report_path.parent} is written for inspection", file=sys.stderr)
        return EXIT_BELOW_MIN_AGREEMENT
    return 0


if __name__ == "__main__":
    sys.exit(main())
