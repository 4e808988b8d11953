"""Go/no-go at the gates (dealmodel.decisions): the rule against decision trees rolled back by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import dealmodel as dm
from dealmodel.decisions import decide, forecast_draws
from dealmodel.engine import deal_program
from dealmodel.program import simulate_program
from tests.closed_form import Cand, Disc, phase_pv
from tests.conftest import REFERENCE, ROOT, base_deal, candidate

LOW, HIGH = 10.0, 2000.0
ZERO_NOISE = {"phase1": 0.0, "phase2": 0.0, "phase3": 0.0, "filing": 0.0}


def _two_level(**decisions) -> dict:
    """One phase-2 candidate with fixed costs whose peak sales are LOW or HIGH, half and half."""
    c = candidate("A")
    c["commercial"]["peak_sales"] = {"dist": "discrete", "values": [LOW, HIGH], "probabilities": [0.5, 0.5]}
    return base_deal(candidates=[c], decisions={"rule": "optimal", "forecast_noise": ZERO_NOISE, **decisions})


def _branch(data: dict, peak: float, stop_after: int | None, d: Disc) -> float:
    """The sponsor's value of one branch: peak sales fixed, stopped after phase ``stop_after`` (None: never)."""
    spec = {**data["candidates"][0], "commercial": {**data["candidates"][0]["commercial"], "peak_sales": peak}}
    c = Cand(spec, data["horizon_years"])
    if stop_after is None:
        return -phase_pv(c, c.cost, d) + c.p_approval * c.sales_pv(d, 1 - c.opex - c.cogs)
    return -phase_pv(c, [x if k <= stop_after else 0.0 for k, x in enumerate(c.cost)], d)


def test_the_optimal_rule_stops_exactly_the_low_sales_paths_and_matches_the_decision_tree():
    data = _two_level()
    deal = dm.parse_deal(data)
    d = Disc(0.15, 30)
    # by hand, at the phase-3 gate: going on with low sales is worth less than stopping, with high sales more
    go_low, stop_low = _branch(data, LOW, None, d), _branch(data, LOW, 0, d)
    go_high, stop_high = _branch(data, HIGH, None, d), _branch(data, HIGH, 0, d)
    assert go_low < stop_low - 1.0 and go_high > stop_high + 100.0
    expected = 0.5 * stop_low + 0.5 * go_high
    result = dm.simulate(deal, paths=100_000, seed=4)
    assert abs(result.npv["sponsor"].mean() - expected) < 4 * result.npv["sponsor"].std() / np.sqrt(100_000)
    program = simulate_program(deal, 4, 0, 2, 16_384)
    cp = decide(deal, program, 4, 0).candidates[0]
    passed = program.candidates[0].succeeded[:, 0]
    low = program.candidates[0].peak_sales == LOW
    assert np.array_equal(cp.stopped[:, 0], passed & low)  # stopped at the phase-3 gate: exactly these
    assert not cp.stopped[:, 1:].any()  # a high-sales candidate that passes phase 3 is always filed
    assert result.candidates["A"]["prob_stopped_before_phase3"] == pytest.approx(0.4 * 0.5, abs=4 * 0.0013)


def test_the_value_of_going_on_counts_the_option_to_stop_at_a_later_gate():
    # Peak sales 500 or 1,000, half and half; a forecast that says next to nothing at the phase-3 gate
    # (noise 5 on the log, against log 2 between the two) and everything at the filing gate; filing
    # costs 1,600. By hand (values at t = 0): at filing, 1,000 is filed (33.5 against -13.6 for stopping
    # there) and 500 is not (-56.9). At the phase-3 gate, going on is worth 0.5 x 33.5 + 0.5 x -13.6 = 9.9
    # with the later stop, -11.7 if the 500s were filed too, and stopping -7.2: a rule that forgot the
    # later stop would stop most candidates at phase 3.
    data = _two_level(forecast_noise={"phase1": 5.0, "phase2": 5.0, "phase3": 5.0, "filing": 0.0})
    data["candidates"][0]["phases"]["filing"]["cost"] = 1600.0
    data["candidates"][0]["commercial"]["peak_sales"]["values"] = [500.0, 1000.0]
    d = Disc(0.15, 30)
    go_high, stop_low_at_filing = _branch(data, 1000.0, None, d), _branch(data, 500.0, 1, d)
    assert _branch(data, 500.0, None, d) < stop_low_at_filing - 40 and go_high > _branch(data, 1000.0, 1, d) + 40
    expected = 0.5 * go_high + 0.5 * stop_low_at_filing
    forgetful = 0.5 * go_high + 0.5 * _branch(data, 500.0, None, d)
    assert expected > _branch(data, 500.0, 0, d) + 15 > forgetful + 15
    result = dm.simulate(dm.parse_deal(data), paths=40_000, seed=3, keep_flows=False)
    x = result.npv["sponsor"]
    assert abs(x.mean() - expected) < 4 * x.std() / np.sqrt(x.size)
    info = result.candidates["A"]
    assert info["prob_stopped_before_phase3"] == 0.0
    p = 0.4 * 0.5 * 0.5  # passed phase 2, then phase 3, and the low sales
    assert info["prob_stopped_before_filing"] == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / x.size))


