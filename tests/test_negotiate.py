"""Negotiation: certainty equivalents, the zone of agreement, fair splits and the frontier, by hand."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import dealmodel as dm
from dealmodel.negotiate import _Evaluator, _walkaways, certainty_equivalent, frontier, influence, negotiate, separable

ROOT = Path(__file__).resolve().parents[1]
RS, RP, H, PEAK, LAUNCH = 0.15, 0.10, 20, 100.0, 1.0


def _deal(peak=PEAK, terms=None, sponsor_tolerance=None) -> dm.Deal:
    """One candidate in filing for a year, certain approval, flat sales of ``peak`` a year after."""
    return dm.parse_deal({
        "name": "one royalty", "valuation_year": 2026, "horizon_years": H,
        "parties": {"sponsor": {"name": "S", "discount_rate": RS, "risk_tolerance": sponsor_tolerance},
                    "partner": {"name": "P", "discount_rate": RP}},
        "candidates": [{
            "name": "A", "modality": "antibody", "start_phase": "filing",
            "phases": {"filing": {"success_probability": 1.0, "duration_years": LAUNCH, "cost": 0.0,
                                  "partner_cost": 0.0}},
            "commercial": {"peak_sales": peak, "launch_curve": [1.0], "exclusivity_years": 50.0,
                           "erosion_after_loe": 0.0, "cogs_fraction": 0.0, "opex_fraction": 0.0},
        }],
        "terms": terms or [{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.05}]}],
    })


def _sales_pv(rate: float) -> float:
    """PV of 100 a year from t = 1 to the horizon, discounted continuously at ln(1 + rate)."""
    lg = math.log1p(rate)
    return PEAK * (math.exp(-lg * LAUNCH) - math.exp(-lg * H)) / lg


# --------------------------------------------------------------------------- certainty equivalents


def test_certainty_equivalent_of_a_two_point_outcome_by_hand():
    x = np.array([0.0, 100.0])
    assert certainty_equivalent(x, 50.0) == pytest.approx(-50.0 * math.log((1 + math.exp(-2.0)) / 2), rel=1e-14)
    assert certainty_equivalent(x, None) == 50.0
    # far outcomes do not overflow: exp(2000) would
    assert certainty_equivalent(np.array([-2e5, 0.0]), 100.0) == pytest.approx(-2e5 + 100 * math.log(2), rel=1e-12)


def test_certainty_equivalent_of_a_normal_npv_is_mean_minus_variance_over_2r():
    rng = np.random.default_rng(3)
    mu, sigma, R = 40.0, 30.0, 120.0
    x = rng.normal(mu, sigma, 400_000)
    se = influence(x, R).std() / math.sqrt(x.size)
    assert certainty_equivalent(x, R) == pytest.approx(mu - sigma**2 / (2 * R), abs=4 * se)


# --------------------------------------------------------------------------- the zone and the splits


def test_zone_and_splits_of_a_royalty_by_hand():
    Ss, Sp = _sales_pv(RS), _sales_pv(RP)
    Ws, Wp = 300.0, 40.0
    result = negotiate(_deal(), "terms[0].tiers[0].rate", {"sponsor": Ws, "partner": Wp}, ranges=[(0.0, 1.0)],
                       paths=200, seed=1)
    # sponsor: (1 - r) Ss >= Ws; partner: r Sp >= Wp
    (lo, hi), = result.zone
    assert lo == pytest.approx(Wp / Sp, rel=1e-9)
    assert hi == pytest.approx(1 - Ws / Ss, rel=1e-9)
    nash = (Ss * Wp + Ss * Sp - Sp * Ws) / (2 * Ss * Sp)  # maximises ((1 - r) Ss - Ws)(r Sp - Wp)
    assert result.splits["nash"].x[0] == pytest.approx(nash, rel=1e-6)
    equal = (Ss - Ws + Wp) / (Ss + Sp)
    split = result.splits["equal_gain"]
    assert split.x[0] == pytest.approx(equal, rel=1e-9)
    assert split.sponsor_gain == pytest.approx(split.partner_gain, rel=1e-9)
    assert split.joint_gain == pytest.approx((1 - equal) * Ss - Ws + equal * Sp - Wp, rel=1e-9)
    # equal share of each party's most: gains (hi - r) Ss and (r - lo) Sp in proportion to (hi - lo) Ss, (hi - lo) Sp
    assert result.splits["equal_share"].x[0] == pytest.approx((lo + hi) / 2, rel=1e-9)
    assert split.joint_gain_se == 0.0  # every path is the same


def test_there_is_no_zone_exactly_when_the_best_joint_gain_is_negative():
    # an upfront is worth its face to both parties: the joint gain does not depend on it, and a zone
    # exists exactly when that joint gain is >= 0
    terms = [{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.0}]}, {"kind": "upfront", "amount": 0.0}]
    Ss = _sales_pv(RS)
    for joint in (-2.0, 2.0):
        walk = {"sponsor": (Ss - joint) / 2, "partner": (Ss - joint) / 2}
        result = negotiate(_deal(terms=terms), "terms[1].amount", walk, ranges=[(0.0, Ss)], paths=100)
        assert result.has_zone == (joint >= 0)
        if joint < 0:
            assert result.zone == [] and not result.splits and "no zone" in result.summary()
            assert result.shortfall == pytest.approx(-joint, rel=1e-9)
        else:
            (lo, hi), = result.zone
            assert (lo, hi) == (pytest.approx(walk["partner"], rel=1e-9), pytest.approx(Ss - walk["sponsor"], rel=1e-9))
            assert result.shortfall == 0.0
            assert result.splits["equal_gain"].joint_gain == pytest.approx(joint, rel=1e-9)


def test_a_royalty_zone_needs_the_walkaways_to_fit_the_two_valuations_of_the_sales():
    # the royalty moves sales worth Ss to the sponsor and Sp to the partner: a zone exists exactly when
    # Ws / Ss + Wp / Sp <= 1, even where the best joint gain (at r = 1: Sp - Ws - Wp) is positive
    Ss, Sp = _sales_pv(RS), _sales_pv(RP)
    for share in (0.52, 0.48):
        walk = {"sponsor": share * Ss, "partner": share * Sp}
        result = negotiate(_deal(), "terms[0].tiers[0].rate", walk, ranges=[(0.0, 1.0)], paths=100)
        assert result.has_zone == (share <= 0.5)
        assert Sp - walk["sponsor"] - walk["partner"] > 0


def test_a_split_on_common_paths_has_a_paired_standard_error_far_below_the_unpaired_one():
    lognormal = {"dist": "lognormal", "median": 100.0, "p90": 250.0}
    deal = _deal(peak=lognormal)
    walk = _deal(peak=lognormal, terms=[{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.04}]}])
    result = negotiate(deal, "terms[0].tiers[0].rate", {"sponsor": walk, "partner": 0.0}, ranges=[(0.0, 0.2)],
                       paths=4000, seed=2)
    assert result.zone[0][0] == 0.0 and result.zone[0][1] == pytest.approx(0.04, rel=1e-9)
    split = result.splits["equal_gain"]
    at = dm.set_value(deal, "terms[0].tiers[0].rate", split.x[0])
    a, b = dm.simulate(at, paths=4000, seed=2), dm.simulate(walk, paths=4000, seed=2)
    joint = a.npv["sponsor"] - b.npv["sponsor"] + a.npv["partner"]
    unpaired = math.sqrt((a.npv["sponsor"] + a.npv["partner"]).var(ddof=1) / 4000 + b.npv["sponsor"].var(ddof=1) / 4000)
    assert split.joint_gain == pytest.approx(joint.mean(), rel=1e-9)
    assert split.joint_gain_se == pytest.approx(joint.std(ddof=1) / math.sqrt(4000), rel=1e-9)
    assert split.joint_gain_se < 0.25 * unpaired


def test_risk_aversion_moves_the_zone_toward_the_side_that_bears_less_risk():
    lognormal = {"dist": "lognormal", "median": 100.0, "p90": 250.0}
    neutral = negotiate(_deal(peak=lognormal), "terms[0].tiers[0].rate", {"sponsor": 200.0, "partner": 20.0},
                        measure="ce", ranges=[(0.0, 1.0)], paths=4000)
    averse = negotiate(_deal(peak=lognormal, sponsor_tolerance=100.0), "terms[0].tiers[0].rate",
                       {"sponsor": 200.0, "partner": 20.0}, measure="ce", ranges=[(0.0, 1.0)], paths=4000)
    # a risk-averse sponsor values its uncertain share less: it accepts less (a higher royalty) no more
    assert averse.zone[0][1] < neutral.zone[0][1]
    assert averse.zone[0][0] == pytest.approx(neutral.zone[0][0], rel=1e-9)  # the partner is unchanged


def test_two_parameters_give_a_region_and_its_splits():
    terms = [{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.05}]}, {"kind": "upfront", "amount": 10.0}]
    result = negotiate(_deal(terms=terms), ["terms[0].tiers[0].rate", "terms[1].amount"],
                       {"sponsor": 300.0, "partner": 40.0}, ranges=[(0.0, 0.6), (0.0, 100.0)], paths=100, grid=11)
    assert len(result.table) == 121 and 0 < result.zone < 1
    Ss, Sp = _sales_pv(RS), _sales_pv(RP)
    inside = result.table["inside"]
    by_hand = ((1 - result.table["terms[0].tiers[0].rate"]) * Ss - result.table["terms[1].amount"] >= 300.0) & \
        (result.table["terms[0].tiers[0].rate"] * Sp + result.table["terms[1].amount"] >= 40.0)
    assert (inside == by_hand).all()
    assert result.splits["nash"].sponsor_gain >= 0 and result.splits["nash"].partner_gain >= 0
    # each party's walk-away curve: the upfront at which its gain is 0, where that is inside 0-100
    curves = result.curves.set_index("terms[0].tiers[0].rate")
    for r, row in curves.iterrows():
        for party, upfront in (("sponsor", (1 - r) * Ss - 300.0), ("partner", 40.0 - r * Sp)):
            if 0.0 <= upfront <= 100.0:
                assert row[party] == pytest.approx(upfront, rel=1e-9, abs=1e-9)
            else:
                assert math.isnan(row[party])
    assert curves["sponsor"].notna().sum() >= 2 and curves["partner"].notna().sum() >= 1  # not blind
    assert len(result.to_dict()["curves"]) == 11


def _full_grid(deal, params, axes, walkaway, measure="enpv", paths=2000):
    """Every grid point valued as its own structure (no shortcut): the reference for the grid."""
    ev = _Evaluator(deal, tuple(params), measure, paths, 7, _walkaways(walkaway))
    ev.prepare()
    return ev.many([[a, b] for a in axes[0] for b in axes[1]])


def test_a_grid_over_two_independent_terms_values_two_lines_and_matches_every_point():
    hybrid = dm.load_deal(ROOT / "sample_deals" / "reference_hybrid.yaml")
    ffs = dm.load_deal(ROOT / "sample_deals" / "reference_fee_for_service.yaml")
    params = ("terms[0].markup", "terms[4].amount")  # fee markup x approval milestone
    axes = [np.linspace(-0.5, 0.1, 6), np.linspace(0.0, 300.0, 5)]
    assert separable(hybrid, params)
    for measure in ("enpv", "ce"):
        ev = _Evaluator(hybrid, params, measure, 2000, 7, _walkaways(ffs))
        ev.prepare()
        fast = ev.grid(axes)
        assert ev.evaluations == 6 + 5 - 1 + 3  # two lines through a corner, three points checked
        for got, want in zip(fast, _full_grid(hybrid, params, axes, ffs, measure), strict=True):
            assert got["x"] == want["x"]
            for key in ("sponsor", "partner", "sponsor_gain", "partner_gain"):
                assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-9)
            np.testing.assert_allclose(got["partner_influence"], want["partner_influence"], rtol=1e-9, atol=1e-6)


def test_fee_credits_tie_the_terms_so_the_whole_grid_is_valued():
    hybrid = dm.load_deal(ROOT / "sample_deals" / "reference_hybrid.yaml")
    credited = hybrid.model_copy(update={"terms": [*hybrid.terms[:4], hybrid.terms[4].model_copy(
        update={"creditable": True}), *hybrid.terms[5:]]})
    params = ("terms[0].markup", "terms[4].amount")
    assert not separable(credited, params)
    assert not separable(hybrid, ("terms[7].tiers[0].rate", "terms[7].tiers[1].rate"))  # one term
    assert not separable(hybrid, ("scale(milestone)", "terms[0].markup"))
    ev = _Evaluator(credited, params, "enpv", 500, 7, _walkaways(0.0))
    ev.prepare()
    ev.grid([np.linspace(-0.5, 0.1, 3), np.linspace(0.0, 300.0, 4)])
    assert ev.evaluations == 12


def test_a_shortcut_that_does_not_add_up_falls_back_to_the_whole_grid(monkeypatch):
    """Two tiers of one capped royalty do not add; told they do, the check catches it."""
    share = dm.load_deal(ROOT / "sample_deals" / "reference_revenue_share.yaml")
    capped = share.model_copy(update={"terms": [share.terms[0], share.terms[1].model_copy(update={"cap": 150.0})]})
    params = ("terms[1].tiers[0].rate", "terms[1].tiers[1].rate")
    axes = [np.linspace(0.0, 0.3, 4), np.linspace(0.1, 0.4, 4)]
    monkeypatch.setattr(sys.modules["dealmodel.negotiate"], "separable", lambda deal, p: True)
    ev = _Evaluator(capped, params, "enpv", 2000, 7, _walkaways(0.0))
    ev.prepare()
    got = ev.grid(axes)
    assert ev.evaluations > 16  # the lines, a failed check, then all sixteen points
    for g, w in zip(got, _full_grid(capped, params, axes, 0.0), strict=True):
        assert g["partner"] == pytest.approx(w["partner"], rel=1e-12)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="measure must be one of enpv, ce"):
        negotiate(_deal(), "terms[0].tiers[0].rate", 0.0, measure="utility")
    with pytest.raises(ValueError, match="walkaway for sponsor"):
        negotiate(_deal(), "terms[0].tiers[0].rate", "lots")
    with pytest.raises(ValueError, match="range of terms"):
        negotiate(_deal(), "terms[0].tiers[0].rate", 0.0, ranges=[(0.5, 0.1)])


# --------------------------------------------------------------------------- the frontier


def test_frontier_flags_exactly_the_dominated_structures():
    low = _deal(terms=[{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.05}]}]).model_copy(update={"name": "5%"})
    high = _deal(terms=[{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.10}]}]).model_copy(update={"name": "10%"})
    # the 5% royalty plus capacity the partner holds at its own cost for nothing: worse for it, same for the sponsor
    waste = _deal(terms=[{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.05}]},
                         {"kind": "capacity_reservation", "fee_per_year": 0.0, "end_years": 2.0,
                          "partner_cost_per_year": 5.0}]).model_copy(update={"name": "waste"})
    table = frontier([low, high, waste], paths=100)
    assert list(table["dominated"]) == [False, False, True]
    assert table.loc["waste", "dominated_by"] == "5%"
    assert table.loc["10%", "partner"] == pytest.approx(0.10 * _sales_pv(RP), rel=1e-9)


def test_a_swept_royalty_traces_the_frontier_and_a_wasteful_structure_falls_below_it():
    waste = _deal(terms=[{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.05}]},
                         {"kind": "capacity_reservation", "fee_per_year": 0.0, "end_years": 2.0,
                          "partner_cost_per_year": 5.0}]).model_copy(update={"name": "waste"})
    rates = [0.0, 0.05, 0.1, 0.2]
    table = dm.frontier_sweep(_deal(), "terms[0].tiers[0].rate", rates, others=[waste], paths=100)
    assert list(table.index) == [f"terms[0].tiers[0].rate = {r:g}" for r in rates] + ["waste"]
    for r in rates:  # a transfer: the sponsor keeps (1 - r) of the sales, the partner gets r, none dominated
        row = table.loc[f"terms[0].tiers[0].rate = {r:g}"]
        assert row["sponsor"] == pytest.approx((1 - r) * _sales_pv(RS), rel=1e-9)
        assert row["partner"] == pytest.approx(r * _sales_pv(RP), rel=1e-9, abs=1e-9)
        assert not row["dominated"] and row["swept"]
    assert table.loc["waste", "dominated"] and table.loc["waste", "dominated_by"] == "terms[0].tiers[0].rate = 0.05"


def test_cli_negotiate_prints_the_zone_and_exits_zero(capsys):
    from dealmodel.cli import main

    share, fees = (str(ROOT / "sample_deals" / f"reference_{k}.yaml") for k in ("revenue_share", "fee_for_service"))
    code = main(["negotiate", share, "--param", "terms[1].tiers[0].rate", "--walkaway", fees, "--range", "0", "0.6",
                 "--paths", "4000", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    (lo, hi), = out["zone"]
    assert 0 < lo < hi < 0.6
    nash = out["splits"]["nash"]
    assert lo <= nash["x"][0] <= hi and nash["sponsor_gain"] >= 0 and nash["partner_gain"] >= 0
    assert main(["negotiate", share, "--param", "terms[1].tiers[0].rate"]) == 2
    assert "give --walkaway" in capsys.readouterr().err


def test_value_reports_the_certainty_equivalent_beside_the_expected_npv(tmp_path, capsys):
    from dealmodel.cli import main

    lognormal = {"dist": "lognormal", "median": 100.0, "p90": 250.0}
    deal = _deal(peak=lognormal, sponsor_tolerance=100.0)
    result = dm.simulate(deal, paths=2000, seed=3)
    ce = result.certainty_equivalents()
    assert list(ce) == ["sponsor"]  # the partner has no tolerance: risk-neutral, its eNPV is its value
    assert ce["sponsor"] == pytest.approx(-100.0 * math.log(np.mean(np.exp(-result.npv["sponsor"] / 100.0))),
                                          rel=1e-12)
    assert ce["sponsor"] < result.npv["sponsor"].mean()
    path = tmp_path / "deal.yaml"
    dm.save_deal(deal, path)
    assert main(["value", str(path), "--paths", "2000", "--seed", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["certainty_equivalents"]["sponsor"] == pytest.approx(ce["sponsor"])


def test_the_negotiation_workbook_holds_the_zone_the_splits_and_a_chart(tmp_path):
    import openpyxl

    from dealmodel.cli import main

    share, fees = (str(ROOT / "sample_deals" / f"reference_{k}.yaml") for k in ("revenue_share", "fee_for_service"))
    out = tmp_path / "talk.xlsx"
    assert main(["negotiate", share, "--param", "terms[1].tiers[0].rate", "--walkaway", fees, "--range", "0", "0.3",
                 "--paths", "3000", "--out", str(out)]) == 0
    result = negotiate(dm.load_deal(share), "terms[1].tiers[0].rate", dm.load_deal(fees), ranges=[(0.0, 0.3)],
                       paths=3000)
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Negotiation", "Values", "Inputs"]
    ws = wb["Negotiation"]
    assert [ws.cell(2, 1).value, ws.cell(2, 2).value] == ["from", "to"]
    assert ws.cell(3, 1).value == pytest.approx(result.zone[0][0], rel=1e-12)
    assert ws.cell(3, 2).value == pytest.approx(result.zone[0][1], rel=1e-12)
    splits = {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(6, 9)}
    assert splits["nash"] == pytest.approx(result.splits["nash"].x[0], rel=1e-12)
    assert len(ws._charts) == 1
    assert wb["Values"].max_row == 2 + 25
    assert main(["negotiate", share, "--param", "terms[1].tiers[0].rate", "--walkaway", fees,
                 "--out", str(tmp_path / "talk.csv")]) == 2
    assert ws.cell(3, 1).number_format == "#,##0.0000"  # a rate, not money to one decimal


def test_a_two_parameter_workbook_draws_both_walkaway_curves(tmp_path):
    import openpyxl

    from dealmodel.export import write_negotiation

    terms = [{"kind": "royalty", "tiers": [{"above": 0, "rate": 0.05}]}, {"kind": "upfront", "amount": 10.0}]
    result = negotiate(_deal(terms=terms), ["terms[0].tiers[0].rate", "terms[1].amount"],
                       {"sponsor": 300.0, "partner": 40.0}, ranges=[(0.0, 0.6), (0.0, 100.0)], paths=100, grid=11)
    wb = openpyxl.load_workbook(write_negotiation(result, tmp_path / "two.xlsx"))
    assert wb.sheetnames == ["Negotiation", "Values", "Curves", "Inputs"]
    ws = wb["Curves"]
    assert [ws.cell(2, c).value for c in (1, 2, 3)] == ["terms[0].tiers[0].rate", "sponsor", "partner"]
    Ss = _sales_pv(RS)
    for r in range(3, 14):
        rate, sponsor = ws.cell(r, 1).value, ws.cell(r, 2).value
        want = (1 - rate) * Ss - 300.0
        assert (sponsor is None) == (not 0.0 <= want <= 100.0)
        if sponsor is not None:
            assert sponsor == pytest.approx(want, rel=1e-9)
    assert len(wb["Negotiation"]._charts) == 1


def test_the_comparison_table_carries_each_partys_certainty_equivalent():
    lognormal = {"dist": "lognormal", "median": 100.0, "p90": 250.0}
    deal = _deal(peak=lognormal, sponsor_tolerance=100.0)
    comparison = dm.compare([deal], paths=3000, seed=1)
    npv = comparison.results[deal.name].npv
    row = comparison.table.iloc[0]
    by_hand = -100.0 * math.log(np.mean(np.exp(-npv["sponsor"] / 100.0)))
    assert row["sponsor_certainty_equivalent"] == pytest.approx(by_hand, rel=1e-12)
    assert row["partner_certainty_equivalent"] == pytest.approx(npv["partner"].mean(), rel=1e-12)  # risk-neutral
