"""What ``export-fpga`` reports about accuracy, and when it warns.

An exported network is checked bit for bit across its integer representations; that says
nothing about whether the integers still compute the user's function. Three models are
compared on the verification inputs ``x`` (with labels ``y`` where the ``.npz`` has them):

* the **float program**: the user's own float network, for a ``.pt2`` post-training
  quantized by :mod:`toolchain.ptq`. A Foldline checkpoint (``.pt``) has none: it *is* its
  quantized model (trained with quantization in the loop), so its float program entries
  are ``null`` and a note says so. (Its quantizers switched off would give a float network
  that nobody trained to be used that way; comparing with it would measure nothing the
  user relies on.)
* the **fake-quant** model: the QuantNet in eval mode (float arithmetic on the grids);
* the **integer** model: the simulator's output integers, which every other
  representation matched element for element.

``accuracy`` in ``report.json`` holds ``float_program_vs_integer_top1_agreement``,
``fake_quant_vs_integer_top1_agreement``, ``float_program_top1`` / ``fake_quant_top1`` /
``integer_top1`` (against the labels; ``null`` without labels), ``samples``, and
``agreement_checked``: the key of the agreement that stands for "does the integer model
compute what the user has" — the float program one for a ``.pt2``, the fake-quant one for
a checkpoint.

Warnings (each one line, also printed on stderr by ``export-fpga``):

* the checked agreement is below :data:`WARN_AGREEMENT` (0.9: in ``tests/test_export_accuracy.py``
  PTQ of a trained CNN agrees on 0.997 / 0.97 / 0.96 of the samples at 8 / 4 / 3 bits, and
  collapses to 0.79 at 2 bits and to 0.09 for the rescaled CNN; docs/toolchain.md);
* a quantizer's calibrated range is degenerate (e.g. an all-zero calibration set gives the
  input a zero range), named by layer;
* with a float program, a power-of-two grid (zero point 0) that clamps calibrated negative
  values.

``min_agreement`` (``export-fpga --min-agreement X``) sets ``accuracy.min_agreement_met``;
the CLI then exits 4 when it is false (the output is still written, for inspection).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from toolchain.integer_mode import float_forward
from toolchain.nn import QuantNet
from toolchain.quant import _Quantizer

WARN_AGREEMENT = 0.9
ADVICE = ("calibrate on real data from the training distribution, train with quantization in the loop "
          "(fpga-compress), or use more bits (--weight-bits/--act-bits); per-channel activation ranges are "
          "outside the integer contract")
RANGE_ADVICE = "calibrate on real data from the training distribution, which exercises every layer"
CLIP_ADVICE = ("quantize without --power-of-two (--hls templates takes any scale), or train with quantization in "
               "the loop (fpga-compress --power-of-two), which learns around the clamp")
CHECKPOINT_NOTE = ("a Foldline checkpoint has no separate float program: it is its own quantized model "
                   "(trained with quantization in the loop), so the fake-quant model is the reference")


@dataclass
class AccuracyReport:
    """``fields``: the report's ``accuracy`` block; ``warnings``: one-line sentences."""

    fields: dict
    warnings: list[str]


def _agreement(a: np.ndarray | None, b: np.ndarray) -> float | None:
    return None if a is None else float(np.mean(a == b))


def _top1(pred: np.ndarray | None, y: np.ndarray | None) -> float | None:
    return None if pred is None or y is None else float(np.mean(pred == y))


def quantizer_warnings(model: QuantNet, float_reference: bool) -> list[str]:
    """Each quantizer whose calibrated range is degenerate (or, with a float program to
    reproduce, clamps calibrated values by construction), named by its layer."""
    out = []
    for path, module in model.named_modules():
        if not isinstance(module, _Quantizer):
            continue
        problems = [(module.range_problem(), RANGE_ADVICE),
                    (module.clip_problem() if float_reference else None, CLIP_ADVICE)]
        layer = path.split(".")[1] if path.startswith("layers.") else path
        what = f"input '{layer}'" if layer == next(iter(model.layers)) else f"layer '{layer}' output"
        out += [f"{what}: {problem}; {advice}" for problem, advice in problems if problem]
    return out


def accuracy_report(model: QuantNet, x: np.ndarray, y: np.ndarray | None, integer_logits: np.ndarray,
                    float_logits: np.ndarray | None = None, min_agreement: float | None = None) -> AccuracyReport:
    """The ``accuracy`` block and the warnings (see the module docstring).

    ``integer_logits``: the integer model's outputs on ``x``; ``float_logits``: the user's
    float program's outputs on ``x`` (``None`` for a checkpoint).
    """
    integer = integer_logits.reshape(len(x), -1).argmax(axis=1)
    fake = float_forward(model, torch.from_numpy(x)).reshape(len(x), -1).argmax(dim=1).numpy()
    program = None if float_logits is None else np.asarray(float_logits).reshape(len(x), -1).argmax(axis=1)
    checked = ("float_program_vs_integer_top1_agreement" if program is not None
               else "fake_quant_vs_integer_top1_agreement")
    fields = {
        "samples": int(len(x)),
        "float_program_vs_integer_top1_agreement": _agreement(program, integer),
        "fake_quant_vs_integer_top1_agreement": _agreement(fake, integer),
        "float_program_top1": _top1(program, y),
        "fake_quant_top1": _top1(fake, y),
        "integer_top1": _top1(integer, y),
        "agreement_checked": checked,
        "min_agreement": min_agreement,
    }
    value = fields[checked]
    fields["min_agreement_met"] = None if min_agreement is None else bool(value >= min_agreement)
    if program is None:
        fields["note"] = CHECKPOINT_NOTE
    warnings = []
    if value < WARN_AGREEMENT:
        reference = "the float program" if program is not None else "the fake-quant model"
        warnings.append(f"the integer model agrees with {reference} on only {100 * value:.1f} % of the top-1 "
                        f"predictions ({len(x)} samples, warning below {100 * WARN_AGREEMENT:.0f} %): "
                        f"quantization changed what the network computes; {ADVICE}")
    warnings += quantizer_warnings(model, float_reference=program is not None)
    return AccuracyReport(fields, warnings)
