"""The primitive model against real Vivado HLS 2019.2 reports (tests/data/calibration), and the
primitives' rules on their own.

The calibration test estimates each case from its weights and hls4ml configuration only (a
copy of the folder without the report), parses the report independently, and holds every
layer the report lists to the goal of issue 9: latency within 1 cycle, DSP and LUT within
25 %, FF within 50 %.
"""

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from exporters.errors import FoldlineError
from hls_templates.estimate import calibration
from hls_templates.estimate import primitives as prim
from hls_templates.estimate.csynth_report import compare, hls4ml_layer_indices, match_layers, parse_csynth
from hls_templates.estimate.hls4ml_model import (Activation, DenseLayer, Hls4mlEstimateError, Hls4mlNetwork,
                                                 estimate_hls4ml, load_calibration_case)
from hls_templates.estimate.primitives import FixedType

CAL = Path(__file__).parent / "data" / "calibration" / "hls4ml-jet-mlp"
CASES = ("A_rf1_fixed16", "B_rf2_fixed16", "C_rf1_6bit_pruned75")
UPLUS = prim.part_for("xcu250-figd2104-2L-e")


def within(estimate: float, report: float, tolerance: float) -> bool:
    """Relative tolerance; a report of 0 demands 0."""
    return estimate == report if report == 0 else abs(estimate - report) <= tolerance * report


def estimate_without_report(case: str, tmp_path: Path):
    """Estimate from a copy holding only weights and configuration: the report cannot leak in."""
    folder = tmp_path / case
    folder.mkdir()
    for name in ("weights.npz", "hls4ml_config.yml"):
        shutil.copy(CAL / case / name, folder / name)
    return estimate_hls4ml(load_calibration_case(folder))


TOLERANCE = {"latency": 1, "ii": 0, "dsp": 0.25, "lut": 0.25, "ff": 0.50, "bram": 0}   # cycles or fraction


def meets(metric: str, estimate: float, report: float) -> bool:
    if metric in ("latency", "ii", "bram"):
        return abs(estimate - report) <= TOLERANCE[metric]
    return within(estimate, report, TOLERANCE[metric])


@pytest.mark.parametrize("case", CASES)
def test_calibration_case_meets_the_goal(case, tmp_path):
    """Every layer the report lists (softmax, a fixed cost, included), the cycles before the
    softmax (the goal's latency), and the whole design."""
    rows = compare(estimate_without_report(case, tmp_path), parse_csynth(CAL / case / "csynth.rpt"))
    assert {r["kind"] for r in rows} >= {"dense", "relu", "softmax", "latency", "total"}
    misses = [f"{r['name']} {m}: estimate {r[m][0]}, report {r[m][1]}"
              for r in rows for m in TOLERANCE if m in r and not meets(m, *r[m])]
    assert not misses, "; ".join(misses)


def test_the_calibration_label_every_report_carries_is_true(tmp_path):
    """hls_templates.estimate.calibration states the worst errors on the dense and ReLU rows and the
    cycles before the softmax; they must be what the reports give, rounded up to a percent."""
    measured = {"latency": 0.0, "dsp": 0.0, "lut": 0.0, "ff": 0.0}
    for case in CASES:
        for r in compare(estimate_without_report(case, tmp_path), parse_csynth(CAL / case / "csynth.rpt")):
            if r["kind"] in ("dense", "relu", "latency"):
                for m in measured:
                    if m in r:
                        measured[m] = max(measured[m], calibration.error(m, *r[m]))
    stated = calibration.MEASURED_ERROR
    assert measured["latency"] == stated["latency_cycles"]
    for m in ("dsp", "lut", "ff"):
        assert stated[m] - 0.01 < measured[m] <= stated[m] or measured[m] == stated[m] == 0, m


def test_reuse_two_doubles_ii_and_caps_multipliers_at_hls4mls_limit():
    """hls4ml's Latency dense at reuse R limits `mul` to ceil(n_in n_out / R) - floor(zeros / R)."""
    net = load_calibration_case(CAL / "A_rf1_fixed16")
    slow = Hls4mlNetwork(net.input_type, net.n_inputs, tuple(
        DenseLayer(L.name, L.weight, L.bias, L.weight_type, L.bias_type, L.accum_type, L.result_type, 2)
        if isinstance(L, DenseLayer) else L for L in net.layers), net.clock_ns, None, net.part)
    fast_rows, slow_rows = estimate_hls4ml(net).layers, estimate_hls4ml(slow).layers
    assert estimate_hls4ml(slow).totals["ii"] == 2
    for fast, rf2, layer in zip(fast_rows, slow_rows, net.layers):
        if isinstance(layer, DenseLayer):
            limit = math.ceil(layer.weight.size / 2) - math.floor(int((layer.weight == 0).sum()) / 2)
            assert rf2["dsp"] == min(fast["dsp"], limit)
    output = next(r for r in slow_rows if r["name"] == "output")
    assert output["dsp"] == 80 < next(r for r in fast_rows if r["name"] == "output")["dsp"]


