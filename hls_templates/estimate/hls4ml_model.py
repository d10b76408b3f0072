"""Latency and resources of an hls4ml ``io_parallel`` network (Dense, ReLU, softmax; strategy
Latency), from its weights and precisions, built from :mod:`.primitives`.

The kernel modelled is hls4ml's ``nnet::dense_latency`` (0.7 to 1.3): the unrolled products
``mult[i][j] = data[i] * weights[i][j]`` (full precision, then cast to ``accum_t``), the
accumulation ``acc[j] = bias[j] + sum_i mult[i][j]`` and the cast to ``res_t``, pipelined at
``II = reuse_factor`` under ``ALLOCATION mul limit = ceil(n_in n_out / R) - floor(n_zeros / R)``;
``nnet::relu``; ``nnet::softmax_stable``. With constant weights the tool builds each product
for its weight's value (:func:`.primitives.constant_products`) and shares equal products of one
input. Each layer is its own pipelined module; the top chains them (:func:`.primitives.chain_blocks`).
docs/hls.md "The primitive model and its calibration" gives every rule with its data point and
the measured error; the estimate is an estimate, not a synthesis result.

>>> rng = np.random.default_rng(0)
>>> t = FixedType(16, 6)
>>> net = Hls4mlNetwork(t, 4, (DenseLayer("fc1", rng.normal(0, 0.5, (4, 3)), np.zeros(3), t, t, t, t),
...                             Activation("relu1", "relu", t)))
>>> e = estimate_hls4ml(net)
>>> [row["name"] for row in e.layers], e.totals["ii"]
(['fc1', 'relu1'], 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from exporters.errors import FoldlineError
from hls_templates.estimate import arith
from hls_templates.estimate import primitives as prim
from hls_templates.estimate.primitives import FixedType


class Hls4mlEstimateError(FoldlineError):
    """A network or configuration the hls4ml estimate does not cover (names the culprit)."""


def as_type(t) -> FixedType:
    """A :class:`FixedType`, an hls4ml precision string, or ``(width, integer_bits, signed)``."""
    if isinstance(t, FixedType):
        return t
    if isinstance(t, str):
        return FixedType.parse(t)
    try:
        width, integer, signed = t
        return FixedType(int(width), int(integer), bool(signed))
    except (TypeError, ValueError):
        raise Hls4mlEstimateError(f"precision {t!r}: expected a FixedType, 'fixed<W,I>' "
                                  "or (width, integer, signed)") from None


@dataclass(frozen=True)
class DenseLayer:
    """``weight`` is ``(n_in, n_out)`` reals (hls4ml's layout), ``bias`` ``(n_out,)``."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    weight_type: FixedType
    bias_type: FixedType
    accum_type: FixedType
    result_type: FixedType
    reuse_factor: int = 1

    def __post_init__(self) -> None:
        weight, bias = np.asarray(self.weight, np.float64), np.asarray(self.bias, np.float64).ravel()
        if weight.ndim != 2 or bias.size != weight.shape[1]:
            raise Hls4mlEstimateError(f"layer '{self.name}': weight must be (n_in, n_out) and bias (n_out,), "
                                      f"got {weight.shape} and {bias.shape}")
        if isinstance(self.reuse_factor, bool) or int(self.reuse_factor) != self.reuse_factor or self.reuse_factor < 1:
            raise Hls4mlEstimateError(f"layer '{self.name}': reuse factor {self.reuse_factor!r} "
                                      "must be an integer >= 1")
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "bias", bias)
        object.__setattr__(self, "reuse_factor", int(self.reuse_factor))
        for name in ("weight_type", "bias_type", "accum_type", "result_type"):
            object.__setattr__(self, name, as_type(getattr(self, name)))


@dataclass(frozen=True)
class Activation:
    """``kind`` is ``relu`` or ``softmax``."""

    name: str
    kind: str
    result_type: FixedType

    def __post_init__(self) -> None:
        object.__setattr__(self, "result_type", as_type(self.result_type))


@dataclass(frozen=True)
class Hls4mlNetwork:
    """A chain of layers after an input of ``n_inputs`` values of ``input_type``."""

    input_type: FixedType
    n_inputs: int
    layers: tuple
    clock_ns: float = 5.0
    uncertainty_ns: float | None = None
    part: str = "xcu250-figd2104-2L-e"

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_type", as_type(self.input_type))
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.clock_ns > 0:
            raise Hls4mlEstimateError(f"clock period {self.clock_ns!r} ns must be positive")


