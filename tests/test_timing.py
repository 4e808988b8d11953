"""Discount factors under each convention, by hand (docs/methodology.md, "Time and discounting")."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dealmodel.timing import Discount

V = 1 / 1.1


@pytest.mark.parametrize(("timing", "at_2_5", "at_0"), [
    ("exact", V**2.5, 1.0), ("end_of_year", V**3, V), ("mid_year", V**2.5, V**0.5), ("start_of_year", V**2, 1.0)])
def test_a_payment_inside_the_window(timing, at_2_5, at_0):
    d = Discount(0.10, 4, timing)
    np.testing.assert_allclose(d.lump(np.array([2.5, 0.0])), [at_2_5, at_0], rtol=1e-14)


@pytest.mark.parametrize("timing", ["exact", "end_of_year", "mid_year", "start_of_year"])
def test_nothing_at_or_after_the_horizon_or_before_the_start(timing):
    d = Discount(0.10, 4, timing)
    np.testing.assert_array_equal(d.lump(np.array([4.0, 4.5, 1e9, np.inf, -0.5])), 0.0)
    # the integral stops growing at the horizon
    assert d.integral(np.array([4.0]))[0] == d.integral(np.array([30.0]))[0] == d.integral(np.array([np.inf]))[0]
    assert d.integral(np.array([0.0]))[0] == 0.0 == d.integral(np.array([-2.0]))[0]


@pytest.mark.parametrize(("timing", "expected"), [
    ("exact", (1 - V**2.5) / math.log(1.1)),
    ("end_of_year", V + V**2 + 0.5 * V**3),
    ("mid_year", V**0.5 + V**1.5 + 0.5 * V**2.5),
    ("start_of_year", 1 + V + 0.5 * V**2),
])
def test_the_discounted_length_of_a_stretch(timing, expected):
    assert Discount(0.10, 4, timing).integral(np.array([2.5]))[0] == pytest.approx(expected, rel=1e-14)


def test_a_zero_rate_discounts_nothing():
    d = Discount(0.0, 10)
    np.testing.assert_allclose(d.lump(np.array([0.0, 3.3, 9.99])), 1.0)
    np.testing.assert_allclose(d.integral(np.array([0.0, 3.3, 12.0])), [0.0, 3.3, 10.0])


def test_an_unknown_convention_is_refused():
    with pytest.raises(ValueError, match="timing must be one of exact, end_of_year, mid_year, start_of_year"):
        Discount(0.1, 4, "quarterly")
