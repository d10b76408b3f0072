"""Quantizer parts: grids, zero points, real zero, rounding, straight-through gradients."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from exporters.errors import FoldlineError
from toolchain.quant import ActQuant, CalibrationError, SymQuant, WeightQuant, quant_bias, round_ste

floats = st.floats(-50, 50, allow_nan=False, width=32)


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
    nonzero = w.abs().amax(dim=1) > 0
    assert (ints[nonzero].abs().amax(dim=1) == top).all()  # every live channel uses its full range
    assert (q.scale > 0).all()


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
