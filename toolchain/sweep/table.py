"""The sweep's rows -> ``results.json`` (every field, strict JSON) and ``results.md`` (main columns).

``results.md`` shows, per configuration: its key and status, the options that differ
between the sweep's configurations, fpga-compress's accuracy on its test split,
export-fpga's totals (integer parameters, BOPs, and the *analytical* latency/DSP/LUT
estimates: not synthesis results), each verification as "elements equal / elements",
the wall time of each stage, and the error of a failed configuration. The notes under
the table say what each accuracy compares.

>>> label({"compress": {"method": "one-shot", "option": {"steps": 5}}}, [("compress", "option", "steps")])
'compress.option.steps=5'
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from exporters.staging import staging_file
from toolchain.sweep.grid import STAGES, leaves, lookup

FORMAT = "foldline-sweep/1"
MISSING = "–"
NOTES = """\
- top-1: fpga-compress's evaluation on its test split (`test n` samples) of the
  float fake-quant model and of the integer model (bit-exact integer mode).
- params: integer parameters (weights + folded biases); BOPs: MACs x weight bits x
  activation bits; latency, DSP, LUT: export-fpga's analytical estimates, not synthesis.
- verification: elements equal to the simulator's, out of the elements compared.
- every field, and the log of each configuration: results.json."""


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: staged beside it, then renamed over it."""
    tmp = staging_file(path, suffix=path.suffix)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data) -> None:
    """Strict JSON (``allow_nan=False``), written atomically."""
    write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def write_tables(out: Path, rows: list[dict], command: list[str]) -> None:
    """``out/results.json`` and ``out/results.md`` for ``rows`` (in the sweep file's order)."""
    write_json(out / "results.json", {"format": FORMAT, "command": command, "rows": rows})
    write_text(out / "results.md", markdown(rows))


def varying(configs: list[dict]) -> list[tuple]:
    """The option paths ``(stage, key, ...)`` whose value is not the same in every configuration."""
    paths = {}
    for config in configs:
        for stage in STAGES:
            for path, _ in leaves(config[stage], (stage,)):
                paths.setdefault(path, None)
    return [p for p in paths if len({json.dumps(lookup(c, p), sort_keys=True) for c in configs}) > 1]


def label(config: dict, paths: list[tuple]) -> str:
    """``key=value`` for each of ``paths`` this configuration sets (the options that tell it apart)."""
    return " ".join(f"{'.'.join(p)}={_value(lookup(config, p))}" for p in paths if lookup(config, p) is not None)


def markdown(rows: list[dict]) -> str:
    """A Markdown table of the main columns (module docstring), then the notes."""
    paths = varying([r["config"] for r in rows])
    checks = list(dict.fromkeys(name for r in rows for name in ((r["export"] or {}).get("verification") or {})))
    head = ["key", "status", *_headers(paths), "fake-quant top-1", "integer top-1",
            "test n", "params", "BOPs", "latency µs (est.)", "DSP (est.)", "LUT (est.)",
            *(f"{c} equal" for c in checks), *(f"{s} s" for s in STAGES), "error"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        s = (r["compress"] or {}).get("summary") or {}
        t = (r["export"] or {}).get("totals") or {}
        v = (r["export"] or {}).get("verification") or {}
        cells = [r["key"], r["status"], *(_value(lookup(r["config"], p)) for p in paths),
                 _pct(s.get("float_accuracy")), _pct(s.get("integer_accuracy")), _int(s.get("test_samples")),
                 _int(t.get("params")), _int(t.get("bops")), _num(t.get("latency_us")), _int(t.get("dsp")),
                 _int(t.get("lut")), *(_equal(v.get(c)) for c in checks),
                 *(_num(r["wall_s"].get(stage)) for stage in STAGES),
                 f"{r['error']} (log: {r['log']})" if r["error"] else ""]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n\n" + NOTES + "\n"


def _headers(paths: list[tuple]) -> list[str]:
    """Each option's name without its stage, unless both stages have an option of that name."""
    tails = [".".join(p[1:]) for p in paths]
    return [t if tails.count(t) == 1 else ".".join(p) for p, t in zip(paths, tails)]


def _value(value) -> str:
    if value is None:
        return MISSING
    return json.dumps(value) if isinstance(value, (bool, list, dict)) else str(value)


def _pct(x) -> str:
    return MISSING if x is None else f"{100 * x:.2f} %"


def _int(x) -> str:
    return MISSING if x is None else f"{x:,}"


def _num(x) -> str:
    return MISSING if x is None else f"{x:.2f}"


def _equal(check) -> str:
    if not check:
        return MISSING
    if check.get("error"):
        return "not run"
    return f"{check['elements'] - check['mismatches']:,}/{check['elements']:,}"
