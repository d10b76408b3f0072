"""The HLS estimator: a hand-computed layer, monotonicity under pruning, ONNX parity, speed."""

import copy
import json
import time

import numpy as np
import pytest

from exporters import examples
from exporters import integer_model as im
from exporters.grid import Grid
from exporters.onnx_export import export_onnx, to_onnx
from hls_templates import HlsConfig
from hls_templates.estimate import (EstimateConfigError, channel_cost, channel_costs, estimate, hardware_cost)
from hls_templates.estimate.arith import goes_to_lut, naf_weight


def hand_conv_model() -> im.IntegerModel:
    """3x3 conv, 2 -> 3 channels, on a 2x6x6 map, no padding; known zero weights.

    channel 0: weights 1, -2, 3 (two shifts, one 3 = 4 - 1), M = 2^15 (a shift);
    channel 1: weights 5, -7, 4, -1 (4 and 1 are shifts), M = 40000 (not a power of two);
    channel 2: all zero (a constant output: no multiplier, no requantizer).
    """
    w = np.zeros((3, 2, 3, 3), dtype=np.int64)
    w[0, 0] = [[1, 0, 0], [0, -2, 0], [0, 0, 3]]
    w[1, 0, 0] = [5, 0, -7]
    w[1, 1, 0, 1], w[1, 1, 2, 2] = 4, -1
    rq = im.Requant([1 << 15, 40000, 1 << 15], [20, 20, 20], Grid(0.5, 0, 8, True))
    conv = im.Conv("conv", "x", w, np.zeros(3, np.int64), 4, np.full(3, 0.01), rq)
    model = im.IntegerModel([im.Input("x", (2, 6, 6), Grid(0.1, 0, 8, True)), conv])
    model.validate()
    return model


def test_hand_computed_conv_layer():
    """Every number from the primitives' documented rules (docs/hls.md), at 4 ns: a cycle budget of
    3.5 ns (12.5 % uncertainty), tree levels of 0.65 ns, 5 levels per cycle."""
    e = estimate(hand_conv_model(), {"clock_ns": 4.0})
    layer = e.layer("conv")
    # accumulator: input grid [-127, 127], zero point 0, bias 0; channel 1 has sum|w| = 5+7+4+1 = 17
    #   bound 127 * 17 = 2159 < 2^12  ->  P = 13 bits (signed)
    # products of an 8-bit signed x by constants (canonical signed digits):
    #   1, 4: shifts (0 LUT, 0 ns); -2, -1: a negation of 8 + bits(|w|) bits (10, 9 LUT, 0.53 ns);
    #   3 = 4 - 1, 5 = 4 + 1: one adder of 8 + span 2 + 1 = 11 bits; -7 = 1 - 8: one of 12 bits (0.53 ns)
    products = 10 + 9 + 11 + 11 + 12
    # trees (terms 8 + bits(|w|) wide): channel 0 {1: 0 ns, -2, 3: 0.53 ns}, two adds of 11 and 12 bits,
    #   ready 0.53 + 2 * 0.65 = 1.83 ns; channel 1 {4: 0 ns; 5, -7, -1: 0.53 ns}, adds 12, 12, 13 bits,
    #   ready 1.83 ns; channel 2 has no weight: a constant, no tree, no requantizer
    trees = (11 + 12) + (12 + 12 + 13)
    # requantizers: acc * M[c] with M = 2^15 (channel 0) a shift; M = 40000 (channel 1, 4 signed digits,
    #   16 x 13 bits) a DSP, 5 LUTs, 1.94 ns; then q = v >> (n - 1) on Q = (13 + 16) - 20 + 1 = 10 bits:
    #   two 10-bit comparisons with constants (13 LUTs each), the 9-bit adder q + 1 + 2z, the select of a
    #   saturating cast (8 + 2 gates of 2 + 2) = 49 LUTs per channel
    requant = 49 + (5 + 49)
    # cycles: 1.83 + 1.94 > 3.5 ns, so the product starts cycle 1 (the two 13-bit accumulators
    #   registered), then the comparison (0.63 ns) and the select (0.29 ns) fit: 2 cycles; outputs of a
    #   1-cycle module are registered (8 bits each) behind a 2:1 enable mux (9 LUTs)
    module_lut, module_ff = products + trees + requant + 2 * 9, 2 * 13 + 2 * 8
    # line buffers: kh - 1 = 2 rows of depth Wp = 6 (< 64: LUTRAM) x (2 channels * 8 bits) = 2 * 16
    # window registers: 3 * 3 * 2 * 8 = 144 FFs; the conv is the output: no FIFO after it
    assert layer["lut"] == module_lut + 2 * 16 == 266
    assert layer["ff"] == module_ff + 144 == 186
    assert (layer["dsp"], layer["bram"]) == (1, 0)
    assert layer["macs"] == 3 * 2 * 9 * 16
    assert layer["nonzero_multiplies"] == 7 * 16
    # depth 2 cycles; loop: 6 * 6 iterations at II 1; first window after (3-1)*6 + 3 = 15 iterations
    depth = 2
    assert layer["ii"] == 36
    assert layer["latency_cycles"] == 36 + depth - 1
    assert layer["first_output_cycle"] == 14 + depth
    assert layer["last_output_cycle"] == 35 + depth
    assert e.totals["latency_cycles"] == 35 + depth + 1
    assert e.totals["latency_us"] == pytest.approx(38 * 4.0 / 1000)
    assert e.totals["ii_cycles"] == 36 and e.totals["architecture"] == "dataflow"


