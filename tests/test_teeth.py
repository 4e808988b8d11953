"""Checks sharp enough that a planted bug in the model core cannot hide in Monte Carlo noise.

Where a deal's inputs are fixed, every payment on a path is a fixed amount times an indicator of
which candidates reached which event. Replacing the probabilities of the closed form by the
frequencies realised on the simulated paths then leaves no sampling error at all: the simulated
mean must equal that conditional closed form to rounding. Each expected value below comes from
tests/closed_form.py or a cited formula, never from the program's own output.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from scipy import stats

import dealmodel as dm
from dealmodel import metrics
from dealmodel.program import simulate_program
from tests.closed_form import Cand, Disc, royalty_stream_pv, term_pv
from tests.conftest import base_deal, candidate

ROYALTY = {"kind": "royalty", "tiers": [{"above": 0, "rate": 0.05}, {"above": 300, "rate": 0.08}],
           "term_years": 9.5, "loe_step_down": 0.5, "cap": 500.0}


def _two_candidates(terms: list[dict]) -> dict:
    b = candidate("B", start_phase="phase1")
    b["commercial"].update({"peak_sales": 1200.0, "exclusivity_years": 10.0, "launch_curve": [0.3, 0.7]})
    return base_deal(candidates=[candidate("A"), b], terms=terms, horizon_years=28)


def _conditional_royalty(term: dict, data: dict, approved: dict[str, float]) -> float:
    """Sum over candidates of (realised approval frequency) x (the royalty's PV on an approved path)."""
    H = data["horizon_years"]
    d = Disc(data["parties"]["partner"]["discount_rate"], H)
    return sum(approved[c["name"]] * royalty_stream_pv(term, [Cand(c, H)], d) for c in data["candidates"])


def test_royalty_matches_the_conditional_closed_form_to_rounding():
    data = _two_candidates([ROYALTY])
    result = dm.simulate(dm.parse_deal(data), paths=40_000, seed=17)
    approved = {name: row["prob_approval"] for name, row in result.candidates.items()}
    assert result.term_pv[0].mean() == pytest.approx(_conditional_royalty(ROYALTY, data, approved), rel=1e-10)


@pytest.mark.parametrize("change", [{"term_years": None}, {"loe_step_down": 0.0}, {"cap": None}, {"tiers": None}])
def test_the_royalty_case_depends_on_its_term_step_down_cap_and_tiers(change):
    # The case above cannot go blind: removing any one feature moves the oracle's value, so an engine that
    # ignored it would fail the check to rounding.
    data = _two_candidates([ROYALTY])
    ones = {"A": 1.0, "B": 1.0}
    as_written = _conditional_royalty(ROYALTY, data, ones)
    changed = copy.deepcopy(ROYALTY)
    for key, value in change.items():
        if key == "tiers":
            changed["tiers"] = [{"above": 0, "rate": 0.05}]
        elif value is None:
            del changed[key]
        else:
            changed[key] = value
    assert abs(_conditional_royalty(changed, data, ones) - as_written) > 0.5


@pytest.mark.parametrize("term", [
    {"kind": "milestone", "event": "approval", "amount": 20.0},
    {"kind": "milestone", "event": "annual_sales", "threshold": 400.0, "amount": 30.0},
    {"kind": "supply", "markup": 0.25},
])
def test_approval_linked_terms_match_the_conditional_closed_form(term):
    data = _two_candidates([term])
    result = dm.simulate(dm.parse_deal(data), paths=40_000, seed=5)
    H = data["horizon_years"]
    d = Disc(0.10, H)
    expected = 0.0
    for spec in data["candidates"]:
        c = Cand(spec, H)
        expected += result.candidates[c.name]["prob_approval"] * term_pv(term, c, d) / c.p_approval
    assert result.term_pv[0].mean() == pytest.approx(expected, rel=1e-10)


def test_deferred_fees_are_paid_on_success_not_on_reaching_the_phase():
    # A deferred fee is due at the end of a phase that succeeds: its count is the number of successes,
    # which on the paths is P(reach the next phase) (the filing phase's success is approval).
    term = {"kind": "service_fees", "markup": 0.0, "at_risk_fraction": 1.0, "success_premium": 0.5}
    c = candidate("A")
    for phase in c["phases"].values():
        phase["partner_cost"] = 10.0
        phase["duration_years"] = 1.0
    data = base_deal(candidates=[c], terms=[term], parties={"sponsor": {"name": "S", "discount_rate": 0.0},
                                                            "partner": {"name": "P", "discount_rate": 0.0}})
    result = dm.simulate(dm.parse_deal(data), paths=40_000, seed=2)
    row = result.candidates["A"]
    successes = row["prob_reach_phase3"] + row["prob_reach_filing"] + row["prob_approval"]
    assert result.term_pv[0].mean() == pytest.approx(15.0 * successes, rel=1e-12)
    reached = 1.0 + row["prob_reach_phase3"] + row["prob_reach_filing"]
    assert abs(15.0 * reached - 15.0 * successes) > 5.0  # paying on reaching would be far off


def test_within_group_pairwise_correlation_is_the_bivariate_normal_value():
    # Two candidates of one platform group with latent correlation rho pass a phase together with
    # probability Phi2(z, z; rho), z = Phi^-1(p) (the one-factor copula); a candidate of another group with
    # probability p^2. A copula that used rho where sqrt(rho) belongs would give Phi2(z, z; rho^2).
    rho, p, n = 0.5, 0.4, 200_000
    cands = [candidate(x, platform=g) for x, g in (("A", "g"), ("B", "g"), ("C", "h"))]
    for c in cands:
        c["phases"]["phase2"]["success_probability"] = p
    deal = dm.parse_deal(base_deal(candidates=cands, correlation={"rho": 0.0, "groups": {"g": rho}}))
    blocks = math.ceil(n / 8192)
    program = simulate_program(deal, seed=3, first_block=0, n_blocks=blocks, n=n)
    ok = [cp.succeeded[:, 0] for cp in program.candidates]
    z = stats.norm.ppf(p)
    both = stats.multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([z, z])
    wrong = stats.multivariate_normal(mean=[0, 0], cov=[[1, rho**2], [rho**2, 1]]).cdf([z, z])
    se = math.sqrt(both * (1 - both) / n)
    assert abs(np.mean(ok[0] & ok[1]) - both) <= 4 * se
    assert abs(wrong - both) > 10 * se  # the check tells the two copulas apart
    assert abs(np.mean(ok[0] & ok[2]) - p * p) <= 4 * math.sqrt(p * p * (1 - p * p) / n)


def test_risk_share_on_noisy_data_is_cov_over_var():
    rng = np.random.default_rng(7)
    program = rng.lognormal(0.0, 1.0, 50_000) * 100 - 120
    party = 0.35 * program + rng.normal(0.0, 40.0, program.size) + 0.001 * program**2
    expected = np.cov(party, program, ddof=0)[0, 1] / np.var(program)
    assert metrics.risk_share(party, program) == pytest.approx(expected, rel=1e-12)
    assert metrics.risk_share(party, program) != pytest.approx(0.35, abs=0.01)  # not the linear part alone


def test_per_year_means_match_the_closed_form():
    # One candidate in filing (1 year, success 0.5), then 100 a year for ever, a flat 10% royalty: the
    # partner receives 10 a year from t = 1 on the approved half of the paths. Mean per calendar year: 0 in
    # year 0, then 0.5 x 10 (with the realised approval frequency in place of 0.5, to rounding).
    cand = {
        "name": "X", "modality": "antibody", "start_phase": "filing",
        "phases": {"filing": {"success_probability": 0.5, "duration_years": 1.0}},
        "commercial": {"peak_sales": 100.0, "launch_curve": [1.0], "exclusivity_years": 30,
                       "erosion_after_loe": 0.0, "cogs_fraction": 0.0, "opex_fraction": 0.0},
    }
    data = base_deal(candidates=[cand], horizon_years=6,
                     terms=[{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.1}]}])
    result = dm.simulate(dm.parse_deal(data), paths=20_000, seed=1)
    p_hat = result.candidates["X"]["prob_approval"]
    table = result.per_year()
    partner = table[table["party"] == "partner"]
    np.testing.assert_allclose(partner["mean"], [0.0] + [10 * p_hat] * 5, rtol=1e-12, atol=1e-12)
    assert list(partner["year"]) == [2026, 2027, 2028, 2029, 2030, 2031]
    assert abs(p_hat - 0.5) < 0.02


