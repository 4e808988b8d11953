"""CDMO and CRO contract terms: validation with field-named errors and decisions that never look ahead.

Their cash flows are checked against the closed form in tests/test_engine_closed_form.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import dealmodel as dm
from dealmodel.program import simulate_program
from dealmodel.terms import exercise_time, failure_time
from tests.conftest import base_deal, candidate

RESERVATION = {"kind": "capacity_reservation", "fee_per_year": 4.0, "end_years": 9.0}
OPTION = {"kind": "option", "exercise_at": "phase3_start", "royalty_rate": 0.02}


@pytest.mark.parametrize(("term", "message"), [
    (RESERVATION | {"start_years": 9.0}, "terms[0].end_years: must be after start_years (9)"),
    (RESERVATION | {"minimum_commitment": 40.0}, "terms[0].minimum_commitment: 40 is more than the whole reservation"),
    (RESERVATION | {"scope": "portfolio"}, "terms[0].scope: must be one of"),
    (RESERVATION | {"resale_utilisation": 1.5}, "terms[0].resale_utilisation: must be <= 1"),
    (RESERVATION | {"escalation": 2.0}, "terms[0].escalation: must be between -0.5 and 1 (got 2)"),
    ({"kind": "cancellation_fee"}, "terms[0].fraction_of_next_phase: give it or an amount above 0"),
    ({"kind": "cancellation_fee", "fraction_of_next_phase": 1.5}, "terms[0].fraction_of_next_phase: must be <= 1"),
    ({"kind": "success_rebate", "fraction": 0.0}, "terms[0].fraction: must be > 0"),
    (OPTION | {"exercise_at": "phase4_start"}, "terms[0].exercise_at: must be one of"),
    (OPTION | {"royalty_rate": 2.0}, "terms[0].royalty_rate: must be <= 1"),
    ({"kind": "milestone", "event": "approval_count", "amount": 5.0},
     "terms[0].count: required for event approval_count"),
    ({"kind": "milestone", "event": "cumulative_sales", "amount": 5.0},
     "terms[0].threshold: required for event cumulative"),
    ({"kind": "milestone", "event": "approval", "amount": 5.0, "count": 2}, "terms[0].count: only used with"),
    ({"kind": "supply", "markup": 0.1, "markup_tiers": [{"above": 10, "markup": 0.2}]},
     "terms[0].markup_tiers[0].above: the first tier must start at 0"),
])
def test_new_terms_are_validated_with_the_field_named(term, message):
    with pytest.raises(dm.DealError) as info:
        dm.parse_deal(base_deal(terms=[term]))
    assert any(message in p for p in info.value.problems), info.value.problems


def test_the_option_decision_never_uses_a_later_draw():
    # Exercise at phase 3 start: the decision may use only what is known then. Changing everything revealed
    # later on the path (phase 3 and filing outcomes and durations, peak sales) must not move it on any path.
    cand = candidate("A", start_phase="phase1")
    cand["phases"]["phase2"]["duration_years"] = {"dist": "triangular", "low": 2.0, "mode": 3.0, "high": 4.5}
    data = base_deal(candidates=[cand], terms=[OPTION])
    later = base_deal(candidates=[cand], terms=[OPTION])
    later_phases = later["candidates"][0]["phases"]
    later_phases["phase3"].update(success_probability=0.05, duration_years=7.0)
    later_phases["filing"].update(success_probability=0.99, duration_years=2.0)
    later["candidates"][0]["commercial"]["peak_sales"] = 5000.0
    deals = [dm.parse_deal(d) for d in (data, later)]
    term = deals[0].terms[0]
    paths = [simulate_program(d, seed=4, first_block=0, n_blocks=2).candidates[0] for d in deals]
    a, b = (exercise_time(term, cp) for cp in paths)
    np.testing.assert_array_equal(a, b)
    assert 0.18 < np.isfinite(a).mean() < 0.22  # P(reach phase 3) = phase 1 x phase 2 success = 0.5 x 0.4
    # while what happens after it does change
    assert not np.array_equal(failure_time(paths[0]), failure_time(paths[1]))


def test_the_cdmo_reference_is_calibrated_like_the_others():
    deal = dm.load_deal("sample_deals/reference_cdmo_risk_share.yaml")
    assert dm.headline(deal).total_contract_value == pytest.approx(2100.0, rel=0.02)
    kinds = {t.kind for t in deal.terms}
    assert {"capacity_reservation", "cancellation_fee", "option", "supply"} <= kinds
    result = dm.simulate(deal, paths=20_000, seed=1)
    # every payment leaves one party and enters the other; the partner's capacity flows are its own
    assert set(result.payments_by_kind()) == kinds


def _sure(candidate_spec: dict, fail_phase: str | None = None) -> dict:
    """Every phase succeeds for sure, except ``fail_phase``, which fails for sure: one possible path."""
    for phase, spec in candidate_spec["phases"].items():
        spec["success_probability"] = 0.0 if phase == fail_phase else 1.0
    return candidate_spec


def _spread(rate: float, a: float, b: float) -> float:
    """PV at the partner's 10% of ``rate`` a year over [a, b)."""
    return rate * (1.1**-a - 1.1**-b) / np.log(1.1)


