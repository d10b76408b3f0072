"""The closed-form adder-tree schedule (primitives.tree_timing / adder_trees) against the greedy
"add the two earliest values first" schedule it stands for, written out here as the reference:
the same stage and ready time on every tree of the calibration modules and on random trees; the
area within the tolerance docs/hls.md states."""

import heapq
from pathlib import Path

import numpy as np
import pytest

from hls_templates.estimate import hls4ml_model
from hls_templates.estimate import primitives as prim

CAL = Path(__file__).parent / "data" / "calibration" / "hls4ml-jet-mlp"


def greedy_tree(arrivals, widths, acc_width, budget, part):
    """(stage, ready, lut, reg_bits) of the greedy: pop the two earliest (stage, ready) values, add
    them one level later, or in the next cycle from registered inputs when that ends past the budget."""
    level = prim.TREE_LEVEL_NS * part.delay_scale
    heap = [(0, float(t), int(w), i) for i, (t, w) in enumerate(zip(arrivals, widths))]
    if not heap:
        return 0, 0.0, 0, 0
    heapq.heapify(heap)
    serial, lut, reg = len(heap), 0, 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        stage = max(a[0], b[0])
        ready = max(t if s == stage else 0.0 for s, t, _, _ in (a, b)) + level
        if ready > budget:
            stage, ready = stage + 1, level
        reg += sum(w * (stage - s) for s, _, w, _ in (a, b) if s < stage)
        width = min(acc_width, max(a[2], b[2]) + 1)
        lut += width
        heapq.heappush(heap, (stage, ready, width, serial))
        serial += 1
    return heap[0][0], heap[0][1], lut, reg


def calibration_trees(monkeypatch):
    """Every tree the hls4ml estimate of cases A, B and C schedules, as (terms, widths, acc, budget, part)."""
    seen = []
    original = prim.adder_trees

    def record(arrivals, widths, tree, n_trees, acc_width, budget, part):
        for t in range(n_trees):
            pick = np.asarray(tree) == t
            seen.append((np.asarray(arrivals)[pick], np.asarray(widths)[pick], acc_width, budget, part))
        return original(arrivals, widths, tree, n_trees, acc_width, budget, part)

    monkeypatch.setattr(prim, "adder_trees", record)
    for case in ("A_rf1_fixed16", "B_rf2_fixed16", "C_rf1_6bit_pruned75"):
        hls4ml_model.estimate_hls4ml(hls4ml_model.load_calibration_case(CAL / case))
    return [s for s in seen if len(s[0])]


def closed_form(arrivals, widths, acc, budget, part):
    t = prim.adder_trees(arrivals, widths, np.zeros(len(arrivals), int), 1, acc, budget, part)
    return int(t.stage[0]), float(t.ready_ns[0]), float(t.lut[0]), float(t.reg_bits[0])


def test_calibration_trees_are_scheduled_as_the_greedy_does(monkeypatch):
    trees = calibration_trees(monkeypatch)
    assert len(trees) > 300
    greedy_lut = closed_lut = greedy_reg = closed_reg = 0.0
    for arrivals, widths, acc, budget, part in trees:
        g, c = greedy_tree(arrivals, widths, acc, budget, part), closed_form(arrivals, widths, acc, budget, part)
        assert c[0] == g[0] and c[1] == pytest.approx(g[1], abs=1e-9)
        assert abs(c[2] - g[2]) <= 0.125 * g[2] + 1
        greedy_lut, closed_lut = greedy_lut + g[2], closed_lut + c[2]
        greedy_reg, closed_reg = greedy_reg + g[3], closed_reg + c[3]
    assert abs(closed_lut / greedy_lut - 1) < 0.01        # docs/hls.md: +0.7 %
    assert abs(closed_reg / greedy_reg - 1) < 0.12        # docs/hls.md: -9 %


@pytest.mark.parametrize("seed", range(4))
def test_random_trees_have_the_greedy_stage_and_ready_time(seed):
    rng = np.random.default_rng(seed)
    for _ in range(300):
        part = prim.part_for(str(rng.choice(["xcu250-figd2104-2L-e", "xc7z020clg400-1"])))
        budget = prim.cycle_budget(float(rng.choice([1.5, 2.0, 3.0, 5.0, 10.0])))
        n = int(rng.integers(1, 12) if rng.random() < 0.5 else rng.integers(12, 300))
        delays = np.array([0.0, 0.43, 0.53, 0.6, 1.23, 1.5, 1.94]) * part.delay_scale
        arrivals = rng.choice(delays[:int(rng.integers(1, 8))], n)
        widths = rng.integers(4, 20, n)
        g, c = greedy_tree(arrivals, widths, 18, budget, part), closed_form(arrivals, widths, 18, budget, part)
        assert (c[0], round(c[1], 9)) == (g[0], round(g[1], 9)), (n, budget, part.name)


def test_many_trees_at_once_equal_one_at_a_time():
    rng = np.random.default_rng(9)
    part, budget = prim.part_for("xcu250-figd2104-2L-e"), prim.cycle_budget(5.0)
    tree = rng.integers(0, 7, 400)
    arrivals, widths = rng.choice([0.0, 0.53, 1.23, 1.94], 400), rng.integers(6, 16, 400)
    together = prim.adder_trees(arrivals, widths, tree, 8, 20, budget, part)
    for t in range(8):
        alone = closed_form(arrivals[tree == t], widths[tree == t], 20, budget, part) if (tree == t).any() \
            else (0, 0.0, 0.0, 0.0)
        assert (together.stage[t], together.ready_ns[t], together.lut[t], together.reg_bits[t]) == \
            pytest.approx(alone)