@dataclass
class Hls4mlEstimate:
    """``layers``: one dict per layer (``name, kind, latency_cycles, ii, dsp, lut, ff, bram``, the
    delays of its cycles and how its products were built); ``top``: the top function's own
    registers and muxes; ``totals``: the whole design. ``dense_relu_latency`` counts the cycles
    before the softmax starts (all of them when there is none)."""

    layers: list[dict]
    top: dict
    totals: dict
    notes: list[str] = field(default_factory=list)

    def layer(self, name: str) -> dict:
        for row in self.layers:
            if row["name"] == name:
                return row
        raise KeyError(name)

    def to_dict(self) -> dict:
        """Plain data for a strict JSON report."""
        return {"layers": [dict(row) for row in self.layers], "top": dict(self.top), "totals": dict(self.totals),
                "notes": list(self.notes)}


# softmax_stable with 10-bit tables (exp ap_fixed<18,8>, inv ap_fixed<18,4>) on 5 classes is not
# modelled from primitives; a fixed cost from the reports: 4 cycles (A, B; C took 3), one DSP per
# class and 4 BRAM18 (all three), LUT and FF the mean of the two builds seen (664/236 in A and B,
# 484/144 in C: its input carries fewer live bits). Delays of its first and last cycle: 3.97, 3.69 ns.
SOFTMAX_LATENCY = 4
SOFTMAX_BRAM18 = 4
SOFTMAX_LUT_PER_CLASS = (664 + 484) / 2 / 5
SOFTMAX_FF_PER_CLASS = (236 + 144) / 2 / 5
SOFTMAX_FIRST_LAST_NS = (3.97, 3.69)
# Top function: the input port's register and valid bit, 4 handshake muxes (2:1), 3 gates;
# at II > 1 a 3:1 FSM mux and two more 2:1 muxes (A, C: 36 LUTs; B: 69).
TOP_HANDSHAKE_MUXES = 4
TOP_GATES = 3


def hls4ml_weight_integers(values, t: FixedType) -> np.ndarray:
    """The integers hls4ml's weights become: printed with ``frac`` decimals (``{:.Nf}``), then
    converted by ap_fixed's default truncation (the calibration weights, A and B, are floats)."""
    printed = np.array([float(f"{x:.{max(t.frac, 0)}f}") for x in np.asarray(values, np.float64).ravel()])
    return t.quantize(printed).reshape(np.shape(values))


def _term_width(x: FixedType, v: np.ndarray, w: FixedType, acc: FixedType) -> np.ndarray:
    """Bits a product ``x * v`` keeps after the cast to ``acc`` (its dropped LSBs cost nothing)."""
    bits = x.width + arith.bit_length(np.abs(v)) + (0 if x.signed else 1)
    drop = max(x.frac + w.frac - acc.frac, 0)
    return np.minimum(acc.width, np.maximum(bits - drop, 1))


@dataclass
class _Products:
    """The products of one Dense layer: arrival time of each ``(input, output)`` term and the
    cost of building each distinct ``(input, weight)`` product once."""

    arrival: np.ndarray
    lut: int = 0
    dsp: int = 0
    mul_ops: int = 0
    dsp_products: int = 0
    kinds: dict = field(default_factory=dict)


def _products(w_live: np.ndarray, live: np.ndarray, x: FixedType, part: prim.Part) -> _Products:
    """One product per input and distinct weight: the tool shares equal products of one input."""
    out = _Products(np.zeros(w_live.shape))
    for i in np.flatnonzero(live):
        values, inverse = np.unique(w_live[i], return_inverse=True)
        p = prim.constant_products(values, x.width, part)
        out.arrival[i] = p.delay[inverse]
        out.lut += int(p.lut.sum())
        out.dsp += int(p.dsp.sum())
        out.mul_ops += int(np.isin(p.kind, ("dsp", "lut_mul")).sum())
        out.dsp_products += int((p.kind == "dsp").sum())
        for k in p.kind[values != 0]:
            out.kinds[str(k)] = out.kinds.get(str(k), 0) + 1
    return out


