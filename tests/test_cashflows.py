"""The Ledger, number by number: lumps, spans, chains, windows and price indices on hand-made flows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dealmodel.cashflows import Ledger
from dealmodel.timing import Discount

V, LN = 1 / 1.1, math.log(1.1)


def _ledger() -> Ledger:
    led = Ledger(3)
    led.lump(np.array([0.0, 1.5, np.inf]), np.array([2.0, 3.0, 4.0]))           # path 2's lump never happens
    led.span(np.array([0.5, 2.0]), np.array([2.5, 2.0]), 6.0, rows=np.array([1, 2]))  # path 2's span is empty
    led.chain(np.array([[1.0, 2.0, 4.0]]), np.array([[1.0, 2.0]]), rows=np.array([2]))
    return led


def test_totals_present_values_and_the_yearly_table():
    led = _ledger()
    np.testing.assert_allclose(led.total(10), [2.0, 3.0 + 12.0, 1.0 + 4.0], rtol=1e-12)
    pv = led.pv(Discount(0.10, 10))
    by_hand = [2.0, 3.0 * V**1.5 + 6 * (V**0.5 - V**2.5) / LN, (V**1 - V**2) / LN + 2 * (V**2 - V**4) / LN]
    np.testing.assert_allclose(pv, by_hand, rtol=1e-12)
    np.testing.assert_allclose(led.annual(5), [[2, 0, 0, 0, 0], [3.0, 6 + 3.0, 3.0, 0, 0], [0, 1, 2, 2, 0]],
                               atol=1e-12)


def test_a_window_keeps_what_falls_inside_it():
    led = _ledger()
    lo, hi = np.array([0.0, 1.5, 1.5]), np.array([1.0, 2.0, 3.0])
    inside = led.clipped(lo, hi)
    # path 0: the lump at 0 (the window's start counts); path 1: the lump at 1.5 and the span's [1.5, 2)
    # path 2: the chain's [1.5, 2) at 1 and [2, 3) at 2
    np.testing.assert_allclose(inside.total(10), [2.0, 3.0 + 3.0, 0.5 + 2.0], rtol=1e-12)
    np.testing.assert_allclose(led.clipped(np.zeros(3), np.array([0.0, 1.5, 1.0])).total(10), [0, 6.0, 0],
                               atol=1e-12)  # a window's end is outside it: the lumps at 0 and 1.5 are not
    negative = led.clipped(lo, hi, scale=-2.0, mask=np.array([False, True, True]))
    np.testing.assert_allclose(negative.total(10), [0.0, -12.0, -5.0], rtol=1e-12)
    both = Ledger(3)
    both.absorb(led)
    both.absorb(negative)
    np.testing.assert_allclose(both.total(10), led.total(10) + negative.total(10), rtol=1e-12)


def test_a_price_index_per_path_reaches_the_right_rows():
    # paths 0 and 2 carry flows; path 1 none. Each path's own index: 0%, 50%, 10%.
    index = np.array([0.0, 0.5, 0.1])
    led = Ledger(3)
    led.span(np.array([0.5, 0.5]), np.array([2.5, 2.5]), np.array([1.0, 2.0]), rows=np.array([0, 2]), index=index)
    led.lump(np.array([1.5, 3.2]), 10.0, rows=np.array([2, 0]), index=index)
    # path 0: rate 1 for 2 years, lump 10 at 3.2 (no index); path 2: 2 a year x 1, 1.1, 1.21 by year; 10 x 1.1
    np.testing.assert_allclose(led.total(10), [2.0 + 10.0, 0.0, 2 * (0.5 + 1.1 + 0.5 * 1.21) + 11.0], rtol=1e-12)
    table = led.annual(4)
    np.testing.assert_allclose(table[2], [1.0, 2.2 + 11.0, 1.21, 0.0], rtol=1e-12)
    np.testing.assert_allclose(table[0], [0.5, 1.0, 0.5, 10.0], rtol=1e-12)


def test_empty_and_instant_intervals():
    led = Ledger(2)
    led.spread_chain(np.array([[0.0, 0.0, 2.0], [1.0, 3.0, 3.0]]), np.array([[5.0, 4.0], [6.0, 7.0]]))
    # an interval that takes no time pays at its start: path 0's 5 at 0, path 1's 7 at 3
    np.testing.assert_allclose(led.total(10), [9.0, 13.0], rtol=1e-12)
    np.testing.assert_allclose(led.annual(4), [[5 + 2, 2, 0, 0], [0, 3, 3, 7]], atol=1e-12)
    assert led.pv(Discount(0.1, 10))[1] == pytest.approx(3 * (V - V**3) / LN + 7 * V**3, rel=1e-12)


def test_no_amount_is_special():
    # a payment of exactly 1 or a rate of exactly 1 counts like any other; only zeros and never-paid lumps drop
    led = Ledger(1)
    led.lump(np.array([0.5, 2.0, np.inf]), np.array([1.0, 0.0, 5.0]))
    led.span(np.array([1.0]), np.array([3.0]), 1.0)
    assert led.total(10)[0] == pytest.approx(1.0 + 2.0, rel=1e-15)
    np.testing.assert_allclose(led.annual(4)[0], [1.0, 1.0, 1.0, 0.0])


def test_a_chain_under_a_price_index_on_rows_that_start_at_different_times():
    # row 0 over [0, 2), row 1 over [3, 5), both 1 a year, indexed 10% a year from year 0: each row is
    # cut at its own new years only (row 1 has nothing before 3)
    led = Ledger(2)
    led.chain(np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]), np.array([[1.0, 1.0], [1.0, 1.0]]), index=0.1)
    np.testing.assert_allclose(led.total(10), [1.0 + 1.1, 1.1**3 + 1.1**4], rtol=1e-12)
    np.testing.assert_allclose(led.annual(6)[1], [0, 0, 0, 1.1**3, 1.1**4, 0], atol=1e-12)


def test_an_interval_that_ends_before_it_starts_or_never_starts_books_nothing():
    for index in (0.0, 0.1):
        led = Ledger(3)
        led.span(np.array([2.0, np.inf, 1.0]), np.array([1.0, np.inf, 2.5]), 5.0, index=index)
        # only path 2 pays: 5 a year over [1, 2.5), at 1.1 and 1.21 with the index
        expected = 7.5 if index == 0.0 else 5 * (1.1 + 0.5 * 1.21)
        np.testing.assert_allclose(led.total(10), [0.0, 0.0, expected], rtol=1e-12)
        assert led.pv(Discount(0.1, 10))[0] == 0.0
    never = Ledger(2)  # a span on paths that never reach it, under an index: nothing, and no error
    never.span(np.array([np.inf, np.inf]), np.array([np.inf, np.inf]), 1.0, index=0.05)
    np.testing.assert_allclose(never.total(10), [0.0, 0.0])


def test_a_lump_in_year_zero_is_not_indexed_and_one_past_the_table_is_left_out_of_it():
    led = Ledger(2)
    led.lump(np.array([0.5, 7.0]), 10.0, index=0.1)  # year 0: x 1.1^0; year 7: x 1.1^7, after a 4-year table
    np.testing.assert_allclose(led.total(10), [10.0, 10 * 1.1**7], rtol=1e-12)
    np.testing.assert_allclose(led.annual(4), [[10.0, 0, 0, 0], [0, 0, 0, 0]], atol=1e-12)
