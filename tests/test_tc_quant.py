"""Quantizer parts: grids, zero points, real zero, rounding, straight-through gradients."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from exporters.errors import FoldlineError
from toolchain.quant import MIN_RANGE, ActQuant, CalibrationError, SymQuant, WeightQuant, quant_bias, round_ste

floats = st.floats(-50, 50, allow_nan=False, width=32)
normal_floats = st.floats(-50, 50, allow_nan=False, allow_subnormal=False, width=32)  # max|w| / qmax stays > 0


@settings(max_examples=40, deadline=None)
@given(values=st.lists(floats, min_size=2, max_size=40), bits=st.integers(2, 8), momentum=st.sampled_from([None, 0.1]))
def test_activation_grid_holds_zero_and_values(values, bits, momentum):
    q = ActQuant(bits, momentum)
    x = torch.tensor(values)
    out = q(x)
    ints = out.int_repr()
    assert 0 <= out.zero_point <= (1 << bits) - 1
    assert int(ints.min()) >= 0 and int(ints.max()) <= (1 << bits) - 1
    assert q(torch.zeros(3)).value.eq(0).all()  # real zero is exact
    assert torch.allclose(out.value, (ints - out.zero_point) * out.scale)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.lists(floats, min_size=3, max_size=3), min_size=1, max_size=6), bits=st.integers(2, 8))
def test_weight_grid_is_symmetric_narrow_per_channel(rows, bits):
    w = torch.tensor(rows)
    q = WeightQuant(bits)(w)
    top = (1 << (bits - 1)) - 1
    ints = q.int_repr()
    assert int(ints.abs().max()) <= top
    assert (ints[w == 0] == 0).all()
    # a live channel (its scale a normal float) uses its full range; one whose largest |w| would
    # give a subnormal scale counts as all zero (documented in WeightQuant.scale)
    live = w.abs().amax(dim=1) >= torch.finfo(torch.float32).tiny * top
    assert (ints[live].abs().amax(dim=1) == top).all()
    assert (ints[~live] == 0).all()
    assert (q.scale > 0).all() and torch.isfinite(q.scale).all()


def test_a_channel_of_subnormal_weights_quantizes_to_zero_with_a_normal_scale():
    w = torch.tensor([[0.0, 0.0, 1.401298464324817e-45], [0.5, -0.25, 0.0]])
    q = WeightQuant(3)(w)
    assert q.int_repr().tolist() == [[0, 0, 0], [3, -2, 0]]
    assert (q.scale >= torch.finfo(torch.float32).tiny).all()


def test_moving_average_follows_seed_004_algorithm_2():
    q = ActQuant(8, momentum=None)
    for lo, hi in [(-1.0, 3.0), (-3.0, 1.0), (-2.0, 5.0)]:
        q(torch.tensor([lo, hi]))
    assert torch.isclose(q.lo, torch.tensor(-2.0)) and torch.isclose(q.hi, torch.tensor(3.0))
    ema = ActQuant(8, momentum=0.5)
    ema(torch.tensor([0.0, 4.0]))
    ema(torch.tensor([0.0, 2.0]))
    assert torch.isclose(ema.hi, torch.tensor(3.0))


def test_eval_freezes_statistics_and_uncalibrated_is_an_error():
    q = ActQuant(4)
    with pytest.raises(CalibrationError):
        q.eval()(torch.ones(2))
    assert issubclass(CalibrationError, FoldlineError)
    q.train()(torch.tensor([0.0, 1.0]))
    before = q.hi.clone()
    q.eval()(torch.tensor([0.0, 100.0]))
    assert torch.equal(q.hi, before)


def test_roundings_and_straight_through_gradient():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5], requires_grad=True)
    y = round_ste(x)
    assert y.tolist() == [0.0, 2.0, 2.0, -0.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0] * 4
    s = SymQuant(8, rounding="half_even").train()
    s(torch.tensor([127.0]))  # scale 1
    assert s.eval()(torch.tensor([2.5, 3.5, -200.0])).int_repr().tolist() == [2, 4, -127]
    h = SymQuant(8, rounding="half_up").train()
    h(torch.tensor([127.0]))
    assert h.eval()(torch.tensor([2.5, -2.5])).int_repr().tolist() == [3, -2]


def test_bits_out_of_range_are_refused():
    for bits in (1, 9):
        with pytest.raises(FoldlineError, match="bit width"):
            ActQuant(bits)


def test_bias_lands_on_the_accumulator_grid():
    b = torch.tensor([0.3, -0.7], requires_grad=True)
    ints, value = quant_bias(b, torch.tensor(0.1), torch.tensor([0.01, 0.02]))
    assert ints.tolist() == [300, -350]
    value.sum().backward()
    assert b.grad.tolist() == [1.0, 1.0]


def _is_power_of_two(v: float) -> bool:
    return v > 0 and math.frexp(v)[0] == 0.5


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.lists(normal_floats, min_size=3, max_size=3), min_size=1, max_size=6),
       bits=st.integers(2, 8))
def test_power_of_two_weight_scales_round_up_and_never_saturate(rows, bits):
    w = torch.tensor(rows)
    plain, pow2 = WeightQuant(bits)(w), WeightQuant(bits, power_of_two=True)(w)
    for s, ref in zip(pow2.scale.tolist(), plain.scale.tolist()):
        assert s == 2.0 ** math.ceil(math.log2(ref))  # the next power of two at or above the plain scale
    ints = pow2.int_repr()
    assert torch.equal(ints, torch.round(w / pow2.scale[:, None]).to(torch.int64))  # nothing clamped
    assert int(ints.abs().max()) <= (1 << (bits - 1)) - 1


@settings(max_examples=40, deadline=None)
@given(values=st.lists(floats, min_size=2, max_size=40), bits=st.integers(2, 8))
def test_power_of_two_activation_and_io_grids(values, bits):
    x = torch.tensor(values)
    act = ActQuant(bits, momentum=None, power_of_two=True)
    out = act(x)
    top = (1 << bits) - 1
    hi = max(max(values), MIN_RANGE)
    assert out.zero_point == 0 and _is_power_of_two(float(out.scale))
    assert float(out.scale) == 2.0 ** math.ceil(math.log2(float(torch.tensor(hi) / top)))
    assert torch.equal(out.int_repr(), torch.clamp(torch.floor(x / out.scale + 0.5), 0, top).to(torch.int64))
    sym = SymQuant(bits, momentum=None, power_of_two=True)
    s = float(sym(x).scale)
    plain = float(SymQuant(bits, momentum=None)(x).scale)
    assert _is_power_of_two(s) and s == 2.0 ** math.ceil(math.log2(plain))


@pytest.mark.parametrize("quantizer", [ActQuant(8), SymQuant(8), ActQuant(8, power_of_two=True)])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_or_inf_never_reaches_a_statistic(quantizer, bad):
    quantizer.train()(torch.tensor([0.0, 2.0]))
    before = {k: v.clone() for k, v in quantizer.state_dict().items()}
    with pytest.raises(CalibrationError, match="NaN or infinity"):
        quantizer(torch.tensor([1.0, bad]))
    assert all(torch.equal(before[k], v) for k, v in quantizer.state_dict().items())


def test_degenerate_and_clamped_ranges_are_named():
    zero = ActQuant(8)
    zero(torch.zeros(4))
    assert "degenerate" in zero.range_problem()
    sym = SymQuant(8)
    sym(torch.zeros(4))
    assert "degenerate" in sym.range_problem()
    fine = ActQuant(8)
    fine(torch.tensor([-1.0, 1.0]))
    assert fine.range_problem() is None and fine.clip_problem() is None
    pow2 = ActQuant(8, power_of_two=True)
    pow2(torch.tensor([-1.0, 1.0]))
    assert pow2.range_problem() is None and "clamp to 0" in pow2.clip_problem()
