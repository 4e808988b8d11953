"""Exports: the workbook reads back with the API's numbers; formulas cannot be injected; writes are atomic."""

from __future__ import annotations

import csv
import json
import math
import re

import openpyxl
import pytest
import xlsxwriter

import dealmodel as dm
from dealmodel.compare import compare
from dealmodel.export import export, safe_text
from dealmodel.sensitivity import tornado
from tests.conftest import REFERENCE, SINGLE

EVIL = "=cmd|' /C calc'!A0"


@pytest.fixture(scope="module")
def comparison():
    deals = {REFERENCE[k]: dm.load_deal(REFERENCE[k]) for k in ("fee_for_service", "revenue_share")}
    evil = dm.load_deal(REFERENCE["hybrid"]).model_copy(update={"name": EVIL})
    labelled = {d.name: d for d in deals.values()} | {EVIL: evil}
    sources = {d.name: str(p) for p, d in deals.items()}
    return compare(labelled, paths=5_000, seed=2, sources=sources)


def test_workbook_reads_back_with_the_apis_numbers(tmp_path, comparison):
    table = tornado(dm.load_deal(SINGLE), party="partner", paths=2_000, seed=1)
    path = export(tmp_path / "deal team.xlsx", comparison=comparison, tornado=table)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Summary", "Comparison", "Value bridge", "NPV distribution", "Tornado",
                             "Cash flow per year", "Frontier", "Terms", "Assumptions", "Inputs"]
    front = {r[0]: r[1:] for r in wb["Frontier"].iter_rows(min_row=3, max_row=2 + len(comparison.table),
                                                           values_only=True)}
    t = comparison.table
    for name in t.index:
        sponsor, partner, dominated, _ = front[name] if name in front else next(
            v for k, v in front.items() if k.lstrip("'") == name.lstrip("'"))
        assert (sponsor, partner) == (pytest.approx(t.loc[name, "sponsor_expected_npv"], rel=1e-12),
                                      pytest.approx(t.loc[name, "partner_expected_npv"], rel=1e-12))
        beaten = ((t["sponsor_expected_npv"] >= t.loc[name, "sponsor_expected_npv"])
                  & (t["partner_expected_npv"] >= t.loc[name, "partner_expected_npv"])
                  & ((t["sponsor_expected_npv"] > t.loc[name, "sponsor_expected_npv"])
                     | (t["partner_expected_npv"] > t.loc[name, "partner_expected_npv"]))).any()
        assert dominated == bool(beaten)
    assert len(wb["Frontier"]._charts) == 1
    terms = [[c.value for c in r] for r in wb["Terms"].iter_rows(min_row=3)]
    assert len(terms) == sum(len(r.deal.terms) for r in comparison.results.values())
    royalty = next(r for r in terms if r[0] == "Reference program — revenue share" and r[2] == "royalty")
    assert "term years 15.0" in royalty[6] and "loe step down 0.5" in royalty[6]
    ws = wb["Comparison"]
    header = [c.value for c in ws[2]]
    col = header.index("partner expected NPV")
    rows = {r[0].value: r for r in ws.iter_rows(min_row=3)}
    for name, row in comparison.table.iterrows():
        cell = rows[safe_text(name)][col]
        assert cell.value == pytest.approx(row["partner_expected_npv"], rel=1e-12)
        assert cell.number_format == "#,##0.0"
    share_col = header.index("partner risk share")
    assert rows["Reference program — revenue share"][share_col].number_format == "0.000"
    tornado_ws = wb["Tornado"]
    assert tornado_ws.cell(3, 1).value == table.iloc[0]["input"]
    assert tornado_ws.cell(3, 7).value == pytest.approx(table.iloc[0]["value_high"])
    inputs = {r[0].value: [c.value for c in r] for r in wb["Inputs"].iter_rows(min_row=3)}
    head = [c.value for c in wb["Inputs"][2]]
    ffs = inputs["Reference program — fee-for-service"]
    assert ffs[head.index("paths")] == 5_000 and ffs[head.index("seed")] == 2
    assert ffs[head.index("file")].endswith("reference_fee_for_service.yaml")
    assert len(ffs[head.index("sha256")]) == 64
    assert ffs[head.index("dealmodel_version")] == dm.__version__
    assert ffs[head.index("timing")] == "exact"
    # the three headline figures, as the API states them
    for column, header_words in (("biobucks", "biobucks"), ("total_contract_value", "total contract value"),
                                 ("expected_pv_to_partner", "expected PV to partner")):
        got = rows["Reference program — revenue share"][header.index(header_words)].value
        assert got == pytest.approx(comparison.table.loc["Reference program — revenue share", column], rel=1e-12)
    # the yearly sheet: each calendar year once per variant and party
    yearly = wb["Cash flow per year"]
    head = [c.value for c in yearly[2]]
    years = [(r[head.index("variant")].value, r[head.index("party")].value, r[head.index("year")].value)
             for r in yearly.iter_rows(min_row=3)]
    assert len(years) == len(set(years)) == 3 * 3 * 35


