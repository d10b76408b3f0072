"""Accumulator bounds: proven bounds contain every partial sum, and widths are minimal."""

import itertools

import numpy as np
from hypothesis import given, settings, strategies as st

from exporters.bounds import mac_bounds, signed_width


@given(st.integers(-(2 ** 40), 0), st.integers(0, 2 ** 40))
def test_signed_width_is_the_narrowest(lo, hi):
    p = signed_width(lo, hi)
    assert -(2 ** (p - 1)) <= lo and hi <= 2 ** (p - 1) - 1
    assert p == 1 or not (-(2 ** (p - 2)) <= lo and hi <= 2 ** (p - 2) - 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-7, 7), min_size=1, max_size=4), st.integers(-50, 50),
       st.sampled_from([(0, 15), (-7, 7), (-3, 12)]))
def test_bounds_contain_every_partial_sum_and_are_reached(weights, start, x_range):
    b = mac_bounds(np.array([weights]), np.array([start]), *x_range)
    seen = set()
    for xs in itertools.product(range(x_range[0], x_range[1] + 1), repeat=len(weights)):
        total = start
        for w, x in zip(weights, xs):
            total += w * x
            assert b.lo[0] <= total <= b.hi[0]
        seen.add(total)
    assert min(seen) == b.lo[0] and max(seen) == b.hi[0]  # tight for the full sum
