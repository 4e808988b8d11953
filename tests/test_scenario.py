"""Scenarios: saved, validated, versioned; restored in the app to identical figures; valued from the CLI."""

from __future__ import annotations

import json

import pytest
import yaml

import dealmodel as dm
from dealmodel.cli import main
from dealmodel.edit import set_values
from dealmodel.scenario import ProgramChanges, Scenario, Structure, scenarios_text
from tests.conftest import REFERENCE


def _scenario(name="Board draft") -> Scenario:
    hybrid, ffs = dm.load_deal(REFERENCE["hybrid"]), dm.load_deal(REFERENCE["fee_for_service"])
    return Scenario(name=name, paths=3000, seed=5, selected="hybrid",
                    program=ProgramChanges(peak_scale=1.5, sponsor_rate_delta=2.0, levers={"qbd": False}),
                    structures={"fees": Structure(deal=ffs), "hybrid": Structure(
                        deal=hybrid, edits={"terms[4].amount": 120.0, "terms[7].tiers[0].rate": 0.03})})


def test_a_scenario_applies_the_program_changes_then_the_edits():
    sc = _scenario()
    deal = sc.deals()["hybrid"]
    hybrid = dm.load_deal(REFERENCE["hybrid"])
    assert deal.parties.sponsor.discount_rate == pytest.approx(hybrid.parties.sponsor.discount_rate + 0.02)
    assert deal.parties.partner.discount_rate == hybrid.parties.partner.discount_rate
    assert not deal.levers.qbd.enabled
    for new, old in zip(deal.candidates, hybrid.candidates, strict=True):
        assert new.commercial.peak_sales.mean() == pytest.approx(1.5 * old.commercial.peak_sales.mean())
    assert deal.terms[4].amount == 120.0 and deal.terms[7].tiers[0].rate == 0.03


def test_a_saved_scenario_reads_back_equal_and_values_the_same(tmp_path):
    path = tmp_path / "scenarios.yaml"
    dm.save_scenario(_scenario("A"), path)
    dm.save_scenario(_scenario("B").model_copy(update={"seed": 9}), path)
    assert list(dm.load_scenarios(path)) == ["A", "B"]
    back = dm.load_scenario(path, "A")
    assert back == _scenario("A")
    assert yaml.safe_load(path.read_text())["dealmodel_scenarios"] == 1
    direct = dm.compare(_scenario("A").deals(), paths=3000, seed=5)
    assert back.compare().table["partner_expected_npv"].tolist() == direct.table["partner_expected_npv"].tolist()


def test_bad_scenario_files_are_named_not_crashed(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dealmodel_scenarios: 2\nscenarios: {}\n")
    with pytest.raises(dm.DealError, match="version 2 is not one this dealmodel reads"):
        dm.load_scenarios(bad)
    data = yaml.safe_load(scenarios_text({"A": _scenario("A")}))
    data["scenarios"]["A"]["program"]["peak_scale"] = -1
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(dm.DealError, match=r"scenarios\.A\.program\.peak_scale: must be > 0"):
        dm.load_scenarios(bad)
    data["scenarios"]["A"]["program"]["peak_scale"] = 1.0
    data["scenarios"]["A"]["selected"] = "nope"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(dm.DealError, match="'nope' is not one of the structures"):
        dm.load_scenarios(bad)
    assert main(["scenario", str(bad)]) != 0
    with pytest.raises(dm.DealError, match="no scenario named 'C'"):
        dm.load_scenario(_saved(tmp_path), "C")


def _saved(tmp_path):
    path = tmp_path / "ok.yaml"
    dm.save_scenario(_scenario("A"), path)
    return path


def test_the_cli_values_a_scenario_as_python_does(tmp_path, capsys):
    path = _saved(tmp_path)
    assert main(["scenario", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    direct = _scenario("A").compare()
    got = {v["variant"]: v["partner_expected_npv"] for v in out["variants"]}
    assert got == pytest.approx(direct.table["partner_expected_npv"].to_dict(), rel=1e-12)
    assert out["paths"] == 3000 and out["seed"] == 5
    assert main(["scenario", str(path), "--list"]) == 0
    assert "A: 2 structures, 3,000 paths, seed 5" in capsys.readouterr().out
    assert main(["scenario", str(path), "--baseline", "nope"]) != 0


def test_edits_in_a_scenario_match_set_values():
    sc = _scenario()
    hybrid = dm.load_deal(REFERENCE["hybrid"])
    expected = set_values(sc.program.apply(hybrid), {"terms[4].amount": 120.0, "terms[7].tiers[0].rate": 0.03})
    assert sc.deals()["hybrid"] == expected


def test_gate_decisions_travel_with_a_scenario(tmp_path):
    sc = _scenario().model_copy(update={"program": ProgramChanges(decisions="partner")})
    path = tmp_path / "s.yaml"
    dm.save_scenario(sc, path)
    back = dm.load_scenario(path, sc.name)
    assert back.program.decisions == "partner"
    for deal in back.deals().values():
        assert (deal.decision_rule, deal.decisions.owner) == ("optimal", "partner")
    none = _scenario().model_copy(update={"program": ProgramChanges(decisions="none")})
    decided = dm.parse_deal(dm.load_deal(REFERENCE["hybrid"]).model_dump(mode="json", by_alias=True,
                                                                        exclude_none=True) | {"decisions": "optimal"})
    assert none.program.apply(decided).decisions is None