def test_naf_weight_matches_a_digit_by_digit_count():
    def naf(n):
        count = 0
        while n:
            if n & 1:
                n -= 2 - (n & 3)
                count += 1
            n >>= 1
        return count

    values = np.arange(0, 4096)
    assert naf_weight(values).tolist() == [naf(int(v)) for v in values]


def drop_channel(model: im.IntegerModel, layer_name: str, c: int) -> im.IntegerModel:
    """Physically remove output channel c of a MAC layer and the consumer's taps reading it
    (through MaxPool/Flatten), by slicing the integer arrays."""
    shapes = {layer.name: model.shape(layer.name) for layer in model.layers}
    model = copy.deepcopy(model)
    layer = model.layer(layer_name)
    keep = np.delete(np.arange(layer.out_channels), c)
    layer.weight, layer.bias = layer.weight[keep], layer.bias[keep]
    layer.weight_scale = layer.weight_scale[keep]
    layer.requant.multiplier, layer.requant.shift = layer.requant.multiplier[keep], layer.requant.shift[keep]
    model.invalidate()
    tensor, pixels = layer_name, 1
    for consumer in model.layers:
        if tensor not in consumer.inputs:
            continue
        if isinstance(consumer, im.Flatten):
            pixels = int(np.prod(shapes[tensor][1:]))
            tensor = consumer.name
        elif isinstance(consumer, im.MaxPool):
            tensor = consumer.name
        elif isinstance(consumer, im.Conv):
            consumer.weight = np.delete(consumer.weight, c, axis=1)
        elif isinstance(consumer, im.Linear):
            cols = np.arange(c * pixels, (c + 1) * pixels)
            consumer.weight = np.delete(consumer.weight, cols, axis=1)
    model.validate()
    return model


@pytest.mark.parametrize("layer_name", ["conv1", "conv3"])
def test_removing_an_output_channel_lowers_latency_dsp_and_lut(layer_name):
    model = examples.cnn(np.random.default_rng(3))
    before = estimate(model).totals
    smaller = drop_channel(model, layer_name, 1)
    after = estimate(smaller).totals
    for key in ("dsp", "lut", "ff", "nonzero_multiplies"):
        assert after[key] < before[key], key
    assert after["latency_cycles"] <= before["latency_cycles"]   # a channel costs cycles only via tree levels
    # the marginal-cost rule predicts the fall: latency exactly, area to within the P-width change
    assert channel_cost(model, layer_name, metric="latency")[1] == before["latency_cycles"] - after["latency_cycles"]
    assert channel_cost(model, layer_name, metric="dsp")[1] == before["dsp"] - after["dsp"]
    assert channel_cost(model, layer_name, metric="lut")[1] == pytest.approx(before["lut"] - after["lut"], rel=0.1)


def test_removing_a_hidden_linear_unit_of_an_mlp():
    model = examples.mlp(np.random.default_rng(4), features=(16, 12, 6))
    before, after = estimate(model).totals, estimate(drop_channel(model, "fc1", 0)).totals
    assert after["lut"] < before["lut"] and after["dsp"] < before["dsp"]
    assert after["latency_cycles"] <= before["latency_cycles"]
    assert before["architecture"] == "parallel"  # auto: a vector input is built fully parallel


