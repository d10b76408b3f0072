"""The learned quantizers (toolchain.learned_quant, DJPQ section 3.1): forward (eq. 2), straight-through
gradients (eqs. 5-7) against autograd of the composite formula, widths (eqs. 3-4, Algorithm 2), and
how they land on the integer contract (bit-exact export, checkpoints, refusals)."""

import math

import numpy as np
import pytest
import torch

import toolchain
from exporters.errors import ModelError
from toolchain.learned_quant import LearnedActQuant, LearnedWeightQuant, power_of_two_bits
from toolchain.nn import QuantLinear, bit_widths, set_bits, use_learned_quantizers
from toolchain.quant import round_half_up_ste, round_ste

from tests.test_tc_common import ORT_EXACT, SHAPE, onnxruntime_output, qat, simulate, synthetic_batch


def _weight_quant(d, q_m, t, bits=4):
    q = LearnedWeightQuant(bits)
    q.calibrate(torch.ones(1))
    with torch.no_grad():
        q.d.fill_(d), q.q_m.fill_(q_m), q.t.fill_(t)
    return q


def _composite_weight(x, d, q_m, t):
    """Eq. 2 with q_s = 0 written with autograd ops: sign(x) d round_ste(min(|x|, q_m)^t / d)."""
    m = torch.minimum(x.abs(), q_m)
    return torch.sign(x) * d * round_ste(m.pow(t) / d)


def test_weight_forward_is_eq2_and_gradients_are_eqs_5_to_7():
    x = torch.tensor([-0.9, -0.31, -0.02, 0.0, 0.05, 0.18, 0.44, 0.61, 1.3], requires_grad=True)
    q = _weight_quant(d=0.1, q_m=0.6, t=0.8)
    out = q(x)
    out.value.backward(torch.arange(1.0, 10.0))
    d, q_m, t = (torch.tensor(v, requires_grad=True) for v in (float(q.step().detach()), 0.6, 0.8))
    ref = _composite_weight(x.detach(), d, q_m, t)
    ref.backward(torch.arange(1.0, 10.0))
    assert torch.equal(out.value.detach(), ref.detach())
    assert torch.allclose(q.d.grad, d.grad) and torch.allclose(q.q_m.grad, q_m.grad)
    assert torch.allclose(q.t.grad, t.grad)
    # x: straight through inside [-q_m, q_m], blocked outside
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.0, 0.0]


def test_activation_forward_and_gradients():
    x = torch.tensor([-1.0, 0.0, 0.12, 0.25, 0.5, 0.95, 2.0], requires_grad=True)
    q = LearnedActQuant(4)
    q.calibrate(torch.ones(1))
    with torch.no_grad():
        q.d.fill_(0.1), q.q_m.fill_(0.9)
    out = q(x)
    g = torch.arange(1.0, 8.0)
    out.value.backward(g)
    d, q_m = torch.tensor(float(q.step().detach()), requires_grad=True), torch.tensor(0.9, requires_grad=True)
    ref = d * round_half_up_ste(torch.minimum(x.detach().clamp(min=0), q_m) / d)   # eq. 2, t = 1, half up
    ref.backward(g)
    assert torch.equal(out.value.detach(), ref.detach())
    assert torch.allclose(q.d.grad, d.grad) and torch.allclose(q.q_m.grad, q_m.grad)
    assert x.grad.tolist() == [0.0, 0.0, 3.0, 4.0, 5.0, 0.0, 0.0]
    assert out.zero_point == 0 and not out.signed and out.bits == 4     # round(0.9 / 0.1) = 9 <= 15


@pytest.mark.parametrize("n", [0.6, 1.0, 2.4, 7.0, 7.6, 20.3, 126.0])
def test_widths_eq3_and_the_integer_grid(n):
    q = _weight_quant(d=1.0 / n, q_m=1.0, t=1.0, bits=8)
    expected = math.log2(math.ceil(n) + 1) + 1                                  # eq. 3 with q_s = 0
    assert float(q.continuous_bits().detach()) == pytest.approx(max(expected, 2.0), rel=1e-6)
    level = round(n) if n >= 1 else 1                                          # d kept <= the 2-bit step
    assert q.bits == max(2, level.bit_length() + 1)
    assert q.bits <= math.ceil(max(expected, 2.0))                             # never more than eq. 3 asks


def test_activation_width_counts_level_zero():
    q = LearnedActQuant(8)
    q.calibrate(torch.ones(1))
    with torch.no_grad():
        q.d.fill_(1 / 255)
    assert q.bits == 8 and float(q.continuous_bits().detach()) == pytest.approx(8.0)    # eq. 4 printed: log2 255 < 8