@pytest.mark.parametrize(("minimum", "true_up"), [(10.0, 0.0), (20.0, 5.0)])
def test_reservation_worked_number(minimum, true_up):
    # docs/methodology.md: 4 a year from 0.5 until a year after phase 2 fails at 3.25: 4 (1.1^-0.5 - 1.1^-4.25)/ln 1.1
    term = RESERVATION | {"start_years": 0.5, "notice_years": 1.0, "minimum_commitment": minimum}
    deal = dm.parse_deal(base_deal(candidates=[_sure(candidate("A"), fail_phase="phase2")], terms=[term]))
    result = dm.simulate(deal, paths=50, seed=0)
    by_hand = 4 * (1.1**-0.5 - 1.1**-4.25) / np.log(1.1) + true_up * 1.1**-4.25
    assert result.term_pv[0] == pytest.approx(np.full(50, by_hand), rel=1e-12)


def test_cumulative_sales_milestone_worked_number():
    # launch at 3.25 + 2.6 + 0.8 = 6.65; sales 160, 480, 800, 800 ...: 1,500 reached 60 into the fourth year
    term = {"kind": "milestone", "event": "cumulative_sales", "threshold": 1500.0, "amount": 10.0}
    deal = dm.parse_deal(base_deal(candidates=[_sure(candidate("A"))], terms=[term]))
    result = dm.simulate(deal, paths=50, seed=0)
    assert result.term_pv[0] == pytest.approx(np.full(50, 10 * 1.1 ** -(6.65 + 3 + 60 / 800)), rel=1e-12)


def test_a_random_price_index_is_drawn_per_path_from_its_own_stream():
    # One certain path of the program; the only randomness is the index, uniform on [0, 8%].
    fees = {"kind": "service_fees", "markup": 0.2, "escalation": {"dist": "uniform", "low": 0.0, "high": 0.08}}
    data = base_deal(candidates=[_sure(candidate("A"))], terms=[fees])
    deal = dm.parse_deal(data)
    result = dm.simulate(deal, paths=20_000, seed=5)
    pv = result.term_pv[0]
    assert pv.std() > 0.01 * pv.mean()  # it varies by path ...
    lo = dm.simulate(dm.parse_deal(base_deal(candidates=[_sure(candidate("A"))],
                                             terms=[fees | {"escalation": 0.0}])), paths=10, seed=5).term_pv[0][0]
    hi = dm.simulate(dm.parse_deal(base_deal(candidates=[_sure(candidate("A"))],
                                             terms=[fees | {"escalation": 0.08}])), paths=10, seed=5).term_pv[0][0]
    assert lo < pv.min() and pv.max() < hi  # ... between its value at the two ends of the index's range
    again = dm.simulate(deal, paths=20_000, seed=5, chunk_size=8192, threads=2)
    np.testing.assert_array_equal(again.term_pv[0], pv)  # reproducible whatever the chunking
    plain = dm.simulate(dm.parse_deal(base_deal(candidates=[_sure(candidate("A"))])), paths=20_000, seed=5)
    np.testing.assert_array_equal(plain.npv["program"], result.npv["program"])  # the program's paths do not move


