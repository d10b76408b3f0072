"""``fpga-compress``: train, prune and quantize a model, then save a Foldline checkpoint.

Errors a user can cause print one line, ``fpga-compress: error: ...``, and exit 2
(``--debug`` re-raises them with a traceback instead); Ctrl-C, SIGTERM and SIGHUP print
``fpga-compress: interrupted`` and exit 130 (143, 129), leaving no temporary file. A run whose
final estimate misses a hardware budget still writes its checkpoint, says by how much in its
summary and exits 1 (:data:`EXIT_BUDGET_MISSED`).
Progress goes to stderr: bars on a terminal, plain lines in a log (:mod:`toolchain.progress`).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
from pathlib import Path

import torch

import toolchain
from exporters import stats
from exporters.errors import FoldlineError, run_cli
from exporters.staging import staging_file
from toolchain.data import Dataset, load_dataset
from toolchain.methods import METHODS, MethodConfig, get_method
from toolchain.methods.costs import bops
from toolchain.methods.hardware import LIMITS, HardwareTarget
from toolchain.nn import BitsError, bit_widths, is_power_of_two, parse_layer_bits, set_quantization, with_power_of_two
from toolchain.progress import Progress
from toolchain.pruning import count_parameters
from toolchain.train import evaluate_integer, predict, seed_everything

PROG = "fpga-compress"
EXIT_BUDGET_MISSED = 1  #: the checkpoint is written, but its estimate misses a hardware budget

DESCRIPTION = """\
Train a small quantized network (or continue from a checkpoint), prune it with one
of Foldline's methods, fine-tune it with quantization-aware training, report float
and integer accuracy, parameters and BOPs, and save a Foldline checkpoint."""

NOTES = """
sparsity: channel methods count the fraction of prunable channels removed;
  iterative-magnitude counts the fraction of Conv/Linear weights that are zero.
BOPs: sum over Conv/Linear layers of MACs x weight bits x input activation bits.
djpq: --epochs is its one joint pass (no separate fine-tuning) and it learns its own
  sparsity; --weight-bits/--act-bits/--layer-bits are its initial widths.
parameters: trainable ones (weights, biases, batch-norm scales and shifts), and the
  integer ones export-fpga reports (weights + biases once batch norm is folded into
  them and pruned channels are removed).
details: docs/methods.md"""

EXAMPLES = """\
examples:
  # layerwise channel pruning (Zhang, Colbert and Das 2022) of the built-in CNN on Fashion-MNIST, W4A8
  fpga-compress --method layerwise --data fashion-mnist --sparsity 0.5 \\
      --weight-bits 4 --act-bits 8 --epochs 2 -o cnn_w4a8.pt

  # iterative magnitude pruning (Paupamah, James and Klein 2020), continuing from a trained checkpoint
  fpga-compress --method iterative-magnitude --init cnn_w4a8.pt --data fashion-mnist \\
      --sparsity 0.7 --weight-bits 4 --act-bits 8 --epochs 1 -o cnn_sparse.pt

  # a quick smoke run on synthetic data, channel counts kept multiples of 4
  fpga-compress --method stepwise --data synthetic --sparsity 0.5 --round-to 4 \\
      --epochs 1 --limit 1000 -o /tmp/smoke.pt --force

  # method-specific options: --option KEY=VALUE (repeatable)
  fpga-compress --method layerwise --data synthetic -o m.pt --option steps_per_group=50

  # prune to hardware budgets instead of a sparsity (reuse factors chosen per layer: auto)
  fpga-compress --method one-shot --data synthetic -o m.pt --latency-budget-us 2 --lut-budget 150000

  # the rule-driven framework (Ding et al.): per epoch the step a rule scores best
  fpga-compress --method rule-framework --data synthetic -o m.pt --sparsity 0.5 --epochs 6 \\
      --weight-bits 4 --rule "accuracy - 0.5*latency_us" --candidates P0.1,W8A8,W4A8

  # mixed precision: 3-bit hidden layers, 8-bit first and last layers
  fpga-compress --method layerwise --data synthetic -o m.pt --weight-bits 3 --act-bits 3 \
      --layer-bits conv1=8/8,head=8/8

  # IncReg (Wang et al. 2018): per-layer ratios, then retraining
  fpga-compress --method increg --data fashion-mnist -o m.pt --sparsity 0.5 --option ratios=conv1=0.25

  # DJPQ (Wang, Lu and Blankevoort): learned bits and gates in one pass; bits in {2, 4, 8}
  fpga-compress --method djpq --data fashion-mnist -o m.pt --epochs 3 --option restrict=true

