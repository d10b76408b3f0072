"""Foldline's HLS kernels against hls4ml's, for the same networks and weights, both estimated with
the one primitive model calibrated on real Vivado HLS reports (docs/hls.md, "Foldline's kernels
under the primitives" and "Parity with hls4ml"). Analytical estimates, not synthesis results.

Networks, each quantized with power-of-two scales so that the hls4ml backend takes it too:

* **jet MLP**: case C's network and weights (tests/data/calibration/hls4ml-jet-mlp/
  C_rf1_6bit_pruned75/weights.npz) as a float torch MLP 16-64-32-32-5 with ReLU, exported with
  ``torch.export`` and quantized post-training at W6A6 by ``toolchain.ptq.quantize_exported(...,
  power_of_two=True)``, calibrated on 1,024 standard-normal inputs (seed 0: the jet features are
  standardised in the hls4ml tutorial these weights come from);
* **Fashion-MNIST CNN**: the shipped checkpoint (toolchain/data/fashion_cnn.pt) turned into
  power-of-two quantizers by ``toolchain.nn.with_power_of_two`` on its trained state, without
  fine-tuning; its integer top-1 on the shipped 300 samples is printed next to the original's.

For each: Foldline's templates (``--hls templates``, architecture ``auto``) and the hls4ml project
the bridge writes (``--hls hls4ml``), at reuse 1, per layer and in total, and the ratios
``foldline/hls4ml`` of latency, DSP, LUT and FF (1.00 where both are 0). Then the levers weighed
for Foldline's requantizer, measured with the same estimator:

* the requantizer before this change (rounding adder and clamp comparisons on the full
  ``P + 17``-bit product, as the kernel was) against now (comparisons on the kept bits, a
  ``b + 1``-bit adder: foldline_requant.h);
* 16-bit multipliers that are not powers of two (the same MLP quantized without
  ``power_of_two``; the hls4ml backend refuses it): what the requantizer's DSPs cost;
* threshold comparisons instead of the multiply for outputs of at most 4 bits (FINN's
  multi-threshold; not built: costed here from the primitives, per channel);
* multipliers with at most ``d`` nonzero canonical signed digits (not adopted: it changes the
  contract's integers) on the shipped, non-power-of-two CNN: integer top-1 and cost.

Usage: python benchmarks/hls_parity.py
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

import toolchain
from exporters.onnx_export import to_onnx
from fpga_sim import Simulator
from hls_templates import HlsConfig
from hls_templates.estimate import arith, estimate
from hls_templates.estimate import layers as estimate_layers
from hls_templates.estimate import primitives as prim
from hls_templates.estimate.hls4ml_project import estimate_hls4ml_project
from hls_templates.estimate.mac import OutputStage
from toolchain.export_pipeline import example_path, integer_model_of
from toolchain.nn import with_power_of_two
from toolchain.ptq import quantize_exported

ROOT = Path(__file__).resolve().parents[1]
CASE_C = ROOT / "tests" / "data" / "calibration" / "hls4ml-jet-mlp" / "C_rf1_6bit_pruned75" / "weights.npz"
METRICS = ("latency_cycles", "dsp", "lut", "ff")


def jet_mlp(power_of_two: bool = True):
    """Case C's MLP, post-training quantized at W6A6."""
    weights = np.load(CASE_C)
    modules = []
    for k, name in enumerate(("fc1", "fc2", "fc3", "output")):
        w = weights[f"{name}_weight"]                                   # (in, out), hls4ml's layout
        linear = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T.astype(np.float32)))
            linear.bias.copy_(torch.from_numpy(weights[f"{name}_bias"].astype(np.float32)))
        modules += [linear] + ([torch.nn.ReLU()] if k < 3 else [])
    net = torch.nn.Sequential(*modules).eval()
    x = torch.randn(1024, 16, generator=torch.Generator().manual_seed(0))
    program = torch.export.export(net, (x[:1],))
    return integer_model_of(quantize_exported(program, x, 6, 6, power_of_two=power_of_two))


def shipped_sample():
    data = np.load(example_path("fashion_sample.npz"))
    return data["x"].astype(np.float32), data["y"]


def integer_top1(model, x, y) -> float:
    logits = Simulator(to_onnx(model)).run(None, {"input": x})[0]
    return float((logits.reshape(len(x), -1).argmax(axis=1) == y).mean())


