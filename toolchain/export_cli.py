"""``export-fpga``: a Foldline checkpoint -> verified integer ONNX + report.json.

Exit codes: 0 everything equal; 1 a verification mismatch (the output directory is still
written, complete, for inspection); 2 bad input (one line on stderr, nothing written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from exporters.errors import FoldlineError

EPILOG = """examples:
  export-fpga --example -o out                      # the shipped Fashion-MNIST CNN and sample
  export-fpga model.pt -o out --calibration x.npz   # x: float32 N x C x H x W, optional y labels
  export-fpga model.pt -o out --force               # replace an existing out/
  export-fpga net.pt2 -o out --calibration x.npz    # a float torch.export program, quantized post-training
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="export-fpga", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
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
    p.add_argument("--samples", type=int, default=None, help="use only the first N calibration samples")
    p.add_argument("--hls", choices=("templates", "hls4ml", "none"), default="templates",
                   help="HLS project in OUT/hls/ checked by C simulation: Foldline's kernels with g++ "
                        "(default), an hls4ml project (power-of-two models only), or none")
    p.add_argument("--part", default=None, help="FPGA part for the HLS project (default xcu250-figd2104-2L-e)")
    p.add_argument("--clock-ns", type=float, default=None, help="target clock period in ns (default 5.0)")
    p.add_argument("--force", action="store_true", help="replace an existing output directory")
    p.add_argument("--quiet", action="store_true", help="print only the final verdict")
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
        hw = report["hls"]
        print(f"estimate ({hw['part']}, {t['clock_ns']} ns clock; analytical, not a synthesis result): "
              f"{t['latency_cycles']:,} cycles = {t['latency_us']:.2f} us, {t['lut']:,} LUT, {t['ff']:,} FF, "
              f"{t['dsp']:,} DSP, {t['bram']:,} BRAM")
        if "accuracy" in report:
            a = report["accuracy"]
            parts = [f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in a.items()]
            print("accuracy: " + ", ".join(parts))
    for name, v in report["verification"].items():
        verdict = f"{v['elements'] - v['mismatches']}/{v['elements']} elements equal"
        print(f"verify {name} vs simulator: {verdict} ({v['samples']} samples)")
        if v.get("first_divergence"):
            print(f"  first divergence: {v['first_divergence']}")
    print(f"wrote {result.onnx_path} and {result.report_path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import toolchain
        from toolchain.export_pipeline import (EXAMPLE_MODEL, ExportError, example_path, export,
                                               load_calibration)

        if args.example == (args.model is not None):
            raise ExportError("give either a MODEL path or --example")
        model_path = example_path(EXAMPLE_MODEL) if args.example else Path(args.model)
        if model_path.suffix == ".pt2":  # a float torch.export program: post-training quantization
            from toolchain.ptq import quantize_for_export

            model, x, y = quantize_for_export(model_path, args.calibration, args.samples,
                                              8 if args.weight_bits is None else args.weight_bits,
                                              8 if args.act_bits is None else args.act_bits)
            if not args.quiet:
                print(f"post-training quantization: float vs quantized top-1 agreement "
                      f"{model.ptq_info['float_ptq_top1_agreement']:.4f} on {len(x)} calibration samples")
        else:
            if args.weight_bits is not None or args.act_bits is not None:
                raise ExportError("--weight-bits/--act-bits apply only to a .pt2 float model")
            model = toolchain.load(model_path)
            x, y = load_calibration(args.calibration, tuple(model.input_shape), args.samples)
        from hls_templates import HlsConfig

        overrides = {k: v for k, v in (("part", args.part), ("clock_ns", args.clock_ns)) if v is not None}
        result = export(model, args.out, x, y, force=args.force, hls=args.hls, hls_config=HlsConfig(**overrides))
    except FoldlineError as exc:
        if args.debug:
            raise
        print(f"export-fpga: error: {exc}", file=sys.stderr)
        return 2
    _print_summary(result, args.quiet)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
