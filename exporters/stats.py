"""Per-layer cost figures of an integer model, as reported in ``report.json``.

Definitions (one place for each: the counts are each layer type's ``work``, the BOPs
formula is :func:`exporters.layers.base.bit_operations`, shared with
``toolchain.methods.costs``):

* ``macs``: multiply-accumulates of one inference (batch 1) that a dense kernel performs:
  output elements x taps per output. Average pooling counts its window additions here
  too (weight 1) but has no weight memory.
* ``nonzero_macs``: the same, counting only taps whose weight is non-zero (what the HLS
  kernels really multiply after magnitude pruning).
* ``bops``: bit operations of the MAC layers, ``macs * weight_bits * act_bits`` (act_bits of
  the layer's input grid) — the same definition as ``toolchain.methods.costs`` uses for
  ``fpga-compress``'s summary; ``nonzero_bops`` counts ``nonzero_macs`` instead.
* ``params``: weights + biases; ``weight_memory_bits``: ``weights * weight_bits + biases * 32``.

>>> import numpy as np
>>> from exporters import examples
>>> rows = layer_stats(examples.mlp(np.random.default_rng(0), features=(4, 3, 2)))
>>> [(r["name"], r["macs"], r["params"]) for r in rows]
[('fc1', 12, 15), ('fc2', 6, 8)]
"""

from __future__ import annotations

from dataclasses import asdict, fields

from exporters import integer_model as im
from exporters.layers import Work


def layer_stats(model: im.IntegerModel) -> list[dict]:
    """One row per computing layer (Conv, Linear, pools, Add), in model order; the figures
    are each layer's own :meth:`~exporters.layers.base.Layer.work`."""
    rows = []
    for layer in model.layers:
        if not layer.computes:
            continue
        in_shape = model.shape(layer.inputs[0])
        window = layer.window(model)
        row = {"name": layer.name, "op": layer.op_name(model), "in_channels": in_shape[0],
               "out_channels": model.shape(layer.name)[0], "kernel": None if window is None else list(window),
               "weight_bits": layer.weight_bits if isinstance(layer, im.MacLayer) else None,
               "act_bits": model.grid(layer.inputs[0]).bits, "out_bits": model.grid(layer.name).bits,
               "acc_bits": im.accumulator_analysis(model, layer).bits if layer.accumulates else None}
        row.update(asdict(layer.work(model)))
        rows.append(row)
    return rows


def totals(rows: list[dict]) -> dict:
    keys = [f.name for f in fields(Work)]
    return {k: int(sum(r[k] for r in rows)) for k in keys}