def test_risk_and_value_share_are_undefined_where_they_mean_nothing():
    # A program whose NPV is the same on every path up to rounding (spread 3e-15 on values near 1): no risk to share
    rng = np.random.default_rng(1)
    program = 1.0 + 3e-15 * rng.standard_normal(1_000)
    npv = {"sponsor": program * 0.5, "partner": program * 0.5, "program": program}
    assert math.isnan(metrics.risk_share(npv["sponsor"], program))
    table = metrics.summarize(npv)
    assert math.isnan(table.loc["sponsor", "risk_share"])
    assert any("risk_share is undefined" in n for n in metrics.notes(npv))
    # parties whose expected NPVs cancel: no value to share
    npv = {"sponsor": np.full(10, 100.0), "partner": np.full(10, -100.0), "program": np.linspace(-1, 1, 10)}
    assert math.isnan(metrics.summarize(npv).loc["partner", "value_share"])
    assert any("value_share is undefined" in n for n in metrics.notes(npv))
    # and a clear case stays defined: shares of 3/4 and 1/4
    npv = {"sponsor": np.full(4, 30.0), "partner": np.full(4, 10.0), "program": np.array([1.0, 2, 3, 4])}
    assert metrics.summarize(npv).loc["sponsor", "value_share"] == pytest.approx(0.75)


