"""The simulated mean agrees with the closed form E[PV] = sum P(event) x amount x discount factor.

Inputs are fixed numbers and candidates independent (rho = 0), so every party's expected NPV
has a closed form (tests/closed_form.py). Each term kind is checked on its own, within four
standard errors of the Monte Carlo mean.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import dealmodel as dm
from tests.closed_form import expected_npvs, expected_payments
from tests.conftest import base_deal, candidate

# Fewer paths under mutation testing (python3 tasks.py mutate): still 4 standard errors, just wider ones.
PATHS = 30_000 if os.environ.get("DEALMODEL_FAST_TESTS") else 200_000


def _deal(terms: list[dict], **cand_b) -> dict:
    b = candidate("B", start_phase="phase1", **cand_b)
    b["commercial"].update({"peak_sales": 1200.0, "exclusivity_years": 10.0, "launch_curve": [0.3, 0.7]})
    return base_deal(candidates=[candidate("A"), b], terms=terms, horizon_years=28)


TERMS = {
    "fees_deferred_to_phase_success": [
        {"kind": "service_fees", "markup": 0.2, "at_risk_fraction": 0.3, "success_premium": 0.5}],
    "fees_deferred_to_approval": [
        {"kind": "service_fees", "markup": 0.15, "at_risk_fraction": 0.4, "success_premium": 1.0,
         "deferred_until": "approval", "candidates": ["B"]}],
    "upfront": [{"kind": "upfront", "amount": 12.5}],
    "milestone_phase2_start": [{"kind": "milestone", "event": "phase2_start", "amount": 7.0}],
    "milestone_phase3_start": [{"kind": "milestone", "event": "phase3_start", "amount": 15.0}],
    "milestone_filing": [{"kind": "milestone", "event": "filing", "amount": 9.0}],
    "milestone_approval": [{"kind": "milestone", "event": "approval", "amount": 20.0}],
    "milestone_first_sale": [{"kind": "milestone", "event": "first_sale", "amount": 11.0, "candidates": ["A"]}],
    "milestone_annual_sales": [{"kind": "milestone", "event": "annual_sales", "threshold": 400.0, "amount": 30.0}],
    "milestone_paid_by_partner": [
        {"kind": "milestone", "event": "approval", "amount": 25.0, "payer": "partner", "payee": "sponsor"}],
    "royalty_tiered_term_stepdown_cap": [
        {"kind": "royalty", "tiers": [{"above": 0, "rate": 0.05}, {"above": 300, "rate": 0.08}],
         "term_years": 9.5, "loe_step_down": 0.5, "cap": 500.0}],
    "royalty_flat_for_life": [{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.04}]}],
    "royalty_term_later_of_years_and_exclusivity_with_floor": [
        {"kind": "royalty", "tiers": [{"above": 0, "rate": 0.06}, {"above": 500, "rate": 0.10}],
         "term_years": 7.0, "term_end": "later_of_years_and_exclusivity", "loe_step_down": 0.8, "floor_rate": 0.03}],
    "royalty_aggregate_tiers": [
        {"kind": "royalty", "tier_basis": "aggregate",
         "tiers": [{"above": 0, "rate": 0.04}, {"above": 900, "rate": 0.12}],
         "term_years": 12.0, "loe_step_down": 0.5}],
    "fees_failed_batches_paid_by_sponsor": [
        {"kind": "service_fees", "markup": 0.2, "failed_batches_paid_by": "sponsor"}],
    "supply_failed_batches_paid_by_sponsor": [
        {"kind": "supply", "markup": 0.2, "failed_batches_paid_by": "sponsor"}],
    # CDMO and CRO contract terms
    "capacity_reservation_per_candidate": [
        {"kind": "capacity_reservation", "fee_per_year": 4.0, "start_years": 0.5, "end_years": 9.0,
         "notice_years": 1.0, "minimum_commitment": 10.0, "partner_cost_per_year": 2.0, "resale_utilisation": 0.5}],
    "capacity_reservation_program_escalated": [
        {"kind": "capacity_reservation", "fee_per_year": 6.0, "end_years": 12.0, "notice_years": 0.5,
         "scope": "program", "escalation": 0.03, "minimum_commitment": 30.0}],
    "cancellation_fee": [{"kind": "cancellation_fee", "amount": 3.0, "fraction_of_next_phase": 0.5, "markup": 0.2}],
    "success_rebate": [{"kind": "success_rebate", "fraction": 0.2},
                       {"kind": "service_fees", "markup": 0.2, "at_risk_fraction": 0.3, "success_premium": 0.5}],
    "option_at_phase3": [{"kind": "option", "exercise_at": "phase3_start", "option_fee": 2.0, "exercise_fee": 5.0,
                          "markup_given_up": 0.1, "royalty_rate": 0.03, "royalty_years": 8.0}],
    "option_at_approval": [{"kind": "option", "exercise_at": "approval", "exercise_fee": 15.0, "royalty_rate": 0.02,
                            "candidates": ["B"]}],
    "supply_volume_tiers": [{"kind": "supply", "markup": 0.0,
                             "markup_tiers": [{"above": 0, "markup": 0.4}, {"above": 300, "markup": 0.1}]}],
    "supply_escalated": [{"kind": "supply", "markup": 0.2, "escalation": 0.03}],
    "fees_escalated": [{"kind": "service_fees", "markup": 0.2, "at_risk_fraction": 0.3, "success_premium": 0.5,
                        "escalation": 0.04}],
    "fees_escalated_by_a_random_index": [
        {"kind": "service_fees", "markup": 0.2, "at_risk_fraction": 0.3, "success_premium": 0.5,
         "escalation": {"dist": "uniform", "low": 0.0, "high": 0.08}}],
    "milestone_cumulative_sales": [{"kind": "milestone", "event": "cumulative_sales", "threshold": 1500.0,
                                    "amount": 12.0}],
    "milestone_first_approval": [{"kind": "milestone", "event": "approval_count", "count": 1, "amount": 25.0}],
    "milestone_second_approval": [{"kind": "milestone", "event": "approval_count", "count": 2, "amount": 40.0}],
    "supply": [{"kind": "supply", "markup": 0.25}],
    "cost_share": [{"kind": "cost_share", "cost_fraction": 0.4, "profit_fraction": 0.3}],
    "cost_share_of_partner_cost": [
        {"kind": "cost_share", "payer": "sponsor", "payee": "partner", "cost_fraction": 0.5, "profit_fraction": 0.1}],
}


CASES = [(name, "exact") for name in TERMS] + [
    (name, timing)
    for timing in ("end_of_year", "mid_year", "start_of_year")
    for name in ("fees_deferred_to_phase_success", "upfront", "milestone_phase3_start", "milestone_annual_sales",
                 "royalty_tiered_term_stepdown_cap", "supply", "cost_share")
]


@pytest.mark.parametrize(("name", "timing"), CASES)
def test_expected_npv_matches_closed_form(name, timing):
    data = _deal(TERMS[name], batch_failure_rate=0.1) | {"timing": timing}
    expected = expected_npvs(data)
    result = dm.simulate(dm.parse_deal(data), paths=PATHS, seed=11)
    summary = result.summary()
    for party in ("sponsor", "partner", "program"):
        mean, se = summary.loc[party, "expected_npv"], summary.loc[party, "se_npv"]
        assert abs(mean - expected[party]) <= 4 * se + 1e-9, (party, mean, expected[party], se)
    # the term's own payments, apart from the partner's costs: a much sharper check
    paid = expected_payments(data, 0)
    pv = result.term_pv[0]
    se = pv.std(ddof=1) / math.sqrt(pv.size)
    assert abs(pv.mean() - paid) <= 4 * se + 1e-9, (pv.mean(), paid, se)
    assert abs(paid) > 10 * se  # the term matters: the check has teeth


def test_batch_failures_inflate_partner_cost_and_qbd_cuts_them():
    terms = [{"kind": "service_fees", "markup": 0.1}, {"kind": "supply", "markup": 0.2}]
    data = _deal(terms, batch_failure_rate=0.2)
    expected = expected_npvs(data)
    result = dm.simulate(dm.parse_deal(data), paths=PATHS, seed=3)
    s = result.summary()
    assert abs(s.loc["partner", "expected_npv"] - expected["partner"]) <= 4 * s.loc["partner", "se_npv"]
    # QbD: the failure rate falls by 30% (0.2 -> 0.14); the closed form with 0.14 must then hold.
    data_qbd = _deal(terms, batch_failure_rate=0.2)
    data_qbd["levers"] = {"qbd": {"enabled": True, "batch_failure_reduction": 0.3}}
    expected_qbd = expected_npvs(_deal(terms, batch_failure_rate=0.14))
    s_qbd = dm.simulate(dm.parse_deal(data_qbd), paths=PATHS, seed=3).summary()
    for party in ("sponsor", "partner"):
        assert abs(s_qbd.loc[party, "expected_npv"] - expected_qbd[party]) <= 4 * s_qbd.loc[party, "se_npv"]


def test_upfront_is_exact_and_riskless():
    data = base_deal(terms=[{"kind": "upfront", "amount": 12.5}])
    plain = dm.simulate(dm.parse_deal(base_deal()), paths=5_000, seed=2)
    with_upfront = dm.simulate(dm.parse_deal(data), paths=5_000, seed=2)
    diff = with_upfront.npv["partner"] - plain.npv["partner"]
    assert diff.min() == pytest.approx(12.5, abs=1e-9)
    assert diff.max() == pytest.approx(12.5, abs=1e-9)


def test_payments_by_kind_match_closed_form():
    terms = TERMS["milestone_approval"] + TERMS["royalty_flat_for_life"] + TERMS["upfront"]
    data = _deal(terms)
    result = dm.simulate(dm.parse_deal(data), paths=PATHS, seed=5)
    for i, term in enumerate(terms):
        one = expected_payments(data, i)
        pv = result.term_pv[terms.index(term)]
        se = pv.std(ddof=1) / math.sqrt(pv.size)
        assert abs(result.payments_by_kind()[term["kind"]] - one) <= 4 * se + 1e-9


def test_probability_of_approval_from_phase1_is_the_product_of_phase_rates():
    # BIO/Informa/QLS 2021 oncology: 48.8% x 24.6% x 47.7% x 92.0% = 5.27%, the published LOA of 5.3%.
    c = candidate("ONC", start_phase="phase1")
    for phase, p in zip(["phase1", "phase2", "phase3", "filing"], [0.488, 0.246, 0.477, 0.92], strict=True):
        c["phases"][phase]["success_probability"] = p
    result = dm.simulate(dm.parse_deal(base_deal(candidates=[c])), paths=400_000, seed=9)
    product = 0.488 * 0.246 * 0.477 * 0.92
    assert round(product, 3) == 0.053
    p_hat = result.candidates["ONC"]["prob_approval"]
    se = math.sqrt(product * (1 - product) / 400_000)
    assert abs(p_hat - product) <= 4 * se
    assert result.candidates["ONC"]["prob_reach_phase2"] == pytest.approx(0.488, abs=4 * math.sqrt(0.25 / 400_000))


def test_expected_launch_year_with_fixed_durations():
    result = dm.simulate(dm.parse_deal(base_deal()), paths=20_000, seed=1)
    # phase 2 (3.25 y) + phase 3 (2.6 y) + filing (0.8 y) from 1 January 2026
    assert result.candidates["A"]["expected_launch_year"] == pytest.approx(2026 + 6.65, abs=1e-9)


def test_biomarker_lever_raises_phase3_success_by_the_articles_20_percent():
    # two candidates, only A biomarker-selected; phases 2 / 3 / filing succeed with 0.4 / 0.5 / 0.9
    a = candidate("A", biomarker_selected=True)
    b = candidate("B", biomarker_selected=False)
    data = base_deal(candidates=[a, b], levers={"biomarker_selection": {"enabled": True}})
    result = dm.simulate(dm.parse_deal(data), paths=400_000, seed=4)
    n = 400_000

    def close(p_hat, p):
        assert abs(p_hat - p) <= 4 * math.sqrt(p * (1 - p) / n), (p_hat, p)

    # the uplift is placed on phase 3 only: reaching phase 3 is unchanged, reaching filing is 0.4 x 0.6
    close(result.candidates["A"]["prob_reach_phase3"], 0.4)
    close(result.candidates["A"]["prob_reach_filing"], 0.4 * 0.5 * 1.2)
    close(result.candidates["A"]["prob_approval"], 0.4 * 0.6 * 0.9)
    # a candidate that is not biomarker-selected is untouched
    close(result.candidates["B"]["prob_reach_filing"], 0.4 * 0.5)
    close(result.candidates["B"]["prob_approval"], 0.4 * 0.5 * 0.9)


def test_ai_recruitment_lever_cuts_the_recruiting_share_of_clinical_phases():
    # phases 2 (3.25 y) and 3 (2.6 y) recruit half their time by default; the lever cuts that by 30%:
    # each lasts d (1 - 0.3 x 0.5); filing (regulatory review) is unchanged.
    data = base_deal(levers={"ai_recruitment": {"enabled": True}})
    result = dm.simulate(dm.parse_deal(data), paths=5_000, seed=4)
    assert result.candidates["A"]["expected_launch_year"] == pytest.approx(2026 + (3.25 + 2.6) * 0.85 + 0.8)
    # a phase's own share wins: phase 2 recruiting all of its time ("trial timelines cut by 30%")
    data["candidates"][0]["phases"]["phase2"]["recruitment_share"] = 1.0
    result = dm.simulate(dm.parse_deal(data), paths=5_000, seed=4)
    assert result.candidates["A"]["expected_launch_year"] == pytest.approx(2026 + 3.25 * 0.7 + 2.6 * 0.85 + 0.8)


def test_ai_recruitment_saves_the_sponsor_cost_per_patient_and_per_month():
    # phase 2 of 3.25 years at a 0.5 recruiting share loses 3.25 x 0.15 = 0.4875 y = 5.85 months; with 120
    # patients at $5,000 each and 0.1 a month saved, its cost falls from 9 by 0.6 + 0.585. Phase 3 (2.6 years,
    # no patients given) loses 0.39 y = 4.68 months: its cost falls from 30 by 0.468.
    cand = candidate("A")
    cand["phases"]["phase2"]["patients"] = 120
    deal_off = base_deal(candidates=[cand])
    deal_on = base_deal(candidates=[cand], levers={"ai_recruitment": {"enabled": True, "saving_per_month": 0.1}})
    expected_on = expected_npvs(base_deal(candidates=[_shortened(cand, 9.0 - 0.6 - 0.585, 30.0 - 0.468)]))
    result = dm.simulate(dm.parse_deal(deal_on), paths=PATHS, seed=8).summary()
    assert abs(result.loc["sponsor", "expected_npv"] - expected_on["sponsor"]) <= 4 * result.loc["sponsor", "se_npv"]
    off = dm.simulate(dm.parse_deal(deal_off), paths=PATHS, seed=8).summary()
    assert result.loc["sponsor", "expected_npv"] > off.loc["sponsor", "expected_npv"]
    # exactly, path by path: the lever's deal is the hand-shortened one on the same futures
    shortened = _shortened(cand, 9.0 - 0.6 - 0.585, 30.0 - 0.468)
    by_hand = dm.simulate(dm.parse_deal(base_deal(candidates=[shortened])), paths=2_000, seed=8, keep_flows=False)
    lever = dm.simulate(dm.parse_deal(deal_on), paths=2_000, seed=8, keep_flows=False)
    np.testing.assert_allclose(lever.npv["sponsor"], by_hand.npv["sponsor"], rtol=1e-12, atol=1e-9)


def test_a_biomarker_uplift_past_certainty_is_certainty():
    # phase 3 succeeds with 0.9; the biomarker lever's +20% would make it 1.08: capped at 1, every candidate
    # that starts phase 3 reaches filing
    cand = candidate("A")
    cand["biomarker_selected"] = True
    cand["phases"]["phase3"]["success_probability"] = 0.9
    data = base_deal(candidates=[cand], levers={"biomarker_selection": {"enabled": True,
                                                                        "phase3_success_uplift": 0.2}})
    info = dm.simulate(dm.parse_deal(data), paths=4_000, seed=2, keep_flows=False).candidates["A"]
    assert info["prob_reach_phase3"] > 0.35
    assert info["prob_reach_filing"] == info["prob_reach_phase3"]


def test_a_random_batch_failure_rate_remakes_batches_in_expectation():
    # every phase certain, partner costs 20 + 50 + 5 = 75 billed nominal but remade 1 / (1 - f) times with f
    # uniform on [0, 0.4]: E[1 / (1 - f)] = ln(1 / 0.6) / 0.4; the partner's rate 0
    cand = candidate("A")
    for spec in cand["phases"].values():
        spec["success_probability"] = 1.0
    cand["batch_failure_rate"] = {"dist": "uniform", "low": 0.0, "high": 0.4}
    data = base_deal(candidates=[cand])
    data["parties"]["partner"]["discount_rate"] = 0.0
    x = dm.simulate(dm.parse_deal(data), paths=20_000, seed=5, keep_flows=False).npv["partner"]
    expected = -75 * math.log(1 / 0.6) / 0.4
    assert abs(x.mean() - expected) < 4 * x.std() / math.sqrt(x.size)
    assert x.std() > 1.0  # the rate does vary by path


def _shortened(cand: dict, phase2_cost: float, phase3_cost: float) -> dict:
    """The candidate as the AI lever leaves it (recruiting share 0.5, 30% cut), written out by hand."""
    out = {**cand, "phases": {k: dict(v) for k, v in cand["phases"].items()}}
    out["phases"]["phase2"].update(duration_years=3.25 * 0.85, cost=phase2_cost)
    out["phases"]["phase3"].update(duration_years=2.6 * 0.85, cost=phase3_cost)
    return out


@pytest.mark.parametrize("paid_by", ["partner", "sponsor"])
def test_who_pays_for_failed_batches_decides_whether_qbd_helps_the_partner(paid_by):
    # Fee-for-service on a 20% batch failure rate; QbD cuts failures by 30% (to 14%). With the partner paying
    # for remade batches (the CDMO warranty) fewer failures save it cost: QbD raises its value. Under
    # cost-plus with the sponsor paying, the partner bills the remakes with its margin: QbD lowers its value.
    terms = [{"kind": "service_fees", "markup": 0.2, "failed_batches_paid_by": paid_by}]
    before = expected_npvs(_deal(terms, batch_failure_rate=0.2))["partner"]
    after = expected_npvs(_deal(terms, batch_failure_rate=0.14))["partner"]
    data = _deal(terms, batch_failure_rate=0.2)
    data["levers"] = {"qbd": {"enabled": True}}
    s = dm.simulate(dm.parse_deal(data), paths=PATHS, seed=6).summary()
    assert abs(s.loc["partner", "expected_npv"] - after) <= 4 * s.loc["partner", "se_npv"]
    assert (after > before) == (paid_by == "partner")