def test_a_last_gate_too_rare_to_fit_still_leaves_the_earlier_gates_fitted():
    # phase 3 almost never succeeds, so the filing gate is too rare to fit (everyone would go on there);
    # the phase-3 gate before it is not: going on to a phase that all but never succeeds is worth less
    # than stopping for both sales levels, so every candidate that passes phase 2 is stopped there
    data = _two_level()
    data["candidates"][0]["phases"]["phase3"]["success_probability"] = 0.0005
    result = dm.simulate(dm.parse_deal(data), paths=20_000, seed=2, keep_flows=False)
    info = result.candidates["A"]
    assert info["prob_stopped_before_phase3"] == pytest.approx(0.4, abs=4 * np.sqrt(0.24 / 20_000))
    assert info["prob_reach_phase3"] == 0.0


def test_decisions_none_keeps_todays_results_bit_for_bit():
    plain = dm.load_deal(REFERENCE["hybrid"])
    data = plain.model_dump(mode="json", by_alias=True, exclude_none=True) | {"decisions": "none"}
    with_none = dm.parse_deal(data)
    a, b = (dm.simulate(d, paths=5_000, seed=3, keep_flows=False) for d in (plain, with_none))
    for party in ("sponsor", "partner", "program"):
        assert np.array_equal(a.npv[party], b.npv[party])
    assert a.candidates == b.candidates


def _paired_gain(deal: dm.Deal, party: str, paths: int = 40_000) -> tuple[float, float]:
    data = deal.model_dump(mode="json", by_alias=True, exclude_none=True)
    without = dm.parse_deal({k: v for k, v in data.items() if k != "decisions"})
    a = dm.simulate(deal, paths=paths, seed=8, keep_flows=False).npv[party]
    b = dm.simulate(without, paths=paths, seed=8, keep_flows=False).npv[party]
    diff = a - b
    return float(diff.mean()), float(diff.std() / np.sqrt(paths))


@pytest.mark.parametrize("owner", ["sponsor", "program"])
def test_flexibility_never_lowers_the_deciders_value(owner):
    data = dm.load_deal(REFERENCE["hybrid"]).model_dump(mode="json", by_alias=True, exclude_none=True)
    deal = dm.parse_deal(data | {"decisions": {"rule": "optimal", "owner": owner}})
    gain, se = _paired_gain(deal, owner)
    assert gain > -3 * se
    assert gain > 0.5  # the reference program has candidates worth stopping


def test_flexibility_is_zero_when_every_continuation_is_clearly_worth_it():
    c = candidate("A")
    c["commercial"]["peak_sales"] = {"dist": "uniform", "low": 20_000.0, "high": 30_000.0}
    deal = dm.parse_deal(base_deal(candidates=[c], decisions="optimal"))
    result = dm.simulate(deal, paths=20_000, seed=2, keep_flows=False)
    assert result.candidates["A"]["prob_stopped_before_phase3"] == 0.0
    assert result.candidates["A"]["prob_stopped_before_filing"] == 0.0
    gain, _ = _paired_gain(deal, "sponsor", 20_000)
    assert gain == 0.0


