"""Read a Vivado/Vitis HLS ``csynth.rpt`` (the top function's report): clock, latency, II,
resource totals, and one row per sub-function instance, matched to the network's layers.

Instance names say little: Vivado HLS shortens long template names to ``0_0_0...`` and tells
duplicates apart by a suffix. A layer is matched, in this order, by the ``call_retN`` prefix
(the N-th call of the top function: exact), by the ``configN`` of its module (hls4ml's layer
index), and otherwise by the suffix order ``_s``, ``_1``, ``_2``, ..., none — the order of the
calls in case C, where ``call_retN`` confirms it.

>>> r = parse_csynth(Path(__file__).parents[2] / "tests/data/calibration/hls4ml-jet-mlp/C_rf1_6bit_pruned75/csynth.rpt")
>>> r.latency, r.ii, r.totals["dsp"], len(r.instances)
((9, 9), 1, 23, 8)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from exporters.errors import FoldlineError


class CsynthReportError(FoldlineError):
    """A file that is not an HLS synthesis report, or lacks a table the parser needs."""


@dataclass(frozen=True)
class Instance:
    """One sub-function instance: ``kind`` is ``dense``, ``relu``, ``softmax`` or ``other``."""

    name: str
    module: str
    kind: str
    latency: tuple[int, int]
    ii: int
    bram: int
    dsp: int
    ff: int
    lut: int
    call: int | None
    config: int | None
    rank: int


@dataclass(frozen=True)
class CsynthReport:
    part: str
    clock_ns: float
    estimated_ns: float
    uncertainty_ns: float
    latency: tuple[int, int]
    ii: int
    totals: dict
    instances: tuple[Instance, ...]


def _rows(block: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.splitlines()
            if line.strip().startswith("|") and not line.strip().startswith("|-")]


def _section(text: str, start: str, end: str) -> str:
    m = re.search(re.escape(start) + r"(.*?)" + re.escape(end), text, re.S)
    if not m:
        raise CsynthReportError(f"no '{start.strip()}' table")
    return m.group(1)


def _int(cell: str) -> int:
    return int(cell) if cell.strip().isdigit() else 0


def _classify(name: str, module: str) -> tuple[str, int | None, int | None, int]:
    kind = next((k for k in ("dense", "relu", "softmax") if module.startswith(k)), "other")
    call = re.match(r"call_ret(\d*)_", name)
    config = re.search(r"config(\d+)", module)
    suffix = re.search(r"(?:_0){4,}(?:_(s|[1-9]\d*))?$", module)
    rank = 10 ** 6
    if suffix and suffix.group(1):
        rank = 0 if suffix.group(1) == "s" else int(suffix.group(1))
    return kind, (int(call.group(1) or 0) if call else None), (int(config.group(1)) if config else None), rank


def parse_csynth(source) -> CsynthReport:
    """``source``: a path or the report's text."""
    text = Path(source).read_text() if isinstance(source, Path) or "\n" not in str(source) else str(source)
    try:
        part = re.search(r"\* Target device:\s*(\S+)", text).group(1)
        clock = _rows(_section(text, "+ Timing:", "+ Latency:"))
        clock_ns, est_ns, unc_ns = (float(c.split()[0]) for c in clock[1][1:4])
        performance, utilization = text.split("== Utilization Estimates", 1)
        lat = _rows(_section(performance, "+ Latency:", "+ Detail:"))[-1]
        total = {r[0]: r[1:] for r in _rows(_section(utilization, "* Summary:", "+ Detail:"))}["Total"]
        lat_table = _section(performance, "* Instance:", "* Loop:")
        inst_table = _section(utilization, "* Instance:", "* DSP48")
    except (AttributeError, IndexError, KeyError, ValueError) as e:
        raise CsynthReportError(f"not a readable csynth report ({type(e).__name__}: {e})") from None
    latency = {r[0]: ((_int(r[2]), _int(r[3])), _int(r[6]) if len(r) > 6 else 1)
               for r in _rows(lat_table) if len(r) >= 8 and r[2].isdigit()}
    instances = []
    for r in _rows(inst_table):
        if len(r) < 6 or r[0] in ("Instance", "Total") or not r[2].isdigit():
            continue
        kind, call, config, rank = _classify(r[0], r[1])
        (lmin, lmax), ii = latency.get(r[0], ((0, 0), 1))
        instances.append(Instance(r[0], r[1], kind, (lmin, lmax), ii, _int(r[2]), _int(r[3]), _int(r[4]), _int(r[5]),
                                  call, config, rank))
    totals = dict(bram=_int(total[0]), dsp=_int(total[1]), ff=_int(total[2]), lut=_int(total[3]), uram=_int(total[4]))
    return CsynthReport(part, clock_ns, est_ns, unc_ns, (_int(lat[0]), _int(lat[1])), _int(lat[4]), totals,
                        tuple(instances))


