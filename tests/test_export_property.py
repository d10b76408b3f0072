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
    b = Builder(rng, (draw(st.integers(1, 8)), draw(st.integers(5, 11)), draw(st.integers(5, 11))),
                input_bits=draw(bits), zero_points=zero_points, random_requant=draw(st.booleans()))
    x = b.layers[0].name
    channels = draw(st.integers(1, 64))
    kernel = draw(st.integers(1, 5))
    c_in = b.shape(x)[0]
    groups = draw(st.sampled_from([g for g in (1, c_in) if channels % g == 0] or [1]))
    x = b.conv(x, channels, kernel=kernel, stride=draw(st.integers(1, 3)), padding=draw(st.integers(0, 2)),
               groups=groups, weight_bits=draw(bits), act_bits=draw(bits), relu=draw(st.booleans()),
               density=draw(st.sampled_from([1.0, 0.5])))
    _, h, w = b.shape(x)
    second = draw(st.sampled_from(["depthwise", "maxpool", "avgpool", "residual", "gap", "none"]))
    if second == "depthwise":
        x = b.conv(x, channels, kernel=draw(st.integers(1, 3)), padding=1, groups=channels,
                   weight_bits=draw(bits), act_bits=draw(bits))
    elif second == "maxpool" and min(h, w) >= 2:
        x = b.maxpool(x, kernel=2, stride=draw(st.integers(1, 2)), padding=draw(st.integers(0, 1)))
    elif second == "avgpool" and min(h, w) >= 2:
        x = b.avgpool(x, kernel=2, stride=draw(st.integers(1, 2)), padding=draw(st.integers(0, 1)),
                      act_bits=draw(bits))
    elif second == "residual":
        y = b.conv(x, channels, kernel=3, padding=1, weight_bits=draw(bits), act_bits=draw(bits))
        x = b.residual_add(x, y, act_bits=draw(bits), relu=draw(st.booleans()))
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