def test_no_look_ahead_later_draws_leave_every_decision_at_a_gate_unchanged():
    deal = dm.parse_deal(dm.load_deal(REFERENCE["hybrid"]).model_dump(mode="json", by_alias=True, exclude_none=True)
                         | {"decisions": "optimal"})
    n = 8_192
    program = simulate_program(deal, 5, 0, 1, n)
    other = simulate_program(deal, 99, 0, 1, n)  # another future after the gate
    draws, other_draws = forecast_draws(deal, 5, 0, 1, n), forecast_draws(deal, 99, 0, 1, n)
    base = decide(deal, program, 5, 0, draws)
    checked = 0
    for c, (cp, cq) in enumerate(zip(program.candidates, other.candidates, strict=True)):
        for k in range(1, len(cp.phases)):
            # phases k on and forecast draws after gate k from the other future; everything before, this one's
            def spliced(a, b, k=k):
                return np.concatenate([a[:, :k], b[:, k:]], axis=1)

            success = spliced(cp.succeeded | ~cp.reached, cq.succeeded | ~cq.reached)  # phase outcomes
            succeeded = np.cumprod(success, axis=1).astype(bool)
            reached = np.ones_like(succeeded)
            reached[:, 1:] = succeeded[:, :-1]
            duration = spliced(cp.end - cp.start, cq.end - cq.start)
            end = np.cumsum(duration, axis=1)
            start = np.concatenate([np.zeros((n, 1)), end[:, :-1]], axis=1)
            changed = dataclasses.replace(
                cp, start=start, end=end, bounds=np.concatenate([start[:, :1], end], axis=1), reached=reached,
                succeeded=succeeded, sponsor_cost=spliced(cp.sponsor_cost, cq.sponsor_cost),
                partner_cost=spliced(cp.partner_cost, cq.partner_cost), approved=succeeded[:, -1],
                launch=np.where(succeeded[:, -1], end[:, -1], np.inf))
            later = [x if i != c else np.concatenate([x[:, :k + 1], other_draws[c][:, k + 1:]], axis=1)
                     for i, x in enumerate(draws)]
            trial = dataclasses.replace(program, candidates=(*program.candidates[:c], changed,
                                                             *program.candidates[c + 1:]))
            again = decide(deal, trial, 5, 0, later).candidates[c]
            assert np.array_equal(again.stopped[:, :k], base.candidates[c].stopped[:, :k]), (c, k)
            checked += int(base.candidates[c].stopped[:, k - 1].sum())
    assert checked > 100  # there were decisions to keep


def test_a_milestone_at_phase3_start_makes_the_sponsor_stop_what_it_would_run():
    """By hand: the low-sales candidate is worth going on with (V > 0 at the gate) until a milestone of
    twice that value falls due to the partner the moment phase 3 starts."""
    c = candidate("A")
    c["commercial"]["peak_sales"] = {"dist": "discrete", "values": [150.0, HIGH], "probabilities": [0.5, 0.5]}
    data = base_deal(candidates=[c], decisions={"rule": "optimal", "forecast_noise": ZERO_NOISE})
    d = Disc(0.15, 30)
    # going on with low sales, PV at 0, on the paths that pass phase 2 (probability 0.4)
    worth = (_branch(data, 150.0, None, d) - _branch(data, 150.0, 0, d)) / 0.4
    assert worth > 10.0
    gate = 3.25  # phase 3 starts when phase 2 (3.25 years) ends
    amount = 2 * worth / d.lump(gate)  # PV of the milestone: twice what going on is worth
    with_milestone = dict(data, terms=[{"kind": "milestone", "event": "phase3_start", "amount": round(amount, 6)}])
    before = dm.simulate(dm.parse_deal(data), paths=40_000, seed=6, keep_flows=False)
    after = dm.simulate(dm.parse_deal(with_milestone), paths=40_000, seed=6, keep_flows=False)
    assert before.candidates["A"]["prob_stopped_before_phase3"] == 0.0
    # every low-sales path that passes phase 2 now stops: P = 0.4 x 0.5
    stopped = after.candidates["A"]["prob_stopped_before_phase3"]
    assert stopped == pytest.approx(0.2, abs=4 * np.sqrt(0.2 * 0.8 / 40_000))
    program = deal_program(dm.parse_deal(with_milestone), 6, 0, 1, 8_192).candidates[0]
    raw = simulate_program(dm.parse_deal(data), 6, 0, 1, 8_192).candidates[0]
    assert np.array_equal(program.stopped[:, 0], raw.succeeded[:, 0] & (raw.peak_sales == 150.0))


@pytest.mark.parametrize("owner", ["sponsor", "partner", "program"])
def test_the_kernel_and_the_reference_agree_with_decisions(owner):
    pytest.importorskip("numba")
    for key in ("hybrid", "cdmo_risk_share"):
        data = dm.load_deal(REFERENCE[key]).model_dump(mode="json", by_alias=True, exclude_none=True)
        deal = dm.parse_deal(data | {"decisions": {"rule": "optimal", "owner": owner}})
        a = dm.simulate(deal, paths=10_000, seed=1, engine="numpy", keep_flows=False)
        b = dm.simulate(deal, paths=10_000, seed=1, engine="numba", keep_flows=False)
        for party in ("sponsor", "partner", "program"):
            np.testing.assert_allclose(b.npv[party], a.npv[party], rtol=1e-9, atol=1e-9)
        assert a.candidates == b.candidates