def test_a_creditable_upfront_pays_the_later_fees_until_used_up():
    # One candidate from phase 2 (3.25 y, 2.6 y, 0.8 y; partner cost 20, 50, 5); fees at cost + 20%, 30% of
    # each phase's fees deferred to its success with a 50% premium; an upfront of 40 creditable against them.
    # On a path that passes phase 2 the credit pays: phase 2's fees, 1.2 x 20 x 0.7 = 16.8 a year-share over
    # [0, 3.25); phase 2's deferred 1.2 x 20 x 0.3 x 1.5 = 10.8 at 3.25; then phase 3's fees, 42 over 2.6 years
    # (16.15 a year), until the remaining 40 - 27.6 = 12.4 run out at 3.25 + 12.4 / 16.15.
    # On a path that fails phase 2, only phase 2's 16.8: the rest of the credit is never used.
    fees = {"kind": "service_fees", "markup": 0.2, "at_risk_fraction": 0.3, "success_premium": 0.5}
    upfront = {"kind": "upfront", "amount": 40.0, "creditable": True}
    deal = dm.parse_deal(base_deal(terms=[fees, upfront]))
    result = dm.simulate(deal, paths=40_000, seed=8)
    fails_phase2 = _spread(16.8 / 3.25, 0.0, 3.25)
    stop = 3.25 + 12.4 / (42 / 2.6)
    passes_phase2 = fails_phase2 + 10.8 * 1.1**-3.25 + _spread(42 / 2.6, 3.25, stop)
    p_pass = result.candidates["A"]["prob_reach_phase3"]  # realised frequency: the check is to rounding
    expected = 40.0 - ((1 - p_pass) * fails_phase2 + p_pass * passes_phase2)
    assert result.term_pv[1].mean() == pytest.approx(expected, rel=1e-9)
    # what the sponsor saves the partner does not receive: the fees' PV falls by nothing, the upfront's by it
    plain = dm.simulate(dm.parse_deal(base_deal(terms=[fees, upfront | {"creditable": False}])), paths=40_000, seed=8)
    np.testing.assert_allclose(result.term_pv[0], plain.term_pv[0], rtol=1e-12)
    assert result.npv["partner"].mean() < plain.npv["partner"].mean() - 10.0
    # and the yearly table shows the credit where it is used: year 4 (from 4.0) holds the end of it
    flows = result.cash_flows("partner") - plain.cash_flows("partner")
    passed = np.isfinite(result.npv["partner"]) & (flows[:, 3] < -1e-9)
    assert passed.any()
    assert np.allclose(flows[:, 5:], 0.0)  # nothing credited after 4.02 years


@pytest.mark.parametrize(("start", "fail", "notice", "minimum", "escalation"), [
    (5.0, "phase2", 1.0, 0.0, 0.0),    # fails (3.25) and is released (4.25) before the reservation starts: nothing
    (0.5, "phase2", 1.0, 20.0, 0.05),  # an indexed fee: 4 x 1.05^i in year i; the true-up on the indexed total
    (0.5, None, 0.0, 0.0, 0.05),       # approved: the whole reservation, to 9 years, indexed
])
def test_reservation_by_hand_on_one_path(start, fail, notice, minimum, escalation):
    term = RESERVATION | {"start_years": start, "notice_years": notice, "minimum_commitment": minimum,
                          "escalation": escalation, "partner_cost_per_year": 1.0, "resale_utilisation": 0.5}
    deal = dm.parse_deal(base_deal(candidates=[_sure(candidate("A"), fail_phase=fail)], terms=[term]))
    result = dm.simulate(deal, paths=20, seed=0)
    failed_at = 3.25 if fail else np.inf
    release = min(max(failed_at + notice, start), 9.0)
    g = np.log(1.1)
    fee = paid = 0.0
    for year in range(10):  # the fee over [start, release), year by year with its index
        a, b = max(start, year), min(release, year + 1)
        if b > a:
            fee += 4 * (1 + escalation) ** year * (1.1**-a - 1.1**-b) / g
            paid += 4 * (1 + escalation) ** year * (b - a)
    if release < 9.0:
        fee += max(minimum - paid, 0.0) * 1.1**-release
    assert result.term_pv[0] == pytest.approx(np.full(20, fee), rel=1e-12, abs=1e-12)
    # the partner's own capacity flows: its cost over [start, 9), resale of half the indexed fee after release
    own = -1.0 * (1.1**-start - 1.1**-9.0) / g
    for year in range(10):
        a, b = max(release, year), min(9.0, year + 1)
        if b > a:
            own += 0.5 * 4 * (1 + escalation) ** year * (1.1**-a - 1.1**-b) / g
    partner_own = result.npv["partner"] - result.term_pv[0]
    plain = dm.simulate(dm.parse_deal(base_deal(candidates=[_sure(candidate("A"), fail_phase=fail)])), paths=20, seed=0)
    assert partner_own - plain.npv["partner"] == pytest.approx(np.full(20, own), rel=1e-12, abs=1e-12)


