"""Concat and Upsample in the HLS planner and the estimator: the chain of two-input kernels, the
costs of a copied and a requantized input, the schedule, channel costs through a concatenation
(checked against physically removing the channel), and the refusals (HLS layout, hls4ml)."""

import copy

import numpy as np
import pytest

from exporters import examples
from exporters import integer_model as im
from exporters.examples import Builder
from hls_templates import HlsConfig
from hls_templates.estimate import channel_cost, estimate
from hls_templates.estimate.core import cost_model
from hls_templates.errors import UnsupportedModelError
from hls_templates.hls4ml_bridge import Hls4mlUnsupportedError, check_hls4ml_exact, power_of_two_copy
from hls_templates.plan import binary_concats, plan
from toolchain.integer_mode import run_integer


def three_way(rng, copy_first=False):
    b = Builder(rng, (2, 4, 4))
    x = b.conv("input_q", 3)
    y = b.conv(x, 2)
    x = b.concat([x, y, "input_q"], copy_first=copy_first)
    b.linear(b.flatten(x), 3, relu=False, signed_out=True)
    return b.build("three_way")


def test_a_long_concat_becomes_an_exact_chain_of_two_input_concats():
    rng = np.random.default_rng(0)
    model = three_way(rng)
    lowered, origin = binary_concats(model)
    parts = [layer for layer in lowered.layers if isinstance(layer, im.Concat)]
    assert [p.sources for p in parts] == [("conv1", "conv2"), ("concat3_part1", "input_q")]
    assert origin == {"concat3_part1": "concat3", "concat3": "concat3"}
    x = examples.random_inputs(rng, model, 16)
    a, b = run_integer(model, x, intermediate=True), run_integer(lowered, x, intermediate=True)
    assert np.array_equal(a["concat3"].numpy(), b["concat3"].numpy())  # the same integers, every element
    assert binary_concats(examples.unet(rng))[1] == {}  # two inputs: nothing to do


def test_the_reuse_factor_of_a_long_concat_reaches_every_part():
    model = three_way(np.random.default_rng(1))
    design = plan(model, HlsConfig(architecture="dataflow", layer_reuse={"concat3": 3}))
    reuse = {k.layer: k.config.reuse_factor for k in design.kernels if k.config is not None}
    assert reuse["concat3_part1"] == reuse["concat3"] == 3


def test_a_copied_input_costs_no_logic_and_a_requantized_one_does():
    for copy_first, expect in ((True, 0), (False, 1)):
        model = three_way(np.random.default_rng(2), copy_first)
        assert model.layer("concat3").copies(model)[0] is copy_first
        share = cost_model(model, {"architecture": "parallel"}).costs["concat3"].out_share["lut"]  # no FIFOs
        assert (share[:3] > 0).sum() == 3 * expect  # the first input's three channels
        assert (share[3:] > 0).all()


def test_upsampling_is_a_row_buffer_and_a_stage_over_the_output_pixels():
    model = examples.unet(np.random.default_rng(3))
    flow = estimate(model, {"architecture": "dataflow"})
    up, conv = flow.layer("upsample4"), flow.layer("conv3")
    assert up["ii"] == 8 * 8 and up["dsp"] == 0 and up["lut"] > 0  # 8 x 8 output pixels at II = 1, a LUTRAM row
    assert up["first_output_cycle"] == conv["first_output_cycle"] + 1  # one register after its first input
    # its last pixel: after its own 64 iterations, and after the repetitions that follow the last input
    tail = (2 - 1) * 4 * 2 + (2 - 1)
    assert up["last_output_cycle"] == max(conv["first_output_cycle"] + 63, conv["last_output_cycle"] + tail) + 1
    par = estimate(model, {"architecture": "parallel"}).layer("upsample4")
    assert par["lut"] == 0 and par["dsp"] == 0  # wiring, besides the tensor's registers


def drop_unet_channel(model: im.IntegerModel, layer_name: str, c: int) -> im.IntegerModel:
    """``model`` (examples.unet) without output channel ``c`` of ``layer_name``, cutting the consumers'
    columns at the channel's offset in the concatenation, by slicing the integer arrays."""
    model = copy.deepcopy(model)
    layer = model.layer(layer_name)
    keep = np.delete(np.arange(layer.out_channels), c)
    layer.weight, layer.bias, layer.weight_scale = layer.weight[keep], layer.bias[keep], layer.weight_scale[keep]
    layer.requant.multiplier, layer.requant.shift = layer.requant.multiplier[keep], layer.requant.shift[keep]
    cut = {"conv1": [("conv3", c), ("conv6", c)], "conv3": [("conv6", model.layer("conv1").out_channels + c)]}
    for consumer, column in cut[layer_name]:
        model.layer(consumer).weight = np.delete(model.layer(consumer).weight, column, axis=1)
    model.invalidate()
    model.validate()
    return model


@pytest.mark.parametrize("layer_name", ["conv1", "conv3"])
def test_channel_costs_follow_a_channel_into_the_concatenation(layer_name):
    model = examples.unet(np.random.default_rng(4))
    config = {"architecture": "dataflow"}
    before = estimate(model, config).totals
    after = estimate(drop_unet_channel(model, layer_name, 1), config).totals
    assert channel_cost(model, layer_name, config, metric="dsp")[1] == before["dsp"] - after["dsp"]
    assert channel_cost(model, layer_name, config, metric="lut")[1] == pytest.approx(before["lut"] - after["lut"],
                                                                                     rel=0.1)
    concat = estimate(model, config).layer("concat5")
    assert concat["dsp"] > 0  # the channel's requantizer in the concatenation is part of what it saves


def test_a_concat_of_a_flattened_map_and_a_vector_is_refused_by_name():
    b = Builder(np.random.default_rng(5), (2, 4, 4))
    x = b.conv("input_q", 3)
    v = b.concat([b.flatten(b.maxpool(x)), b.global_avgpool(x)])
    b.linear(v, 3, relu=False, signed_out=True)
    with pytest.raises(UnsupportedModelError, match=rf"^layer '{v}': Concat of a flattened map .* concatenate the "
                                                    r"maps before the Flatten \(or export with --hls none\)$"):
        plan(b.build(), HlsConfig(architecture="parallel"))


def test_hls4ml_refuses_upsample_and_concat_by_name_after_an_exact_power_of_two_copy():
    model = power_of_two_copy(examples.unet(np.random.default_rng(6), power_of_two=True))
    assert all(m == 1 << 15 for m in model.layer("concat5").multipliers)  # snapped: scale ratios powers of two
    with pytest.raises(Hls4mlUnsupportedError, match=r"^layer 'upsample4': Upsample is not mapped to hls4ml .*"
                                                     r"use --hls templates$"):
        check_hls4ml_exact(model)
    b = Builder(np.random.default_rng(7), (2, 4, 4), power_of_two=True)
    x = b.conv("input_q", 2)
    b.linear(b.flatten(b.concat([x, b.conv(x, 2)])), 3, relu=False, signed_out=True)
    with pytest.raises(Hls4mlUnsupportedError, match=r"^layer 'concat3': Concat is not mapped to hls4ml .*"
                                                     r"use --hls templates$"):
        check_hls4ml_exact(power_of_two_copy(b.build()))