def test_notes_say_exactly_why_and_nothing_when_all_is_defined():
    rng = np.random.default_rng(2)
    normal = {"sponsor": rng.normal(10, 5, 500), "partner": rng.normal(5, 2, 500), "program": rng.normal(15, 6, 500)}
    assert metrics.notes(normal) == []
    flat = np.ones(500)
    assert metrics.notes({"sponsor": flat, "partner": flat, "program": flat}) == [
        "risk_share is undefined: the program's NPV does not vary across paths, so there is no program risk to share"]
    cancel = {"sponsor": np.full(4, 2.0), "partner": np.full(4, -2.0), "program": np.array([1.0, 2, 3, 4])}
    assert metrics.notes(cancel) == ["value_share is undefined: the two parties' expected NPVs add up to zero"]
    broken = {**normal, "partner": np.r_[normal["partner"][:-1], np.inf]}
    assert metrics.notes(broken)[-1] == ("some NPVs are not finite numbers; the figures that depend on them are "
                                         "left out")


@pytest.mark.parametrize("structure", ["hybrid", "cdmo_risk_share", "revenue_share"])
def test_the_value_bridge_closes_at_the_partners_enpv(structure):
    from dealmodel import views
    from tests.conftest import REFERENCE

    result = dm.simulate(dm.load_deal(REFERENCE[structure]), paths=5_000, seed=1)
    frame = views.bridge_frame(result)
    steps = frame[frame["kind"] != "total"]
    assert frame.iloc[0]["end"] == pytest.approx(result.total_contract_value)
    assert frame.iloc[0]["end"] + steps["amount"].sum() == pytest.approx(result.npv["partner"].mean(), rel=1e-12)
    assert frame.iloc[-1]["end"] == pytest.approx(result.npv["partner"].mean(), rel=1e-12)