def test_the_threshold_rule_goes_on_where_the_forecast_reaches_it():
    c = candidate("A")
    c["commercial"]["peak_sales"] = {"dist": "discrete", "values": [LOW, HIGH], "probabilities": [0.5, 0.5]}
    deal = dm.parse_deal(base_deal(candidates=[c], decisions={"rule": "threshold", "threshold": 500.0,
                                                              "forecast_noise": ZERO_NOISE}))
    raw = simulate_program(deal, 1, 0, 1, 8_192).candidates[0]
    cp = deal_program(deal, 1, 0, 1, 8_192).candidates[0]
    assert np.array_equal(cp.stopped[:, 0], raw.succeeded[:, 0] & (raw.peak_sales == LOW))
    # a threshold above every forecast stops every candidate at its first gate, worth it or not
    data = base_deal(candidates=[c], decisions={"rule": "threshold", "threshold": 5_000.0,
                                                "forecast_noise": ZERO_NOISE})
    cp = deal_program(dm.parse_deal(data), 1, 0, 1, 8_192).candidates[0]
    assert np.array_equal(cp.stopped[:, 0], raw.succeeded[:, 0])


def test_the_report_prices_the_distortion_of_a_phase3_milestone_by_hand():
    """The sponsor stops low-sales paths the program would run: the program loses what running them is worth."""
    c = candidate("A")
    c["commercial"]["peak_sales"] = {"dist": "discrete", "values": [150.0, HIGH], "probabilities": [0.5, 0.5]}
    for phase in c["phases"].values():
        phase["partner_cost"] = 0.0  # the program's value is then the sponsor's before payments
    data = base_deal(candidates=[c], decisions={"rule": "optimal", "forecast_noise": ZERO_NOISE})
    d = Disc(0.15, 30)
    worth = _branch(data, 150.0, None, d) - _branch(data, 150.0, 0, d)  # over all futures (0.4 pass phase 2)
    amount = 2 * (worth / 0.4) / d.lump(3.25)
    deal = dm.parse_deal(dict(data, terms=[{"kind": "milestone", "event": "phase3_start", "amount": round(amount, 6)}]))
    report = dm.decision_report(deal, paths=40_000, seed=3)
    assert report.stops.loc[("A", "phase3"), "under the deal"] == pytest.approx(0.2, abs=0.01)
    assert report.stops.loc[("A", "phase3"), "as the program would"] == 0.0
    # low sales (half the futures) stopped: the program gives up what going on was worth
    assert abs(report.distortion - 0.5 * worth) < 4 * report.distortion_se + 1e-9
    assert abs(report.flexibility + 0.5 * worth) < 4 * report.flexibility_se + 1e-9
    assert report.values.loc["no decisions", "program"] == pytest.approx(
        report.values.loc["decided as the program would", "program"], abs=1e-9)  # the program would stop nothing
    text = report.summary()
    assert "A before phase3: stopped in 20." in text and "the program would: 0.0%" in text
    assert report.to_dict()["stops"][0]["candidate"] == "A"


def test_the_report_of_a_deal_decided_by_the_program_shows_no_distortion():
    data = dm.load_deal(REFERENCE["milestone"]).model_dump(mode="json", by_alias=True, exclude_none=True)
    report = dm.decision_report(dm.parse_deal(data), paths=10_000, seed=2, owner="program")
    assert report.distortion == 0.0
    assert (report.stops["change"] == 0.0).all()
    assert "does not change which candidates are stopped" in report.summary()


