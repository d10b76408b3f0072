"""The estimate a report carries, of the backend actually chosen, saying what it is.

``backend_estimate(backend, model, config)``: ``templates`` -> Foldline's kernels
(:func:`hls_templates.estimate.estimate`), ``hls4ml`` -> the hls4ml project the bridge writes
(:func:`.hls4ml_project.estimate_hls4ml_project`), ``none`` -> Foldline's kernels, saying that no
project was written. ``layers`` and ``totals`` have the keys ``export-fpga`` merges into its
per-layer statistics; ``section`` is report.json's ``estimate``: the kind (an analytical estimate,
not a synthesis result), the backend, the target (part, calibrated or not, clock, architecture,
reuse), the calibration data set with the model's measured error there, what is extrapolated,
and the estimate per layer and in total.

>>> import numpy as np
>>> from exporters import examples
>>> e = backend_estimate("none", examples.mlp(np.random.default_rng(0)), {"part": "xc7z020clg400-1"})
>>> e.section["kind"], e.section["estimated_design"], e.section["part_calibrated"]
('analytical estimate (not a synthesis result)', 'templates', False)
"""

from __future__ import annotations

from dataclasses import dataclass

from exporters.onnx_import import as_integer_model
from hls_templates.estimate import primitives as prim
from hls_templates.estimate.calibration import calibration_line, calibration_summary
from hls_templates.estimate.config import resolve_config

KIND = "analytical estimate (not a synthesis result)"
LAYER_KEYS = ("latency_cycles", "ii", "dsp", "lut", "bram", "ff")
DESIGNS = {
    "templates": "Foldline's kernels (hls_templates/cpp/foldline), costed from the calibrated primitives "
                 "(docs/hls.md, \"Foldline's kernels under the primitives\")",
    "hls4ml": "the hls4ml io_parallel project the bridge writes (hls_templates/hls4ml_bridge.py), costed from the "
              "calibrated primitives (docs/hls.md, \"The primitive model and its calibration\")",
}
TEMPLATE_EXTRAPOLATIONS = ("line buffers, FIFOs, stream timing and window gathers are outside the calibration "
                           "data (which holds pipelined Dense modules only)")


@dataclass
class BackendEstimate:
    layers: list[dict]
    totals: dict
    section: dict


def _target(model, config, design: str) -> dict:
    cfg = resolve_config(config)
    part = prim.part_for(cfg.part)
    arch = "parallel (io_parallel)" if design == "hls4ml" else cfg.resolve_architecture(model.input.shape)
    return {"part": cfg.part, "part_family": part.family, "part_calibrated": part.calibrated, "clock_ns": cfg.clock_ns,
            "architecture": arch, "reuse_factor": cfg.reuse_factor, "layer_reuse": dict(cfg.layer_reuse)}


def _templates(model, config) -> tuple[list[dict], dict, list[str]]:
    from hls_templates.estimate.core import estimate

    e = estimate(model, config)
    return e.layers, e.totals, [TEMPLATE_EXTRAPOLATIONS]


def _hls4ml(model, config) -> tuple[list[dict], dict, list[str]]:
    """hls4ml's rows per integer-model layer (a separate ReLU step adds to its layer's row)."""
    from hls_templates.estimate.hls4ml_project import estimate_hls4ml_project

    e = estimate_hls4ml_project(model, config)
    rows: dict[str, dict] = {}
    for row in e.layers:
        name = row["name"].removesuffix("_relu") if row["kind"] == "relu" else row["name"]
        entry = rows.setdefault(name, {"name": name, "type": row["kind"], **{k: 0 for k in LAYER_KEYS}})
        for k in ("latency_cycles", "dsp", "lut", "bram", "ff"):
            entry[k] += int(row[k])
        entry["ii"] = max(entry["ii"], int(row["ii"]))
    t = e.totals
    totals = {k: t[k] for k in ("latency_cycles", "dsp", "lut", "bram", "ff", "clock_ns")}
    totals.update(latency_us=t["latency_cycles"] * t["clock_ns"] / 1000.0, ii_cycles=t["ii"], top=dict(e.top),
                  top_style=t["top_style"])
    return list(rows.values()), totals, e.notes[1:]


def backend_estimate(backend: str, model_or_onnx, config=None) -> BackendEstimate:
    """The estimate of ``backend``'s design for the model (see the module docstring)."""
    model = as_integer_model(model_or_onnx)
    design = "hls4ml" if backend == "hls4ml" else "templates"
    layers, totals, notes = (_hls4ml if design == "hls4ml" else _templates)(model, config)
    target = _target(model, config, design)
    if backend == "none":
        notes = ["no HLS project was written (--hls none): this is the estimate of Foldline's templates", *notes]
    if not target["part_calibrated"]:
        notes.append(f"part {target['part']} ({target['part_family']}) is outside the calibration ({calibration_summary()['part']}): "
                     "its delays and DSP ports are assumptions, not fitted")
    section = {"kind": KIND, "backend": backend, "estimated_design": design, "design": DESIGNS[design], **target,
               "calibration": calibration_line(), "calibration_data": calibration_summary(), "notes": notes,
               "layers": [{k: row.get(k, 0) for k in ("name", *LAYER_KEYS)} for row in layers],
               "totals": {k: v for k, v in totals.items()}}
    return BackendEstimate(layers, totals, section)


__all__ = ["BackendEstimate", "KIND", "backend_estimate"]
