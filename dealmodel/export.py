"""Exports people can send around: CSV, JSON and an Excel workbook with native charts.

Every write is atomic (a temporary file beside the target, then a rename), so a failure never
leaves a half-written file. Text that a spreadsheet would read as a formula (starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is written with a leading apostrophe,
so a deal name cannot inject one.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from dealmodel._version import __version__
from dealmodel.compare import Comparison
from dealmodel.io import atomic_write, publish

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SHARE_WORDS = ("prob_", "share", "rate", "paired")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


_CONTROL = "".join(chr(c) for c in range(32)) + " \x7f"


def safe_text(value: Any) -> Any:
    """Neutralise text a spreadsheet would evaluate (OWASP CSV-injection advice).

    Leading control characters and spaces are stripped first (a CR, LF or TAB before ``=`` is
    still a formula to Excel), then text that starts like a formula gets a leading apostrophe.
    """
    if not isinstance(value, str):
        return value
    head = value.lstrip(_CONTROL)
    if head.startswith(_FORMULA_START):
        return "'" + head
    return value


def csv_text(frame: pd.DataFrame, index: bool = True) -> str:
    """A table as CSV text with every cell and header through :func:`safe_text` (for downloads)."""
    buffer = io.StringIO()
    _safe_frame(frame).to_csv(buffer, index=index)
    return buffer.getvalue()


def _safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.index = pd.Index([safe_text(v) for v in out.index], name=frame.index.name)
    out.columns = [safe_text(c) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(safe_text)
    return out


def file_sha256(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def terms_table(comparison: Comparison) -> pd.DataFrame:
    """Every term of every variant as it was valued (after any edit): one row each, its settings in words."""
    rows = []
    for name, result in comparison.results.items():
        for i, term in enumerate(result.deal.terms):
            fields = term.model_dump(mode="json", exclude={"kind", "label", "payer", "payee"}, exclude_none=True)
            rows.append({
                "variant": name,
                "term": f"terms[{i}]",
                "kind": term.kind.replace("_", " "),
                "label": term.label or "",
                "paid by": term.payer,
                "paid to": term.payee,
                "settings": "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in fields.items()),
            })
    return pd.DataFrame(rows, columns=["variant", "term", "kind", "label", "paid by", "paid to", "settings"])


def _quantity(q) -> tuple[float, str]:
    """A program input's mean and its distribution in words (a fixed number: itself)."""
    spec = q.model_dump(mode="json")
    if not isinstance(spec, dict):
        return float(q.mean()), "fixed"
    words = ", ".join(f"{k} {v:g}" if isinstance(v, int | float) else f"{k} {v}" for k, v in spec.items()
                      if k != "dist")
    return float(q.mean()), f"{spec.get('dist', '')}: {words}"


def assumptions_table(comparison: Comparison) -> pd.DataFrame:
    """Every program input of every variant as valued (after any program change): parties, correlation,
    levers, timing, then each candidate's phases and commercial inputs, with means and distributions."""
    rows = []
    for name, result in comparison.results.items():
        deal = result.deal

        def add(scope: str, item: str, value: float, words: str = "", variant: str = name) -> None:
            rows.append({"variant": variant, "scope": scope, "input": item, "mean": value, "as written": words})

        add("parties", "sponsor discount rate", deal.parties.sponsor.discount_rate)
        add("parties", "partner discount rate", deal.parties.partner.discount_rate)
        for party in ("sponsor", "partner"):
            tolerance = getattr(deal.parties, party).risk_tolerance
            if tolerance is not None:
                add("parties", f"{party} risk tolerance", tolerance)
        add("program", "correlation of outcomes (rho)", deal.correlation.rho)
        add("program", "discounting", math.nan, deal.timing.replace("_", " "))
        for lever in ("biomarker_selection", "ai_recruitment", "qbd"):
            add("program", f"lever: {lever.replace('_', ' ')}", math.nan,
                "on" if getattr(deal.levers, lever).enabled else "off")
        for cand in deal.candidates:
            for phase, spec in cand.remaining_phases():
                for field_name in ("success_probability", "duration_years", "cost", "partner_cost"):
                    add(cand.name, f"{phase} {field_name.replace('_', ' ')}", *_quantity(getattr(spec, field_name)))
            for field_name in ("peak_sales", "exclusivity_years", "erosion_after_loe", "cogs_fraction",
                               "opex_fraction"):
                add(cand.name, field_name.replace("_", " "), *_quantity(getattr(cand.commercial, field_name)))
            add(cand.name, "batch failure rate", *_quantity(cand.batch_failure_rate))
    return pd.DataFrame(rows, columns=["variant", "scope", "input", "mean", "as written"])


def run_inputs(comparison: Comparison) -> pd.DataFrame:
    """What it takes to replay a comparison: each variant's file and hash, paths, seed, version."""
    rows = []
    when = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    for name, result in comparison.results.items():
        source = comparison.sources.get(name, "")
        digest = file_sha256(source) if source and Path(source).exists() else hashlib.sha256(
            result.deal.model_dump_json(by_alias=True).encode()).hexdigest()
        rows.append({
            "variant": name,
            "deal": result.deal.name,
            "file": source or "(in memory)",
            "sha256": digest,
            "timing": result.deal.timing,
            "paths": comparison.paths,
            "seed": comparison.seed,
            "baseline": name == comparison.baseline,
            "dealmodel_version": __version__,
            "created_utc": when,
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- CSV and JSON


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str], index: bool = True) -> None:
    atomic_write(path, csv_text(frame, index))


