"""``estimate(model, config) -> Estimate``: the whole-network numbers, JSON-ready."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exporters import integer_model as im
from exporters.onnx_import import as_integer_model
from hls_templates.estimate import arith
from hls_templates.estimate import primitives as prim
from hls_templates.estimate.config import EstimateConfig, resolve_config
from hls_templates.estimate.layers import LayerCost, Mode, layer_cost
from hls_templates.estimate.mac import pipelined_top
from hls_templates.estimate.schedule import dataflow_times, pipeline_chain, total_latency

RESOURCES = ("dsp", "lut", "bram", "ff")
STREAM_DEPTH = 2  # the generator's FIFO depth between layers (hls_templates/plan.py)


@dataclass
class Estimate:
    """``layers``: one dict per generated layer; ``totals``: the network. Plain ints/floats/strs only."""

    layers: list[dict]
    totals: dict

    def to_dict(self) -> dict:
        return {"layers": [dict(d) for d in self.layers], "totals": dict(self.totals)}

    def layer(self, name: str) -> dict:
        for d in self.layers:
            if d["name"] == name:
                return d
        raise KeyError(name)

    def __repr__(self) -> str:
        t = self.totals
        return (f"Estimate({t['latency_cycles']} cycles = {t['latency_us']:.3f} us at {t['clock_ns']:g} ns, "
                f"DSP {t['dsp']}, LUT {t['lut']}, FF {t['ff']}, BRAM18 {t['bram']})")


@dataclass
class Costed:
    """Everything the estimate and the pruning rule share."""

    model: im.IntegerModel
    cfg: EstimateConfig
    mode: Mode
    layers: list[im.Layer]
    costs: dict[str, LayerCost]


def cost_model(model_or_onnx, config=None) -> Costed:
    model = as_integer_model(model_or_onnx)
    model.validate()
    cfg = resolve_config(config)
    cfg.check_layers([layer.name for layer in model.layers])
    layers = im.live_layers(model)
    arch = cfg.resolve_architecture(model.input.shape)
    compute = [layer for layer in layers if layer.computes]
    mode = Mode(arch, arch == "parallel" and max((cfg.reuse(layer.name) for layer in compute), default=1) == 1)
    costs = {layer.name: layer_cost(model, layer, cfg, mode) for layer in layers}
    if arch == "dataflow":
        _add_streams(model, layers, costs)
    if mode.unrolled:
        _add_pipeline_registers(model, layers, costs, cfg)
    return Costed(model, cfg, mode, layers, costs)


def _add_pipeline_registers(model: im.IntegerModel, layers: list[im.Layer], costs: dict[str, LayerCost],
                            cfg: EstimateConfig) -> None:
    """One PIPELINE top (every reuse 1), as hls4ml's top (docs/hls.md, "Registers"): a layer's
    outputs are registered once per cycle they wait before a reader's module starts (charged to the
    layer producing them), and the top's own control (input port register, valid and enable bits,
    handshake muxes: :func:`.mac.pipelined_top`) is charged to the Input."""
    budget = prim.cycle_budget(cfg.clock_ns)
    top = pipeline_chain(layers, costs, budget)
    for producers, waits in zip(top.producers, top.chain.waits):
        for name, wait in zip(producers, waits):
            c = costs[name]
            ff = wait * c.out_elements * c.out_bits
            c.ff += ff
            c.out_share["ff"] = c.out_share["ff"] + ff / max(c.out_share["ff"].size, 1)
    lut, ff = pipelined_top(int(np.prod(model.input.shape)) * model.input.grid.bits, top.chain.states, 1)
    port = costs[model.input.name]
    port.lut, port.ff = port.lut + lut, port.ff + ff


def _add_streams(model: im.IntegerModel, layers: list[im.Layer], costs: dict[str, LayerCost]) -> None:
    """Dataflow plumbing, charged to the layer producing the tensor (see ``plan._plumbing``):
    a depth-2 FIFO per internal tensor, and for a tensor read by ``k > 1`` layers ``k - 1``
    clones with two FIFOs each as deep as the tensor has pixels (``pixels x C * b`` bits)."""
    owner = {}
    readers: dict[str, int] = {}
    for layer in layers:
        owner[layer.name] = owner[layer.input] if layer.is_free_view else layer.name
        if not layer.is_free_view:
            for src in layer.inputs:
                readers[owner[src]] = readers.get(owner[src], 0) + 1
    for layer in layers:
        if owner[layer.name] != layer.name:
            continue
        shape = model.shape(layer.name)
        channels = shape[0]
        width = channels * model.grid(layer.name).bits
        pixels = costs[layer.name].out_pixels
        lut = bram = 0
        if layer is not layers[0] and layer is not layers[-1]:
            lut += arith.memory_cost(STREAM_DEPTH, width)[0]
        clones = max(readers.get(layer.name, 0) - 1, 0)
        fifo_lut, fifo_bram = arith.memory_cost(pixels, width)
        lut, bram = lut + 2 * clones * fifo_lut, bram + 2 * clones * fifo_bram
        c = costs[layer.name]
        c.lut, c.bram = c.lut + lut, c.bram + bram
        c.out_share["lut"] = c.out_share["lut"] + lut / channels
        c.out_share["bram"] = c.out_share["bram"] + bram / channels


def estimate(model_or_onnx, config=None) -> Estimate:
    """Latency and resources of the Foldline HLS design for ``model_or_onnx``.

    ``config``: None, an :class:`EstimateConfig`, a dict of its fields, or the generator's
    ``HlsConfig``. Every number is an analytical model of the kernels' loops (docs/hls.md,
    "Estimator") — never a synthesis result. Layers that do not reach the output are left out,
    as the generator leaves them out.
    """
    c = cost_model(model_or_onnx, config)
    mode = c.mode
    times = dataflow_times(c.layers, c.costs) if mode.arch == "dataflow" else None
    layers = []
    for layer in c.layers:
        lc = c.costs[layer.name]
        entry = {"name": layer.name, "type": lc.kind, "latency_cycles": int(lc.latency(mode)), "ii": int(lc.ii(mode)),
                 "dsp": int(lc.dsp), "lut": int(lc.lut), "bram": int(lc.bram), "ff": int(lc.ff), "macs": lc.macs,
                 "nonzero_multiplies": lc.nonzero_multiplies, "reuse_factor": lc.reuse}
        if times is not None:
            entry["first_output_cycle"], entry["last_output_cycle"] = (int(v) for v in times[layer.name])
        layers.append(entry)
    latency = int(total_latency(c.layers, c.costs, mode, prim.cycle_budget(c.cfg.clock_ns)))
    ii = max((d["ii"] for d in layers), default=0)
    totals = {"latency_cycles": latency, "latency_us": latency * c.cfg.clock_ns / 1000.0, "ii_cycles": int(ii),
              "clock_ns": float(c.cfg.clock_ns), "architecture": mode.arch, "part": c.cfg.part,
              **{k: int(sum(d[k] for d in layers)) for k in (*RESOURCES, "macs", "nonzero_multiplies")}}
    totals["frames_per_second"] = 1e9 / (ii * c.cfg.clock_ns) if ii else None
    return Estimate(layers, totals)


__all__ = ["Costed", "Estimate", "cost_model", "estimate"]