def ratio(a: float, b: float) -> str:
    if b == 0:
        return "1.00 (both 0)" if a == 0 else "inf"
    return f"{a / b:.2f}"


def side_by_side(title: str, model, config: HlsConfig) -> None:
    ours = estimate(model, config)
    theirs = estimate_hls4ml_project(model, config)
    print(f"\n### {title}: Foldline templates ({ours.totals['architecture']}) vs hls4ml "
          f"(io_parallel, {theirs.totals['top_style']} top), reuse 1, {config.part}, {config.clock_ns:g} ns\n")
    print("| layer | Foldline cycles / DSP / LUT / FF | hls4ml cycles / DSP / LUT / FF |")
    print("|---|---|---|")
    rows = {r["name"]: r for r in theirs.layers}
    for row in ours.layers:
        other = rows.get(row["name"])
        mine = " / ".join(f"{row[m]:,}" for m in METRICS)
        print(f"| {row['name']} | {mine} | " + (" / ".join(f"{other[m]:,}" for m in METRICS) if other else "-") + " |")
    total = {m: ours.totals[m] for m in METRICS}
    print(f"| total | {' / '.join(f'{total[m]:,}' for m in METRICS)} | "
          f"{' / '.join(f'{theirs.totals[m]:,}' for m in METRICS)} |")
    print(f"\nframe interval (cycles): Foldline {ours.totals['ii_cycles']}, hls4ml {theirs.totals['ii']}")
    for note in theirs.notes[1:]:
        print(f"hls4ml estimate: {note}")
    for m, label in zip(METRICS, ("latency", "dsp", "lut", "ff")):
        print(f"ratio foldline/hls4ml {label}: {ratio(ours.totals[m], theirs.totals[m])}")


def wide_requant_stage(multiplier, shift, acc_bits, out_bits, out_zero, part, thresholds=prim.LUT_MULT_THRESHOLDS):
    """The requantizer as the kernel was before this change, on the same primitives: the rounding
    adder on the whole ``P + 17``-bit product, the clamp comparisons on ``P + 16`` bits, a select,
    and ``+ z`` on ``b`` bits."""
    width = acc_bits + 16
    p = prim.constant_products(np.asarray(multiplier, dtype=np.int64), acc_bits, part, *thresholds)
    clamp = 2 * prim.icmp_lut(width) + prim.select_lut(out_bits) + 2 * prim.GATE_LUT + prim.select_lut(1)
    lut = p.lut + prim.add_lut(width + 1) + clamp + (prim.add_lut(out_bits) if out_zero else 0)
    delays = (float(p.delay.max()), prim.add_delay(width + 1, part), prim.icmp_delay(width, part),
              prim.SELECT_DELAY_NS * part.delay_scale)
    return OutputStage(lut, p.dsp, np.isin(p.kind, ("dsp", "lut_mul")).astype(int), delays, out_bits)


@contextmanager
def requantizer(stage):
    """Estimate with another requantizer model (the layer costs read ``layers.requant_stage``)."""
    kept = estimate_layers.requant_stage
    estimate_layers.requant_stage = stage
    try:
        yield
    finally:
        estimate_layers.requant_stage = kept


def fewest_digits(model, digits: int):
    """A copy of ``model`` whose multipliers are the nearest integers with at most ``digits`` nonzero
    canonical signed digits (a carry into bit 16 renormalised)."""
    candidates = np.arange(1, 1 << 17)
    candidates = candidates[arith.naf_weight(candidates) <= digits]
    model = copy.deepcopy(model)
    for layer in model.layers:
        rq = getattr(layer, "requant", None)
        if rq is None:
            continue
        i = np.clip(np.searchsorted(candidates, rq.multiplier), 1, candidates.size - 1)
        below, above = candidates[i - 1], candidates[i]
        m = np.where(rq.multiplier - below <= above - rq.multiplier, below, above)
        carry = m >= 1 << 16
        rq.multiplier, rq.shift = np.where(carry, m >> 1, m), rq.shift - carry
    model.invalidate()
    model.validate()
    return model


