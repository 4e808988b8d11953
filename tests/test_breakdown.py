"""Each candidate's contribution to each party's value, against the closed form per candidate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import dealmodel as dm
from dealmodel.breakdown import SHARED, TOTAL, candidate_values
from tests.closed_form import Cand, Disc, phase_pv, royalty_pv, term_pv
from tests.conftest import base_deal, candidate

UPFRONT = 12.5
TERMS = [
    {"kind": "upfront", "amount": UPFRONT},
    {"kind": "service_fees", "markup": 0.2, "at_risk_fraction": 0.3, "success_premium": 0.5},
    {"kind": "milestone", "event": "phase3_start", "amount": 15.0},
    {"kind": "royalty", "tiers": [{"above": 0, "rate": 0.05}], "candidates": ["B"]},
]


def _data() -> dict:
    b = candidate("B", start_phase="phase1")
    b["commercial"].update({"peak_sales": 1200.0, "exclusivity_years": 10.0, "launch_curve": [0.3, 0.7]})
    return base_deal(candidates=[candidate("A"), b], terms=TERMS, horizon_years=28)


def _by_hand(data: dict) -> dict[str, dict[str, float]]:
    """Each candidate's own flows plus every candidate-level term's payments for it; the upfront is shared."""
    H = data["horizon_years"]
    ds, dp = Disc(0.15, H), Disc(0.10, H)
    out = {}
    for spec in data["candidates"]:
        c = Cand(spec, H)
        sponsor = -phase_pv(c, c.cost, ds) + c.p_approval * c.sales_pv(ds, 1 - c.opex - c.cogs)
        partner = -phase_pv(c, c.pcost, dp)
        for t in TERMS[1:3]:
            sponsor -= term_pv(t, c, ds)
            partner += term_pv(t, c, dp)
        if c.name == "B":
            sponsor -= royalty_pv(TERMS[3], [c], ds)
            partner += royalty_pv(TERMS[3], [c], dp)
        out[c.name] = {"sponsor": sponsor, "partner": partner}
    out[SHARED] = {"sponsor": -UPFRONT, "partner": UPFRONT}
    return out


def test_each_candidates_contribution_matches_the_closed_form():
    data = _data()
    frame = candidate_values(dm.parse_deal(data), paths=100_000, seed=5)
    expected = _by_hand(data)
    for row, parties in expected.items():
        for party, value in parties.items():
            se = frame.loc[row, f"{party}_se"]
            assert abs(frame.loc[row, party] - value) <= 4 * se + 1e-9, (row, party, frame.loc[row, party], value, se)
    # the candidates' values differ enough that a mix-up would show
    assert abs(expected["A"]["sponsor"] - expected["B"]["sponsor"]) > 10 * frame.loc["A", "sponsor_se"]


def test_the_total_is_the_simulated_mean_of_the_same_futures():
    data = _data()  # over three chunks of paths, with a fee indexed by a random price index
    data["terms"][1] = {**data["terms"][1], "escalation": {"dist": "uniform", "low": 0.0, "high": 0.06}}
    deal = dm.parse_deal(data)
    frame = candidate_values(deal, paths=35_000, seed=9)
    result = dm.simulate(deal, paths=35_000, seed=9)
    assert frame.index.name == "candidate"
    for party in ("sponsor", "partner", "program"):
        x = result.npv[party]
        assert frame.loc[TOTAL, party] == pytest.approx(float(np.mean(x)), rel=1e-9, abs=1e-9)
        assert frame.loc[TOTAL, f"{party}_se"] == pytest.approx(float(np.std(x, ddof=1) / np.sqrt(x.size)), rel=1e-9)
        rows = frame[party].drop(TOTAL)
        assert rows.sum() == pytest.approx(frame.loc[TOTAL, party], rel=1e-12, abs=1e-9)


def test_an_aggregate_tier_shows_as_an_interaction_in_the_shared_row():
    # Tiers counted over both products: valued alone, each candidate stays in the low tier; together
    # they reach the high one, and the difference is the shared row's, paid to the partner.
    data = _data()
    data["terms"] = [{"kind": "royalty", "tier_basis": "aggregate",
                      "tiers": [{"above": 0, "rate": 0.02}, {"above": 900, "rate": 0.20}]}]
    for c in data["candidates"]:
        for phase in c["phases"].values():
            phase["success_probability"] = 1.0
    data["candidates"][0]["commercial"]["peak_sales"] = 600.0
    data["candidates"][1]["commercial"]["peak_sales"] = 600.0
    frame = candidate_values(dm.parse_deal(data), paths=2_000, seed=1)
    assert frame.loc[SHARED, "partner"] > 1.0
    assert frame.loc[SHARED, "sponsor"] < -1.0
    assert frame.loc[SHARED, "program"] == pytest.approx(0.0, abs=1e-9)  # payments between the parties net out


def test_the_default_seed_is_zero_and_two_paths_give_the_sample_standard_error():
    deal = dm.parse_deal(_data())
    frame = candidate_values(deal, paths=2)
    pd.testing.assert_frame_equal(frame, candidate_values(deal, paths=2, seed=0))
    x = dm.simulate(deal, paths=2, seed=0).npv["partner"]
    assert abs(x[0] - x[1]) > 1.0  # two different futures, so the divisor shows
    assert frame.loc[TOTAL, "partner_se"] == pytest.approx(abs(x[0] - x[1]) / 2, rel=1e-9)  # sd(ddof=1) / sqrt 2


def test_with_no_terms_across_candidates_nothing_is_shared():
    # Every term here is a candidate's own: fees indexed by a random price index, a royalty and a
    # reservation (with the partner's own cost of the reserved line and resale of released capacity)
    # on one candidate each, listed B's before A's. Valued alone they are valued as in the deal, so
    # the candidates' rows add up to the total and the shared row is zero on every party.
    data = _data()
    data["terms"] = [
        {"kind": "royalty", "tiers": [{"above": 0, "rate": 0.05}], "candidates": ["B"]},
        {"kind": "service_fees", "markup": 0.2, "candidates": ["B"],
         "escalation": {"dist": "uniform", "low": 0.0, "high": 0.08}},
        {"kind": "service_fees", "markup": 0.1, "candidates": ["A"],
         "escalation": {"dist": "uniform", "low": 0.02, "high": 0.06}},
        {"kind": "capacity_reservation", "fee_per_year": 4.0, "end_years": 9.0, "candidates": ["A"],
         "partner_cost_per_year": 1.5, "resale_utilisation": 0.5},
    ]
    frame = candidate_values(dm.parse_deal(data), paths=3_000, seed=2)
    for party in ("sponsor", "partner", "program"):
        assert frame.loc[SHARED, party] == pytest.approx(0.0, abs=1e-9)
    # and each candidate's row moves when its own terms are dropped (so the check above has teeth)
    without = candidate_values(dm.parse_deal({**data, "terms": data["terms"][:2]}), paths=3_000, seed=2)
    assert abs(frame.loc["A", "partner"] - without.loc["A", "partner"]) > 1.0
    assert frame.loc["B", "partner"] == pytest.approx(without.loc["B", "partner"], rel=1e-12)


def test_program_level_terms_are_the_shared_rows_and_leave_the_candidates_rows_alone():
    # An option fee paid at signing, a milestone on the first approval and a reservation for the
    # whole program belong to no candidate: adding them leaves every candidate's row unchanged and
    # moves the shared row by exactly their expected present value (partner rate; t = 0 for the fee).
    data = _data()
    data["terms"] = [{"kind": "option", "exercise_at": "phase3_start", "royalty_rate": 0.02, "exercise_fee": 3.0}]
    base = candidate_values(dm.parse_deal(data), paths=3_000, seed=4)
    for party in ("sponsor", "partner", "program"):  # an option without a fee is each candidate's own
        assert base.loc[SHARED, party] == pytest.approx(0.0, abs=1e-9)
    extra = [{"kind": "milestone", "event": "approval_count", "count": 1, "amount": 40.0},
             {"kind": "capacity_reservation", "fee_per_year": 4.0, "end_years": 9.0, "scope": "program",
              "notice_years": 1.0}]
    with_fee = {**data, "terms": [{**data["terms"][0], "option_fee": 6.0}, *extra]}
    deal = dm.parse_deal(with_fee)
    frame = candidate_values(deal, paths=3_000, seed=4)
    for row in ("A", "B"):
        for party in ("sponsor", "partner", "program"):
            assert frame.loc[row, party] == pytest.approx(base.loc[row, party], rel=1e-12, abs=1e-12)
    result = dm.simulate(deal, paths=3_000, seed=4)
    # the partner pays the option fee (to the sponsor) and receives the other two; partner rate, as term_pv
    shared_pv = -6.0 + float(result.term_pv[1].mean() + result.term_pv[2].mean())
    assert float(result.term_pv[2].mean()) > 1.0 and float(result.term_pv[1].mean()) > 0.5
    assert frame.loc[SHARED, "partner"] - base.loc[SHARED, "partner"] == pytest.approx(shared_pv, rel=1e-9)