def _dense(layer: DenseLayer, x: FixedType, live: np.ndarray, part: prim.Part,
           budget: float) -> tuple[dict, np.ndarray]:
    """One ``dense_latency`` module: products, one adder tree per output with a nonzero weight
    (the others are constants and cost nothing, here and in the layers they feed), the cast,
    and at reuse > 1 the multipliers shared under hls4ml's limit (``n_zeros`` counted on the
    weights as given, as hls4ml counts them)."""
    w_int = hls4ml_weight_integers(layer.weight, layer.weight_type)
    b_int = hls4ml_weight_integers(layer.bias, layer.bias_type)
    acc, res, reuse = layer.accum_type, layer.result_type, layer.reuse_factor
    w_live = np.where(live[:, None], w_int, 0)
    prod = _products(w_live, live, x, part)
    widths = _term_width(x, w_live, layer.weight_type, acc)
    bias_acc = b_int * 2 ** max(acc.frac - layer.bias_type.frac, 0)
    out_live = (w_live != 0).any(axis=0)
    trees = []
    for j in np.flatnonzero(out_live):
        rows = np.flatnonzero(w_live[:, j])
        t, wd = list(prod.arrival[rows, j]), list(widths[rows, j])
        if b_int[j] != 0:
            t.append(0.0)
            wd.append(min(acc.width, int(arith.constant_width(bias_acc[j])) + 1))
        trees.append(prim.adder_tree(t, wd, acc.width, budget, part))
    stages = max((tr.stage for tr in trees), default=0)
    n_live_out = int(out_live.sum())
    cast_lut, cast_ns = prim.cast_cost(acc, res, part)
    lut = prod.lut + sum(tr.lut for tr in trees) + cast_lut * n_live_out
    ff = sum(tr.reg_bits + (stages - tr.stage) * res.width for tr in trees)   # early outputs wait
    dsp = prod.dsp
    n_in, n_out = w_int.shape
    limit = math.ceil(n_in * n_out / reuse) - math.floor(int(np.sum(layer.weight == 0)) / reuse)
    if reuse > 1:
        shared = max(prod.mul_ops - limit, 0)     # units serving more than one product
        if shared:
            dsp = min(dsp, max(limit, 0))
        lut += 2 * shared * prim.mux_lut(reuse + 1) + prim.mux_lut(3)   # operand muxes, FSM
        ff += shared * acc.width + reuse          # products held a cycle, one-hot FSM
    elif stages >= 1:                             # registered outputs behind an enable mux
        lut += n_live_out * prim.mux_lut(2)
        ff += n_live_out * res.width
    head = max((tr.head_ns for tr in trees), default=0.0)
    tail = max((tr.tail_ns for tr in trees if tr.stage == stages), default=0.0) + cast_ns
    delays = [tail] if stages == 0 else [head] + [budget] * (stages - 1) + [tail]
    row = dict(name=layer.name, kind="dense", latency_cycles=stages, ii=reuse, dsp=dsp, lut=lut, ff=ff, bram=0,
               delays_ns=[round(d, 3) for d in delays], outputs=n_live_out, out_width=res.width,
               mul_ops=prod.mul_ops, dsp_products=prod.dsp_products, multiplier_limit=limit, products=prod.kinds)
    return row, out_live


def _relu(act: Activation, x: FixedType, live: np.ndarray, part: prim.Part) -> dict:
    lut, ns = prim.relu_cost(x, act.result_type, part)
    n = int(live.sum())
    return dict(name=act.name, kind="relu", latency_cycles=0, ii=1, dsp=0, lut=lut * n, ff=0, bram=0,
                delays_ns=[round(ns, 3)], outputs=n, out_width=act.result_type.width)


def _softmax(act: Activation, n: int, budget: float) -> dict:
    first, last = SOFTMAX_FIRST_LAST_NS
    return dict(name=act.name, kind="softmax", latency_cycles=SOFTMAX_LATENCY, ii=1, dsp=n,
                lut=round(SOFTMAX_LUT_PER_CLASS * n), ff=round(SOFTMAX_FF_PER_CLASS * n), bram=SOFTMAX_BRAM18,
                delays_ns=[first] + [budget] * (SOFTMAX_LATENCY - 1) + [last], outputs=n,
                out_width=act.result_type.width, fixed_cost=True)


