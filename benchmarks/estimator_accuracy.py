"""The hls4ml estimate (hls_templates/estimate/hls4ml_model.py) against the three real Vivado HLS
2019.2 reports of tests/data/calibration/hls4ml-jet-mlp: one table per case, estimate / report
and the error, per layer the report lists, then the cycles before the softmax and the totals.

Goal (issue 9): latency within 1 cycle, DSP and LUT within 25 %, FF within 50 %. The estimate
reads only weights.npz and hls4ml_config.yml; the report is parsed independently. These are the
tables of docs/hls.md, "The primitive model and its calibration".

Usage: python benchmarks/estimator_accuracy.py
"""

from __future__ import annotations

import time
from pathlib import Path

from hls_templates.estimate.calibration import RELATIVE, error
from hls_templates.estimate.csynth_report import METRICS, compare, parse_csynth
from hls_templates.estimate.hls4ml_model import estimate_hls4ml, load_calibration_case

CAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "calibration" / "hls4ml-jet-mlp"


def cell(metric: str, pair) -> str:
    est, rep = pair
    if metric in RELATIVE:
        err = "exact" if est == rep else (f"{(est - rep) / rep:+.0%}" if rep else "n/a")
        return f"{est:,} / {rep:,} ({err})"
    return f"{est} / {rep}" + ("" if est == rep else f" ({est - rep:+d})")


def main() -> None:
    worst = {m: 0.0 for m in METRICS}
    modelled = {m: 0.0 for m in METRICS}      # dense and relu rows: the softmax is a fixed cost
    for case in sorted(p for p in CAL.iterdir() if p.is_dir()):
        t0 = time.perf_counter()
        est = estimate_hls4ml(load_calibration_case(case))
        seconds = time.perf_counter() - t0
        rows = compare(est, parse_csynth(case / "csynth.rpt"))
        print(f"\n### {case.name} (estimate / report; estimated in {seconds * 1e3:.0f} ms)\n")
        print("| layer | latency (cycles) | II | DSP | LUT | FF | BRAM18 |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['name']} | " + " | ".join(cell(m, r[m]) if m in r else "" for m in METRICS) + " |")
            for m in (m for m in METRICS if m in r):
                worst[m] = max(worst[m], error(m, *r[m]))
                if r["kind"] in ("dense", "relu", "latency"):
                    modelled[m] = max(modelled[m], error(m, *r[m]))
    line = "latency {latency:.0f} cycle(s), II {ii:.0f}, DSP {dsp:.0%}, LUT {lut:.0%}, FF {ff:.0%}, BRAM18 {bram:.0f}"
    print("\nworst error, every row of the three cases:    " + line.format(**worst))
    print("worst error, dense and relu rows, dense+relu: " + line.format(**modelled))
    print("goal: latency <= 1 cycle, DSP and LUT <= 25 %, FF <= 50 %")


if __name__ == "__main__":
    main()
