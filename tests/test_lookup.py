"""The Lookup layer and fused clamps on the integer-model side: the table rule, validation,
ONNX (Cast, Add, Gather) run by the simulator and onnxruntime, torch integer mode, the HLS
kernels of both architectures in C simulation, the estimator and the hls4ml refusals."""

from __future__ import annotations

import math
import subprocess
from fractions import Fraction

import numpy as np
import pytest
import torch

from exporters import integer_model as im
from exporters.errors import ModelError
from exporters.examples import Builder, random_inputs
from exporters.grid import Grid
from exporters.onnx_export import to_onnx
from exporters.onnx_import import load_integer_model
from fpga_sim import Simulator
from hls_templates import HlsConfig, estimate, run_csim, write_project
from hls_templates.csim import ap_types_dir
from hls_templates.estimate import channel_costs
from hls_templates.hls4ml_bridge import CLAMP_REFUSED, REFUSED, Hls4mlUnsupportedError, check_hls4ml_exact
from hls_templates.hls4ml_bridge import power_of_two_copy
from tests.conftest import assert_identical, ort_trace
from toolchain.integer_mode import run_integer
from tests.test_tc_common import needs_gxx


def lookup_model(rng, zero_points="random", power_of_two=False) -> im.IntegerModel:
    """A lookup on the signed input grid (index offset 127), a conv with a fused clamp, a lookup on
    its unsigned grid, a residual add with a clamp, and a lookup as the (signed) output."""
    b = Builder(rng, (3, 5, 6), zero_points=zero_points, power_of_two=power_of_two)
    x = b.lookup("input_q", 6)
    x = b.clamp(b.conv(x, 4, relu=False))
    y = b.lookup(x, 5)
    x = b.clamp(b.residual_add(x, b.conv(y, 4, act_bits=7), relu=False))
    x = b.global_avgpool(x)
    b.lookup(x, 8, signed_out=True)
    return b.build("lookups")


def test_table_rule_is_the_contracts_with_ties_half_up():
    """Power-of-two grids make f(x) / s_y land on exact halves; the expectation is exact rational
    arithmetic, independent of the float64 code under test."""
    x, y = Grid(2.0 ** -3, 100, 8, False), Grid(2.0 ** -5, 37, 8, False)

    def leaky(v):
        return np.where(v >= 0, v, v * 0.125)

    table = im.tabulate(leaky, x, y)
    expected, ties = [], 0
    for q in range(x.lo, x.hi + 1):
        real = Fraction(x.scale) * (q - x.zero_point)
        value = (real if real >= 0 else real / 8) / Fraction(y.scale)
        ties += value.denominator == 2
        expected.append(min(max(y.zero_point + math.floor(value + Fraction(1, 2)), y.lo), y.hi))
    assert table.tolist() == expected
    assert ties > 10  # the rule was exercised on ties, not only between them


def test_table_refuses_a_non_finite_function():
    with pytest.raises(ModelError, match="non-finite"):
        im.tabulate(lambda v: np.where(v < 0, np.nan, v), Grid(0.1, 3, 4, False), Grid(0.1, 0, 4, False))


def test_lookup_layer_checks_its_table():
    b = Builder(np.random.default_rng(0), (4,))
    x = b.linear("input_q", 3)
    b.add(im.Lookup("f", x, np.zeros(255, np.int64), b.grid(8)))  # needs 256 entries for an 8-bit input
    b.linear("f", 2, relu=False, signed_out=True)
    with pytest.raises(ModelError, match="layer 'f': the lookup table has 255 entries.* needs 256"):
        b.build()
    b.layers[2] = im.Lookup("f", x, np.full(256, 300), Grid(0.1, 0, 8, False))
    with pytest.raises(ModelError, match=r"layer 'f': table values \[300, 300\] leave the output grid"):
        b.build()


def test_clamp_must_hold_the_zero_point():
    b = Builder(np.random.default_rng(0), (4,))
    x = b.linear("input_q", 3, relu=False)
    z = b.in_grid(x).zero_point
    b.layers[-1].fuse_clamp((z + 1, 255))
    b.linear(x, 2, relu=False, signed_out=True)
    with pytest.raises(ModelError, match=f"layer '{x}': clamp \\[{z + 1}, 255\\] .* contain the zero point"):
        b.build()