def estimate_hls4ml(net: Hls4mlNetwork) -> Hls4mlEstimate:
    """Per-layer and total latency, II, DSP, LUT, FF, BRAM18 of ``net`` (see the module doc)."""
    part = prim.part_for(net.part)
    budget = prim.cycle_budget(net.clock_ns, net.uncertainty_ns)
    x, live = as_type(net.input_type), np.ones(int(net.n_inputs), dtype=bool)
    rows = []
    for layer in net.layers:
        if isinstance(layer, DenseLayer):
            if np.shape(layer.weight)[0] != live.size:
                raise Hls4mlEstimateError(f"layer '{layer.name}': {np.shape(layer.weight)[0]} inputs, "
                                          f"the previous layer gives {live.size}")
            row, live = _dense(layer, x, live, part, budget)
            x = layer.result_type
        elif layer.kind == "relu":
            row = _relu(layer, x, live, part)
            x = layer.result_type
        elif layer.kind == "softmax":
            row = _softmax(layer, live.size, budget)
            x = layer.result_type
        else:
            raise Hls4mlEstimateError(f"layer '{layer.name}': activation '{layer.kind}' is not modelled "
                                      "(relu and softmax are)")
        rows.append(row)
    chain = prim.chain_blocks([row["delays_ns"] for row in rows], budget)
    ii = max((row["ii"] for row in rows), default=1)
    top_ff = int(net.n_inputs) * as_type(net.input_type).width + 1 + ii
    top_ff += chain.states - 1 if ii == 1 else math.ceil(chain.states / ii)   # pipeline enables
    for i, row in enumerate(rows):
        row["start_cycle"] = chain.starts[i]
        if chain.registered[i]:          # the previous layer's outputs cross a cycle boundary
            top_ff += rows[i - 1]["outputs"] * rows[i - 1]["out_width"]
        if row["latency_cycles"] >= 1 and (row["kind"] == "softmax" or (ii > 1 and i > 0)):
            top_ff += 1                   # ap_start register of a multi-cycle instance
    top_lut = prim.GATE_LUT * TOP_GATES + TOP_HANDSHAKE_MUXES * prim.mux_lut(2)
    if ii > 1:
        top_lut += prim.mux_lut(3) + 2 * prim.mux_lut(2)
    top = dict(lut=top_lut, ff=top_ff, dsp=0, bram=0)
    softmax_at = next((chain.starts[i] for i, row in enumerate(rows) if row["kind"] == "softmax"), chain.states)
    totals = {m: sum(row[m] for row in rows) + top[m] for m in ("dsp", "lut", "ff", "bram")}
    totals.update(latency_cycles=chain.states - 1, ii=ii, dense_relu_latency=softmax_at,
                  clock_ns=net.clock_ns, budget_ns=round(budget, 3), part=part.name, part_family=part.family,
                  part_calibrated=part.calibrated)
    notes = ["an estimate from the primitive model (docs/hls.md), not a synthesis result"]
    if not part.calibrated:
        notes.append(f"part {part.name}: outside the calibration (xcu250); delays and binding extrapolated")
    return Hls4mlEstimate(rows, top, totals, notes)


# ----------------------------------------------------------------------------- calibration folders

def _read_yaml(path: Path) -> dict:
    import yaml

    class _Loader(yaml.SafeLoader):
        """hls4ml writes tags such as ``!keras_model``: read them as plain strings."""

    _Loader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node))
    with open(path) as f:
        return yaml.load(f, Loader=_Loader)


def load_calibration_case(path) -> Hls4mlNetwork:
    """A calibration folder (``weights.npz`` + ``hls4ml_config.yml``, see its README) as an
    :class:`Hls4mlNetwork`: the Dense layers in the order of the ``<name>_weight`` arrays, a
    ``relu<k>`` after hidden layer ``k`` and a ``softmax`` after the last (the Keras names of
    the jet MLP), precisions from ``LayerName`` with the model's ``Precision`` as default."""
    folder = Path(path)
    try:
        cfg = _read_yaml(folder / "hls4ml_config.yml")
        weights = np.load(folder / "weights.npz")
    except OSError as e:
        raise Hls4mlEstimateError(f"calibration case '{folder}': {e.strerror or e}") from None
    hls = cfg.get("HLSConfig", {})
    model = hls.get("Model", {})
    names = cfg.get("LayerName") or hls.get("LayerName") or {}
    if cfg.get("IOType", "io_parallel") != "io_parallel" or model.get("Strategy", "Latency").lower() != "latency":
        raise Hls4mlEstimateError(f"calibration case '{folder}': only io_parallel with strategy Latency is modelled")

    def precision(layer: str, key: str) -> FixedType:
        spec = (names.get(layer) or {}).get("Precision", {})
        return FixedType.parse(spec.get(key, model["Precision"]) if isinstance(spec, dict) else spec)

    dense = [k[:-len("_weight")] for k in weights.files if k.endswith("_weight")]
    if not dense:
        raise Hls4mlEstimateError(f"calibration case '{folder}': weights.npz holds no '<layer>_weight' array")
    layers = []
    for k, name in enumerate(dense, start=1):
        reuse = int((names.get(name) or {}).get("ReuseFactor", model.get("ReuseFactor", 1)))
        layers.append(DenseLayer(name, weights[f"{name}_weight"], weights[f"{name}_bias"], precision(name, "weight"),
                                 precision(name, "bias"), precision(name, "accum"), precision(name, "result"), reuse))
        act = f"relu{k}" if k < len(dense) else "softmax"
        layers.append(Activation(act, "relu" if k < len(dense) else "softmax", precision(act, "result")))
    first = weights[f"{dense[0]}_weight"]
    return Hls4mlNetwork(precision(f"{dense[0]}_input", "result"), first.shape[0], tuple(layers),
                         float(cfg.get("ClockPeriod", 5.0)), None, str(cfg.get("Part", "xcu250-figd2104-2L-e")))
