"""The hls4ml exact path: compiled hls4ml == the simulator, element for element; refusals first."""

import numpy as np
import pytest

from exporters import examples
from exporters import integer_model as im
from exporters.grid import Grid
from exporters.onnx_export import to_onnx
from fpga_sim import Simulator
from hls_templates.hls4ml_bridge import (Hls4mlUnsupportedError, NotPowerOfTwoError, check_hls4ml_exact,
                                         power_of_two_copy, write_hls4ml_project)

pytest.importorskip("hls4ml")


def mlp_with_signed_relu_output(rng) -> im.IntegerModel:
    b = examples.Builder(rng, (16,), power_of_two=True)
    x = b.linear(b.layers[0].name, 12)
    x = b.linear(x, 5, relu=True, signed_out=True)  # a signed grid with ReLU: an explicit nn.ReLU
    return power_of_two_copy(b.build("mlp_relu_out"))


def small_cnn(rng) -> im.IntegerModel:
    b = examples.Builder(rng, (2, 8, 8), power_of_two=True)
    stem = b.conv(b.layers[0].name, 4)  # padding 1
    x = b.conv(stem, 4, relu=False)
    x = b.residual_add(stem, x)
    x = b.maxpool(x)
    x = b.avgpool(x, 2)
    x = b.flatten(x)
    x = b.linear(x, 3, relu=False, signed_out=True)
    return power_of_two_copy(b.build("small_cnn"))


def golden(model: im.IntegerModel, batch: int, rng):
    """The simulator's input integers and output integers for random float inputs (ties included)."""
    x = examples.random_inputs(rng, model, batch)
    q, y = Simulator(to_onnx(model)).run([model.input.name, model.output.name], {"input": x})
    return q, y


@pytest.mark.parametrize("build", [mlp_with_signed_relu_output, small_cnn])
def test_hls4ml_predict_equals_the_simulator(tmp_path, build):
    rng = np.random.default_rng(21)
    model = build(rng)
    q, expected = golden(model, 200, rng)
    project = write_hls4ml_project(model, tmp_path / "prj", {"clock_ns": 4.0})
    assert (tmp_path / "prj" / "firmware" / "myproject.cpp").is_file()
    got = project.compile().predict_integers(q)
    assert got.shape == expected.shape
    diff = np.flatnonzero(got.ravel() != expected.astype(np.int64).ravel())
    assert diff.size == 0, f"{diff.size}/{got.size} differ, first {got.ravel()[diff[0]]} != {expected.ravel()[diff[0]]}"
    assert np.unique(expected).size >= 5  # the outputs spread over the grid: a meaningful comparison


def test_non_power_of_two_scales_are_refused_before_conversion(tmp_path):
    model = examples.mlp(np.random.default_rng(22))  # scales like 0.073
    hint = r"; the hls4ml backend is exact only for power-of-two .*--power-of-two"
    with pytest.raises(NotPowerOfTwoError, match=r"^input 'input_q': scale .* is not a power of two" + hint):
        write_hls4ml_project(model, tmp_path / "prj")
    assert not (tmp_path / "prj").exists()


def test_each_inexact_feature_is_named():
    rng = np.random.default_rng(23)
    base = power_of_two_copy(examples.mlp(rng, power_of_two=True))
    check_hls4ml_exact(base)
    check_hls4ml_exact(to_onnx(base))

    bad_m = power_of_two_copy(base)
    bad_m.layer("fc2").requant.multiplier[1] = 40000
    with pytest.raises(Hls4mlUnsupportedError, match=r"layer 'fc2': .*M\[1\] = 40000 is not a power of two"):
        check_hls4ml_exact(bad_m)

    with pytest.raises(Hls4mlUnsupportedError, match="layer 'conv2': grouped/depthwise Conv"):
        check_hls4ml_exact(power_of_two_copy(examples.depthwise_separable(rng, power_of_two=True)))

    b = examples.Builder(rng, (2, 4, 4), power_of_two=True)
    b.linear(b.flatten(b.global_avgpool(b.conv(b.layers[0].name, 3))), 2, relu=False, signed_out=True)
    gap = power_of_two_copy(b.build("gap"))
    with pytest.raises(Hls4mlUnsupportedError, match="layer 'gap2': GlobalAvgPool"):
        check_hls4ml_exact(gap)

    zero = power_of_two_copy(base)
    g = zero.layer("fc1").requant.out
    zero.layer("fc1").requant.out = Grid(g.scale, 3, g.bits, g.signed)
    zero.validate()
    with pytest.raises(NotPowerOfTwoError, match=r"^layer 'fc1' output grid: zero point 3 is not 0; "):
        check_hls4ml_exact(zero)
