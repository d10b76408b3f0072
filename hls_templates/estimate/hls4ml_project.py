"""The estimate of the hls4ml project that ``--hls hls4ml`` writes for an integer model: the bridge's
exact layer plan (:func:`hls_templates.hls4ml_bridge.hls4ml_plan`: per-layer precisions, the
weights ``w * 2^f[c]``) as an :class:`.hls4ml_model.Hls4mlNetwork`, estimated from the primitives.
Nothing is converted and hls4ml is not imported: the plan holds everything the estimate reads.

Step to layer: ``linear`` -> ``DenseLayer`` (weights transposed to hls4ml's ``(n_in, n_out)``),
``conv`` -> ``Conv2dLayer`` (``(kh, kw, C, F)``), a separate ``relu`` step (a signed grid with a
fused ReLU) -> ``Activation``, ``maxpool`` / ``avgpool`` -> ``PoolLayer``, ``flatten`` ->
``FlattenLayer``, ``add`` -> ``AddLayer``. Shapes are hls4ml's channels-last ``(H, W, C)``.
Everything but Dense and ReLU is extrapolated beyond the calibration data (docs/hls.md).

>>> import numpy as np
>>> from exporters import examples
>>> from hls_templates.hls4ml_bridge import power_of_two_copy
>>> e = estimate_hls4ml_project(power_of_two_copy(examples.mlp(np.random.default_rng(0), power_of_two=True)))
>>> e.totals["top_style"], [row["kind"] for row in e.layers]
('pipeline', ['dense', 'dense'])
"""

from __future__ import annotations

import numpy as np

from exporters.onnx_import import as_integer_model
from hls_templates.estimate import hls4ml_model as hm
from hls_templates.estimate.primitives import FixedType


def _fixed(t) -> FixedType:
    """The bridge's ``FixedType(width, lsb, signed, 'AP_RND', 'AP_SAT')`` as the primitives'."""
    return FixedType(t.width, t.width + t.lsb, t.signed, t.rounding.removeprefix("AP_"),
                     t.saturation.removeprefix("AP_"))


def _hwc(shape) -> tuple:
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else (int(np.prod(shape)), 1, 1)


def hls4ml_network(model, config=None) -> hm.Hls4mlNetwork:
    """The network :func:`hls_templates.hls4ml_bridge.write_hls4ml_project` builds for ``model``
    (an IntegerModel, ONNX proto or path) with ``config`` (``HlsConfig``-like or a dict: part,
    clock, reuse). Raises the bridge's one-line ``Hls4mlUnsupportedError`` where it would."""
    from hls_templates.hls4ml_bridge import Hls4mlSettings, hls4ml_plan

    model = as_integer_model(model)
    settings = Hls4mlSettings.from_config(config)
    steps = hls4ml_plan(model)
    last: dict[str, str] = {}       # integer-model layer -> the network layer holding its output
    layers = []
    for step in steps:
        layer = model.layer(step.layer)
        t = {k: _fixed(v) for k, v in step.types.items()}
        name = step.layer if step.kind != "relu" else f"{step.layer}_relu"
        src = last.get(step.inputs[0], "input") if step.inputs else None
        reuse = settings.reuse(step.layer)
        if step.kind == "input":
            last[step.layer] = "input"
            continue
        if step.kind == "linear":
            layers.append(hm.DenseLayer(name, step.params["weight"].T, step.params["bias"], t["weight"], t["bias"],
                                        t["accum"], t["result"], reuse, src))
        elif step.kind == "conv":
            layers.append(hm.Conv2dLayer(name, step.params["weight"].transpose(2, 3, 1, 0), step.params["bias"],
                                         _hwc(model.shape(layer.input)), layer.stride, layer.padding, t["weight"],
                                         t["bias"], t["accum"], t["result"], reuse, src))
        elif step.kind == "relu":
            layers.append(hm.Activation(name, "relu", t["result"], last[step.layer]))
        elif step.kind in ("maxpool", "avgpool"):
            layers.append(hm.PoolLayer(name, step.kind[:3], _hwc(model.shape(layer.input)), layer.kernel, layer.stride,
                                       t.get("accum", t["result"]), t["result"], reuse, src))
        elif step.kind == "flatten":
            layers.append(hm.FlattenLayer(name, src))
        elif step.kind == "add":
            layers.append(hm.AddLayer(name, tuple(last[s] for s in step.inputs), t["accum"], t["result"]))
        last[step.layer] = name
    input_t = _fixed(steps[0].types["result"])
    shape = model.input.shape
    return hm.Hls4mlNetwork(input_t, int(np.prod(shape)), tuple(layers), float(settings.clock_ns), None,
                            str(settings.part), _hwc(shape) if len(shape) == 3 else ())


def estimate_hls4ml_project(model, config=None) -> hm.Hls4mlEstimate:
    """:func:`.hls4ml_model.estimate_hls4ml` of :func:`hls4ml_network` (an estimate, not a synthesis result)."""
    return hm.estimate_hls4ml(hls4ml_network(model, config))


__all__ = ["estimate_hls4ml_project", "hls4ml_network"]