def threshold_channel(acc_bits: int, out_bits: int, part) -> tuple[int, float]:
    """(LUT, ns) of one channel requantized by thresholds (FINN's multi-threshold, not built here):
    ``2^b - 1`` comparisons of the accumulator with constants, their 1-bit results summed by an
    adder tree, plus the constant ``lo``."""
    k = (1 << out_bits) - 1
    budget = prim.cycle_budget(5.0)
    tree = prim.adder_trees(np.zeros(k), np.ones(k), np.zeros(k, dtype=int), 1, out_bits, budget, part)
    lut = k * prim.icmp_lut(acc_bits) + int(tree.lut[0]) + prim.add_lut(out_bits)
    return lut, prim.icmp_delay(acc_bits, part) + float(tree.ready_ns[0]) + prim.add_delay(out_bits, part)


def multiply_channel(m: int, acc_bits: int, out_bits: int, part) -> tuple[int, int, float]:
    """(LUT, DSP, ns) of one channel of the requantizer as built now, for multiplier ``m``, ``n = 24``."""
    stage = estimate_layers.requant_stage(np.array([m]), np.array([24]), acc_bits, out_bits, 0, part)
    return int(np.asarray(stage.lut).ravel()[0]), int(np.asarray(stage.dsp).ravel()[0]), float(sum(stage.delays))


def levers(mlp, cnn_pow2, config: HlsConfig) -> None:
    print("\n### Levers on Foldline's requantizer (estimates)\n")
    print("| design | network | cycles / DSP / LUT / FF |")
    print("|---|---|---|")

    def line(label, name, model):
        t = estimate(model, config).totals
        print(f"| {label} | {name} | {' / '.join(f'{t[m]:,}' for m in METRICS)} |")

    for name, model in (("jet MLP (power of two)", mlp), ("Fashion CNN (power of two)", cnn_pow2)):
        with requantizer(wide_requant_stage):
            line("requantizer before: rounding and clamp on P + 17 bits", name, model)
        line("requantizer now: clamp on the kept bits, (b + 1)-bit adder", name, model)
    line("16-bit multipliers, not powers of two", "jet MLP (PTQ without --power-of-two)", jet_mlp(power_of_two=False))
    part = prim.part_for(config.part)
    print("\n| one output channel, 16-bit accumulator | LUT | DSP | delay (ns) |")
    print("|---|---|---|---|")
    for label, m in (("requantizer, M = 2^15 (power of two)", 1 << 15), ("requantizer, 16-bit M = 40000", 40000)):
        lut, dsp, ns = multiply_channel(m, 16, 4, part)
        print(f"| {label}, 4-bit output | {lut} | {dsp} | {ns:.2f} |")
    for bits in (2, 3, 4):
        lut, ns = threshold_channel(16, bits, part)
        print(f"| thresholds, {bits}-bit output ({(1 << bits) - 1} comparisons) | {lut} | 0 | {ns:.2f} |")
    x, y = shipped_sample()
    shipped = integer_model_of(toolchain.load(example_path("fashion_cnn.pt")))
    print("\n| multipliers of the shipped CNN | max relative change of M | integer top-1 (300 samples) | "
          "cycles / DSP / LUT / FF |")
    print("|---|---|---|---|")
    for digits in (None, 1, 2, 3):
        model = shipped if digits is None else fewest_digits(shipped, digits)
        change = max(float(np.max(np.abs(a.requant.multiplier * 2.0 ** -a.requant.shift
                                         / (b.requant.multiplier * 2.0 ** -b.requant.shift) - 1)))
                     for a, b in zip(model.layers, shipped.layers) if getattr(a, "requant", None) is not None)
        t = estimate(model, config).totals
        label = "16-bit (the contract)" if digits is None else f"at most {digits} signed digit(s)"
        print(f"| {label} | {change:.1e} | {integer_top1(model, x, y):.4f} | "
              f"{' / '.join(f'{t[m]:,}' for m in METRICS)} |")


def main() -> None:
    config = HlsConfig(reuse_factor=1)
    mlp = jet_mlp()
    side_by_side("jet MLP (case C's weights, PTQ W6A6, power of two)", mlp, config)
    x, y = shipped_sample()
    shipped = toolchain.load(example_path("fashion_cnn.pt"))
    cnn = integer_model_of(with_power_of_two(shipped))
    print(f"\nFashion CNN integer top-1 on the shipped 300 samples: shipped {integer_top1(integer_model_of(shipped), x, y):.4f}, "
          f"power-of-two copy (no fine-tuning) {integer_top1(cnn, x, y):.4f}")
    side_by_side("Fashion-MNIST CNN (shipped checkpoint, power-of-two copy)", cnn, config)
    levers(mlp, cnn, config)


if __name__ == "__main__":
    main()