def test_workbook_has_native_charts(tmp_path, comparison):
    path = export(tmp_path / "c.xlsx", comparison=comparison)
    wb = openpyxl.load_workbook(path)
    from zipfile import ZipFile

    with ZipFile(path) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
    # the summary's bars, a bridge per structure, both sides' NPV distributions and exceedance, cash flow
    # per year and its fan for each side, the frontier
    assert len(charts) == 10 + len(comparison.results)
    assert len(wb["Value bridge"]._charts) == len(comparison.results)
    ws = wb["NPV distribution"]
    head = [c.value for c in ws[3]]
    c0 = head.index("partner NPV above")
    edge, above = ws.cell(4, c0 + 1).value, ws.cell(4, c0 + 2).value
    npv = next(iter(comparison.results.values())).npv["partner"]
    assert above == pytest.approx((npv > edge).mean()) and ws.cell(4, c0 + 2).number_format == "0.0%"
    yearly = wb["Cash flow per year"]
    assert len(yearly._charts) == 4
    head = [c.value for c in yearly[2]]
    for chart in yearly._charts[1::2]:  # each side's fan: the first structure's P90, mean and P10 columns
        refs = [s.val.numRef.f.split("!")[1].replace("$", "") for s in chart.series]
        assert [head[openpyxl.utils.column_index_from_string(r.split(":")[0].rstrip("0123456789")) - 1]
                for r in refs] == ["p90", "mean", "p10"]
        first_row = int(refs[0].split(":")[0].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        assert yearly.cell(first_row, head.index("variant") + 1).value == safe_text(next(iter(comparison.results)))
    assert wb["NPV distribution"]["B3"].value == safe_text("Reference program — fee-for-service")


def test_the_bridge_sheet_draws_each_step_from_its_start_to_its_end(tmp_path, comparison):
    from dealmodel.export import BRIDGE_PARTS
    from dealmodel.views import bridge_frame

    wb = openpyxl.load_workbook(export(tmp_path / "c.xlsx", comparison=comparison))
    ws = wb["Value bridge"]
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=3, max_col=2 + len(BRIDGE_PARTS))]
    seen = 0
    for name, result in comparison.results.items():
        frame = bridge_frame(result)
        at = next(i for i, r in enumerate(rows) if r[0] == safe_text(name))
        assert rows[at][1:] == ["amount", *BRIDGE_PARTS]
        block = rows[at + 1: at + 1 + len(frame)]
        assert [r[0] for r in block] == list(frame["label"])
        assert block[-1][1] == pytest.approx(comparison.table.loc[name, "partner_expected_npv"], rel=1e-12)
        for r, step in zip(block, frame.itertuples(), strict=True):
            part = dict(zip(BRIDGE_PARTS, r[2:], strict=True))
            above = sum(v for k, v in part.items() if k.endswith("above 0") and not k.startswith("base"))
            below = sum(v for k, v in part.items() if k.endswith("below 0") and not k.startswith("base"))
            # a stacked column: the invisible base, then the visible part, positive and negative stacked apart
            if part["base above 0"] > 0:
                lo, hi = part["base above 0"], part["base above 0"] + above
            elif part["base below 0"] < 0:
                lo, hi = part["base below 0"] + below, part["base below 0"]
            else:
                lo, hi = below, above
            assert (lo, hi) == (pytest.approx(min(step.start, step.end), abs=1e-9),
                                pytest.approx(max(step.start, step.end), abs=1e-9))
            coloured = [k for k, v in part.items() if v and not k.startswith("base")]
            kind = {"total": "total", "up": "increase", "down": "decrease"}[step.kind]
            assert all(k.startswith(kind) for k in coloured)
        seen += 1
    assert seen == len(comparison.results) == len(ws._charts)


def test_formula_in_a_deal_name_is_neutralised(tmp_path, comparison):
    xlsx = export(tmp_path / "c.xlsx", comparison=comparison)
    wb = openpyxl.load_workbook(xlsx)
    names = [r[0] for r in wb["Comparison"].iter_rows(min_row=3)]
    evil = [c for c in names if c.value and "cmd" in c.value]
    assert len(evil) == 1
    assert evil[0].value == "'" + EVIL
    assert evil[0].data_type == "s"
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
    out = export(tmp_path / "c.csv", comparison=comparison)
    first_cells = [row[0] for row in csv.reader(out.open())]
    assert "'" + EVIL in first_cells
    assert EVIL not in first_cells


def test_csv_and_json_exports(tmp_path, comparison):
    out = export(tmp_path / "c.json", comparison=comparison)
    doc = json.loads(out.read_text())
    assert doc["paths"] == 5_000 and doc["seed"] == 2
    rows = {r["variant"]: r for r in doc["comparison"]}
    name = "Reference program — revenue share"
    assert rows[name]["partner_expected_npv"] == pytest.approx(comparison.table.loc[name, "partner_expected_npv"])
    out = export(tmp_path / "c.csv", comparison=comparison)
    header = next(csv.reader(out.open()))
    assert "joint_gain" in header and "partner_diff_se" in header


