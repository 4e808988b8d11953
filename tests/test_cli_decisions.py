"""`dealmodel decisions`, and gate decisions in `value` and `compare`: figures as the Python API gives them."""

from __future__ import annotations

import json

import openpyxl
import pytest

import dealmodel as dm
from dealmodel.cli import main
from tests.conftest import REFERENCE, ROOT

DECIDED = ROOT / "examples" / "hybrid_with_gate_decisions.yaml"


def test_decisions_prints_the_report_of_the_python_api(capsys):
    assert main(["decisions", str(REFERENCE["hybrid"]), "--paths", "8000", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    report = dm.decision_report(dm.load_deal(REFERENCE["hybrid"]), paths=8_000, seed=2)
    assert out.strip() == report.summary().strip()
    assert f"Value of flexibility to the program: {report.flexibility:+,.1f}" in out


def test_decisions_json_and_workbook(tmp_path, capsys):
    out = tmp_path / "gates.xlsx"
    assert main(["decisions", str(DECIDED), "--paths", "8000", "--seed", "2", "--owner", "program", "--json",
                 "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["owner"], doc["rule"], doc["distortion"]) == ("program", "optimal", 0.0)
    report = dm.decision_report(dm.load_deal(DECIDED), paths=8_000, seed=2, owner="program")
    assert doc["flexibility"] == pytest.approx(report.flexibility, rel=1e-12)
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Decisions", "Inputs"]
    ws = wb["Decisions"]
    header = [c.value for c in ws[2]]
    assert ws.cell(3, header.index("value of flexibility") + 1).value == pytest.approx(report.flexibility, rel=1e-12)
    stops = [[c.value for c in r] for r in ws.iter_rows(min_row=6, max_col=6)]
    first = next(i for i, r in enumerate(stops) if r[0] == "structure")
    row = stops[first + 1]
    cand, gate = row[1], row[2].removeprefix("before ")
    assert row[3] == pytest.approx(report.stops.loc[(cand, gate), "under the deal"], rel=1e-12)
    assert ws.cell(first + 7, 4).number_format == "0.0%"
    assert len(ws._charts) == 1


def test_a_threshold_needs_its_number(capsys):
    assert main(["decisions", str(REFERENCE["hybrid"]), "--rule", "threshold", "--paths", "2000"]) == 2
    err = capsys.readouterr().err
    assert "threshold" in err and "Traceback" not in err


def test_value_shows_the_stops_and_compare_the_flexibility(tmp_path, capsys):
    assert main(["value", str(DECIDED), "--paths", "8000", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    result = dm.simulate(dm.load_deal(DECIDED), paths=8_000, seed=1)
    stop = result.candidates["ONC-202"]["prob_stopped_before_phase2"]
    assert stop > 0.01 and f"before phase2 {stop:.1%}" in out
    assert "Gate decisions: optimal, decided by the sponsor" in out
    xlsx = tmp_path / "c.xlsx"
    assert main(["compare", str(REFERENCE["hybrid"]), str(DECIDED), "--paths", "8000", "--seed", "1",
                 "--out", str(xlsx)]) == 0
    out = capsys.readouterr().out
    report = dm.decision_report(dm.load_deal(DECIDED), paths=8_000, seed=1)
    assert f"value of flexibility {report.flexibility:+,.1f}" in out
    assert "(not paired" not in out  # the same futures, whatever the decisions
    assert "Decisions" in openpyxl.load_workbook(xlsx).sheetnames