def test_a_candidate_the_partner_decides_on_follows_the_partners_value():
    """The milestone case: the sponsor would stop the low-sales paths; the partner, paid the milestone, never does."""
    c = candidate("A")
    c["commercial"]["peak_sales"] = {"dist": "discrete", "values": [150.0, HIGH], "probabilities": [0.5, 0.5]}
    d = Disc(0.15, 30)
    data = base_deal(candidates=[c], decisions={"rule": "optimal", "forecast_noise": ZERO_NOISE})
    worth = (_branch(data, 150.0, None, d) - _branch(data, 150.0, 0, d)) / 0.4
    data["terms"] = [{"kind": "milestone", "event": "phase3_start", "amount": round(2 * worth / d.lump(3.25), 6)}]
    sponsor = dm.simulate(dm.parse_deal(data), paths=20_000, seed=6, keep_flows=False)
    data["decisions"]["owners"] = {"A": "partner"}
    partner = dm.simulate(dm.parse_deal(data), paths=20_000, seed=6, keep_flows=False)
    assert sponsor.candidates["A"]["prob_stopped_before_phase3"] > 0.18
    assert partner.candidates["A"]["prob_stopped_before_phase3"] == 0.0
    data["decisions"]["owners"] = {"B": "partner"}
    with pytest.raises(dm.DealError, match=r"decisions.owners.B: unknown candidate 'B'"):
        dm.parse_deal(data)


def test_the_decider_does_no_worse_with_its_own_rule_than_with_the_programs():
    data = dm.load_deal(REFERENCE["hybrid"]).model_dump(mode="json", by_alias=True, exclude_none=True)
    own = dm.parse_deal(data | {"decisions": {"rule": "optimal", "owner": "sponsor"}})
    programs = dm.parse_deal(data | {"decisions": {"rule": "optimal", "owner": "program"}})
    a, b = dm.simulate_many([own, programs], paths=40_000, seed=0, keep_flows=False, yearly_sample=0)
    diff = a.npv["sponsor"] - b.npv["sponsor"]
    assert diff.mean() > -3 * diff.std() / np.sqrt(diff.size)
    program = b.npv["program"] - a.npv["program"]  # and the program does best with its own
    assert program.mean() > -3 * program.std() / np.sqrt(program.size)


def _report(stops: list[tuple[str, str, float, float]], owner: str = "sponsor", **decisions) -> dm.DecisionReport:
    import pandas as pd

    from dealmodel.decisions import ROWS

    deal = dm.parse_deal(base_deal(decisions={"rule": "optimal", "owner": owner, **decisions}))
    frame = pd.DataFrame([(c, g, p, q, p - q) for c, g, p, q in stops],
                         columns=["candidate", "gate", "under the deal", "as the program would", "change"])
    values = pd.DataFrame({"sponsor": [1.0, 2.0, 3.0], "partner": [4.0, 5.0, 6.0], "program": [5.0, 7.5, 9.25]},
                          index=list(ROWS))
    rule, threshold = deal.decisions.rule, deal.decisions.threshold
    return dm.DecisionReport(deal=deal, paths=10_000, seed=3, rule=rule, owner=owner, threshold=threshold,
                             values=values, values_se=values * 0.0, stops=frame.set_index(["candidate", "gate"]),
                             flexibility=2.5, flexibility_se=0.25, distortion=1.75, distortion_se=0.5)


def test_a_moved_decision_is_one_beyond_two_standard_errors_of_both_proportions():
    # 10,000 futures: p = 0.5 against q = 0.485 differs by 0.015 > 2 sqrt((0.25 + 0.2498) / 10,000) = 0.0141;
    # 0.10 against 0.095 by 0.005 < 0.0081; 0.0004 against 0 is below the 0.05% floor
    report = _report([("A", "phase2", 0.5, 0.485), ("A", "phase3", 0.10, 0.095), ("B", "phase3", 0.0004, 0.0)])
    assert list(report.moved().index) == [("A", "phase2")]


def test_the_summary_says_it_in_words():
    text = _report([("A", "phase2", 0.5, 0.3)]).summary()
    assert text.splitlines() == [
        "Gate decisions (optimal; decided by the sponsor); 10,000 futures, seed 3; USD millions, ± one standard "
        "error on the same futures",
        "  Value of flexibility to the program: +2.5 ± 0.2 (program eNPV with decisions less without)",
        "  The deal distorts decisions by 1.8 ± 0.5 of program value (against stopping where the two parties "
        "together would):",
        "    A before phase2: stopped in 50.0% of futures (the program would: 30.0%)",
        "  expected NPV      no decisions  under the deal  as program would",
        "  sponsor                    1.0             2.0               3.0",
        "  partner                    4.0             5.0               6.0",
        "  program                    5.0             7.5               9.2",
    ]
    assert "does not change which candidates" in _report([("A", "phase2", 0.5, 0.3)], owner="program").summary()