def test_pruning_an_output_removes_its_hardware():
    net = load_calibration_case(CAL / "C_rf1_6bit_pruned75")
    fc1 = net.layers[0]
    live = np.flatnonzero((fc1.weight != 0).any(axis=0))
    w = fc1.weight.copy()
    w[:, live[0]] = 0
    pruned = Hls4mlNetwork(net.input_type, net.n_inputs, (DenseLayer(
        fc1.name, w, fc1.bias, fc1.weight_type, fc1.bias_type, fc1.accum_type, fc1.result_type),) + net.layers[1:])
    before, after = estimate_hls4ml(net), estimate_hls4ml(pruned)
    assert after.layer("fc1")["lut"] < before.layer("fc1")["lut"]
    assert after.layer("fc1")["outputs"] == before.layer("fc1")["outputs"] - 1 == live.size - 1
    relu_each = before.layer("relu1")["lut"] / before.layer("relu1")["outputs"]
    assert after.layer("relu1")["lut"] == before.layer("relu1")["lut"] - relu_each


@pytest.mark.parametrize("case, layer", [("A_rf1_fixed16", "fc1"), ("C_rf1_6bit_pruned75", "fc1")])
def test_relu_cost_is_the_reported_cost_per_live_element(case, layer):
    """A relu after a layer costs its per-element primitives once per non-constant input: the
    report's relu instance divided by the outputs of `layer` that have a nonzero weight."""
    net = load_calibration_case(CAL / case)
    dense, relu = net.layers[0], net.layers[1]
    live = int((np.load(CAL / case / "weights.npz")[f"{layer}_weight"] != 0).any(axis=0).sum())
    report = parse_csynth(CAL / case / "csynth.rpt")
    inst = next(i for i in report.instances if i.kind == "relu" and i.config == 4)
    assert prim.relu_cost(dense.result_type, relu.result_type, UPLUS)[0] * live == inst.lut


def test_power_of_two_weights_cost_no_dsp_and_no_multiplier():
    for x_bits in (6, 16):
        p = prim.constant_products(np.array([1, 2, 64, -1, -8]), x_bits, UPLUS)
        assert p.kind.tolist() == ["shift"] * 5 and not p.dsp.any()
        assert (p.lut[:3] == 0).all() and (p.lut[3:] > 0).all()   # a negative one is a negation only


def test_two_digit_weights_are_one_adder():
    p = prim.constant_products(np.array([5, 7, -5, 9]), 16, UPLUS)    # 4+1, 8-1, -(4+1), 8+1
    assert p.kind.tolist() == ["adder"] * 4 and not p.dsp.any()
    span = np.array([2, 3, 2, 3])
    assert p.lut[[0, 1, 3]].tolist() == (16 + span[[0, 1, 3]] + 1).tolist()
    assert p.lut[2] == 2 * (16 + span[2] + 1)                          # -(2^i + 2^j): adder and negation
    assert prim.constant_products(np.array([-7]), 16, UPLUS).lut[0] == 16 + 3 + 1   # -(8 - 1) = 1 - 8: one sub


def test_three_digit_weights_go_to_dsp_only_when_wide_enough():
    p16 = prim.constant_products(np.array([11, 21, -11, 45]), 16, UPLUS)   # widths 4, 5, 5, 6 bits
    assert p16.kind.tolist() == ["lut_mul", "dsp", "dsp", "dsp"] and p16.dsp.tolist() == [0, 1, 1, 1]
    p6 = prim.constant_products(np.array([11, 21, -11, 45]), 6, UPLUS)
    assert not p6.dsp.any() and (p6.kind == "lut_mul").all()


def test_wider_operands_cost_more():
    assert prim.variable_product(16, 16, UPLUS)[1] == 1 < prim.variable_product(30, 20, UPLUS)[1]
    assert prim.variable_product(6, 6, UPLUS)[0] < prim.variable_product(8, 8, UPLUS)[0]
    narrow, wide = (prim.constant_products(np.array([5]), b, UPLUS).lut[0] for b in (6, 16))
    assert narrow < wide
    assert prim.mul_delay(12, UPLUS) < prim.mul_delay(24, UPLUS)
    seven = prim.part_for("xc7z020clg400-1")
    assert prim.variable_product(26, 18, seven)[1] == 2 > prim.variable_product(26, 18, UPLUS)[1]
    assert not seven.calibrated and prim.add_delay(16, seven) > prim.add_delay(16, UPLUS)