def test_setting_bits_sets_the_step_and_the_grid():
    q = LearnedWeightQuant(8)
    q(torch.tensor([0.7, -0.2]))
    for bits in (2, 3, 5, 8):
        q.bits = bits
        assert q.bits == bits and float(q.step().detach()) == pytest.approx(0.7 / (2 ** (bits - 1) - 1))


def test_power_of_two_restriction_is_algorithm_2():
    assert [power_of_two_bits(b) for b in (2.0, 3.99, 4.0, 5.5, 7.99, 8.0)] == [2, 2, 4, 4, 4, 8]
    q = _weight_quant(d=1.0 / 40, q_m=1.0, t=1.0, bits=8)             # eq. 3: log2(41) + 1 = 6.36
    q.restrict(True)
    assert q.bits == 4 and float(q.step().detach()) == pytest.approx(1.0 / 7)    # d' = q_m^t / (2^(b'-1) - 1)
    assert float(q.soft_bits().detach()) == 4.0
    q.soft_bits().backward()
    assert q.d.grad is not None and float(q.d.grad) != 0.0            # backward unchanged: through d
    with pytest.raises(ModelError, match="not one of"):
        q.bits = 3


def _learned_cnn(seed=0):
    torch.manual_seed(seed)
    net = toolchain.build("cnn", input_shape=SHAPE)
    qat(net, steps=2)
    use_learned_quantizers(net)
    set_bits(net, {"conv2": {"weight": 3, "act": 3}})
    return qat(net, steps=3, lr=0.01).eval()


def test_learned_quantizers_land_on_the_integer_contract():
    net = _learned_cnn()
    model = toolchain.to_integer_model(net)
    conv2 = model.layer("conv2")
    layer = net.layers["conv2"]
    q = layer.weight_quant
    d, q_m, t = (float(v.detach()) for v in (q.step(), q.q_m, q.exponent()))
    w = layer.folded()[0].detach().double().numpy().reshape(conv2.weight.shape[0], -1)
    expected = np.sign(w) * np.round(np.minimum(np.abs(w), q_m) ** t / d)       # eq. 2's integers, in numpy
    assert np.abs(conv2.weight.reshape(len(w), -1) - expected).max() <= 1      # float32 vs float64 rounding
    assert np.array_equal(conv2.weight_scale, np.full(len(w), np.float32(d), dtype=np.float64))  # per layer
    assert conv2.weight_bits == q.bits and int(np.abs(conv2.weight).max()) <= 2 ** (q.bits - 1) - 1
    act = net.layers["conv1"].out_quant
    grid = model.grid("conv1")
    assert grid.zero_point == 0 and grid.scale == float(act.step().detach())
    assert model.layer("conv1").requant.clamp[1] == grid.quantize_value(float(act.q_m.detach()))   # [0, Q(q_m)]


def test_learned_quantizers_export_bit_exact():
    net = _learned_cnn(seed=1)
    x, _ = synthetic_batch(24, 7)
    model = toolchain.to_integer_model(net)
    q = toolchain.run_integer(model, x).numpy()
    assert np.array_equal(q, simulate(model, x))
    if ORT_EXACT:
        assert np.array_equal(q, onnxruntime_output(model, x).astype(np.int64))
    assert toolchain.agreement(net, x) >= 0.9


def test_checkpoint_keeps_the_learned_quantizers(tmp_path):
    net = _learned_cnn()
    toolchain.save(net, tmp_path / "m.pt")
    loaded = toolchain.load(tmp_path / "m.pt")
    assert {d["args"]["weight_quant"] for d in loaded.spec()["layers"] if "weight_quant" in d["args"]} == {"learned"}
    assert bit_widths(loaded) == bit_widths(net)
    x, _ = synthetic_batch(8, 2)
    assert torch.equal(toolchain.integer_forward(loaded, x), toolchain.integer_forward(net, x))


@pytest.mark.parametrize("kwargs, message", [
    (dict(act_quant="learned", signed_output=True, relu=True), "needs relu=True on a hidden layer"),
    (dict(act_quant="learned"), "needs relu=True"),
    (dict(weight_quant="learned", power_of_two=True), "cannot be a power of two"),
    (dict(weight_quant="lsq"), "unknown quantizer 'lsq'"),
])
def test_refusals(kwargs, message):
    with pytest.raises(ModelError, match=message):
        QuantLinear(4, 2, **kwargs)