def test_each_term_and_block_has_its_own_random_stream():
    # The contract (docs/methodology.md): block b of term t draws from SeedSequence(seed, spawn_key=(b, 1_000_000 + t))
    from dealmodel.program import BLOCK, term_uniforms

    u = term_uniforms(3, 0, 2, 2 * BLOCK, 0)
    assert not np.array_equal(u[:BLOCK], u[BLOCK:])  # another block, other numbers
    assert not np.array_equal(u, term_uniforms(3, 0, 2, 2 * BLOCK, 1))  # another term, other numbers
    np.testing.assert_array_equal(u[BLOCK:], term_uniforms(3, 1, 1, BLOCK, 0))  # a block is the same wherever it runs
    stream = np.random.Generator(np.random.PCG64(np.random.SeedSequence(3, spawn_key=(1, 1_000_000))))
    np.testing.assert_array_equal(u[BLOCK:], stream.random(BLOCK))
    third = np.random.Generator(np.random.PCG64(np.random.SeedSequence(3, spawn_key=(0, 1_000_002))))
    np.testing.assert_array_equal(term_uniforms(3, 0, 1, BLOCK, 2), third.random(BLOCK))  # term 2's own stream
    assert abs(u.mean() - 0.5) < 0.01


@pytest.mark.parametrize("phase3", [1.0, 0.5])
def test_a_random_index_on_supply_follows_each_paths_own_draw(phase3):
    # One certain path of the program (launch at 6.65, sales 160, 480, 800, ... a year); supply at COGS (10%) + 20%,
    # its price indexed by e ~ uniform(0, 10%) drawn per path: the PV on each path, by hand, with that path's e.
    # With phase 3 a coin toss, only the launched paths pay, each still at its own e.
    from dealmodel.program import term_uniforms

    supply = {"kind": "supply", "markup": 0.2, "escalation": {"dist": "uniform", "low": 0.0, "high": 0.1}}
    spec = _sure(candidate("A"))
    spec["phases"]["phase3"]["success_probability"] = phase3
    deal = dm.parse_deal(base_deal(candidates=[spec], terms=[supply], horizon_years=12))
    result = dm.simulate(deal, paths=300, seed=6)
    e = 0.1 * term_uniforms(6, 0, 1, 300, 0)
    launch, g = 6.65, np.log(1.1)
    expected = np.zeros(300)
    for k, sales in enumerate([160.0, 480.0, 800.0, 800.0, 800.0, 800.0]):
        a, b = launch + k, min(launch + k + 1, 12.0)
        for year in range(int(a), int(np.ceil(b))):
            lo, hi = max(a, year), min(b, year + 1)
            if hi > lo:
                expected += sales * 0.1 * 1.2 * (1 + e) ** year * (1.1**-lo - 1.1**-hi) / g
    launched = result.term_pv[0] != 0.0
    assert abs(launched.mean() - phase3) <= 4 * np.sqrt(phase3 * (1 - phase3) / 300)
    assert launched.any()
    np.testing.assert_allclose(result.term_pv[0][launched], expected[launched], rtol=1e-12)


# --------------------------------------------------------------------------- corners the mutation run found untested


def test_an_approval_count_beyond_the_covered_candidates_is_never_paid():
    # two certain candidates launch at 6.65: the second approval pays then; there is no third
    deal = dm.parse_deal(base_deal(candidates=[_sure(candidate("A")), _sure(candidate("B"))], terms=[
        {"kind": "milestone", "event": "approval_count", "count": 3, "amount": 50.0},
        {"kind": "milestone", "event": "approval_count", "count": 2, "amount": 50.0}]))
    result = dm.simulate(deal, paths=20, seed=0)
    np.testing.assert_array_equal(result.term_pv[0], 0.0)
    np.testing.assert_allclose(result.term_pv[1], 50.0 * 1.1**-6.65, rtol=1e-12)


