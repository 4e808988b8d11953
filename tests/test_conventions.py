"""Timing conventions and royalty years, by hand on fixed paths.

Every success probability is 1, so each deal has one possible path and every number below is
computed by hand (in the comments) from the conventions in docs/methodology.md, not read from
the program's output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import dealmodel as dm
from tests.conftest import base_deal

V = 1 / 1.1  # discount factor of one year at 10%
LN = math.log(1.1)


def _product(name: str, filing_years: float, peak: float = 100.0, exclusivity: float = 30.0,
             partner_cost: float = 0.0) -> dict:
    """A candidate in filing that is approved for sure after ``filing_years``, then sells ``peak`` a year."""
    return {
        "name": name, "modality": "antibody", "start_phase": "filing",
        "phases": {"filing": {"success_probability": 1.0, "duration_years": filing_years,
                              "partner_cost": partner_cost}},
        "commercial": {"peak_sales": peak, "launch_curve": [1.0], "exclusivity_years": exclusivity,
                       "erosion_after_loe": 0.0, "cogs_fraction": 0.0, "opex_fraction": 0.0},
    }


def _deal(candidates: list[dict], terms: list[dict], horizon: int, rate: float = 0.0, timing: str = "exact"):
    data = base_deal(candidates=candidates, terms=terms, horizon_years=horizon, timing=timing,
                     parties={"sponsor": {"name": "S", "discount_rate": rate},
                              "partner": {"name": "P", "discount_rate": rate}})
    return dm.parse_deal(data)


def _one_path(deal) -> dm.SimulationResult:
    result = dm.simulate(deal, paths=50, seed=0)
    assert np.ptp(result.npv["partner"]) < 1e-9  # one possible future
    return result


# --------------------------------------------------------------------------- the four conventions

# A lump at 2.5 (approval milestone of 10), the upfront of 7 at 0, a spread (partner cost 20 over the
# filing phase [0, 2.5): 8 a year) and launch-year sales of 100 a year over [2.5, 4) (horizon 4).
CONVENTIONS = {
    #            lump at 2.5        upfront at 0    spread over [0, 2.5)                           sales over [2.5, 4)
    "exact": (10 * V**2.5, 7.0, 8 * (1 - V**2.5) / LN, 100 * (V**2.5 - V**4) / LN),
    "end_of_year": (10 * V**3, 7 * V, 8 * (V + V**2 + 0.5 * V**3), 100 * (0.5 * V**3 + V**4)),
    "mid_year": (10 * V**2.5, 7 * V**0.5, 8 * (V**0.5 + V**1.5 + 0.5 * V**2.5), 100 * (0.5 * V**2.5 + V**3.5)),
    "start_of_year": (10 * V**2, 7.0, 8 * (1 + V + 0.5 * V**2), 100 * (0.5 * V**2 + V**3)),
}


@pytest.mark.parametrize("timing", list(CONVENTIONS))
def test_lump_spread_and_sales_under_each_convention(timing):
    lump, upfront, spread, sales = CONVENTIONS[timing]
    terms = [{"kind": "milestone", "event": "approval", "amount": 10.0}, {"kind": "upfront", "amount": 7.0}]
    deal = _deal([_product("A", 2.5, partner_cost=20.0)], terms, horizon=4, rate=0.1, timing=timing)
    result = _one_path(deal)
    assert result.term_pv[0][0] == pytest.approx(lump, rel=1e-12)
    assert result.term_pv[1][0] == pytest.approx(upfront, rel=1e-12)
    assert result.npv["partner"][0] == pytest.approx(lump + upfront - spread, rel=1e-12)
    assert result.npv["sponsor"][0] == pytest.approx(sales - lump - upfront, rel=1e-12)


def test_one_candidate_under_start_of_year_is_the_textbook_decision_tree():
    # One-year phases from phase 2; each year's costs at its start, each sales year's revenue at the start of
    # the year it falls in (the end of the one before). Decision tree (Stewart, Allison & Johnson 2001):
    # rNPV = -C2 - p2 C3 v - p2 p3 Cf v^2 + p2 p3 pf sum_j S_j v^(3 + j)
    p2, p3, pf, c2, c3, cf = 0.4, 0.5, 0.9, 9.0, 30.0, 2.0
    cand = {
        "name": "A", "modality": "antibody", "start_phase": "phase2",
        "phases": {"phase2": {"success_probability": p2, "duration_years": 1.0, "cost": c2},
                   "phase3": {"success_probability": p3, "duration_years": 1.0, "cost": c3},
                   "filing": {"success_probability": pf, "duration_years": 1.0, "cost": cf}},
        "commercial": {"peak_sales": 500.0, "launch_curve": [0.2, 0.6, 1.0], "exclusivity_years": 30,
                       "erosion_after_loe": 0.0, "cogs_fraction": 0.1, "opex_fraction": 0.3},
    }
    deal = dm.parse_deal(base_deal(candidates=[cand], horizon_years=10, timing="start_of_year"))
    v = 1 / 1.15
    sales = [500 * s * (1 - 0.1 - 0.3) for s in (0.2, 0.6, 1.0, 1.0, 1.0, 1.0, 1.0)]  # launch at 3, to 10
    tree = -c2 - p2 * c3 * v - p2 * p3 * cf * v**2 + p2 * p3 * pf * sum(s * v ** (3 + j) for j, s in enumerate(sales))
    result = dm.simulate(deal, paths=200_000, seed=3)
    row = result.summary().loc["sponsor"]
    assert abs(row["expected_npv"] - tree) <= 4 * row["se_npv"]
    assert row["se_npv"] < 0.02 * abs(tree)


# --------------------------------------------------------------------------- royalty years


def _royalty(terms: list[dict], candidates: list[dict], horizon: int, rate: float = 0.0):
    deal = _deal(candidates, terms, horizon, rate=rate)
    result = _one_path(deal)
    return result.term_pv[0][0], result.cash_flows("partner")[0]


def test_royalty_term_ending_mid_year_pays_only_inside_the_term():
    # launch at 0.5, 100 a year at 10%, term 2.5 years -> [0.5, 3.0): 10 x 2.5 = 25, nothing in year 3
    total, by_year = _royalty([{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.1}], "term_years": 2.5}],
                              [_product("A", 0.5)], horizon=8)
    assert total == pytest.approx(25.0, rel=1e-12)
    np.testing.assert_allclose(by_year[:4], [5.0, 10.0, 10.0, 0.0], atol=1e-12)


def test_full_step_down_at_exclusivity_mid_year_stops_the_royalty_there():
    # launch 0.5, exclusivity 3.25 years -> LOE at 3.75; a 100% step-down: 10 a year over [0.5, 3.75) = 32.5
    total, by_year = _royalty([{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.1}], "loe_step_down": 1.0}],
                              [_product("A", 0.5, exclusivity=3.25)], horizon=8)
    assert total == pytest.approx(32.5, rel=1e-12)
    np.testing.assert_allclose(by_year[:5], [5.0, 10.0, 10.0, 7.5, 0.0], atol=1e-12)  # 0.75 of year 3
    assert np.all(by_year[4:] == 0.0)


def test_floor_keeps_the_stepped_down_rate():
    # as above with a 3% floor: 32.5 + 3% x 100 x (8 - 3.75) = 32.5 + 12.75
    total, _ = _royalty([{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.1}], "loe_step_down": 1.0,
                          "floor_rate": 0.03}], [_product("A", 0.5, exclusivity=3.25)], horizon=8)
    assert total == pytest.approx(45.25, rel=1e-12)


@pytest.mark.parametrize("basis", ["product", "aggregate"])  # one product: the same either way
def test_later_of_years_and_exclusivity(basis):
    # term 2 years or LOE at 3.25 years, the later: [0.5, 3.75) at 10 a year = 32.5
    total, _ = _royalty([{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.1}], "term_years": 2.0,
                          "term_end": "later_of_years_and_exclusivity", "tier_basis": basis}],
                        [_product("A", 0.5, exclusivity=3.25)], horizon=8)
    assert total == pytest.approx(32.5, rel=1e-12)


def test_tiers_cross_inside_a_royalty_year():
    # 5% to 60 of a royalty year's sales, 10% above. Launch at 0.5, 100 a year; horizon 4.
    # Each whole royalty year: 0.05 x 60 + 0.10 x 40 = 7; the last half year [3.5, 4): 0.05 x 50 = 2.5.
    tiers = [{"above": 0, "rate": 0.05}, {"above": 60, "rate": 0.10}]
    total, by_year = _royalty([{"kind": "royalty", "tiers": tiers}], [_product("A", 0.5)], horizon=4)
    assert total == pytest.approx(3 * 7 + 2.5, rel=1e-12)
    # calendar year 0 holds the first half of royalty year 0 (50 counted, all at 5%) = 2.5; year 1 the rest of
    # it (50 -> 100: 0.05 x 10 + 0.10 x 40 = 4.5) plus the first half of royalty year 1 (2.5) = 7.0
    np.testing.assert_allclose(by_year, [2.5, 7.0, 7.0, 7.0], atol=1e-12)
    # discounted exactly at 10%: the first royalty year pays 5 a year over [0.5, 1.1), 10 a year over [1.1, 1.5)
    discounted, _ = _royalty([{"kind": "royalty", "tiers": tiers}], [_product("A", 0.5)], horizon=2, rate=0.1)
    first = (5 * (V**0.5 - V**1.1) + 10 * (V**1.1 - V**1.5)) / LN
    second_half = 5 * (V**1.5 - V**2) / LN  # [1.5, 2): 50 counted, under the first bound
    assert discounted == pytest.approx(first + second_half, rel=1e-12)


def test_aggregate_tiers_count_every_covered_product():
    # A launches at 0.5, B at 1.0, 100 a year each; 5% to 120 of the royalty year's combined sales, 10% above.
    # Royalty years from 0.5. Year [0.5, 1.5): 50 (A alone) then 200 a year -> 120 reached at 1.35, 150 in all:
    # 0.05 x 120 + 0.10 x 30 = 9. Years [1.5, 2.5) and [2.5, 3.5): 200 each -> 6 + 8 = 14. Total 37.
    tiers = [{"above": 0, "rate": 0.05}, {"above": 120, "rate": 0.10}]
    products = [_product("A", 0.5), _product("B", 1.0)]
    total, _ = _royalty([{"kind": "royalty", "tier_basis": "aggregate", "tiers": tiers}], products, horizon=3)
    # horizon 3 cuts the last year at 3.0: [2.5, 3.0) counts 100, all under 120: 5
    assert total == pytest.approx(9 + 14 + 5, rel=1e-12)
    per_product, _ = _royalty([{"kind": "royalty", "tiers": tiers}], products, horizon=3)
    # per product each royalty year's 100 stays under 120: 5% of A's 2.5 and B's 2 years of sales
    assert per_product == pytest.approx(0.05 * 100 * (2.5 + 2.0), rel=1e-12)


def test_cap_stops_the_royalty_when_reached():
    # 10 a year from 0.5, cumulative cap 12 reached at 1.7; nothing after
    total, by_year = _royalty([{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.1}], "cap": 12.0}],
                              [_product("A", 0.5)], horizon=6)
    assert total == pytest.approx(12.0, rel=1e-12)
    np.testing.assert_allclose(by_year[:3], [5.0, 7.0, 0.0], atol=1e-12)


def test_sales_milestone_is_paid_at_the_end_of_the_first_royalty_year_at_threshold():
    # launch 0.5 with the curve 40 / 100 a year: the threshold 80 is first reached in royalty year 1, [1.5, 2.5)
    product = _product("A", 0.5)
    product["commercial"]["launch_curve"] = [0.4, 1.0]
    terms = [{"kind": "milestone", "event": "annual_sales", "threshold": 80.0, "amount": 10.0}]
    deal = _deal([product], terms, horizon=6, rate=0.1)
    result = _one_path(deal)
    assert result.term_pv[0][0] == pytest.approx(10 * V**2.5, rel=1e-12)


def test_a_run_of_one_path_books_its_sales_terms():
    # paths=1: one launched row. Launch at 1, sales 100 a year over [1, 4), cost of goods 20%, no discounting:
    # royalty 10% -> 30; supply at cost + 10% -> 0.2 x 100 x 1.1 x 3 = 66; a milestone on annual sales of at
    # least 100 -> paid at 2, the end of the first year that reaches it (sales exactly at the threshold count)
    product = _product("A", 1.0)
    product["commercial"]["cogs_fraction"] = 0.2
    terms = [{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.1}]},
             {"kind": "supply", "markup": 0.1},
             {"kind": "milestone", "event": "annual_sales", "threshold": 100.0, "amount": 5.0}]
    result = dm.simulate(_deal([product], terms, horizon=4), paths=1, seed=0)
    np.testing.assert_allclose(result.term_pv[:, 0], [30.0, 66.0, 5.0], rtol=1e-12)
    # the partner's year: royalty 10 + supply 22 - the cost of goods it now makes, 20; the milestone in year 2
    assert result.per_year().query("party == 'partner'")["mean"].tolist() == pytest.approx([0.0, 12.0, 17.0, 12.0])


def test_a_royalty_cap_counts_only_what_is_paid_not_the_years_without_sales():
    # launch at 1, no sales in the first launch year, then 100 a year; 10% royalty capped at 15: 10 a year
    # from 2 until 15 is paid at 3.5 (no discounting); the year without sales takes nothing from the cap
    product = _product("A", 1.0)
    product["commercial"]["launch_curve"] = [0.0, 1.0]
    terms = [{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.1}], "cap": 15.0}]
    result = _one_path(_deal([product], terms, horizon=6))
    assert result.term_pv[0][0] == pytest.approx(15.0, rel=1e-12)
    partner = result.per_year().query("party == 'partner'")["mean"].tolist()
    assert partner == pytest.approx([0.0, 0.0, 10.0, 5.0, 0.0, 0.0], abs=1e-12)
    # and a tier above 150 a royalty year, never reached by sales of 100, takes nothing from it either
    tiers = [{"above": 0, "rate": 0.1}, {"above": 150, "rate": 0.2}]
    result = _one_path(_deal([product], [terms[0] | {"tiers": tiers}], horizon=6))
    assert result.term_pv[0][0] == pytest.approx(15.0, rel=1e-12)


def test_tiers_counted_over_products_launched_at_different_times_follow_each_products_launch_years():
    # A launches at 1, B at 1.5; each sells 50 in its first launch year, then 100 a year; horizon 4, no
    # discounting. Royalty years follow A (the first launch): [1, 2), [2, 3), [3, 4). B's rate changes at 2.5,
    # inside a royalty year. Sales: A 50 + 2 x 100 = 250, B 50 + 1.5 x 100 = 200; 10% of 450 = 45, and
    # with tiers at 0% below 100 a royalty year and 20% above: year [1, 2): A 50 + B 25 = 75 -> 0;
    # [2, 3): A 100 + B 25 + 50 = 175 -> 15; [3, 4): 200 -> 20
    a, b = _product("A", 1.0), _product("B", 1.5)
    for p in (a, b):
        p["commercial"]["launch_curve"] = [0.5, 1.0]
    flat = [{"kind": "royalty", "tier_basis": "aggregate", "tiers": [{"above": 0, "rate": 0.1}]}]
    tiered = [{"kind": "royalty", "tier_basis": "aggregate",
               "tiers": [{"above": 0, "rate": 0.0}, {"above": 100, "rate": 0.2}]}]
    assert _one_path(_deal([a, b], flat, horizon=4)).term_pv[0][0] == pytest.approx(45.0, rel=1e-12)
    assert _one_path(_deal([a, b], tiered, horizon=4)).term_pv[0][0] == pytest.approx(35.0, rel=1e-12)