exit codes:
  0 done   1 a hardware budget missed (checkpoint written, the summary says by how much)
  2 bad input (nothing written)   130 interrupted

methods:
"""


class UsageError(FoldlineError):
    """A bad command line (reported like any other user error)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse would print the usage too)
        raise UsageError(message)


def _positive(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    methods = "".join(f"  {name:<20} {cls.summary}\n" for name, cls in METHODS.items())
    p = _Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EXAMPLES + methods + NOTES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True, metavar="NAME",
                   help=f"compression method: {', '.join(METHODS)}")
    p.add_argument("--data", required=True, metavar="SRC",
                   help="fashion-mnist, synthetic, or a FILE.npz with arrays x (N,C,H,W) and y (N)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.pt", help="checkpoint to write")
    p.add_argument("--sparsity", type=float, default=None, metavar="S",
                   help="target sparsity in [0, 1) (default 0.5; a channel method with a hardware "
                        "budget prunes to the budget instead)")
    p.add_argument("--weight-bits", type=int, default=8, metavar="N", help="weight bits, 2..8 (default 8)")
    p.add_argument("--act-bits", type=int, default=8, metavar="N",
                   help="hidden activation bits, 2..8 (default 8)")
    p.add_argument("--layer-bits", type=_layer_bits, default={}, metavar="LIST",
                   help="per-layer bits over --weight-bits/--act-bits, LAYER=W/A items, e.g. conv1=8/8,head=8/8 "
                        "(- keeps one; the last layer's A is the network output's bits)")
    p.add_argument("--power-of-two", action="store_true",
                   help="quantize with power-of-two scales and zero points 0, what export-fpga --hls hls4ml "
                        "needs (with --init: switches the checkpoint's quantizers, then fine-tunes)")
    p.add_argument("--epochs", type=float, default=1.0, metavar="E",
                   help="quantization-aware fine-tuning epochs after pruning (default 1)")
    p.add_argument("--pretrain-epochs", type=float, default=None, metavar="E",
                   help="dense training epochs before pruning (default: --epochs for a new "
                        "model, 0 with --init)")
    p.add_argument("--init", metavar="CKPT", help="start from this Foldline checkpoint")
    p.add_argument("--model", default="cnn", choices=toolchain.MODELS,
                   help="built-in model when there is no --init (default cnn)")
    p.add_argument("--width", type=_positive, default=1.0,
                   help="channel multiplier of the built-in model, > 0 (default 1)")
    p.add_argument("--round-to", type=int, default=1, metavar="N",
                   help="keep channel counts multiples of N (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N samples of each split")
    p.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                   help="last fraction of the training split held out for the method's own "
                        "validation (default 0.1); accuracy is reported on the test split")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="default 64")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="method-specific option (repeatable); see docs/methods.md")
    hw = p.add_argument_group("hardware budgets (structured methods; estimates, not synthesis results)")
    hw.add_argument("--latency-budget-us", type=float, metavar="X", help="estimated latency at most X us")
    hw.add_argument("--dsp-budget", type=int, metavar="N", help="estimated DSP slices at most N")
    hw.add_argument("--lut-budget", type=int, metavar="N", help="estimated LUTs at most N")
    hw.add_argument("--part", default=None, help="FPGA part (default xcu250-figd2104-2L-e)")
    hw.add_argument("--clock-ns", type=float, default=None, help="clock period in ns (default 5.0)")
    hw.add_argument("--architecture", choices=("auto", "dataflow", "parallel"), default=None,
                    help="HLS architecture, as for fpga-hls (default auto)")
    hw.add_argument("--reuse-factor", type=_reuse, default=None, metavar="N|auto",
                    help="reuse factor of every layer, or auto: per layer the lowest that fits the area "
                         "budgets (default: auto with a latency and an area budget, else 1)")
    fw = p.add_argument_group("rule-framework")
    fw.add_argument("--rule", default=None, help="what each epoch's step maximises: accuracy, latency, dsp, bops, "
                                                 "or an expression such as 'accuracy - 0.5*latency_us'")
    fw.add_argument("--candidates", default=None, metavar="LIST",
                    help="steps tried each epoch, e.g. P0.1,W8A8,W4A8 (default P,W<bits>A<bits>)")
    p.add_argument("--force", action="store_true", help="overwrite OUT.pt if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress output (bars or lines)")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return p