@pytest.mark.parametrize("zero_points", ["random", "extreme", "zero"])
@pytest.mark.parametrize("seed", range(3))
def test_onnx_simulator_onnxruntime_and_torch_agree_on_every_element(seed, zero_points):
    rng = np.random.default_rng(seed)
    model = lookup_model(rng, zero_points)
    proto = to_onnx(model)
    assert to_onnx(load_integer_model(proto)).SerializeToString() == proto.SerializeToString()
    ops = [n.op_type for n in proto.graph.node if n.name.startswith("lookup1/")]
    assert ops == ["Cast", "Add", "Gather"]  # the signed input grid needs the offset +127
    assert [n.op_type for n in proto.graph.node if n.name.startswith("lookup3/")] == ["Cast", "Gather"]
    x = random_inputs(rng, model, 6)
    sim = Simulator(proto).trace({"input": x})
    for name, value in ort_trace(proto, {"input": x}).items():
        assert_identical(value, sim[name], name)
    torch_trace = run_integer(model, torch.from_numpy(x), intermediate=True)
    g_in = model.grid("input_q")
    for layer in model.layers:
        assert np.array_equal(torch_trace[layer.name].numpy(), sim[layer.name].astype(np.int64)), layer.name
        if isinstance(layer, im.Lookup):  # the contract's rule, element for element
            q = torch_trace[layer.input].numpy()
            assert np.array_equal(sim[layer.name], layer.table[q - model.grid(layer.input).lo])
        if layer.output_clamp is not None:
            lo, hi = layer.output_clamp
            assert lo <= sim[layer.name].min() and sim[layer.name].max() <= hi
    assert g_in.signed and model.grid("lookup1").zero_point == model.layer("lookup1").out.zero_point


@needs_gxx
@pytest.mark.parametrize("arch", ["dataflow", "parallel"])
def test_c_simulation_equals_the_simulator(tmp_path, arch):
    rng = np.random.default_rng(11)
    model = lookup_model(rng)
    x = random_inputs(rng, model, 5)
    result = run_csim(write_project(model, tmp_path / "hls", HlsConfig(architecture=arch), x))
    assert result.ok and result.mismatches == 0 and result.elements == 5 * 4, result
    text = (tmp_path / "hls" / "firmware" / "foldline_top.cpp").read_text()
    assert f"foldline::lookup_{'stream' if arch == 'dataflow' else 'array'}<" in text
    # the kernel, instantiated, is warning-free C++11 (Vivado HLS's dialect), as every other kernel
    run = subprocess.run(["g++", "-std=c++11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
                          "-Wno-unused-label", "-I", "firmware", "-isystem", str(ap_types_dir()),
                          "firmware/foldline_top.cpp"], cwd=tmp_path / "hls", capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[:2000]


def test_estimate_costs_a_logic_rom_per_lookup():
    b = Builder(np.random.default_rng(2), (2, 4, 4))
    x = b.lookup(b.conv("input_q", 3, act_bits=8), act_bits=5)
    b.linear(b.flatten(x), 2, relu=False, signed_out=True)
    model = b.build()
    # 256 entries of 5 bits: 4 LUT6 per output bit (a 64-entry ROM each; the F7/F8 muxes are free)
    rom = 4 * 5
    parallel = estimate(model, {"architecture": "parallel"}).layer(x)
    assert (parallel["lut"], parallel["dsp"], parallel["bram"]) == (rom * 3 * 16, 0, 0)  # one per element
    dataflow = estimate(model, {"architecture": "dataflow"}).layer(x)
    assert dataflow["lut"] >= rom * 3 and dataflow["dsp"] == 0 and dataflow["bram"] == 0  # one per channel
    costs = channel_costs(model, metric="lut")["conv1"]
    assert costs.shape == (3,) and (costs >= rom).all()  # removing a channel removes its lookup too


def test_hls4ml_refuses_lookups_and_clamps_by_name():
    rng = np.random.default_rng(0)
    b = Builder(rng, (6,), power_of_two=True)
    x = b.linear("input_q", 4)
    b.lookup(x, 8)
    b.linear("lookup2", 2, relu=False, signed_out=True)
    with pytest.raises(Hls4mlUnsupportedError) as err:
        check_hls4ml_exact(power_of_two_copy(b.build()))
    assert str(err.value) == f"layer 'lookup2': {REFUSED[im.Lookup]}"
    b = Builder(rng, (6,), power_of_two=True)
    b.clamp(b.linear("input_q", 4, relu=False))
    b.linear("fc1", 2, relu=False, signed_out=True)
    with pytest.raises(Hls4mlUnsupportedError) as err:
        check_hls4ml_exact(b.build())
    assert str(err.value) == f"layer 'fc1': {CLAMP_REFUSED}"
