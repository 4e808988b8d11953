"""Hypothesis properties: payments move cash, they never create it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import dealmodel as dm
from tests.conftest import base_deal, candidate

PATHS = 3_000
SETTINGS = settings(max_examples=12, deadline=None)


def _deal(royalty: float, milestone: float, peak: float = 800.0, p_filing: float = 0.9) -> dm.Deal:
    c = candidate("A", batch_failure_rate=0.05)
    c["commercial"]["peak_sales"] = {"dist": "lognormal", "median": peak, "p90": peak * 2.5}
    c["phases"]["phase3"]["duration_years"] = {"dist": "triangular", "low": 2.0, "mode": 2.6, "high": 3.5}
    c["phases"]["filing"]["success_probability"] = p_filing
    terms = [
        {"kind": "service_fees", "markup": 0.1, "at_risk_fraction": 0.2},
        {"kind": "milestone", "event": "approval", "amount": milestone},
        {"kind": "royalty", "tiers": [{"above": 0, "rate": royalty}, {"above": 500, "rate": min(1.0, royalty * 1.5)}]},
    ]
    return dm.parse_deal(base_deal(candidates=[c, candidate("B", start_phase="phase3")], terms=terms,
                                   correlation={"rho": 0.3}))


rates = st.floats(0.0, 0.3, allow_nan=False)
amounts = st.floats(0.0, 200.0, allow_nan=False)
ups = st.floats(0.001, 0.2, allow_nan=False)


@SETTINGS
@given(rate=rates, bump=ups, milestone=amounts, seed=st.integers(0, 2**32 - 1))
def test_raising_a_royalty_rate_moves_value_from_sponsor_to_partner(rate, bump, milestone, seed):
    low = dm.simulate(_deal(rate, milestone), paths=PATHS, seed=seed)
    high = dm.simulate(_deal(rate + bump, milestone), paths=PATHS, seed=seed)
    assert np.all(high.npv["partner"] >= low.npv["partner"] - 1e-9)
    assert np.all(high.npv["sponsor"] <= low.npv["sponsor"] + 1e-9)
    np.testing.assert_allclose(high.cash_flows("program"), low.cash_flows("program"), rtol=0, atol=1e-9)


@SETTINGS
@given(rate=rates, milestone=amounts, bump=st.floats(0.01, 100.0), seed=st.integers(0, 2**32 - 1))
def test_raising_a_milestone_moves_value_from_sponsor_to_partner(rate, milestone, bump, seed):
    low = dm.simulate(_deal(rate, milestone), paths=PATHS, seed=seed).summary()
    high = dm.simulate(_deal(rate, milestone + bump), paths=PATHS, seed=seed).summary()
    assert high.loc["partner", "expected_npv"] >= low.loc["partner", "expected_npv"]
    assert high.loc["sponsor", "expected_npv"] <= low.loc["sponsor", "expected_npv"]
    assert abs(high.loc["program", "expected_npv"] - low.loc["program", "expected_npv"]) < 1e-9


@SETTINGS
@given(peak=st.floats(50.0, 3000.0), factor=st.floats(1.01, 3.0), seed=st.integers(0, 2**32 - 1))
def test_raising_peak_sales_never_lowers_the_programs_value(peak, factor, seed):
    low = dm.simulate(_deal(0.05, 10.0, peak=peak), paths=PATHS, seed=seed)
    high = dm.simulate(_deal(0.05, 10.0, peak=peak * factor), paths=PATHS, seed=seed)
    assert np.all(high.npv["program"] >= low.npv["program"] - 1e-9)


@SETTINGS
@given(p=st.floats(0.05, 0.9), bump=st.floats(0.01, 0.1), seed=st.integers(0, 2**32 - 1))
def test_raising_the_approval_probability_never_lowers_the_programs_value(p, bump, seed):
    low = dm.simulate(_deal(0.05, 10.0, p_filing=p), paths=PATHS, seed=seed)
    high = dm.simulate(_deal(0.05, 10.0, p_filing=min(1.0, p + bump)), paths=PATHS, seed=seed)
    assert np.all(high.npv["program"] >= low.npv["program"] - 1e-9)
    assert high.summary().loc["program", "expected_npv"] >= low.summary().loc["program", "expected_npv"]