def test_an_option_on_a_candidate_past_its_exercise_point_is_never_exercised():
    # the candidate starts in phase 3, the option is exercised at the start of phase 2: only the option fee is paid
    fees = {"kind": "service_fees", "markup": 0.2}
    option = {"kind": "option", "exercise_at": "phase2_start", "option_fee": 5.0, "exercise_fee": 7.0,
              "markup_given_up": 0.1, "royalty_rate": 0.04, "royalty_years": 10.0}
    spec = _sure(candidate("A", start_phase="phase3"))
    with_option = dm.simulate(dm.parse_deal(base_deal(candidates=[spec], terms=[fees, option])), paths=20, seed=1)
    without = dm.simulate(dm.parse_deal(base_deal(candidates=[spec], terms=[fees])), paths=20, seed=1)
    np.testing.assert_allclose(with_option.term_pv[1], -5.0, rtol=1e-12)  # the holder (partner) pays it at signing
    np.testing.assert_allclose(with_option.term_pv[0], without.term_pv[0], rtol=1e-12)  # fees at the full markup


def test_a_one_tier_markup_schedule_is_the_flat_markup_with_its_price_index_too():
    flat = {"kind": "supply", "markup": 0.2, "escalation": 0.05}
    tiered = {"kind": "supply", "markup": 0.9, "markup_tiers": [{"above": 0.0, "markup": 0.2}],  # tiers win
              "escalation": 0.05}
    spec = _sure(candidate("A"))
    a = dm.simulate(dm.parse_deal(base_deal(candidates=[spec], terms=[flat], horizon_years=14)), paths=10, seed=2)
    b = dm.simulate(dm.parse_deal(base_deal(candidates=[spec], terms=[tiered], horizon_years=14)), paths=10, seed=2)
    np.testing.assert_allclose(b.term_pv[0], a.term_pv[0], rtol=1e-12)
    unindexed = dm.simulate(dm.parse_deal(base_deal(candidates=[spec], terms=[flat | {"escalation": 0.0}],
                                                    horizon_years=14)), paths=10, seed=2)
    assert (a.term_pv[0] > 1.2 * unindexed.term_pv[0]).all()  # the index matters: 5% a year from year 6


def test_a_success_rebate_returns_its_share_of_the_indexed_fees_at_approval():
    # fees indexed 5% a year on a certain path; their undiscounted total F (partner's rate 0); the rebate pays
    # half of F at approval (6.65), from the partner
    fees = {"kind": "service_fees", "markup": 0.2, "escalation": 0.05}
    spec = _sure(candidate("A"))
    undiscounted = base_deal(candidates=[spec], terms=[fees])
    undiscounted["parties"]["partner"]["discount_rate"] = 0.0
    total = dm.simulate(dm.parse_deal(undiscounted), paths=4, seed=3).term_pv[0]
    unindexed = dm.simulate(dm.parse_deal(dict(undiscounted, terms=[fees | {"escalation": 0.0}])), paths=4,
                            seed=3).term_pv[0]
    assert (total > 1.05 * unindexed).all()
    rebate = {"kind": "success_rebate", "fraction": 0.5}
    result = dm.simulate(dm.parse_deal(base_deal(candidates=[spec], terms=[fees, rebate])), paths=4, seed=3)
    np.testing.assert_allclose(result.term_pv[1], -0.5 * total * 1.1**-6.65, rtol=1e-12)


def test_the_profit_share_of_a_cost_share_is_proportional_to_its_fraction():
    # no cost funded: the term is the payee's profit share alone, linear in the fraction up to all of it
    spec = _sure(candidate("A"))
    pv = {f: dm.simulate(dm.parse_deal(base_deal(candidates=[spec], terms=[
        {"kind": "cost_share", "cost_fraction": 0.0, "profit_fraction": f}])), paths=4, seed=0).term_pv[0]
        for f in (0.25, 0.5, 1.0)}
    assert (pv[0.25] > 1.0).all()  # the sponsor pays the partner a share of its operating profit
    np.testing.assert_allclose(pv[1.0], 4 * pv[0.25], rtol=1e-12)
    np.testing.assert_allclose(pv[0.5], 2 * pv[0.25], rtol=1e-12)


