"""Property: for random integer models, the simulator equals onnxruntime on every element
of every tensor (outputs and all intermediates). 250 models in CI (profile 'ci')."""

import numpy as np
from hypothesis import given, strategies as st

from exporters.examples import Builder, random_inputs
from exporters.onnx_export import to_onnx
from fpga_sim import Simulator
from tests.conftest import assert_identical, ort_trace

bits = st.integers(2, 8)


@st.composite
def integer_models(draw):
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    zero_points = draw(st.sampled_from(["random", "extreme", "zero"]))
    one_d = draw(st.booleans())  # a (C, L) time series: Conv1d, MaxPool1d, AvgPool1d
    spatial = (draw(st.integers(5, 24)),) if one_d else (draw(st.integers(5, 11)), draw(st.integers(5, 11)))
    b = Builder(rng, (draw(st.integers(1, 8)), *spatial), input_bits=draw(bits), zero_points=zero_points,
                random_requant=draw(st.booleans()))
    x = b.layers[0].name
    channels = draw(st.integers(1, 64))
    kernel = draw(st.integers(1, 5))
    padding = draw(st.integers(0, 2))
    c_in = b.shape(x)[0]
    groups = draw(st.sampled_from([g for g in (1, c_in) if channels % g == 0] or [1]))
    widest = 1 if kernel == 1 else max(1, min(3, (min(spatial) + 2 * padding - 1) // (kernel - 1)))
    x = b.conv(x, channels, kernel=kernel, stride=draw(st.integers(1, 3)), padding=padding,
               groups=groups, weight_bits=draw(bits), act_bits=draw(bits), relu=draw(st.booleans()),
               density=draw(st.sampled_from([1.0, 0.5])), dilation=draw(st.integers(1, widest)))
    if draw(st.booleans()):  # a fused ReLU6 / hardtanh: random integer bounds around the zero point
        b.clamp(x)
    h, w = (1, *b.shape(x)[1:]) if one_d else b.shape(x)[1:]
    second = draw(st.sampled_from(["depthwise", "maxpool", "avgpool", "residual", "gap", "concat", "upsample",
                                   "unet", "none"]))
    if one_d and second in ("upsample", "unet"):  # 2-D only
        second = "none"
    short = min(h, w) if not one_d else w
    if second == "depthwise":
        x = b.conv(x, channels, kernel=draw(st.integers(1, 3)), padding=1, groups=channels,
                   weight_bits=draw(bits), act_bits=draw(bits))
    elif second == "maxpool" and short >= 2:
        x = b.maxpool(x, kernel=2, stride=draw(st.integers(1, 3)), padding=draw(st.integers(0, 1)),
                      ceil_mode=draw(st.booleans()))
    elif second == "avgpool" and short >= 3:  # ceil mode and count_include_pad=False: edge windows' own divisors
        x = b.avgpool(x, kernel=draw(st.integers(2, 3)), stride=draw(st.integers(1, 3)), padding=draw(st.integers(0, 1)),
                      act_bits=draw(bits), ceil_mode=draw(st.booleans()), count_include_pad=draw(st.booleans()))
    elif second == "residual":
        y = b.conv(x, channels, kernel=3, padding=1, weight_bits=draw(bits), act_bits=draw(bits))
        x = b.residual_add(x, y, act_bits=draw(bits), relu=draw(st.booleans()))
    elif second == "concat":  # two or three inputs, one of them possibly twice or copied onto the output grid
        y = b.conv(x, draw(st.integers(1, 8)), kernel=3, padding=1, weight_bits=draw(bits), act_bits=draw(bits))
        sources = draw(st.sampled_from([[x, y], [y, x], [x, y, x], [x, "input_q"] if b.shape(x)[1:] ==
                                        b.shape("input_q")[1:] else [x, y]]))
        x = b.concat(sources, act_bits=draw(bits), relu=draw(st.booleans()), copy_first=draw(st.booleans()))
    elif second == "upsample":
        x = b.upsample(x, (draw(st.integers(1, 3)), draw(st.integers(1, 3))))
    elif second == "unet" and h % 2 == 0 and w % 2 == 0:
        y = b.maxpool(x, kernel=2)
        y = b.conv(y, draw(st.integers(1, 8)), kernel=3, padding=1, weight_bits=draw(bits), act_bits=draw(bits))
        x = b.concat([x, b.upsample(y, 2)], act_bits=draw(bits))
    if draw(st.booleans()):  # an elementwise activation: a random table over the grid
        x = b.lookup(x, act_bits=draw(bits))
    if second == "gap":
        x = b.global_avgpool(x, act_bits=draw(bits))
    else:
        x = b.flatten(x)
    b.linear(x, draw(st.integers(1, 12)), weight_bits=draw(bits), act_bits=draw(bits), relu=False, signed_out=True)
    return b.build(), seed


@given(integer_models())
def test_simulator_equals_onnxruntime_everywhere(case):
    model, seed = case
    proto = to_onnx(model)
    feeds = {"input": random_inputs(np.random.default_rng(seed + 1), model, batch=3)}
    expected = ort_trace(proto, feeds)
    got = Simulator(proto).trace(feeds)
    for name, value in expected.items():
        assert_identical(value, got[name], name)