def test_a_failed_write_leaves_no_file(tmp_path, comparison, monkeypatch):
    def boom(self):
        raise OSError("disk full")

    monkeypatch.setattr(xlsxwriter.Workbook, "close", boom)
    target = tmp_path / "c.xlsx"
    with pytest.raises(OSError, match="disk full"):
        export(target, comparison=comparison)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_survives_a_failed_write(tmp_path, comparison, monkeypatch):
    target = tmp_path / "c.xlsx"
    target.write_bytes(b"previous")
    monkeypatch.setattr(xlsxwriter.Workbook, "close", lambda self: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        export(target, comparison=comparison)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["c.xlsx"]


def test_unknown_output_type_is_refused(tmp_path, comparison):
    with pytest.raises(ValueError, match=r"use \.xlsx, \.csv or \.json"):
        export(tmp_path / "c.pdf", comparison=comparison)
    assert list(tmp_path.iterdir()) == []


def test_probabilities_are_percentages_and_money_has_one_decimal_in_the_workbook(tmp_path, comparison):
    wb = openpyxl.load_workbook(export(tmp_path / "c.xlsx", comparison=comparison))
    ws = wb["Comparison"]
    header = [c.value for c in ws[2]]
    prob = ws.cell(3, header.index("partner P(loss)") + 1)
    assert prob.number_format == "0.0%"
    assert prob.value == pytest.approx(comparison.table["partner_prob_loss"].iloc[0], rel=1e-12)
    assert ws.cell(3, header.index("partner expected NPV") + 1).number_format == "#,##0.0"
    # headers in words, each naming its CSV / JSON key in a comment; none left in snake_case
    assert "CSV and JSON: partner_prob_loss" in ws.cell(2, header.index("partner P(loss)") + 1).comment.text
    assert not [h for h in header if "_" in h]


def test_the_summary_sheet_comes_first_in_words_with_a_chart_on_one_page(tmp_path, comparison):
    table = tornado(dm.load_deal(REFERENCE["hybrid"]), party="partner", paths=1_000, seed=1)
    wb = openpyxl.load_workbook(export(tmp_path / "summary.xlsx", comparison=comparison, tornado=table))
    ws = wb.worksheets[0]
    assert ws.title == "Summary"
    header = [c.value for c in ws[4]]
    assert header[:4] == ["structure", "contract value", "PV to partner", "sponsor expected NPV"]
    assert all(h and "_" not in h for h in header if h)  # words, not column keys
    t = comparison.table
    rows = {r[0]: r for r in ws.iter_rows(min_row=5, max_row=4 + len(t), values_only=True)}
    for name, row in t.iterrows():
        got = rows[safe_text(name)]
        assert got[header.index("partner expected NPV")] == pytest.approx(row["partner_expected_npv"], rel=1e-12)
        assert got[header.index("sponsor P(loss)")] == pytest.approx(row["sponsor_prob_loss"], rel=1e-12)
        se = row["joint_gain_se"]
        if math.isfinite(se):  # the baseline has no paired change
            assert got[header.index("joint gain") + 1] == pytest.approx(2 * se, rel=1e-12)
    assert len(ws._charts) == 1
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.orientation == "landscape"
    assert ws.page_setup.fitToWidth in (None, 1) and ws.page_setup.fitToHeight in (None, 1)  # 1 is the default
    # no number stored as text on any sheet: single tornado ends are numbers, several a range in words
    tornado_ws = wb["Tornado"]
    for r in tornado_ws.iter_rows(min_row=3, values_only=True):
        for v in r[2:4]:
            assert isinstance(v, float | int) or " to " in v, v
    for sheet in wb.worksheets:
        for r in sheet.iter_rows(min_row=3, values_only=True):
            for v in r:
                if isinstance(v, str):
                    assert not re.fullmatch(r"-?\d+(\.\d+)?", v), (sheet.title, v)


def test_the_assumptions_sheet_lists_every_program_input_as_valued(tmp_path, comparison):
    from statistics import NormalDist

    wb = openpyxl.load_workbook(export(tmp_path / "a.xlsx", comparison=comparison))
    rows = [r for r in wb["Assumptions"].iter_rows(min_row=3, values_only=True)]
    hybrid = [r for r in rows if r[0] == safe_text(EVIL)]
    peak = next(r for r in hybrid if r[1] == "ONC-101" and r[2] == "peak sales")
    # lognormal with median 700 and P90 1800: mean = median x exp(sigma^2 / 2), sigma = ln(1800/700) / z(0.9)
    sigma = math.log(1800 / 700) / NormalDist().inv_cdf(0.9)
    assert peak[3] == pytest.approx(700 * math.exp(sigma**2 / 2), rel=1e-9)
    assert peak[4] == "lognormal: median 700, p90 1800"
    rate = next(r for r in hybrid if r[2] == "sponsor discount rate")
    assert rate[3] == pytest.approx(0.15)
    per_variant = {v: sum(1 for r in rows if r[0] == v) for v in {r[0] for r in rows}}
    assert len(per_variant) == 3 and min(per_variant.values()) > 20
