"""What the primitive model was fitted on, and how far from the truth it was there: the label every
reported estimate carries (``export-fpga``'s report.json, ``estimate.calibration``).

The errors are the worst over the dense and ReLU layers of the three calibration cases and their
cycles before the softmax, as ``benchmarks/estimator_accuracy.py`` prints them;
``tests/test_estimate_calibration.py`` recomputes them from the reports and fails when this
summary stops being true (a model change must update it, and docs/hls.md's tables).

>>> calibration_line().split(";")[0]
'hls4ml jet-tagging MLP 16-64-32-32-5 (tests/data/calibration/hls4ml-jet-mlp, cases A, B, C), Vivado HLS 2019.2, xcu250-figd2104-2L-e, 5 ns'
"""

from __future__ import annotations

DATA = "hls4ml jet-tagging MLP 16-64-32-32-5 (tests/data/calibration/hls4ml-jet-mlp, cases A, B, C)"
TOOL = "Vivado HLS 2019.2"
PART = "xcu250-figd2104-2L-e"
CLOCK_NS = 5.0
# worst |estimate - report| (cycles) or |estimate - report| / report, rounded up to a percent
MEASURED_ERROR = {"latency_cycles": 1, "dsp": 0.0, "lut": 0.10, "ff": 0.30}
MEASURED_ON = "dense and ReLU layers and the cycles before the softmax"
RELATIVE = ("dsp", "lut", "ff")


def error(metric: str, estimate: float, report: float) -> float:
    """Relative for resources (a report of 0 demands 0), in cycles or blocks otherwise."""
    if metric not in RELATIVE:
        return float(abs(estimate - report))
    if report == 0:
        return 0.0 if estimate == 0 else float("inf")
    return abs(estimate - report) / report


def calibration_summary() -> dict:
    """The calibration as plain data: data set, tool, part, clock and the measured errors."""
    return {"data": DATA, "tool": TOOL, "part": PART, "clock_ns": CLOCK_NS, "measured_error": dict(MEASURED_ERROR),
            "measured_on": MEASURED_ON}


def calibration_line() -> str:
    """One line: what the model was fitted on, and its measured error there."""
    e = MEASURED_ERROR
    dsp = "exact" if e["dsp"] == 0 else f"within {e['dsp']:.0%}"
    return (f"{DATA}, {TOOL}, {PART}, {CLOCK_NS:g} ns; measured error: latency within {e['latency_cycles']} cycle, "
            f"DSP {dsp}, LUT within {e['lut']:.0%}, FF within {e['ff']:.0%} ({MEASURED_ON})")


__all__ = ["calibration_line", "calibration_summary", "error"]