def test_zero_weights_cost_no_multiplier():
    model = examples.cnn(np.random.default_rng(5))
    sparse = copy.deepcopy(model)
    conv = sparse.layer("conv3")
    conv.weight = conv.weight * (np.arange(conv.weight.size).reshape(conv.weight.shape) % 3 == 0)
    sparse.validate()
    dense_conv, sparse_conv = estimate(model).layer("conv3"), estimate(sparse).layer("conv3")
    assert sparse_conv["macs"] == dense_conv["macs"]
    assert sparse_conv["nonzero_multiplies"] == np.count_nonzero(conv.weight) * 36 < dense_conv["nonzero_multiplies"]
    assert sparse_conv["lut"] < dense_conv["lut"] and sparse_conv["ff"] < dense_conv["ff"]
    # a channel whose weights are all zero is a constant: its requantizer (a DSP here) goes too
    conv.weight[0] = 0
    sparse.validate()
    assert estimate(sparse).layer("conv3")["dsp"] == sparse_conv["dsp"] - 1


def one_linear(weight_bits: int, magnitude: int) -> im.IntegerModel:
    rng = np.random.default_rng(6)
    w = rng.choice([-magnitude, magnitude], size=(6, 10)) * (rng.random((6, 10)) < 0.8)
    rq = im.Requant(np.full(6, 1 << 15), np.full(6, 24), Grid(0.5, 0, 8, True))  # M a power of two: no DSP
    fc = im.Linear("fc", "x", w, np.zeros(6, np.int64), weight_bits, np.full(6, 0.01), rq)
    model = im.IntegerModel([im.Input("x", (10,), Grid(0.1, 0, 8, True)), fc])
    model.validate()
    return model


@pytest.mark.parametrize("reuse", [1, 2])
def test_four_bit_weights_go_to_luts_not_dsps(reuse):
    # a threshold low enough that an 8-bit x 8-bit product is a DSP ...
    cfg = {"lut_mult_max_bits": 6, "reuse_factor": reuse}
    wide = estimate(one_linear(8, 101), cfg).layer("fc")
    narrow = estimate(one_linear(4, 5), cfg).layer("fc")
    assert wide["dsp"] > 0
    # ... still builds a product with a 4-bit operand from LUTs
    assert narrow["dsp"] == 0 and narrow["lut"] > 0
    assert goes_to_lut(8, 4, 6, 4) and not goes_to_lut(8, 8, 6, 4)
    # the default threshold (10 bits) keeps every 8 x 8 product in LUTs
    assert estimate(one_linear(8, 101), {"reuse_factor": reuse}).layer("fc")["dsp"] == 0


def test_power_of_two_weights_are_shifts():
    shifts, general = one_linear(8, 64), one_linear(8, 101)
    assert estimate(shifts).layer("fc")["lut"] < estimate(general).layer("fc")["lut"]


def test_onnx_and_integer_model_give_the_same_estimate(tmp_path):
    model = examples.residual(np.random.default_rng(7))
    direct = estimate(model, {"reuse_factor": 2}).to_dict()
    assert estimate(to_onnx(model), {"reuse_factor": 2}).to_dict() == direct
    path = export_onnx(model, tmp_path / "m.onnx")
    assert estimate(path, {"reuse_factor": 2}).to_dict() == direct
    assert estimate(str(path), {"reuse_factor": 2}).to_dict() == direct


def test_estimate_is_json_ready_and_complete():
    e = estimate(examples.depthwise_separable(np.random.default_rng(8)))
    d = json.loads(json.dumps(e.to_dict()))
    keys = {"name", "latency_cycles", "ii", "dsp", "lut", "bram", "ff", "macs", "nonzero_multiplies"}
    assert all(keys <= set(layer) for layer in d["layers"])
    assert {"latency_cycles", "latency_us", "clock_ns", "dsp", "lut", "bram", "ff"} <= set(d["totals"])
    assert d["totals"]["lut"] == sum(layer["lut"] for layer in d["layers"])