def test_adder_tree_levels_and_cut():
    level = prim.TREE_LEVEL_NS
    one = np.zeros(8, int)
    free = prim.adder_trees([0.0] * 8, [8] * 8, one, 1, 16, 100.0, UPLUS)
    assert (free.adds[0], free.stage[0], free.reg_bits[0]) == (7, 0, 0)
    assert free.ready_ns[0] == pytest.approx(3 * level) and free.lut[0] == 4 * 9 + 2 * 10 + 11
    cut = prim.adder_trees([0.0] * 8, [8] * 8, one, 1, 16, 2.5 * level, UPLUS)
    assert cut.stage[0] == 1 and cut.reg_bits[0] == 2 * 10 and cut.tail_ns[0] == pytest.approx(level)


def test_blocks_chain_when_they_fit_a_cycle():
    """Case C's top, with the delays of its sched report: 6 cycles before the softmax."""
    def in_sequence(n):
        return [[i - 1] if i else [] for i in range(n)]

    chain = prim.chain_graph([[3.29], [1.22], [3.92], [1.22], [3.59], [1.22], [2.83]], in_sequence(7), 5.0 - 0.625)
    assert chain.states == 6
    assert chain.registered == (False, True, True, True, True, True, False)
    two = prim.chain_graph([[2.0, 0.67], [0.96], [4.35, 2.02]], in_sequence(3), 4.375)     # B: fc1 tail + relu1 share
    assert two.starts == (0, 1, 2) and two.states == 4
    # a block reading two others starts after the later one and registers the earlier one's outputs
    fork = prim.chain_graph([[3.0], [2.0, 1.0], [1.0]], [[], [0], [0, 1]], 4.375)
    assert fork.starts == (0, 1, 2) and fork.waits == ((), (1,), (2, 0)) and fork.states == 3


def test_fixed_types():
    t = FixedType.parse("ufixed<6,0,RND_CONV,SAT>")
    assert (t.width, t.integer, t.signed, t.rounding, t.saturation) == (6, 0, False, "RND_CONV", "SAT")
    assert FixedType.parse("ap_fixed<16,6>") == FixedType(16, 6) and FixedType.parse("int<8>").frac == 0
    assert FixedType(16, 6).quantize([-0.3, 0.3]).tolist() == [math.floor(-0.3 * 1024), math.floor(0.3 * 1024)]
    assert FixedType(6, 0, False, "RND_CONV", "SAT").quantize([2.5 / 64, 3.5 / 64, 5.0]).tolist() == [2, 4, 63]
    assert FixedType(4, 4).quantize([9]).tolist() == [9 - 16]                     # wraps
    with pytest.raises(prim.PrimitiveError, match="float<8>"):
        FixedType.parse("float<8>")


def test_report_instances_map_to_layers():
    a = parse_csynth(CAL / "A_rf1_fixed16" / "csynth.rpt")
    layers = [("fc1", "dense", 2), ("relu1", "relu", 4), ("fc2", "dense", 5), ("relu2", "relu", 7),
              ("fc3", "dense", 8), ("relu3", "relu", 10), ("output", "dense", 11), ("softmax", "softmax", 13)]
    assert hls4ml_layer_indices([k for _, k, _ in layers]) == [i for _, _, i in layers]
    m = match_layers(a, layers)
    assert m["fc1"].module.endswith("_s") and m["fc2"].module.endswith("_1") and m["output"].config == 11
    assert m["fc1"].ff == 2059 and sum(i.dsp for i in a.instances) == a.totals["dsp"] == 1450
    c = match_layers(parse_csynth(CAL / "C_rf1_6bit_pruned75" / "csynth.rpt"), layers)
    assert c["fc1"].name.startswith("call_ret_") and c["fc2"].name.startswith("call_ret2_")


def test_user_mistakes_are_one_line_errors(tmp_path):
    with pytest.raises(Hls4mlEstimateError, match="nowhere"):
        load_calibration_case(tmp_path / "nowhere")
    folder = tmp_path / "resource"
    folder.mkdir()
    shutil.copy(CAL / "A_rf1_fixed16" / "weights.npz", folder)
    cfg = yaml.safe_load((CAL / "A_rf1_fixed16" / "hls4ml_config.yml").read_text().replace("!keras_model ", ""))
    cfg["HLSConfig"]["Model"]["Strategy"] = "Resource"
    (folder / "hls4ml_config.yml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(Hls4mlEstimateError, match="Latency"):
        load_calibration_case(folder)
    with pytest.raises(Hls4mlEstimateError, match="reuse factor 0"):
        DenseLayer("fc", np.ones((2, 2)), np.zeros(2), (8, 1, True), (8, 1, True), (16, 6, True), (16, 6, True), 0)
    t = FixedType(16, 6)
    bad = Hls4mlNetwork(t, 3, (DenseLayer("fc", np.ones((2, 2)), np.zeros(2), t, t, t, t), Activation("a", "relu", t)))
    with pytest.raises(Hls4mlEstimateError, match="'fc': 2 inputs"):
        estimate_hls4ml(bad)
    assert issubclass(Hls4mlEstimateError, FoldlineError) and issubclass(prim.PrimitiveError, FoldlineError)