def _jsonable(frame: pd.DataFrame, index: bool) -> list[dict[str, Any]]:
    data = frame.reset_index() if index else frame
    records = data.to_dict(orient="records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in records]


def write_json(tables: dict[str, pd.DataFrame], path: str | os.PathLike[str], meta: dict[str, Any] | None = None,
               index: bool = True) -> None:
    doc = {**(meta or {}), **{name: _jsonable(t, index) for name, t in tables.items()}}
    atomic_write(path, json.dumps(doc, indent=2, default=str) + "\n")


# --------------------------------------------------------------------------- Excel


def write_workbook(
    path: str | os.PathLike[str],
    comparison: Comparison | None = None,
    tornado: pd.DataFrame | None = None,
    per_year: pd.DataFrame | None = None,
    currency: str | None = None,
) -> None:
    """One sheet per table, money in millions, native charts of the NPV distributions and tornado."""
    if currency is None and comparison is not None:
        currency = next(iter(comparison.results.values())).deal.currency
    if per_year is None and comparison is not None and all(r.per_year_paths for r in comparison.results.values()):
        per_year = comparison.per_year()
    note = f"Money in {currency or 'deal currency'} millions."
    yearly_note = note
    if comparison is not None and per_year is not None:
        sampled = min(r.per_year_paths for r in comparison.results.values())
        if 0 < sampled < comparison.paths:
            yearly_note += f" Yearly figures over the first {sampled:,} of the {comparison.paths:,} paths."

    def build(wb, fmt) -> None:
        if comparison is not None:
            _summary_sheet(wb, comparison, fmt, currency or "deal currency")
            _sheet(wb, "Comparison", comparison.table, fmt, note + " Every figure of every structure; each header's "
                   "comment gives its name in the CSV and JSON exports. Definitions: docs/methodology.md.", index=True,
                   words=True)
            _bridge_sheet(wb, comparison, fmt, note)
            _distribution_sheet(wb, comparison, fmt, note)
        if tornado is not None:
            ws = _sheet(wb, "Tornado", tornado, fmt, note, index=False, words=True)
            _tornado_chart(wb, ws, tornado)
        if per_year is not None:
            ws = _sheet(wb, "Cash flow per year", per_year, fmt, yearly_note, index=False)
            _cash_flow_charts(wb, ws, per_year, currency or "deal currency")
        if comparison is not None:
            _frontier_sheet(wb, comparison, fmt, note)
            if comparison.decisions():
                _decisions_sheet(wb, comparison.decisions(), fmt, note)
            _sheet(wb, "Terms", terms_table(comparison), fmt, "Every term of every variant, as valued.", index=False)
            _sheet(wb, "Assumptions", assumptions_table(comparison), fmt, "Every program input of every variant, "
                   "as valued (after any program change): the mean, and the distribution as written.", index=False,
                   formats={"mean": "param"})
            _sheet(wb, "Inputs", run_inputs(comparison), fmt, "Everything needed to replay this run.", index=False)

    _atomic_workbook(Path(path), build)


_SUMMARY = (  # (header, column of Comparison.table, format, definition)
    ("contract value", "total_contract_value", "money", "biobucks + service fees at list price + success premiums "
     "+ reserved capacity: the deal as announced"),
    ("PV to partner", "expected_pv_to_partner", "money", "expected present value of every payment to the partner"),
    ("sponsor expected NPV", "sponsor_expected_npv", "money", "mean over the simulated futures of the sponsor's NPV"),
    ("sponsor certainty equivalent", "sponsor_certainty_equivalent", "money", "what the sponsor would take for "
     "sure instead, at its risk tolerance"),
    ("sponsor P(loss)", "sponsor_prob_loss", "percent", "share of futures in which the sponsor loses money"),
    ("partner expected NPV", "partner_expected_npv", "money", "mean over the simulated futures of the partner's NPV"),
    ("partner certainty equivalent", "partner_certainty_equivalent", "money", "what the partner would take for "
     "sure instead, at its risk tolerance"),
    ("partner P5", "partner_p5", "money", "the partner's NPV is below this in 5% of futures"),
    ("partner P(loss)", "partner_prob_loss", "percent", "share of futures in which the partner loses money"),
    ("partner change vs baseline", "partner_diff", "money", "partner expected NPV less under the baseline, on the "
     "same futures"),
    ("± 2 SE", "partner_diff_se", "money", "two standard errors of that change (paired)"),
    ("joint gain", "joint_gain", "money", "sponsor's change + partner's change against the baseline"),
    ("± 2 SE ", "joint_gain_se", "money", "two standard errors of the joint gain (paired)"),
)


def _summary_sheet(wb, comparison: Comparison, fmt: dict, currency: str) -> None:
    """The first sheet: the key figures of every structure in words, a chart, the definitions; one A4 page."""
    ws = wb.add_worksheet("Summary")
    title = wb.add_format({"bold": True, "font_size": 14})
    t = comparison.table
    ws.write_string(0, 0, f"Deal structures compared: {len(t)} on the same simulated futures", title)
    ws.write_string(1, 0, f"{comparison.paths:,} simulated futures, seed {comparison.seed}; baseline "
                          f"{safe_text(comparison.baseline)}; money in {currency} millions; dealmodel {__version__}, "
                          f"{_dt.date.today().isoformat()}.", fmt["note"])
    ws.write_string(3, 0, "structure", fmt["head"])
    ws.set_column(0, 0, 38)
    for c, (head, _, _, _) in enumerate(_SUMMARY, start=1):
        ws.write_string(3, c, head.strip(), fmt["head"])
        ws.set_column(c, c, 13)
    ws.set_row(3, 45)
    for r, (name, row) in enumerate(t.iterrows(), start=4):
        ws.write_string(r, 0, str(safe_text(name)))
        for c, (_, column, kind, _) in enumerate(_SUMMARY, start=1):
            value = float(row[column]) * (2.0 if column.endswith("_se") else 1.0)
            if math.isfinite(value):
                ws.write_number(r, c, value, fmt[kind])
            else:
                ws.write_blank(r, c, None)
    last = 3 + len(t)
    chart = wb.add_chart({"type": "bar"})
    for party, column in (("sponsor", 3), ("partner", 6)):
        chart.add_series({"name": f"{party} expected NPV", "categories": ["Summary", 4, 0, last, 0],
                          "values": ["Summary", 4, column, last, column]})
    chart.set_title({"name": "Expected NPV to each side by structure"})
    chart.set_x_axis({"name": f"{currency} millions"})
    chart.set_y_axis({"reverse": True})
    chart.set_legend({"position": "top"})
    chart.set_size({"width": 760, "height": 90 + 46 * len(t)})
    ws.insert_chart(last + 2, 0, chart)
    row = last + 4 + math.ceil((90 + 46 * len(t)) / 20)
    ws.write_string(row, 0, "What the columns mean", fmt["head"])
    for i, (head, _, _, meaning) in enumerate(_SUMMARY, start=1):
        ws.write_string(row + i, 0, head.strip())
        ws.write_string(row + i, 1, meaning)
    ws.set_landscape()
    ws.set_paper(9)  # A4; fitting to one page also prints on Letter
    ws.fit_to_pages(1, 1)
    ws.print_area(0, 0, row + len(_SUMMARY), len(_SUMMARY))


def _atomic_workbook(target: Path, build) -> None:
    """Build a workbook in a temporary file beside ``target``, then rename it over ``target``."""
    import xlsxwriter

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".xlsx", dir=target.parent)
    os.close(fd)
    try:
        wb = xlsxwriter.Workbook(tmp, {"nan_inf_to_errors": True, "strings_to_formulas": False})
        fmt = {
            "money": wb.add_format({"num_format": "#,##0.0"}),
            "share": wb.add_format({"num_format": "0.000"}),
            "percent": wb.add_format({"num_format": "0.0%"}),
            "param": wb.add_format({"num_format": "#,##0.0000"}),  # a term's value: a rate or an amount
            "head": wb.add_format({"bold": True, "bg_color": "#DCE6F1", "border": 1, "text_wrap": True}),
            "note": wb.add_format({"italic": True, "font_color": "#595959"}),
        }
        build(wb, fmt)
        wb.close()
        publish(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_PER_PARTY = {
    "expected_npv": "expected NPV", "std_npv": "sd of NPV", "p5": "P5", "p95": "P95", "prob_loss": "P(loss)",
    "expected_shortfall_5": "expected shortfall (worst 5%)", "risk_share": "risk share", "value_share": "value share",
    "certainty_equivalent": "certainty equivalent", "diff": "change vs baseline", "diff_se": "change vs baseline, SE",
}
_WHOLE = {"variant": "structure", "expected_pv_to_partner": "expected PV to partner", "joint_gain_se": "joint gain, SE",
          "value_low": "value at low", "value_high": "value at high"}


def readable(column: str) -> str:
    """A table key as a spreadsheet header: ``partner_prob_loss`` -> ``partner P(loss)``."""
    party, _, rest = column.partition("_")
    if party in ("sponsor", "partner", "program") and rest in _PER_PARTY:
        return f"{party} {_PER_PARTY[rest]}"
    return _WHOLE.get(column, column.replace("_", " "))


def _is_share(column: str) -> bool:
    return any(w in column for w in _SHARE_WORDS)


def _sheet(wb, name: str, frame: pd.DataFrame, fmt: dict, note: str, index: bool,
           formats: dict[str, str] | None = None, words: bool = False):
    """A table on its own sheet; ``formats`` names a format of ``fmt`` for some columns.

    ``words``: headers in words (:func:`readable`), each with a comment giving its CSV / JSON key.
    """
    ws = wb.add_worksheet(name)
    data = frame.reset_index() if index else frame.reset_index(drop=True)
    ws.write_string(0, 0, note, fmt["note"])
    for c, column in enumerate(data.columns):
        header = readable(str(column)) if words else str(column)
        ws.write_string(1, c, str(safe_text(header)), fmt["head"])
        if header != str(column):
            ws.write_comment(1, c, f"CSV and JSON: {safe_text(str(column))}")
        texts = [len(v) for v in data[column].tolist() if isinstance(v, str)]
        ws.set_column(c, c, max(12, min(40, max([len(header), *texts]) + 2)))
        cell_fmt = fmt[(formats or {})[column]] if column in (formats or {}) else fmt["percent"] \
            if "prob_" in str(column) else fmt["share"] if _is_share(str(column)) else fmt["money"]
        for r, value in enumerate(data[column].tolist()):
            row = r + 2
            if isinstance(value, bool):
                ws.write_boolean(row, c, value)
            elif isinstance(value, int | float):
                if isinstance(value, float) and math.isnan(value):
                    ws.write_blank(row, c, None)
                elif column in ("paths", "seed", "year_index", "year"):
                    ws.write_number(row, c, value)
                else:
                    ws.write_number(row, c, value, cell_fmt)
            elif isinstance(value, str) and _NUMBER.fullmatch(value):  # a number that came as text
                ws.write_number(row, c, float(value), fmt["param"] if "." in value else None)
            else:
                ws.write_string(row, c, str(safe_text("" if value is None else str(value))))
    ws.freeze_panes(2, 1)
    return ws


BRIDGE_PARTS = ("base above 0", "base below 0", "total above 0", "total below 0", "increase above 0",
                "increase below 0", "decrease above 0", "decrease below 0")
"""Helper columns of the bridge chart: a stacked column chart draws each bar as an invisible base and a
visible part, split at zero (Excel stacks positive and negative values separately)."""
_BRIDGE_COLOURS = {"total": "#4C78A8", "increase": "#54A24B", "decrease": "#E45756"}


def bridge_parts(start: float, end: float, kind: str) -> dict[str, float]:
    """One bar from ``start`` to ``end`` as :data:`BRIDGE_PARTS` (``kind``: total, up or down)."""
    lo, hi = min(start, end), max(start, end)
    name = {"total": "total", "up": "increase", "down": "decrease"}[kind]
    parts = dict.fromkeys(BRIDGE_PARTS, 0.0)
    if lo >= 0.0:
        parts["base above 0"], parts[f"{name} above 0"] = lo, hi - lo
    elif hi <= 0.0:
        parts["base below 0"], parts[f"{name} below 0"] = hi, lo - hi
    else:
        parts[f"{name} above 0"], parts[f"{name} below 0"] = hi, lo
    return parts


def _bridge_sheet(wb, comparison: Comparison, fmt: dict, note: str) -> None:
    """Per structure: the partner's value bridge (contract value to expected NPV) and a waterfall chart."""
    from dealmodel.views import bridge_frame

    ws = wb.add_worksheet("Value bridge")
    ws.write_string(0, 0, note + " From the partner's total contract value to its expected NPV, step by step "
                    "(docs/methodology.md). Columns C onwards only draw the chart.", fmt["note"])
    ws.set_column(0, 0, 30)
    ws.set_column(1, 1, 12)
    ws.set_column(2, 1 + len(BRIDGE_PARTS), 10)
    row = 2
    for name, result in comparison.results.items():
        frame = bridge_frame(result)
        ws.write_string(row, 0, str(safe_text(name)), fmt["head"])
        ws.write_string(row, 1, "amount", fmt["head"])
        for c, part in enumerate(BRIDGE_PARTS):
            ws.write_string(row, 2 + c, part, fmt["head"])
        for r, step in enumerate(frame.itertuples(index=False)):
            ws.write_string(row + 1 + r, 0, step.label)
            ws.write_number(row + 1 + r, 1, float(step.amount), fmt["money"])
            for c, value in enumerate(bridge_parts(float(step.start), float(step.end), step.kind).values()):
                ws.write_number(row + 1 + r, 2 + c, value, fmt["money"])
        first, last = row + 1, row + len(frame)
        chart = wb.add_chart({"type": "column", "subtype": "stacked"})
        for c, part in enumerate(BRIDGE_PARTS):
            kind = part.split()[0]
            series = {"name": ["Value bridge", row, 2 + c], "categories": ["Value bridge", first, 0, last, 0],
                      "values": ["Value bridge", first, 2 + c, last, 2 + c], "gap": 60}
            if kind == "base":
                series |= {"fill": {"none": True}, "border": {"none": True}}
            else:
                series |= {"fill": {"color": _BRIDGE_COLOURS[kind]}, "border": {"none": True}}
            chart.add_series(series)
        chart.set_title({"name": ["Value bridge", row, 0]})  # from its cell: a name is never read as a reference
        chart.set_y_axis({"name": "millions", "num_format": "#,##0"})
        chart.set_legend({"none": True})
        chart.set_size({"width": 720, "height": 340})
        ws.insert_chart(row, 3 + len(BRIDGE_PARTS), chart)
        row = max(last + 3, row + 19)


def _distribution_sheet(wb, comparison: Comparison, fmt: dict, note: str) -> None:
    ws = wb.add_worksheet("NPV distribution")
    ws.write_string(0, 0, note + " Share of paths per NPV bin, common bins across variants.", fmt["note"])
    row = 2
    for party in ("partner", "sponsor"):
        hist = comparison.npv_histogram(party)
        ws.write_string(row, 0, f"{party} NPV", fmt["head"])
        names = list(comparison.results)
        for c, name in enumerate(names):
            ws.write_string(row, c + 1, str(safe_text(name)), fmt["head"])
        for r, (mid, *shares) in enumerate(hist[["npv_mid", *names]].itertuples(index=False)):
            ws.write_number(row + 1 + r, 0, mid, fmt["money"])
            for c, share in enumerate(shares):
                ws.write_number(row + 1 + r, c + 1, share, fmt["share"])
        chart = wb.add_chart({"type": "line"})
        first, last = row + 1, row + len(hist)
        for c in range(len(names)):
            chart.add_series({
                "name": ["NPV distribution", row, c + 1],
                "categories": ["NPV distribution", first, 0, last, 0],
                "values": ["NPV distribution", first, c + 1, last, c + 1],
                "smooth": True,
            })
        chart.set_title({"name": f"{party.capitalize()} NPV distribution"})
        chart.set_x_axis({"name": "NPV (millions)", "num_format": "#,##0"})
        chart.set_y_axis({"name": "share of paths", "num_format": "0.00"})
        chart.set_size({"width": 720, "height": 360})
        ws.insert_chart(row, len(names) + 2, chart)
        # beside it: P(NPV > x) at each bin's upper edge, from every path (not from the bins)
        c0 = len(names) + 14
        ws.write_string(row, c0, f"{party} NPV above", fmt["head"])
        for c, name in enumerate(names):
            ws.write_string(row, c0 + 1 + c, str(safe_text(name)), fmt["head"])
        edges = hist["npv_high"].to_numpy()
        for r, edge in enumerate(edges):
            ws.write_number(row + 1 + r, c0, float(edge), fmt["money"])
            for c, name in enumerate(names):
                above = float((comparison.results[name].npv[party] > edge).mean())
                ws.write_number(row + 1 + r, c0 + 1 + c, above, fmt["percent"])
        exceed = wb.add_chart({"type": "scatter", "subtype": "straight"})
        for c in range(len(names)):
            exceed.add_series({"name": ["NPV distribution", row, c0 + 1 + c],
                               "categories": ["NPV distribution", first, c0, last, c0],
                               "values": ["NPV distribution", first, c0 + 1 + c, last, c0 + 1 + c]})
        exceed.set_title({"name": f"{party.capitalize()}: probability the NPV is above x"})
        exceed.set_x_axis({"name": "x: NPV (millions)", "num_format": "#,##0"})
        exceed.set_y_axis({"name": "probability", "num_format": "0%", "min": 0, "max": 1})
        exceed.set_size({"width": 720, "height": 360})
        ws.insert_chart(row + 19, len(names) + 2, exceed)
        row = last + 4


def _cash_flow_charts(wb, ws, per_year: pd.DataFrame, currency: str) -> None:
    """Native line charts of each structure's mean cash flow per year, one for each side."""
    if "variant" not in per_year.columns or per_year.empty:
        return
    cols = list(per_year.columns)
    year_col, mean_col = cols.index("year"), cols.index("mean")
    at = 1
    for party in ("partner", "sponsor"):
        chart = wb.add_chart({"type": "line"})
        for variant in dict.fromkeys(per_year["variant"]):
            rows = per_year.index[(per_year["variant"] == variant) & (per_year["party"] == party)]
            if not len(rows):
                continue
            first, last = int(rows[0]) + 2, int(rows[-1]) + 2  # the sheet's data start on its third row
            # the name from its cell: a deal name is never read as a formula or a reference
            chart.add_series({"name": [ws.name, first, cols.index("variant")],
                              "categories": [ws.name, first, year_col, last, year_col],
                              "values": [ws.name, first, mean_col, last, mean_col]})
        chart.set_title({"name": f"{party.capitalize()}: expected cash flow per year"})
        chart.set_x_axis({"name": "year", "num_format": "0"})
        chart.set_y_axis({"name": f"{currency} millions", "num_format": "#,##0"})
        chart.set_legend({"position": "bottom"})
        chart.set_size({"width": 720, "height": 380})
        ws.insert_chart(at, len(cols) + 1, chart)
        # the fan of the first structure: its mean with the P10 and P90 of each year across the futures
        first_variant = per_year["variant"].iloc[0]
        rows = per_year.index[(per_year["variant"] == first_variant) & (per_year["party"] == party)]
        if len(rows):
            first, last = int(rows[0]) + 2, int(rows[-1]) + 2
            fan = wb.add_chart({"type": "line"})
            for column, line in (("p90", {"color": "#9DC3E6", "dash_type": "dash"}), ("mean", {"color": "#1F4E79"}),
                                 ("p10", {"color": "#9DC3E6", "dash_type": "dash"})):
                c = cols.index(column)
                fan.add_series({"name": [ws.name, 1, c], "categories": [ws.name, first, year_col, last, year_col],
                                "values": [ws.name, first, c, last, c], "line": line})
            fan.set_title({"name": [ws.name, first, cols.index("variant")]})  # the structure's name, from its cell
            fan.set_x_axis({"name": f"year ({party}: mean and P10-P90 across the futures)", "num_format": "0"})
            fan.set_y_axis({"name": f"{currency} millions", "num_format": "#,##0"})
            fan.set_legend({"position": "bottom"})
            fan.set_size({"width": 720, "height": 380})
            ws.insert_chart(at, len(cols) + 13, fan)
        at += 21


def _frontier_sheet(wb, comparison: Comparison, fmt: dict, note: str) -> None:
    """Each structure's sponsor and partner expected NPV, dominated ones flagged, and a scatter chart."""
    from dealmodel.negotiate import comparison_frontier

    front = comparison_frontier(comparison.table).rename(columns={
        "sponsor": "sponsor eNPV", "partner": "partner eNPV", "dominated_by": "dominated by"})
    ws = _sheet(wb, "Frontier", front, fmt, note + " A structure is dominated when another is at least as good "
                "for both parties and better for one.", index=True)
    chart = wb.add_chart({"type": "scatter"})
    for r in range(len(front)):
        chart.add_series({"name": ["Frontier", 2 + r, 0], "categories": ["Frontier", 2 + r, 1, 2 + r, 1],
                          "values": ["Frontier", 2 + r, 2, 2 + r, 2],
                          "marker": {"type": "circle", "size": 9}})
    chart.set_title({"name": "Deal frontier: sponsor vs partner expected NPV"})
    chart.set_x_axis({"name": "sponsor eNPV"})
    chart.set_y_axis({"name": "partner eNPV"})
    chart.set_size({"width": 720, "height": 420})
    ws.insert_chart(len(front) + 4, 0, chart)


def _tornado_chart(wb, ws, tornado: pd.DataFrame) -> None:
    if tornado.empty:
        return
    n = len(tornado)
    cols = list(tornado.columns)
    chart = wb.add_chart({"type": "bar"})
    for column in ("value_low", "value_high"):
        c = cols.index(column)
        chart.add_series({
            "name": ["Tornado", 1, c],
            "categories": ["Tornado", 2, cols.index("label"), n + 1, cols.index("label")],
            "values": ["Tornado", 2, c, n + 1, c],
        })
    chart.set_title({"name": "Sensitivity (value at each input's low and high)"})
    chart.set_y_axis({"reverse": True})
    chart.set_size({"width": 720, "height": max(300, 22 * n)})
    ws.insert_chart(1, len(cols) + 1, chart)


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str], sheet: str = "Results",
                meta: dict[str, Any] | None = None) -> Path:
    """One table by suffix: ``.csv``, ``.json``, ``.parquet`` or ``.xlsx`` (with a sheet of ``meta``)."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".csv":
        write_csv(frame, target)
    elif suffix == ".json":
        write_json({sheet.lower(): frame}, target, meta)
    elif suffix == ".parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer)
        atomic_write(target, buffer.getvalue())
    elif suffix == ".xlsx":
        def build(wb, fmt):
            _sheet(wb, sheet, frame, fmt, "Money in millions of each deal's currency.", index=True)
            if meta:
                info = pd.DataFrame({"field": list(meta), "value": [str(v) for v in meta.values()]})
                _sheet(wb, "Inputs", info, fmt, "Everything needed to replay this run.", index=False)
        _atomic_workbook(target, build)
    else:
        raise ValueError(f"unknown output type {target.suffix!r}: use .csv, .xlsx, .parquet or .json")
    return target


def write_negotiation(negotiation, path: str | os.PathLike[str]) -> Path:
    """A workbook of a negotiation: the zone and the splits, the values on the grid with a native
    chart (one parameter: both parties' gains; two: each party's walk-away curve and the splits),
    and the inputs."""
    target = Path(path)
    if target.suffix.lower() != ".xlsx":
        raise ValueError(f"a negotiation is written as .xlsx (got {target.suffix!r})")
    currency = negotiation.deal.currency
    note = f"Money in {currency} millions; gains are values over each party's walk-away."
    splits = pd.DataFrame([
        {"split": rule.replace("_", " "), **{p: split.x[i] for i, p in enumerate(negotiation.parameters)},
         "sponsor value": split.sponsor, "partner value": split.partner, "sponsor gain": split.sponsor_gain,
         "sponsor gain se": split.sponsor_se, "partner gain": split.partner_gain, "partner gain se": split.partner_se,
         "joint gain": split.joint_gain, "joint gain se": split.joint_gain_se}
        for rule, split in negotiation.splits.items()])
    if isinstance(negotiation.zone, list):
        zone = pd.DataFrame([{"from": lo, "to": hi} for lo, hi in negotiation.zone]) if negotiation.zone else \
            pd.DataFrame([{"from": "no zone", "to": f"short by {negotiation.shortfall:,.1f}"}])
    else:
        zone = pd.DataFrame([{"share of the grid inside": negotiation.zone}])
    inputs = pd.DataFrame({"field": ["deal", "parameters", "measure", "sponsor walk-away", "partner walk-away",
                                     "ranges", "paths", "seed", "dealmodel version"],
                           "value": [negotiation.deal.name, ", ".join(negotiation.parameters), negotiation.measure,
                                     f"{negotiation.walkaway['sponsor'].label()} = "
                                     f"{negotiation.walkaway_values['sponsor']:,.2f}",
                                     f"{negotiation.walkaway['partner'].label()} = "
                                     f"{negotiation.walkaway_values['partner']:,.2f}",
                                     "; ".join(f"{lo:g} to {hi:g}" for lo, hi in negotiation.ranges),
                                     str(negotiation.paths), str(negotiation.seed), __version__]})
    grid = negotiation.table.rename(columns=lambda c: c.replace("_", " "))
    params = {p: "param" for p in negotiation.parameters} | ({"from": "param", "to": "param"}
                                                            if isinstance(negotiation.zone, list) else {})
    two = len(negotiation.parameters) == 2

    def build(wb, fmt) -> None:
        ws = _sheet(wb, "Negotiation", zone, fmt, note, index=False, formats=params)
        ws.write_string(len(zone) + 3, 0, "Fair splits", fmt["head"])
        _block(ws, splits, fmt, len(zone) + 4, formats=params)
        _sheet(wb, "Values", grid, fmt, note, index=False, formats=params)
        if two:
            first, second = negotiation.parameters
            curves = negotiation.curves
            _sheet(wb, "Curves", curves, fmt, f"Each party's walk-away curve: the {second} at which its gain "
                   f"is 0, for each {first} (blank: no crossing in the range).", index=False,
                   formats={first: "param", "sponsor": "param", "partner": "param"})
            chart = wb.add_chart({"type": "scatter", "subtype": "straight_with_markers"})
            n = len(curves)
            for c, party in ((1, "sponsor"), (2, "partner")):
                chart.add_series({"name": f"{party}'s walk-away", "categories": ["Curves", 2, 0, n + 1, 0],
                                  "values": ["Curves", 2, c, n + 1, c], "marker": {"type": "none"}})
            if len(splits):
                row0 = len(zone) + 5
                chart.add_series({"name": "fair splits", "categories": ["Negotiation", row0, 1,
                                                                        row0 + len(splits) - 1, 1],
                                  "values": ["Negotiation", row0, 2, row0 + len(splits) - 1, 2],
                                  "line": {"none": True}, "marker": {"type": "diamond", "size": 8}})
            chart.set_title({"name": "Both sign between the two walk-away curves"})
            chart.set_x_axis({"name": first})
            chart.set_y_axis({"name": second})
            chart.set_size({"width": 720, "height": 420})
            ws.insert_chart(len(zone) + len(splits) + 7, 0, chart)
        if len(negotiation.parameters) == 1 and len(grid) > 1:
            chart = wb.add_chart({"type": "scatter", "subtype": "straight"})
            n = len(grid)
            cols = list(grid.columns)
            for party in ("sponsor gain", "partner gain"):
                c = cols.index(party)
                chart.add_series({"name": ["Values", 1, c], "categories": ["Values", 2, 0, n + 1, 0],
                                  "values": ["Values", 2, c, n + 1, c]})
            chart.set_title({"name": "Gain over walk-away: the zone is where both are above 0"})
            chart.set_x_axis({"name": negotiation.parameters[0]})
            chart.set_y_axis({"name": f"{currency} millions"})
            chart.set_size({"width": 720, "height": 400})
            ws.insert_chart(len(zone) + len(splits) + 7, 0, chart)
        _sheet(wb, "Inputs", inputs, fmt, "Everything needed to replay this run.", index=False)

    _atomic_workbook(target, build)
    return target


def decisions_tables(reports: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decision reports as two tables: one row per structure (flexibility, distortion, values), and the
    stopping probabilities per structure, candidate and gate."""
    rows, stops = [], []
    for name, r in reports.items():
        v = r.values
        rows.append({"structure": name, "rule": r.rule if r.rule == "optimal" else f"threshold {r.threshold:,.0f}",
                     "decided by": r.owner, "value of flexibility": r.flexibility, "± SE": r.flexibility_se,
                     "distortion": r.distortion, "± SE ": r.distortion_se,
                     **{f"{p} eNPV, {row}": float(v.loc[row, p]) for p in ("sponsor", "partner", "program")
                        for row in v.index}})
        for (cand, gate), s in r.stops.iterrows():
            stops.append({"structure": name, "candidate": cand, "gate": f"before {gate}",
                          "stopped under the deal": float(s["under the deal"]),
                          "stopped as the program would": float(s["as the program would"]),
                          "change": float(s["change"])})
    return pd.DataFrame(rows), pd.DataFrame(stops)