def test_a_reservation_that_ran_its_term_under_a_falling_index_pays_the_shortfall_at_its_end():
    # 4 a year from 0.5 to 4.5, indexed -20% a year, on a candidate that never fails: the fees come to
    # 4 (0.5 + 0.8 + 0.64 + 0.512 + 0.5 x 0.4096) = 10.6272, under the minimum of 15: 4.3728 more at 4.5
    term = RESERVATION | {"start_years": 0.5, "end_years": 4.5, "escalation": -0.2}
    spec = _sure(candidate("A"))
    pv = {m: dm.simulate(dm.parse_deal(base_deal(candidates=[spec], terms=[term | {"minimum_commitment": m}])),
                         paths=4, seed=0).term_pv[0] for m in (0.0, 15.0)}
    np.testing.assert_allclose(pv[15.0] - pv[0.0], (15.0 - 4 * 2.6568) * 1.1**-4.5, rtol=1e-9)


@pytest.mark.parametrize("until", ["phase_success", "approval"])
def test_fees_deferred_in_full_are_paid_at_the_index_of_the_year_they_fall_due(until):
    # every fee deferred (at risk 100%), doubled on success (premium 1), marked up 20%, indexed 10% a year, on a
    # certain path: phases 2, 3 and filing cost the partner 20, 50 and 5 and end at 3.25, 5.85 and 6.65
    fees = {"kind": "service_fees", "markup": 0.2, "at_risk_fraction": 1.0, "success_premium": 1.0,
            "deferred_until": until, "escalation": 0.1}
    result = dm.simulate(dm.parse_deal(base_deal(candidates=[_sure(candidate("A"))], terms=[fees])), paths=4, seed=0)
    if until == "phase_success":  # each phase's at its end, at 1.1^(its year)
        by_hand = sum(c * 1.2 * 2 * 1.1**y * 1.1**-end for c, y, end in ((20, 3, 3.25), (50, 5, 5.85), (5, 6, 6.65)))
    else:  # all at approval, 6.65, at 1.1^6
        by_hand = 75 * 1.2 * 2 * 1.1**6 * 1.1**-6.65
    np.testing.assert_allclose(result.term_pv[0], by_hand, rtol=1e-12)


def test_a_minimum_commitment_below_one_million_is_still_trued_up():
    # 0.1 a year from 0.5 until a year after phase 2 fails at 3.25 (release 4.25): 0.375 paid, minimum 0.5
    term = RESERVATION | {"fee_per_year": 0.1, "start_years": 0.5, "notice_years": 1.0, "minimum_commitment": 0.5}
    deal = dm.parse_deal(base_deal(candidates=[_sure(candidate("A"), fail_phase="phase2")], terms=[term]))
    by_hand = 0.1 * (1.1**-0.5 - 1.1**-4.25) / np.log(1.1) + 0.125 * 1.1**-4.25
    np.testing.assert_allclose(dm.simulate(deal, paths=4, seed=0).term_pv[0], by_hand, rtol=1e-12)


def test_a_success_rebate_counts_only_the_fees_paid_to_the_partner_for_its_candidate():
    # A's fees (not indexed) and B's; the rebate on A returns half of A's alone, at A's approval (6.65)
    a, b = _sure(candidate("A")), _sure(candidate("B"))
    fees_a = {"kind": "service_fees", "markup": 0.2, "candidates": ["A"]}
    fees_b = {"kind": "service_fees", "markup": 0.5, "candidates": ["B"]}
    rebate = {"kind": "success_rebate", "fraction": 0.5, "candidates": ["A"]}
    result = dm.simulate(dm.parse_deal(base_deal(candidates=[a, b], terms=[fees_a, fees_b, rebate])), paths=4, seed=0)
    np.testing.assert_allclose(result.term_pv[2], -0.5 * 75 * 1.2 * 1.1**-6.65, rtol=1e-12)