def _layer_bits(text: str) -> dict:
    """An argparse type: ``conv1=8/8,head=8/8`` (:func:`toolchain.nn.parse_layer_bits`)."""
    try:
        return parse_layer_bits(text)
    except BitsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _reuse(text: str) -> int | str:
    """An argparse type: ``auto`` or an integer >= 1."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or auto, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or auto, got {text!r}")
    return value


def _hardware(args) -> HardwareTarget | None:
    """The FPGA target and budgets of the command line (None when no hardware flag is given)."""
    given = {k: getattr(args, k) for k in ("part", "clock_ns", "architecture") if getattr(args, k) is not None}
    budgets = {"latency_us": args.latency_budget_us, "dsp": args.dsp_budget, "lut": args.lut_budget}
    budgets = {k: v for k, v in budgets.items() if v is not None}
    if not given and not budgets and args.reuse_factor is None:
        return None
    reuse = args.reuse_factor
    if reuse is None:
        reuse = "auto" if "latency_us" in budgets and ({"dsp", "lut"} & set(budgets)) else 1
    return HardwareTarget(reuse=reuse, **given, **budgets)


def _method_options(args, method_cls) -> dict[str, str]:
    options = _options(args.option)
    for flag in ("rule", "candidates"):
        value = getattr(args, flag)
        if value is None:
            continue
        if method_cls.name != "rule-framework":
            raise UsageError(f"--{flag} applies to --method rule-framework")
        options[flag] = value
    return options


def _sparsity(args, method_cls, hardware: HardwareTarget | None) -> float:
    if getattr(method_cls, "learns_sparsity", False):  # djpq: its gates decide
        if args.sparsity is not None:
            raise UsageError(f"--sparsity: {method_cls.name} learns its pruning ratios (tune --option gamma=/beta=)")
        return 0.0
    budgeted = hardware is not None and bool(hardware.limits)
    if budgeted and getattr(method_cls, "budget_replaces_sparsity", False):  # e.g. not iterative-magnitude
        if args.sparsity is not None:
            raise UsageError(f"--sparsity and hardware budgets both set: {method_cls.name} prunes to the budgets")
        return 0.0
    return 0.5 if args.sparsity is None else args.sparsity


def _options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option expects KEY=VALUE, got {pair!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def _check_output(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise UsageError(f"{path} exists (use --force to overwrite)")
    if path.is_dir():
        raise UsageError(f"{path} is a directory")
    if not path.parent.is_dir():
        raise UsageError(f"directory {path.parent} does not exist")


def _split_validation(train: Dataset, fraction: float) -> tuple[Dataset, Dataset]:
    if not 0.0 < fraction < 1.0:
        raise UsageError(f"--val-fraction must be in (0, 1), got {fraction}")
    n_val = max(1, int(round(len(train) * fraction)))
    if len(train) - n_val < 1:
        raise UsageError(f"the training split has only {len(train)} samples")
    cut = len(train) - n_val
    return (Dataset(train.x[:cut], train.y[:cut], train.name),
            Dataset(train.x[cut:], train.y[cut:], train.name))


def _output_size(model) -> int:
    probe = copy.deepcopy(model).eval()
    set_quantization(probe, False)
    with torch.no_grad():
        return int(probe(torch.zeros(1, *model.input_shape)).shape[1])


def _model(args, train: Dataset, test: Dataset):
    classes = max(train.num_classes, test.num_classes)
    if args.init:
        model = toolchain.load(args.init)
        if tuple(model.input_shape) != train.input_shape:
            raise UsageError(f"{args.init} expects inputs of shape {tuple(model.input_shape)}, "
                             f"the data has {train.input_shape}")
        if _output_size(model) < classes:
            raise UsageError(f"{args.init} has {_output_size(model)} outputs, the data has "
                             f"{classes} classes")
        return with_power_of_two(model) if args.power_of_two else model
    return toolchain.build(args.model, input_shape=train.input_shape, num_classes=classes,
                           weight_bits=args.weight_bits, act_bits=args.act_bits, width=args.width,
                           power_of_two=args.power_of_two)


def _save(model, path: Path, metadata: dict) -> None:
    """Write to a staging file next to ``path`` (:mod:`exporters.staging`: umask permissions,
    removed if the run dies), then rename it over ``path``."""
    tmp = staging_file(path, suffix=".tmp")
    try:
        toolchain.save(model, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f}"


def run(args) -> dict:
    out = Path(args.output)
    _check_output(out, args.force)
    method_cls = get_method(args.method)
    if args.limit is not None and args.limit < 2:
        raise UsageError(f"--limit must be at least 2, got {args.limit}")
    pretrain = args.pretrain_epochs if args.pretrain_epochs is not None else (
        0.0 if args.init else args.epochs)
    hardware = _hardware(args)
    config = MethodConfig(sparsity=_sparsity(args, method_cls, hardware), epochs=args.epochs,
                          pretrain_epochs=pretrain, lr=args.lr, batch_size=args.batch_size,
                          weight_bits=args.weight_bits, act_bits=args.act_bits, layer_bits=args.layer_bits,
                          round_to=args.round_to, seed=args.seed, options=_method_options(args, method_cls),
                          hardware=hardware)
    method = method_cls(config)
    train_all = load_dataset(args.data, "train", args.limit)
    test = load_dataset(args.data, "test", args.limit)
    train, val = _split_validation(train_all, args.val_fraction)
    seed_everything(args.seed)  # a new model's initial weights come from --seed too (same run, same model)
    model = _model(args, train, test)
    params_before, bops_before = count_parameters(model), bops(model)

    progress = Progress(args.quiet)
    result = method.run(model, train, val, callbacks=[progress])
    final = result.model
    progress.phase(f"evaluating on {len(test):,} test samples")
    float_pred = predict(final, test).argmax(1)
    float_acc = float((float_pred == test.y).float().mean())
    int_acc, int_pred = evaluate_integer(toolchain.to_integer_model(final), test)
    agree = float((float_pred == int_pred).float().mean())
    progress.done()
    summary = {
        "method": result.method, "data": str(args.data), "model": final.name,
        "sparsity_kind": result.sparsity_kind, "target_sparsity": result.target_sparsity,
        "sparsity": result.sparsity, "weight_bits": args.weight_bits, "act_bits": args.act_bits,
        "layer_bits": bit_widths(final),
        "power_of_two": is_power_of_two(final),
        "test_samples": len(test), "float_accuracy": float_acc, "integer_accuracy": int_acc,
        "agreement": agree, "val_accuracy": result.val_accuracy,
        "parameters_before": params_before, "parameters": count_parameters(final),
        "integer_parameters": integer_parameters(final),
        "bops_before": bops_before, "bops": bops(final), "bops_nonzero": bops(final, nonzero=True),
    }
    metadata = {"fpga-compress": {"argv": list(args.argv), "seed": args.seed},
                "summary": summary, "result": result.summary()}
    hardware = result.details.get("hardware")
    if hardware is not None:
        summary["hardware"] = {k: hardware[k] for k in ("estimate", "budgets", "met", "design")}
        metadata["hardware"] = hardware["design"]  # export-fpga builds this design by default
    plot = out.with_name(out.stem + ".choices.png") if "framework" in result.details else None
    if plot is not None:
        summary["choices_plot"] = str(plot)
    _save(final, out, metadata)
    if plot is not None:
        from toolchain.methods.framework_plot import plot_choices

        plot_choices(result.details["framework"], plot, final.name)
    _print_summary(summary, result, out)
    return summary


def integer_parameters(model) -> int:
    """The parameter count export-fpga reports for ``model``: integer weights + biases after
    pruned channels are removed and batch norm is folded into them (``exporters.stats``)."""
    from toolchain.export_pipeline import integer_model_of

    return stats.totals(stats.layer_stats(integer_model_of(model)))["params"]


def _print_summary(s: dict, result, out: Path) -> None:
    kind = "of prunable channels removed" if s["sparsity_kind"] == "channels" else "of weights zero"
    lines = [
        ("method", f"{s['method']} on {s['data']} ({s['model']}, W{s['weight_bits']}A{s['act_bits']}"
                   f"{', power-of-two scales' if s['power_of_two'] else ''})"),
        ("sparsity", f"{s['sparsity']:.3f} {kind} (target {s['target_sparsity']:.3f})"),
        ("bits", ", ".join(f"{name} " + "".join(f"{part[0].upper()}{b}" for part, b in widths.items())
                           for name, widths in s["layer_bits"].items())),
        ("accuracy", f"float fake-quant {_pct(s['float_accuracy'])}, integer {_pct(s['integer_accuracy'])}"
                     f" on {s['test_samples']} test samples (top-1 agreement {_pct(s['agreement'])})"),
        ("parameters", f"{s['parameters_before']:,} -> {s['parameters']:,} trainable (incl. batch-norm "
                       f"scales and shifts); {s['integer_parameters']:,} integer after export (weights + "
                       "folded biases)"),
        ("BOPs", f"{_si(s['bops_before'])} -> {_si(s['bops'])} (nonzero weights only: "
                 f"{_si(s['bops_nonzero'])})"),
        ("saved", str(out)),
    ]
    if "hardware" in s:
        if s["hardware"]["budgets"] and s["target_sparsity"] == 0:  # the budgets were the target
            del lines[1]
        lines.insert(-1, ("hardware", _hardware_line(s["hardware"])))
        lines.insert(-1, ("budgets", _budget_line(s["hardware"], s["sparsity"])))
    if "framework" in result.details:
        fw = result.details["framework"]
        lines.insert(-1, ("choices", ", ".join(f"{e} {step}" for e, step in fw["map"].items())
                          + f" (rule {fw['rule']}); plot {s['choices_plot']}"))
    for key, value in lines:
        print(f"{key:<11} {value}")
    if not result.reached:
        print(f"{PROG}: warning: sparsity {s['sparsity']:.3f} is below the target "
              f"{s['target_sparsity']:.3f} (groups too small for the target or --round-to)",
              file=sys.stderr)


def _hardware_line(h: dict) -> str:
    e, d = h["estimate"], h["design"]
    reuse = ", ".join(f"{k} {v}" for k, v in d["layer_reuse"].items()) or str(d["reuse_factor"])
    return (f"estimate {e['latency_cycles']:,} cycles = {e['latency_us']:.3f} us, {e['dsp']:,} DSP, {e['lut']:,} LUT "
            f"({d['part']}, {d['clock_ns']:g} ns, {d['architecture']}, reuse {reuse}; not a synthesis result)")


def _budget_line(h: dict, sparsity: float) -> str:
    parts = []
    for key, b in h["budgets"].items():
        verdict = "met" if b["met"] else f"MISSED by {b['missed_by']:.4g}"
        parts.append(f"{LIMITS[key]} {b['estimate']:.4g} (budget {b['limit']:.4g}) {verdict}")
    return (", ".join(parts) or "none") + f"; {sparsity:.3f} of prunable channels removed"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        args = build_parser().parse_args(argv)
        args.argv = argv
        summary = run(args)
        if not summary.get("hardware", {}).get("met", True):
            missed = {k: b["missed_by"] for k, b in summary["hardware"]["budgets"].items() if not b["met"]}
            print(f"{PROG}: hardware budget missed: "
                  + ", ".join(f"{LIMITS[k]} over by {v:.4g}" for k, v in missed.items()), file=sys.stderr)
            return EXIT_BUDGET_MISSED
        return 0

    return run_cli(PROG, body, debug="--debug" in argv)


if __name__ == "__main__":
    sys.exit(main())