def test_decisions_give_the_same_paths_whatever_the_chunking_threads_or_engine():
    deal = dm.load_deal(ROOT / "examples" / "hybrid_with_gate_decisions.yaml")
    base = dm.simulate(deal, paths=20_000, seed=4, keep_flows=False, chunk_size=20_480, threads=1)
    for chunk, threads, engine in ((8_192, 1, None), (8_192, 2, None), (16_384, 2, "numpy")):
        other = dm.simulate(deal, paths=20_000, seed=4, keep_flows=False, chunk_size=chunk, threads=threads,
                            engine=engine)
        for party in ("sponsor", "partner", "program"):
            np.testing.assert_allclose(other.npv[party], base.npv[party], rtol=1e-9, atol=1e-9)
        assert other.candidates == base.candidates


def test_the_report_takes_the_deals_own_rule_owner_and_threshold_unless_told_otherwise():
    deal = dm.parse_deal(_two_level(rule="threshold", owner="partner", threshold=500.0))
    report = dm.decision_report(deal, paths=2_000, seed=1)
    assert (report.rule, report.owner, report.threshold) == ("threshold", "partner", 500.0)
    # "decided under the deal" is the deal as written, on the same futures as a plain simulation
    alone = dm.simulate(deal, paths=2_000, seed=1, keep_flows=False)
    for party in ("sponsor", "partner"):
        assert report.values.loc["decided under the deal", party] == pytest.approx(alone.npv[party].mean(), rel=1e-12)
    told = dm.decision_report(deal, paths=2_000, seed=1, rule="optimal", owner="sponsor")
    assert (told.rule, told.owner) == ("optimal", "sponsor")
    # a deal that decides nothing is reported under the optimal rule of its own owner
    quiet = dm.decision_report(dm.parse_deal(_two_level(rule="none", owner="partner")), paths=2_000, seed=1)
    assert (quiet.rule, quiet.owner) == ("optimal", "partner")
    plain = dm.decision_report(dm.parse_deal(base_deal()), paths=2_000, seed=1)
    assert (plain.rule, plain.owner, plain.threshold) == ("optimal", "sponsor", None)
    with pytest.raises(ValueError, match="rule must be threshold or optimal"):
        dm.decision_report(deal, paths=2_000, seed=1, rule="none")


def test_the_summary_names_the_rule_and_each_candidates_decider():
    text = _report([("A", "phase2", 0.5, 0.5)], rule="threshold", threshold=1250.0, owners={"A": "partner"}).summary()
    assert text.splitlines()[0].startswith("Gate decisions (threshold: forecast peak sales ≥ 1,250; decided by the "
                                           "sponsor (A: the partner)); 10,000 futures, seed 3;")
    assert text.splitlines()[2] == "  The deal does not change which candidates are stopped."


def test_the_reports_json_lists_every_figure_under_its_name():
    report = _report([("A", "phase2", 0.5, 0.3)], rule="threshold", threshold=900.0)
    assert report.to_dict() == {
        "deal": "test deal", "paths": 10_000, "seed": 3, "rule": "threshold", "owner": "sponsor", "threshold": 900.0,
        "values": {"no decisions": {"sponsor": 1.0, "partner": 4.0, "program": 5.0},
                   "decided under the deal": {"sponsor": 2.0, "partner": 5.0, "program": 7.5},
                   "decided as the program would": {"sponsor": 3.0, "partner": 6.0, "program": 9.25}},
        "values_se": {r: {"sponsor": 0.0, "partner": 0.0, "program": 0.0}
                      for r in ("no decisions", "decided under the deal", "decided as the program would")},
        "stops": [{"candidate": "A", "gate": "phase2", "under the deal": 0.5, "as the program would": 0.3,
                   "change": pytest.approx(0.2)}],
        "flexibility": 2.5, "flexibility_se": 0.25, "distortion": 1.75, "distortion_se": 0.5}


def test_a_gate_too_rare_to_fit_lets_every_path_that_reaches_it_go_on():
    # phase 2 almost never succeeds: on the 16,384 fitting paths about 8 reach phase 3, too few to fit a rule
    c = candidate("A")
    c["phases"]["phase2"]["success_probability"] = 0.0005
    data = base_deal(candidates=[c], decisions={"rule": "optimal"})
    decided = dm.simulate(dm.parse_deal(data), paths=40_000, seed=1, keep_flows=False)
    plain = dm.simulate(dm.parse_deal({k: v for k, v in data.items() if k != "decisions"}), paths=40_000, seed=1,
                        keep_flows=False)
    assert decided.candidates["A"]["prob_reach_phase3"] > 0  # some paths do reach the gate, and all go on
    assert decided.candidates["A"]["prob_stopped_before_phase3"] == 0.0
    for party in ("sponsor", "partner", "program"):
        np.testing.assert_allclose(decided.npv[party], plain.npv[party], rtol=1e-12, atol=1e-12)