_STOP_FORMATS = {"stopped under the deal": "percent", "stopped as the program would": "percent", "change": "percent"}


def _decisions_sheet(wb, reports: dict, fmt: dict, note: str) -> None:
    """What gate decisions are worth and how each structure's terms change them, with a chart of the stops."""
    summary, stops = decisions_tables(reports)
    ws = _sheet(wb, "Decisions", summary, fmt, note + " Value of flexibility: program eNPV with gate decisions less "
                "without. Distortion: program eNPV if candidates were stopped where the two parties together "
                "would stop them, less under the deal. Paired standard errors (docs/methodology.md).", index=False)
    first = len(summary) + 4
    ws.write_string(first - 1, 0, "Probability a candidate is stopped at a gate (for commercial reasons)",
                    fmt["note"])
    _block(ws, stops, fmt, first, formats=_STOP_FORMATS)
    shown = stops[(stops["stopped under the deal"] >= 0.0005) | (stops["stopped as the program would"] >= 0.0005)]
    if shown.empty:
        return
    # the chart's own small table, beside the stops: the gates where someone stops
    c0 = len(stops.columns) + 1
    multi = stops["structure"].nunique() > 1
    for c, head in enumerate(("gate (chart)", "under the deal", "as the program would")):
        ws.write_string(first, c0 + c, head, fmt["head"])
    for r, row in enumerate(shown.itertuples(index=False)):
        label = (f"{row.structure}: " if multi else "") + f"{row.candidate} {row.gate}"
        ws.write_string(first + 1 + r, c0, str(safe_text(label)))
        ws.write_number(first + 1 + r, c0 + 1, row[3], fmt["percent"])
        ws.write_number(first + 1 + r, c0 + 2, row[4], fmt["percent"])
    ws.set_column(c0, c0, 28)
    chart = wb.add_chart({"type": "bar"})
    lo, hi = first + 1, first + len(shown)
    for c in (1, 2):
        chart.add_series({"name": ["Decisions", first, c0 + c], "categories": ["Decisions", lo, c0, hi, c0],
                          "values": ["Decisions", lo, c0 + c, hi, c0 + c]})
    chart.set_title({"name": "Share of futures stopped at each gate"})
    chart.set_x_axis({"num_format": "0%", "min": 0})
    chart.set_y_axis({"reverse": True})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 640, "height": 120 + 36 * len(shown)})
    ws.insert_chart(first + len(stops) + 3, 0, chart)