@pytest.mark.parametrize("paths", [1, 30])  # one path: the only launched path is one row of the sales table
def test_a_creditable_sales_milestone_pays_a_later_candidates_fees(paths):
    # A from phase 3 launches at 2.6 + 0.8 = 3.4; its first sales year [3.4, 4.4) sells 800 x 0.2 = 160, exactly
    # the threshold, so the milestone of 10 is paid at 4.4 (a threshold is reached when met). It is creditable:
    # from 4.4 it pays B's fees, B being in phase 2 over [3.5, 6.75) at 1.2 x 20 / 3.25 a year, until the 10
    # are used, at 4.4 + 10 / (24 / 3.25). Booked under the milestone, at the partner's 10%.
    a = _sure(candidate("A", start_phase="phase3"))
    b = _sure(candidate("B", start_phase="preclinical"))
    terms = [{"kind": "service_fees", "markup": 0.2, "candidates": ["B"]},
             {"kind": "milestone", "event": "annual_sales", "threshold": 160.0, "amount": 10.0, "creditable": True,
              "candidates": ["A"]}]
    result = dm.simulate(dm.parse_deal(base_deal(candidates=[a, b], terms=terms)), paths=paths, seed=0)
    rate = 24 / 3.25
    used = _spread(rate, 4.4, 4.4 + 10 / rate)
    assert result.term_pv[1] == pytest.approx(np.full(paths, 10 * 1.1**-4.4 - used), rel=1e-12)
    # the fees themselves are the same as without a credit: B's partner costs at + 20%, each phase spread
    bounds = np.cumsum([0.0, 1.0, 2.5, 3.25, 2.6, 0.8])
    fees = sum(_spread(1.2 * c / (e - s), s, e)
               for c, s, e in zip([2.0, 10.0, 20.0, 50.0, 5.0], bounds[:-1], bounds[1:], strict=True))
    assert result.term_pv[0] == pytest.approx(np.full(paths, fees), rel=1e-12)


def test_credits_arriving_together_are_one_balance_booked_under_the_later_term():
    # Two creditable upfronts at signing, 10 then 5 (in the deal's order), against the fees of one certain
    # candidate in phase 2 (1.2 x 20 over 3.25 years). One balance of 15 pays the fees from 0 until
    # 15 / (24 / 3.25) years; the stretch is opened by the later credit, so it is all booked under it.
    terms = [{"kind": "service_fees", "markup": 0.2},
             {"kind": "upfront", "amount": 10.0, "creditable": True, "label": "first"},
             {"kind": "upfront", "amount": 5.0, "creditable": True, "label": "second"}]
    result = dm.simulate(dm.parse_deal(base_deal(candidates=[_sure(candidate("A"))], terms=terms)), paths=4, seed=0)
    rate = 24 / 3.25
    used = _spread(rate, 0.0, 15 / rate)
    assert result.term_pv[1] == pytest.approx(np.full(4, 10.0), rel=1e-12)
    assert result.term_pv[2] == pytest.approx(np.full(4, 5.0 - used), rel=1e-12)


FEES_DEFERRED = {"kind": "service_fees", "markup": 0.2, "at_risk_fraction": 0.3, "success_premium": 0.5}


def test_a_credit_running_out_inside_a_deferred_fee_pays_part_of_it():
    # One certain candidate from phase 2: its fees are 16.8 over [0, 3.25) and 10.8 deferred to 3.25 (see the
    # upfront test above). A credit of 17.3 pays the 16.8 and 0.5 of the deferred 10.8, at 3.25.
    terms = [FEES_DEFERRED, {"kind": "upfront", "amount": 17.3, "creditable": True}]
    result = dm.simulate(dm.parse_deal(base_deal(candidates=[_sure(candidate("A"))], terms=terms)), paths=4, seed=0)
    expected = 17.3 - _spread(16.8 / 3.25, 0.0, 3.25) - 0.5 * 1.1**-3.25
    assert result.term_pv[1] == pytest.approx(np.full(4, expected), rel=1e-12)


def test_what_a_credit_leaves_is_carried_into_the_next_credits_stretch():
    # An upfront of 30 pays phase 2's 16.8 and leaves 13.2; the creditable phase-3 milestone of 10 at 3.25 adds
    # to it: 23.2 pays the deferred 10.8 at 3.25, then phase 3's 42 over 2.6 years until 12.4 are used. What is
    # paid after 3.25 is booked under the milestone, whose credit opened that stretch.
    terms = [FEES_DEFERRED, {"kind": "upfront", "amount": 30.0, "creditable": True},
             {"kind": "milestone", "event": "phase3_start", "amount": 10.0, "creditable": True}]
    result = dm.simulate(dm.parse_deal(base_deal(candidates=[_sure(candidate("A"))], terms=terms)), paths=4, seed=0)
    assert result.term_pv[1] == pytest.approx(np.full(4, 30.0 - _spread(16.8 / 3.25, 0.0, 3.25)), rel=1e-12)
    rate = 42 / 2.6
    used = 10.8 * 1.1**-3.25 + _spread(rate, 3.25, 3.25 + 12.4 / rate)
    assert result.term_pv[2] == pytest.approx(np.full(4, 10.0 * 1.1**-3.25 - used), rel=1e-12)
