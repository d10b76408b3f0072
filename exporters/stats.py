"""Per-layer cost figures of an integer model, as reported in ``report.json``.

Definitions (one place for each):

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

import numpy as np

from exporters import integer_model as im


def _taps(model: im.IntegerModel, layer: im.Layer) -> tuple[np.ndarray, int]:
    """Per-output-channel weight rows and the number of output positions per channel."""
    out_shape = model.shape(layer.name)
    positions = int(np.prod(out_shape[1:])) if len(out_shape) == 3 else 1
    if isinstance(layer, im.MacLayer):
        return layer.weight_rows(), positions
    kh, kw = im.pool_window(model, layer)
    return np.ones((model.shape(layer.input)[0], kh * kw), np.int64), positions


def layer_stats(model: im.IntegerModel) -> list[dict]:
    """One row per computing layer (Conv, Linear, pools, Add), in model order."""
    rows = []
    for layer in model.layers:
        if isinstance(layer, (im.Input, im.Flatten)):
            continue
        in_shape = model.shape(layer.inputs[0])
        out_shape = model.shape(layer.name)
        row = {"name": layer.name, "op": type(layer).__name__, "in_channels": in_shape[0],
               "out_channels": out_shape[0], "kernel": None, "weight_bits": None,
               "act_bits": model.grid(layer.inputs[0]).bits, "out_bits": model.grid(layer.name).bits,
               "acc_bits": None, "macs": 0, "nonzero_macs": 0, "bops": 0, "nonzero_bops": 0, "params": 0,
               "weight_memory_bits": 0}
        if isinstance(layer, (im.MacLayer, im.AvgPool, im.GlobalAvgPool)):
            rows_w, positions = _taps(model, layer)
            row["acc_bits"] = im.accumulator_analysis(model, layer).bits
            row["macs"] = int(rows_w.size * positions)
            row["nonzero_macs"] = int(np.count_nonzero(rows_w) * positions)
        if isinstance(layer, im.Conv):
            row["kernel"] = list(layer.kernel)
        elif isinstance(layer, (im.MaxPool, im.AvgPool)):
            row["kernel"] = list(layer.kernel)
        elif isinstance(layer, im.GlobalAvgPool):
            row["kernel"] = list(in_shape[1:])
        if isinstance(layer, im.MacLayer):
            row["weight_bits"] = layer.weight_bits
            row["bops"] = row["macs"] * layer.weight_bits * row["act_bits"]
            row["nonzero_bops"] = row["nonzero_macs"] * layer.weight_bits * row["act_bits"]
            row["params"] = int(layer.weight.size + layer.bias.size)
            row["weight_memory_bits"] = int(layer.weight.size * layer.weight_bits + layer.bias.size * 32)
        rows.append(row)
    return rows


def totals(rows: list[dict]) -> dict:
    keys = ("macs", "nonzero_macs", "bops", "nonzero_bops", "params", "weight_memory_bits")
    return {k: int(sum(r[k] for r in rows)) for k in keys}