def test_hls_config_drives_the_estimate_like_a_dict():
    model = examples.cnn(np.random.default_rng(9))
    hls = HlsConfig(clock_ns=4.0, reuse_factor=2, layer_reuse={"fc6": 4}, architecture="parallel")
    same = {"clock_ns": 4.0, "reuse_factor": 2, "layer_reuse": {"fc6": 4}, "architecture": "parallel"}
    assert estimate(model, hls).to_dict() == estimate(model, same).to_dict()


def test_reuse_shares_multipliers_beyond_the_limit():
    """At reuse R the `mul` operations beyond ceil(nz / R) share units (fewer DSPs, operand muxes);
    products of one or two signed digits are no `mul` and are not shared (hls4ml's case B)."""
    cfg = {"lut_mult_max_bits": 6}                           # 8 x 8-bit products on DSPs
    fast, slow = (estimate(one_linear(8, 101), dict(cfg, reuse_factor=r)).layer("fc") for r in (1, 4))
    w = one_linear(8, 101).layer("fc").weight
    distinct = {(tap, int(v)) for (_, tap), v in np.ndenumerate(w) if v}   # x[tap] * v built once, shared by outputs
    assert slow["ii"] > fast["ii"] and slow["dsp"] < fast["dsp"] == len(distinct)
    assert slow["dsp"] == -(-np.count_nonzero(w) // 4)                     # the ALLOCATION limit
    shifts = [estimate(one_linear(8, 64), {"reuse_factor": r}).layer("fc") for r in (1, 4)]
    assert shifts[0]["dsp"] == shifts[1]["dsp"] == 0


def chained_mlp(clock_ns: float) -> dict:
    """Two Linear layers of 8 inputs with weights 1, 2, 4 (shifts, 0 ns): each a 3-level tree
    (1.95 ns), the requantizer's comparisons (0.63 ns) and select (0.29 ns): 2.87 ns per layer."""
    rng = np.random.default_rng(11)
    layers = [im.Input("x", (8,), Grid(0.1, 0, 8, True))]
    for name, src in (("fc1", "x"), ("fc2", "fc1")):
        rq = im.Requant(np.full(8, 1 << 15), np.full(8, 24), Grid(0.5, 0, 8, name == "fc2"), relu=name == "fc1")
        layers.append(im.Linear(name, src, rng.choice([1, 2, 4], (8, 8)), np.zeros(8, np.int64), 4, np.full(8, 0.01),
                                rq))
    model = im.IntegerModel(layers)
    model.validate()
    return estimate(model, {"clock_ns": clock_ns}).totals


def test_parallel_top_chains_modules_that_fit_a_cycle():
    assert chained_mlp(5.0)["latency_cycles"] == 1     # 2 * 2.87 ns > 4.375: fc2 starts the next cycle
    assert chained_mlp(8.0)["latency_cycles"] == 0     # 2 * 2.87 ns <= 7.0: one cycle, combinational
    assert chained_mlp(5.0)["ii_cycles"] == 1 and chained_mlp(5.0)["architecture"] == "parallel"


def test_bad_settings_are_refused():
    model = examples.mlp(np.random.default_rng(12))
    with pytest.raises(EstimateConfigError, match="unknown estimator settings"):
        estimate(model, {"reuse": 2, "clock": 5})
    with pytest.raises(EstimateConfigError, match="nope"):
        estimate(model, {"layer_reuse": {"nope": 2}})
    with pytest.raises(EstimateConfigError, match="architecture"):
        estimate(model, {"architecture": "systolic"})
    with pytest.raises(ValueError, match="metric"):
        hardware_cost(model, metric="power")


def test_hardware_cost_and_channel_costs_cover_every_mac_layer():
    model = examples.residual(np.random.default_rng(13))
    assert hardware_cost(model, metric="lut") == estimate(model).totals["lut"]
    assert hardware_cost(model) == estimate(model).totals["latency_cycles"]
    costs = channel_costs(model, metric="lut")
    assert sorted(costs) == ["conv1", "conv2", "conv3", "fc7"]
    assert all(v.shape == (model.layer(k).out_channels,) and (v > 0).all() for k, v in costs.items())


def test_fast_enough_for_every_epoch():
    model = examples.cnn(np.random.default_rng(14), shape=(3, 32, 32), channels=(16, 32), classes=10)
    best = min(_timed(lambda: estimate(model)) for _ in range(5))
    assert best < 0.05, f"estimate took {best * 1e3:.1f} ms"


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
