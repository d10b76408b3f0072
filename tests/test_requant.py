"""The contract's requantization rule and the (M, n) derivation, against big-int references."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from exporters.errors import ModelError
from exporters.requant import (MAX_SHIFT, MULTIPLIER_BITS, nonnegative_offset, quantize_multiplier,
                               quantize_shared_shift, requantize, round_shift)


def floor_half_up(value: int, shift: int) -> int:
    """Reference: round value / 2^shift half up, with exact rationals."""
    q = Fraction(value, 2 ** shift) + Fraction(1, 2)
    return q.numerator // q.denominator


@given(st.floats(min_value=2.0 ** -40, max_value=2.0 ** 15, allow_nan=False))
def test_multiplier_is_normalised_and_accurate(real):
    m, n = quantize_multiplier(real)
    assert 0 <= n <= MAX_SHIFT
    assert (1 << (MULTIPLIER_BITS - 1)) <= m < (1 << MULTIPLIER_BITS)
    # half-up rounding of S * 2^n: error at most half a unit of M
    assert abs(Fraction(m) - Fraction(real) * 2 ** n) <= Fraction(1, 2)


def test_multiplier_examples_by_hand():
    assert quantize_multiplier(1.0) == (32768, 15)
    assert quantize_multiplier(0.75) == (49152, 16)
    # 1 - 2^-20 rounds up to 2^16 at n=16 and must renormalise to (2^15, 15)
    assert quantize_multiplier(1 - 2.0 ** -20) == (32768, 15)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan"), 2.0 ** 16])
def test_multiplier_refuses_out_of_range(bad):
    with pytest.raises(ModelError):
        quantize_multiplier(bad)


def test_shared_shift_normalises_the_largest():
    m, n = quantize_shared_shift([0.5, 0.25])
    assert m.tolist() == [32768, 16384] and n == 16


@given(st.integers(-(2 ** 40), 2 ** 40), st.integers(0, 40))
def test_round_shift_is_floor_half_up(value, shift):
    assert int(round_shift(value, shift)) == floor_half_up(value, shift)


def test_ties_round_half_up_by_hand():
    # -1.5 -> -1, -0.5 -> 0, 0.5 -> 1, 1.5 -> 2 (half up, not half to even)
    assert round_shift(np.array([-3, -1, 1, 3]), 1).tolist() == [-1, 0, 1, 2]
    assert round_shift(np.array([5, -5]), 0).tolist() == [5, -5]  # n = 0: no rounding term


@given(st.integers(-(2 ** 31), 2 ** 31 - 1), st.integers(1, 2 ** 16 - 1), st.integers(0, 60),
       st.integers(0, 255))
def test_requantize_matches_reference(acc, m, n, z):
    expected = min(max(z + floor_half_up(acc * m, n), 0), 255)
    assert int(requantize(acc, m, n, z, 0, 255)) == expected


@given(st.integers(0, 2 ** 47), st.integers(0, 60), st.data())
def test_nonnegative_offset_makes_every_value_shiftable(bound, shift, data):
    k = int(nonnegative_offset(bound, shift))
    v = data.draw(st.integers(-bound, bound))
    half = (1 << (shift - 1)) if shift else 0
    shifted = v + half + (k << shift)
    assert 0 <= shifted < 2 ** 63
    assert (shifted >> shift) - k == floor_half_up(v, shift)