def test_the_report_values_each_variant_with_its_standard_error_on_the_same_futures():
    # the partner decides candidate A; "as the program would" drops that and lets both decide together
    c = candidate("A")
    c["commercial"]["peak_sales"] = {"dist": "discrete", "values": [LOW, HIGH], "probabilities": [0.5, 0.5]}
    data = base_deal(candidates=[c], decisions={"rule": "optimal", "forecast_noise": ZERO_NOISE,
                                                "owners": {"A": "partner"}},
                     terms=[{"kind": "milestone", "event": "phase3_start", "amount": 60.0}])
    deal = dm.parse_deal(data)
    report = dm.decision_report(deal, paths=3_000, seed=8)
    assert (report.paths, report.seed) == (3_000, 8)
    plain = dict(data)
    plain.pop("decisions")
    program = {**data, "decisions": {**data["decisions"], "owner": "program", "owners": {}}}
    runs = {"no decisions": plain, "decided under the deal": data, "decided as the program would": program}
    npv = {}
    for row, variant in runs.items():
        npv[row] = dm.simulate(dm.parse_deal(variant), paths=3_000, seed=8, keep_flows=False).npv
        for party in ("sponsor", "partner", "program"):
            x = npv[row][party]
            assert report.values.loc[row, party] == pytest.approx(x.mean(), rel=1e-12, abs=1e-12)
            assert report.values_se.loc[row, party] == pytest.approx(x.std(ddof=1) / np.sqrt(3_000), rel=1e-12)
    flex = npv["decided under the deal"]["program"] - npv["no decisions"]["program"]
    dist = npv["decided as the program would"]["program"] - npv["decided under the deal"]["program"]
    assert report.flexibility == pytest.approx(flex.mean(), rel=1e-12)
    assert report.flexibility_se == pytest.approx(flex.std(ddof=1) / np.sqrt(3_000), rel=1e-12)
    assert report.distortion == pytest.approx(dist.mean(), rel=1e-12)
    assert report.distortion_se == pytest.approx(dist.std(ddof=1) / np.sqrt(3_000), rel=1e-12)
    assert report.distortion_se > 0.0
    # the partner, paid at phase 3, never stops there; the program stops the low-sales paths
    assert report.stops.loc[("A", "phase3"), "under the deal"] == 0.0
    assert report.stops.loc[("A", "phase3"), "as the program would"] > 0.15
    # one future: no spread to estimate, the standard errors are zero
    one = dm.decision_report(deal, paths=1, seed=8)
    assert one.flexibility_se == 0.0 and one.distortion_se == 0.0 and (one.values_se == 0.0).all().all()


def test_the_report_takes_a_threshold_override_and_names_a_bad_owner():
    deal = dm.parse_deal(_two_level(rule="threshold", threshold=500.0))
    low = dm.decision_report(deal, paths=2_000, seed=1)
    high = dm.decision_report(deal, paths=2_000, seed=1, threshold=5_000.0)
    assert (low.threshold, high.threshold) == (500.0, 5_000.0)
    # 500 stops the LOW paths only (10 < 500 < 2,000); 5,000 stops every path that reaches the gate
    assert low.stops.loc[("A", "phase3"), "under the deal"] == pytest.approx(0.2, abs=0.04)
    assert high.stops.loc[("A", "phase3"), "under the deal"] == pytest.approx(0.4, abs=0.05)
    with pytest.raises(ValueError, match=r"owner must be sponsor, partner or program \(got 'bank'\)"):
        dm.decision_report(deal, paths=2_000, seed=1, owner="bank")
    import inspect

    defaults = inspect.signature(dm.decision_report).parameters
    assert (defaults["paths"].default, defaults["seed"].default) == (20_000, 0)  # as the CLI and docs say


def test_the_summary_lists_every_candidate_another_party_decides():
    report = _report([("A", "phase2", 0.5, 0.5)], owners={"A": "partner"})
    two = base_deal(candidates=[candidate("A"), candidate("B")],
                    decisions={"rule": "optimal", "owners": {"A": "partner", "B": "program"}})
    text = dataclasses.replace(report, deal=dm.parse_deal(two)).summary()
    assert "decided by the sponsor (A: the partner, B: both parties together))" in text.splitlines()[0]


