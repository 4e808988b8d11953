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
