"""Hardware cost as a pruning signal: a scalar cost and per-output-channel marginal costs.

* :func:`hardware_cost` — one number (``latency`` cycles, ``latency_us``, ``dsp``, ``lut``,
  ``ff`` or ``bram``) of the whole design, e.g. a regularizer ``loss + lam * cost`` evaluated
  on the exported integer model each epoch, or a constraint to stop pruning at.
* :func:`channel_costs` / :func:`channel_cost` — for each output channel of each Conv/Linear,
  how much the estimate falls when that channel is removed: its own products, adders and
  requantizer; everything downstream that only exists for it (pool comparators, line-buffer
  and window-register bits, Add lanes — through every layer that is not a MAC layer, each
  mapping channels as its ``channel_labels`` says) and the consumer layer's products and
  adders that read it. A pruning criterion ranks channels by ``importance / cost`` (or
  subtracts ``lam * cost``).

The area costs are first-order: shared multipliers at reuse ``R > 1`` and line-buffer
memories are charged as continuous shares (``1/R`` of a lane, ``1/C`` of a buffer), so
removing many channels saves about the sum of their costs, not exactly. Latency is exact
within the model: the candidate's adder-tree depths (its own layer's and its consumers')
are recomputed and the whole schedule re-run, vectorised over the layer's channels. In a
fully unrolled design latency depends on channel counts only through the adder-tree depth
(``log2``), so most channels cost 0 cycles; area is where channels pay.

Coupled channels (the two inputs of a residual Add, a depthwise Conv's channels) must be
removed together; add the costs of the coupled group (the dependency graph is the pruner's).

>>> import numpy as np
>>> from exporters import examples
>>> model = examples.cnn(np.random.default_rng(0))
>>> costs = channel_costs(model, metric="lut")
>>> sorted(costs), costs["conv1"].shape
(['conv1', 'conv3', 'fc6'], (4,))
"""

from __future__ import annotations

import numpy as np

from exporters import integer_model as im
from hls_templates.estimate import arith
from hls_templates.estimate.core import Costed, cost_model, estimate
from hls_templates.estimate.schedule import total_latency

METRICS = ("latency", "latency_us", "dsp", "lut", "ff", "bram")


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric '{metric}': expected one of {METRICS}")


def hardware_cost(model, config=None, metric: str = "latency") -> float:
    """The estimate's ``metric`` for the whole design, as a float."""
    _check_metric(metric)
    totals = estimate(model, config).totals
    key = {"latency": "latency_cycles"}.get(metric, metric)
    return float(totals[key])


def _consumers(layers: list[im.Layer]) -> dict[str, list[im.Layer]]:
    out: dict[str, list[im.Layer]] = {layer.name: [] for layer in layers}
    for layer in layers:
        for src in layer.inputs:
            out[src].append(layer)
    return out


def channel_costs(model, config=None, metric: str = "lut") -> dict[str, np.ndarray]:
    """``{layer: costs}`` for every Conv/Linear: ``costs[c]`` = fall of ``metric`` if output
    channel ``c`` is removed (float64 array, one entry per output channel)."""
    _check_metric(metric)
    c = cost_model(model, config)
    consumers = _consumers(c.layers)
    result = {}
    for layer in c.layers:
        if not isinstance(layer, im.MacLayer):
            continue
        if metric.startswith("latency"):
            value = _latency_costs(c, consumers, layer)
            result[layer.name] = value * (c.cfg.clock_ns / 1000.0 if metric == "latency_us" else 1.0)
        else:
            own = c.costs[layer.name].out_share[metric].astype(np.float64)
            result[layer.name] = own + _downstream(c.model, c.costs, consumers, layer.name,
                                                   np.arange(layer.out_channels), metric)
    return result


def channel_cost(model, layer_name: str, config=None, metric: str = "lut") -> np.ndarray:
    """Per-output-channel marginal ``metric`` of one Conv/Linear layer (see :func:`channel_costs`)."""
    costs = channel_costs(model, config, metric)
    if layer_name not in costs:
        raise KeyError(f"'{layer_name}' is not a Conv or Linear layer of the model")
    return costs[layer_name]


def _downstream(model, costs, consumers, tensor: str, group: np.ndarray, metric: str) -> np.ndarray:
    """Cost, per original channel, of everything reading ``tensor`` whose element ``i`` belongs to
    original channel ``group[i]``; follows the channels through every layer (``channel_labels``:
    pools, Add, Flatten), stops at MAC layers."""
    n = int(group.max()) + 1 if group.size else 0
    total = np.zeros(n)
    for consumer in consumers[tensor]:
        c = costs[consumer.name]
        if isinstance(consumer, im.MacLayer):
            total += np.bincount(group, weights=c.in_share[metric], minlength=n)
            continue
        labels = consumer.channel_labels(model, group, consumer.inputs.index(tensor))
        total += np.bincount(labels, weights=c.out_share[metric], minlength=n)
        total += _downstream(model, costs, consumers, consumer.name, labels, metric)
    return total


def _mac_consumers(model, consumers, tensor: str, group: np.ndarray):
    """(MAC layer, group over its input channels) for every MAC layer fed by ``tensor``."""
    found = []
    for consumer in consumers[tensor]:
        if isinstance(consumer, im.MacLayer):
            found.append((consumer, group))
        else:
            labels = consumer.channel_labels(model, group, consumer.inputs.index(tensor))
            found += _mac_consumers(model, consumers, consumer.name, labels)
    return found


def _latency_costs(c: Costed, consumers, layer: im.MacLayer) -> np.ndarray:
    """Exact (within the model) latency fall per removed output channel, all channels at once."""
    model, costs = c.model, c.costs
    n = layer.out_channels
    fixed, nz_row, _ = costs[layer.name].depth_parts
    # own layer: the deepest adder tree among the other rows
    terms = np.broadcast_to(nz_row + 1, (n, n)).copy()
    np.fill_diagonal(terms, 0)
    depths = {layer.name: fixed + arith.adder_tree_depth(terms.max(axis=1))}
    for consumer, group in _mac_consumers(model, consumers, layer.name, np.arange(n)):
        c_fixed, c_rows, col_terms = costs[consumer.name].depth_parts
        onehot = np.zeros((group.size, n), dtype=np.int64)
        onehot[np.arange(group.size), group] = 1
        removed = col_terms @ onehot  # (rows, n): taps of each row reading channel c
        new_terms = (c_rows[:, None] - removed + 1).max(axis=0)
        depths[consumer.name] = c_fixed + arith.adder_tree_depth(new_terms)
    base = total_latency(c.layers, costs, c.mode)
    return (base - np.asarray(total_latency(c.layers, costs, c.mode, depths))).astype(np.float64)
