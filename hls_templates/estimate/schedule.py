"""How per-layer timings compose into the network's latency and frame interval.

**Dataflow** (``#pragma HLS DATAFLOW``, every layer a concurrent process joined by streams).
Each layer's output stream is summarised by the cycles of its first and last element,
``(first, last)``; the input port delivers one pixel per cycle, ``(0, pixels - 1)``. A tensor
read by ``k`` layers passes clones (``clone_stream``, one read and one write): reader ``i``
sees its input 2 cycles later per clone on its path. A stage with reuse ``R`` and depth ``d``,
reading a stream ``(f, l)`` of ``n`` pixels (for several inputs, the latest of each):

* window (Conv, MaxPool, AvgPool: ``it = Hp * Wp`` iterations at ``II = R``; Upsample: one
  iteration per output pixel, ``fill = 1``, ``tail`` the repetitions after the last read):
  ``first = max(f + (fill - 1) * R, arrival(q)) + d`` where ``arrival(q) = f + q * (l - f) //
  (n - 1)`` is when the pixel the first window needs arrives (input spread evenly);
  ``last = max(f + (it - 1) * R, l + tail * R) + d`` — it cannot finish before its own loop
  nor before ``tail`` padding iterations after its last input;
* pixel (Add, Concat): ``first = f + d``, ``last = max(f + (n - 1) * R, l) + d``;
* reduce (GlobalAvgPool): ``first = last = max(f + (n - 1) * R, l) + d``;
* linear (reads ``n`` pixels at ``II = 1``, then one MAC at ``II = R``):
  ``first = last = max(f + n - 1, l) + R + d - 1``;
* Flatten passes ``(f, l)`` through.

Latency = ``last`` of the output layer + 1 cycles; the frame interval is the slowest stage's
``ii`` (``it * R``; the linear stage's ``n + R + d - 1``).

**Parallel**, one PIPELINE (every ``R = 1``): every loop unrolled; each layer's module is chained
after its inputs as hls4ml's top chains its layers (:func:`pipeline_chain`: a module shares its
input's last cycle when both delays fit the cycle budget), latency = the chain's cycles - 1; a
new frame every cycle. **Parallel** with some ``R > 1``: a DATAFLOW of per-layer pipelines over
arrays (a process starts when its input array is complete): latency = the sum of the layers'
``trips * R + d - 1``; frame interval = the largest of them.

``d`` is a layer's module depth in cycles (its module's cycles, ``stages + 1``, :mod:`.mac`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from exporters import integer_model as im
from hls_templates.estimate import primitives as prim
from hls_templates.estimate.layers import LayerCost, Mode

CLONE_DELAY = 2  # clone_stream: one read, one write


def clone_delays(layers: list[im.Layer]) -> dict[tuple[str, int], int]:
    """Extra cycles before reader (layer, input position) sees a tensor that is read k > 1 times,
    following the generator's chain of k - 1 clones (reader i < k - 1 passes i + 1 clones)."""
    readers: dict[str, list[tuple[str, int]]] = {}
    aliases = {}
    for layer in layers:
        if layer.is_free_view:
            aliases[layer.name] = aliases.get(layer.input, layer.input)
            continue
        for pos, src in enumerate(layer.inputs):
            readers.setdefault(aliases.get(src, src), []).append((layer.name, pos))
    delays = {}
    for slots in readers.values():
        k = len(slots)
        for i, slot in enumerate(slots):
            delays[slot] = CLONE_DELAY * (min(i + 1, k - 1))
    return delays


def dataflow_times(layers: list[im.Layer], costs: dict[str, LayerCost]) -> dict:
    """``name -> (first, last)`` output cycles of every layer."""
    delays = clone_delays(layers)
    times: dict[str, tuple] = {}
    for layer in layers:
        c = costs[layer.name]
        if c.stage == "input":
            times[layer.name] = (0, c.out_pixels - 1)
            continue
        if c.stage == "free":
            times[layer.name] = times[layer.input]
            continue
        ins = [tuple(t + delays.get((layer.name, i), 0) for t in times[s]) for i, s in enumerate(layer.inputs)]
        f = functools.reduce(np.maximum, (t[0] for t in ins))  # the latest of the inputs (Add, Concat)
        last_in = functools.reduce(np.maximum, (t[1] for t in ins))
        d, r = c.depth, c.reuse
        n = costs[layer.inputs[0]].out_pixels
        if c.stage == "window":
            arrival = f + (c.first_input * (last_in - f)) // max(n - 1, 1)
            first = np.maximum(f + (c.fill - 1) * r, arrival) + d
            times[layer.name] = (first, np.maximum(f + (c.iterations - 1) * r, last_in + c.tail * r) + d)
        elif c.stage == "pixel":
            times[layer.name] = (f + d, np.maximum(f + (c.iterations - 1) * r, last_in) + d)
        elif c.stage == "reduce":
            done = np.maximum(f + (c.iterations - 1) * r, last_in) + d
            times[layer.name] = (done, done)
        elif c.stage == "linear":
            done = np.maximum(f + c.iterations - 1, last_in) + r + d - 1
            times[layer.name] = (done, done)
        else:
            raise ValueError(f"unknown stage '{c.stage}'")
    return times


@dataclass(frozen=True)
class PipelineChain:
    """The parallel top at reuse 1 as chained modules: ``names[i]`` the layer of block ``i``,
    ``producers[i]`` the layers whose outputs it reads (the input port is none), ``chain`` their
    composition (:func:`.primitives.chain_graph`)."""

    names: tuple[str, ...]
    producers: tuple[tuple[str, ...], ...]
    chain: prim.Chain


def pipeline_chain(layers: list[im.Layer], costs: dict[str, LayerCost], budget: float) -> PipelineChain:
    """One PIPELINE top (every reuse 1): each computing layer's module (its ``cycle_delays``) starts
    when its last input is ready and shares that input's last cycle when the two fit the budget,
    as hls4ml's top does with its layers (docs/hls.md, "Latency"). Free views alias their input."""
    producer: dict[str, str | None] = {}
    names, producers, blocks, inputs = [], [], [], []
    for layer in layers:
        c = costs[layer.name]
        if c.stage in ("input", "free"):
            producer[layer.name] = producer.get(layer.input) if c.stage == "free" else None
            continue
        reads = tuple(dict.fromkeys(p for p in (producer[s] for s in layer.inputs) if p is not None))
        names.append(layer.name)
        producers.append(reads)
        blocks.append(c.cycle_delays(budget))
        inputs.append([names.index(p) for p in reads])
        producer[layer.name] = layer.name
    return PipelineChain(tuple(names), tuple(producers), prim.chain_graph(blocks, inputs, budget))


def total_latency(layers: list[im.Layer], costs: dict[str, LayerCost], mode: Mode, budget: float):
    """Cycles from the first input to the last output."""
    if mode.arch == "dataflow":
        return dataflow_times(layers, costs)[layers[-1].name][1] + 1
    if mode.unrolled:
        return max(pipeline_chain(layers, costs, budget).chain.states - 1, 0)
    return sum(costs[layer.name].latency(mode) for layer in layers)