def match_layers(report: CsynthReport, layers) -> dict[str, Instance]:
    """``layers``: ``(name, kind, hls4ml_index)`` in network order -> ``{name: Instance}``."""
    layers = list(layers)
    out: dict[str, Instance] = {}
    rest = []
    for inst in report.instances:
        if inst.call is not None and inst.call < len(layers) and layers[inst.call][1] == inst.kind:
            out[layers[inst.call][0]] = inst
        elif inst.config is not None and any(idx == inst.config and k == inst.kind for _, k, idx in layers):
            out[next(n for n, k, idx in layers if idx == inst.config and k == inst.kind)] = inst
        else:
            rest.append(inst)
    for kind in {inst.kind for inst in rest}:
        free = [n for n, k, _ in layers if k == kind and n not in out]
        for name, inst in zip(free, sorted((i for i in rest if i.kind == kind), key=lambda i: i.rank)):
            out[name] = inst
    return out


def hls4ml_layer_indices(kinds) -> list[int]:
    """hls4ml's layer index of each layer of a chain (``dense``/``relu``/``softmax``...) after the
    input (index 1): a Dense takes two (its own and the ``linear`` activation hls4ml inserts and
    later removes), an activation one: the jet MLP's fc1 2, relu1 4, ..., output 11, softmax 13."""
    index, out = 1, []
    for kind in kinds:
        index += 1
        out.append(index)
        if kind == "dense":
            index += 1
    return out


METRICS = ("latency", "ii", "dsp", "lut", "ff", "bram")


def compare(estimate, report: CsynthReport) -> list[dict]:
    """Estimate against report, one row per layer (``{name, kind, metric: (estimate, report)}``),
    then ``dense+relu`` (cycles before the softmax starts: report total less the softmax
    instance's latency) and ``total``. ``estimate``: an :class:`~.hls4ml_model.Hls4mlEstimate`."""
    layers = estimate.layers
    indices = hls4ml_layer_indices([row["kind"] for row in layers])
    instances = match_layers(report, [(row["name"], row["kind"], i) for row, i in zip(layers, indices)])
    rows = []
    for row in layers:
        inst = instances.get(row["name"])
        if inst is None:
            raise CsynthReportError(f"layer '{row['name']}' ({row['kind']}) has no instance in the report")
        reported = dict(latency=inst.latency[1], ii=inst.ii, dsp=inst.dsp, lut=inst.lut, ff=inst.ff, bram=inst.bram)
        rows.append(dict(name=row["name"], kind=row["kind"], **{
            m: (row["latency_cycles" if m == "latency" else m], reported[m]) for m in METRICS}))
    softmax = sum(i.latency[1] for i in report.instances if i.kind == "softmax")
    t = estimate.totals
    rows.append(dict(name="dense+relu", kind="latency", latency=(t["dense_relu_latency"], report.latency[1] - softmax)))
    rows.append(dict(name="total", kind="total", latency=(t["latency_cycles"], report.latency[1]),
                     ii=(t["ii"], report.ii), **{m: (t[m], report.totals[m]) for m in ("dsp", "lut", "ff", "bram")}))
    return rows