def write_decisions(report, path: str | os.PathLike[str]) -> Path:
    """One structure's decision report: ``.xlsx`` (the Decisions sheet and the inputs) or ``.json``."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".json":
        atomic_write(target, (json.dumps(report.to_dict(), indent=2) + "\n").encode())
        return target
    if suffix != ".xlsx":
        raise ValueError(f"a decision report is written as .xlsx or .json (got {target.suffix!r})")
    inputs = pd.DataFrame({"field": ["deal", "rule", "decided by", "threshold", "paths", "seed", "dealmodel version"],
                           "value": [report.deal.name, report.rule, report.owner,
                                     "" if report.threshold is None else f"{report.threshold:g}", str(report.paths),
                                     str(report.seed), __version__]})

    def build(wb, fmt) -> None:
        _decisions_sheet(wb, {report.deal.name: report}, fmt, f"Money in {report.deal.currency} millions.")
        _sheet(wb, "Inputs", inputs, fmt, "Everything needed to replay this run.", index=False)

    _atomic_workbook(target, build)
    return target


def _block(ws, frame: pd.DataFrame, fmt: dict, first_row: int, formats: dict[str, str] | None = None) -> None:
    """A table written below others on a sheet (header at ``first_row``)."""
    for c, column in enumerate(frame.columns):
        ws.write_string(first_row, c, str(column), fmt["head"])
        for r, value in enumerate(frame[column].tolist()):
            if isinstance(value, int | float) and not isinstance(value, bool):
                ws.write_number(first_row + 1 + r, c, value, fmt[(formats or {}).get(column, "money")])
            else:
                ws.write_string(first_row + 1 + r, c, str(safe_text(str(value))))


# --------------------------------------------------------------------------- one entry point


def export(path: str | os.PathLike[str], comparison: Comparison | None = None, tornado: pd.DataFrame | None = None,
           per_year: pd.DataFrame | None = None) -> Path:
    """Write by suffix: ``.xlsx`` (every table and the charts), ``.csv`` (the main table), ``.json``."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".xlsx":
        write_workbook(target, comparison, tornado, per_year)
    elif suffix == ".csv":
        if comparison is not None:
            write_csv(comparison.table, target)
        elif tornado is not None:
            write_csv(tornado, target, index=False)
        elif per_year is not None:
            write_csv(per_year, target, index=False)
        else:
            raise ValueError("nothing to export")
    elif suffix == ".json":
        tables: dict[str, pd.DataFrame] = {}
        meta: dict[str, Any] = {"dealmodel_version": __version__}
        if comparison is not None:
            tables["comparison"] = comparison.table
            meta.update({"paths": comparison.paths, "seed": comparison.seed, "baseline": comparison.baseline})
        if tornado is not None:
            tables["tornado"] = tornado.set_index("input")
        if per_year is not None:
            tables["per_year"] = per_year.set_index(per_year.columns[0])
        write_json(tables, target, meta)
    else:
        raise ValueError(f"unknown output type {target.suffix!r}: use .xlsx, .csv or .json")
    return target
