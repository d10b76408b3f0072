"""Validation of the integer model: every contract rule refuses a breaking model by name."""

import numpy as np
import pytest

from exporters import examples, integer_model as im
from exporters.errors import AccumulatorOverflowError, ModelError
from exporters.grid import Grid

OUT = Grid(0.1, 0, 8, True)


def linear_model(weight, bias=None, in_grid=Grid(1.0, 0, 8, True), weight_bits=8, out=OUT, m=1, n=0):
    o, f = weight.shape
    x = im.Input("x", (f,), in_grid)
    fc = im.Linear("fc", "x", weight, np.zeros(o, np.int64) if bias is None else bias, weight_bits,
                   np.full(o, 0.01), im.Requant(np.full(o, m), np.full(o, n), out))
    return im.IntegerModel([x, fc])


def test_overflowing_accumulator_is_refused_with_layer_and_bound():
    # 127 * 127 * 133145 = 2147495705 > 2^31 - 1 (one tap more than the test below)
    model = linear_model(np.full((1, 133145), 127))
    with pytest.raises(AccumulatorOverflowError, match=r"layer 'fc'.*bound \[-?\d+, \d+\].*more than 32"):
        model.validate()


def test_accumulator_just_inside_32_bits_is_accepted():
    # 2^31 - 1 >= 127 * 127 * taps  <=>  taps <= 133144
    model = linear_model(np.full((1, 133144), 127))
    model.validate()
    assert im.accumulator_analysis(model, model.layer("fc")).bits == 32


def test_folded_form_bound_uses_zero_point():
    # unsigned input with zero point 200: folded bias b' = b - 200 * sum(w)
    x = im.Input("x", (2,), Grid(1.0, 0, 8, True))
    h = im.Linear("h", "x", np.array([[1, 1]]), np.array([0]), 8, np.full(1, 0.1),
                  im.Requant([1], [0], Grid(1.0, 200, 8, False)))
    fc = im.Linear("fc", "h", np.array([[3]]), np.array([5]), 8, np.full(1, 0.1), im.Requant([1], [0], OUT))
    model = im.IntegerModel([x, h, fc])
    model.validate()
    a = im.accumulator_analysis(model, fc)
    # subtract-first: 5 + 3 * (x - 200), x in [0, 255]: [-595, 170]; products alone [-600, 165]
    assert (int(a.subtract_first.lo[0]), int(a.subtract_first.hi[0])) == (-600, 170)
    # folded: b' = 5 - 600 = -595, plus 3 * x in [0, 765]: [-595, 170]
    assert (int(a.folded.lo[0]), int(a.folded.hi[0])) == (-595, 170)
    assert int(im.folded_bias(fc, 200)[0]) == -595


@pytest.mark.parametrize("weight,bits,match", [
    (np.array([[-128]]), 8, "leave the 8-bit grid"),       # narrow range excludes -128
    (np.array([[8]]), 4, "leave the 4-bit grid"),
])
def test_weights_outside_narrow_grid_are_refused(weight, bits, match):
    with pytest.raises(ModelError, match=match):
        linear_model(weight, weight_bits=bits).validate()


@pytest.mark.parametrize("m,n,match", [(0, 0, "multipliers"), (1 << 16, 0, "multipliers"), (1, 61, "shifts")])
def test_requant_parameters_are_range_checked(m, n, match):
    with pytest.raises(ModelError, match=match):
        linear_model(np.ones((1, 2), np.int64), m=m, n=n).validate()


def test_hidden_signed_grid_is_refused():
    x = im.Input("x", (2,), Grid(1.0, 0, 8, True))
    h = im.Linear("h", "x", np.ones((2, 2)), np.zeros(2), 8, np.full(2, 0.1), im.Requant([1, 1], [0, 0], OUT))
    fc = im.Linear("fc", "h", np.ones((1, 2)), np.zeros(1), 8, np.full(1, 0.1), im.Requant([1], [0], OUT))
    with pytest.raises(ModelError, match="layer 'h': hidden activations must use an unsigned grid"):
        im.IntegerModel([x, h, fc]).validate()


def test_shape_errors_name_the_layer():
    x = im.Input("x", (3, 8, 8), Grid(1.0, 0, 8, True))
    conv = im.Conv("c", "x", np.ones((4, 2, 3, 3)), np.zeros(4), 8, np.full(4, 0.1),
                   im.Requant(np.ones(4), np.zeros(4), OUT), groups=1)
    with pytest.raises(ModelError, match="layer 'c': weight .* does not fit 3 input channels"):
        im.IntegerModel([x, conv]).validate()
    with pytest.raises(ModelError, match="input 'missing' is not produced"):
        im.IntegerModel([x, im.Flatten("f", "missing")]).validate()


@pytest.mark.parametrize("bad", [dict(bits=1), dict(bits=9), dict(zero_point=256), dict(scale=0.0)])
def test_grid_rules(bad):
    kw = dict(scale=0.5, zero_point=0, bits=8, signed=False) | bad
    with pytest.raises(ModelError):
        Grid(**kw)


def test_examples_validate_in_every_mode():
    for build in examples.EXAMPLES.values():
        for kw in ({}, {"zero_points": "extreme"}, {"random_requant": True}, {"power_of_two": True}):
            build(np.random.default_rng(3), **kw).validate()
