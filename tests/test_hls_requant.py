"""The C++ requantizer (foldline_requant.h) against the contract's rule in Python.

One small program instantiates ``foldline::requantize`` for several accumulator widths, output
grids and smallest shifts ``shift_min`` (which size its rounding word) and is fed accumulators,
multipliers and shifts at and around every extreme (acc = -2^(P-1) and 2^(P-1)-1, M = 1 and
65535, n = shift_min, shift_min + 1, P+15..P+17, 60); the expected values come from
:func:`exporters.requant.requantize`.
"""

import subprocess

import numpy as np
import pytest

from exporters.requant import MAX_SHIFT, requantize
from hls_templates.csim import ap_types_dir
from hls_templates.project import _package_file
from tests.test_tc_common import needs_gxx

pytestmark = needs_gxx

# (P, output type, zero point, lo, hi, shift_min): lo = z is a fused ReLU; every n >= shift_min
CONFIGS = [
    (2, "ap_uint<2>", 1, 0, 3, 0),
    (9, "ap_int<8>", 0, -127, 127, 0),
    (17, "ap_uint<8>", 200, 200, 255, 0),
    (24, "ap_uint<4>", 15, 0, 15, 0),
    (32, "ap_int<8>", 0, -127, 127, 0),
    (32, "ap_uint<8>", 3, 0, 255, 0),
    (9, "ap_int<8>", 0, -127, 127, 1),
    (12, "ap_uint<6>", 0, 0, 63, 20),
    (17, "ap_uint<8>", 7, 0, 255, 16),
    (20, "ap_int<6>", 0, -31, 31, 36),
    (24, "ap_uint<4>", 15, 0, 15, 40),
]

PROGRAM_HEAD = """#include <iostream>
#include "foldline_requant.h"
"""


def _program() -> str:
    parts = [PROGRAM_HEAD]
    for i, (p, out_t, z, lo, hi, smin) in enumerate(CONFIGS):
        parts.append(f"struct cfg{i} {{ typedef ap_int<{p}> accum_t; static constexpr unsigned accum_bits = {p}; "
                     f"static constexpr int out_zero = {z}, out_lo = {lo}, out_hi = {hi}; "
                     f"static constexpr unsigned shift_min = {smin}; }};")
    parts.append("int main() {\n    long long acc; unsigned c, m, n;\n"
                 "    while (std::cin >> c >> acc >> m >> n) {\n        int y = 0;\n        switch (c) {")
    for i, (p, out_t, *_rest) in enumerate(CONFIGS):
        parts.append(f"        case {i}: y = foldline::requantize<cfg{i}, {out_t}>(ap_int<{p}>(acc), m, n).to_int(); "
                     "break;")
    parts.append("        }\n        std::cout << y << '\\n';\n    }\n}\n")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def requant_exe(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("requant")
    (tmp / "main.cpp").write_text(_program())
    exe = tmp / "requant"
    subprocess.run(["g++", "-std=c++14", "-O1", "-I", str(_package_file("cpp/foldline")), "-I", str(ap_types_dir()),
                    str(tmp / "main.cpp"), "-o", str(exe)], check=True, capture_output=True)
    return exe


def _cases(rng):
    rows = []
    for c, (p, *_rest, smin) in enumerate(CONFIGS):
        lo, hi = -(1 << (p - 1)), (1 << (p - 1)) - 1
        accs = np.concatenate([[lo, lo + 1, -1, 0, 1, hi - 1, hi], rng.integers(lo, hi + 1, 60)])
        mults = np.array([1, 2, 32768, 65535, *rng.integers(1, 1 << 16, 4)])
        shifts = np.array(sorted({0, 1, 2, smin, smin + 1, p + 14, p + 15, p + 16, p + 17, MAX_SHIFT}
                                 | set(rng.integers(0, 61, 6))))
        shifts = shifts[(shifts <= MAX_SHIFT) & (shifts >= smin)]
        for a in accs:
            for m in rng.choice(mults, 3):
                for n in rng.choice(shifts, 4):
                    rows.append((c, int(a), int(m), int(n)))
        # exact ties: acc * M = (2k + 1) * 2^(n-1) rounds half up
        for n in (1, 3, 8, smin + 1):
            for k in (-3, -2, -1, 0, 1, 2):
                acc = (2 * k + 1) << (n - 1)
                if lo <= acc <= hi and n >= smin:
                    rows.append((c, acc, 1, n))
                if n >= max(smin, 16) and n - 16 < p - 2 and lo <= (2 * k + 1) << (n - 16) <= hi:
                    rows.append((c, (2 * k + 1) << (n - 16), 32768, n))   # acc * 2^15 a tie too
    return np.array(rows, dtype=np.int64)


def test_cpp_requantize_matches_contract(requant_exe):
    rows = _cases(np.random.default_rng(7))
    text = "\n".join(" ".join(map(str, r)) for r in rows) + "\n"
    run = subprocess.run([str(requant_exe)], input=text, capture_output=True, text=True, check=True)
    got = np.array(run.stdout.split(), dtype=np.int64)
    params = np.array([CONFIGS[c][2:5] for c in rows[:, 0]])
    expected = requantize(rows[:, 1], rows[:, 2], rows[:, 3], params[:, 0], params[:, 1], params[:, 2])
    bad = np.nonzero(got != expected)[0]
    assert bad.size == 0, f"{bad.size} differences, first: config/acc/M/n {rows[bad[0]].tolist()} " \
                          f"got {got[bad[0]]} expected {expected[bad[0]]}"
    assert len(got) == len(rows) > 1000
