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
within the model: the candidate's adder trees (its own layer's and its consumers') are
re-timed and the whole schedule re-run once per distinct outcome. In a fully unrolled design
latency depends on channel counts only through the adder trees' levels (``log2``), so most
channels cost 0 cycles; area is where channels pay.

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

import dataclasses
import functools

import numpy as np

from exporters import integer_model as im
from hls_templates.estimate import primitives as prim
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
    """Each tensor's readers, once each (a layer reading a tensor twice, Add(x, x) or Concat(x, x),
    is one consumer: :func:`_labels` joins its positions)."""
    out: dict[str, list[im.Layer]] = {layer.name: [] for layer in layers}
    for layer in layers:
        for src in dict.fromkeys(layer.inputs):
            out[src].append(layer)
    return out


def _labels(model, consumer: im.Layer, tensor: str, group: np.ndarray) -> np.ndarray:
    """Which tracked channel each output element of ``consumer`` carries, for every input position
    reading ``tensor`` (``channel_labels``; positions agree where both track, else one is UNTRACKED)."""
    labels = [consumer.channel_labels(model, group, pos) for pos, src in enumerate(consumer.inputs) if src == tensor]
    return functools.reduce(np.maximum, labels)


def _per_channel(labels: np.ndarray, weights, n: int) -> np.ndarray:
    """``weights`` summed per tracked channel label (UNTRACKED entries belong to none)."""
    tracked = labels != im.UNTRACKED
    return np.bincount(labels[tracked], weights=np.asarray(weights)[tracked], minlength=n)


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
    original channel ``group[i]`` (UNTRACKED: none); follows the channels through every layer
    (``channel_labels``: pools, Add, Concat, Upsample, Flatten), stops at MAC layers."""
    n = int(group.max()) + 1 if group.size else 0
    total = np.zeros(n)
    for consumer in consumers[tensor]:
        c = costs[consumer.name]
        if isinstance(consumer, im.MacLayer):
            total += _per_channel(group, c.in_share[metric], n)
            continue
        labels = _labels(model, consumer, tensor, group)
        total += _per_channel(labels, c.out_share[metric], n)
        total += _downstream(model, costs, consumers, consumer.name, labels, metric)
    return total


def _mac_consumers(model, consumers, tensor: str, group: np.ndarray):
    """(MAC layer, group over its input channels) for every MAC layer fed by ``tensor``."""
    found = []
    for consumer in consumers[tensor]:
        if isinstance(consumer, im.MacLayer):
            found.append((consumer, group))
        else:
            found += _mac_consumers(model, consumers, consumer.name, _labels(model, consumer, tensor, group))
    return found


def _latency_costs(c: Costed, consumers, layer: im.MacLayer) -> np.ndarray:
    """Exact (within the model) latency fall per removed output channel: the layer's module
    re-timed without that output's tree, every MAC consumer's re-timed without the terms that
    read it (:func:`.primitives.tree_timing` on the remaining term counts, all channels at once),
    and the whole schedule re-run once per distinct outcome."""
    model, costs = c.model, c.costs
    n = layer.out_channels
    own = costs[layer.name].module.trees
    variants = {layer.name: [tuple(own.without_output(o)) for o in range(n)]}
    for consumer, group in _mac_consumers(model, consumers, layer.name, np.arange(n)):
        trees = costs[consumer.name].module.trees
        label = group[trees.entry_channel]
        tracked = label != im.UNTRACKED
        removed = np.zeros((n,) + trees.counts.shape)
        np.add.at(removed, (label[tracked], trees.entry_out[tracked], trees.entry_group[tracked]), 1)
        cycles = trees.cycles(trees.counts - removed, trees.weights - removed.sum(axis=-1))
        variants[consumer.name] = [tuple(cy) for cy in cycles]
    budget = prim.cycle_budget(c.cfg.clock_ns)
    base = total_latency(c.layers, costs, c.mode, budget)
    outcome: dict[tuple, float] = {}
    fall = np.zeros(n)
    for o in range(n):
        key = tuple(v[o] for v in variants.values())
        if key not in outcome:
            changed = {name: dataclasses.replace(costs[name], depth=len(v[o]), delays_ns=v[o])
                       for name, v in variants.items()}
            outcome[key] = base - total_latency(c.layers, {**costs, **changed}, c.mode, budget)
        fall[o] = outcome[key]
    return fall