def test_a_forecast_of_sales_below_one_million_is_not_floored_to_one():
    # threshold 0.8 ($0.8M a year): peak sales of 0.5 are below it at every gate (no forecast noise)
    c = candidate("A")
    c["commercial"]["peak_sales"] = 0.5
    deal = dm.parse_deal(base_deal(candidates=[c], decisions={"rule": "threshold", "threshold": 0.8,
                                                               "forecast_noise": ZERO_NOISE}))
    info = dm.simulate(deal, paths=4_000, seed=1, keep_flows=False).candidates["A"]
    assert info["prob_reach_phase3"] == 0.0 and info["prob_stopped_before_phase3"] > 0.35


def test_the_fit_is_reproducible_with_a_random_price_index_and_a_fit_size_off_the_blocks():
    from dealmodel.decisions import _fit

    data = _two_level(forecast_noise={"phase1": 0.9, "phase2": 0.7, "phase3": 0.5, "filing": 0.3}, fit_paths=10_000)
    data["terms"] = [{"kind": "service_fees", "markup": 0.3, "at_risk_fraction": 0.5, "success_premium": 1.0,
                      "escalation": {"dist": "uniform", "low": 0.0, "high": 0.1}}]
    deal = dm.parse_deal(data)
    first, again = _fit(deal, 4), _fit(deal, 4)
    for a, b in zip(first.gates[0], again.gates[0], strict=True):
        assert a.coef is not None and np.array_equal(a.coef, b.coef)
    assert not np.array_equal(first.gates[0][0].coef, _fit(deal, 5).gates[0][0].coef)  # the seed matters
    result = dm.simulate(deal, paths=3_000, seed=4, keep_flows=False)
    assert result.candidates["A"]["prob_stopped_before_phase3"] > 0.1


def test_the_rule_cache_fits_once_per_deal_and_seed_and_drops_the_least_recently_used(monkeypatch):
    from dealmodel import decisions

    fitted = []
    monkeypatch.setattr(decisions, "_fit", lambda deal, seed: fitted.append((deal.decisions.threshold, seed)) or
                        fitted[-1])
    cache = decisions._PolicyCache(size=2)
    deals = {t: dm.parse_deal(_two_level(rule="threshold", threshold=t)) for t in (100.0, 200.0, 300.0)}
    assert cache.get(deals[100.0], 4) == (100.0, 4)  # fitted with the run's own seed
    cache.get(deals[100.0], 4)
    cache.get(deals[100.0], 5)
    assert fitted == [(100.0, 4), (100.0, 5)]
    cache.get(deals[100.0], 4)  # (100, 4) is now the most recently used: (100, 5) goes first
    cache.get(deals[200.0], 4)  # a third rule in a cache of two
    cache.get(deals[100.0], 4)
    assert len(fitted) == 3
    cache.get(deals[100.0], 5)
    assert fitted[-1] == (100.0, 5) and len(fitted) == 4
    cache.clear()
    cache.get(deals[300.0], 1)
    assert fitted[-1] == (300.0, 1)


def test_a_forecast_that_is_the_same_on_every_path_still_gives_a_rule():
    # fixed peak sales of 2,000 and no forecast noise: every forecast at a gate is the same number, so
    # the rule can only use the date; going on is worth far more than stopping, so no one stops
    c = candidate("A")
    c["commercial"]["peak_sales"] = HIGH
    deal = dm.parse_deal(base_deal(candidates=[c], decisions={"rule": "optimal", "forecast_noise": ZERO_NOISE}))
    info = dm.simulate(deal, paths=4_000, seed=1, keep_flows=False).candidates["A"]
    assert info["prob_stopped_before_phase3"] == 0.0 and info["prob_stopped_before_filing"] == 0.0
    assert info["prob_reach_filing"] == pytest.approx(0.2, abs=0.03)


def test_a_decision_report_by_default_uses_20000_futures_of_seed_0():
    deal = dm.parse_deal(base_deal())
    report = dm.decision_report(deal)
    assert (report.paths, report.seed) == (20_000, 0)
    two = dm.decision_report(deal, paths=2, seed=3)  # two futures: the sample deviation over sqrt 2
    x = dm.simulate(deal, paths=2, seed=3, keep_flows=False).npv["sponsor"]
    assert abs(x[0] - x[1]) > 1.0  # two different futures
    assert two.values_se.loc["no decisions", "sponsor"] == pytest.approx(abs(x[0] - x[1]) / 2, rel=1e-12)

