"""`dealmodel compare`, `tornado` and `solve` from the command line."""

from __future__ import annotations

import json

import openpyxl

from dealmodel.cli import main
from tests.conftest import REFERENCE, SINGLE

FOUR = [str(REFERENCE[k]) for k in ("fee_for_service", "milestone", "revenue_share", "hybrid")]


def test_compare_prints_the_table(capsys):
    assert main(["compare", *FOUR, "--paths", "5000"]) == 0
    out = capsys.readouterr().out
    assert "4 structures on 5,000 common paths" in out
    for name in ("fee-for-service", "milestone-based", "revenue share", "hybrid"):
        assert f"Reference program — {name}" in out


def test_compare_json_and_risk_shares(capsys):
    assert main(["compare", *FOUR, "--paths", "10000", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["variant"]: r for r in doc["variants"]}
    assert doc["baseline"] == "Reference program — fee-for-service"
    assert abs(rows["Reference program — fee-for-service"]["partner_risk_share"]) < 0.02
    assert rows["Reference program — revenue share"]["partner_risk_share"] > 0.15


def test_compare_with_baseline_writes_a_workbook(tmp_path, capsys):
    out = tmp_path / "comparison.xlsx"
    assert main(["compare", FOUR[1], FOUR[2], "--baseline", FOUR[0], "--paths", "3000", "--out", str(out)]) == 0
    assert "baseline: Reference program — fee-for-service" in capsys.readouterr().out
    assert openpyxl.load_workbook(out)["Comparison"].cell(3, 1).value == "Reference program — fee-for-service"


def test_compare_reports_every_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    assert main(["compare", FOUR[0], str(bad), str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: parties: required field is missing" in err
    assert "missing.yaml: file not found" in err


def test_tornado_json(capsys):
    assert main(["tornado", str(SINGLE), "--party", "partner", "--paths", "2000", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    swings = [b["swing"] for b in doc["bars"]]
    assert swings == sorted(swings, reverse=True)
    assert doc["party"] == "partner"


def test_solve_prints_the_fair_royalty(capsys):
    args = ["solve", FOUR[2], "--param", "terms[1].tiers[0].rate", "--match", FOUR[0], "--party", "partner",
            "--paths", "5000", "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert 0.0 < doc["value"] < 1.0
    assert abs(doc["achieved"] - doc["target"]) < 1e-6


def test_solve_without_a_solution_exits_2(capsys):
    args = ["solve", FOUR[2], "--param", "terms[1].tiers[0].rate", "--target", "1e6", "--paths", "2000"]
    assert main(args) == 2
    assert "no value of terms[1].tiers[0].rate between 0 and 1" in capsys.readouterr().err


def test_solve_with_a_bad_parameter_exits_2(capsys):
    assert main(["solve", FOUR[2], "--param", "terms[9].rate", "--target", "1", "--paths", "1000"]) == 2
    assert "terms[9]" in capsys.readouterr().err
