"""The Streamlit app, driven headlessly through streamlit.testing.v1.AppTest."""

from __future__ import annotations

import io
import json
import sys
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pytest
import yaml
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

import dealmodel as dm
from dealmodel.edit import term_parameters
from tests.conftest import REFERENCE, ROOT, SAMPLES

APP = str(ROOT / "app.py")
ALL_SAMPLES = sorted(SAMPLES.glob("*.yaml"))
REV = "Reference program — revenue share"


class _RecordingStorage(MemoryMediaFileStorage):
    """The app's media storage, keeping every download's bytes by its file name for the test to read."""

    files: ClassVar[dict[str, bytes]] = {}

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        file_id = super().load_and_get_id(path_or_data, mimetype, kind, filename)
        if filename is not None:
            _RecordingStorage.files[filename] = self.get_file(file_id).content
        return file_id


@pytest.fixture(scope="module", autouse=True)
def _kernel_loaded():
    """The compiled kernel loaded before any app run (on a fresh clone: compiled, about a minute of a core),
    so an app run's timeout measures the app, not a one-off compile behind it."""
    for name in ("hybrid", "cdmo_risk_share"):
        dm.simulate(dm.load_deal(REFERENCE[name]), paths=100, seed=0, keep_flows=False)


def _app(monkeypatch, *args: str) -> AppTest:
    monkeypatch.setattr(sys, "argv", ["app.py", *args])
    monkeypatch.setattr("streamlit.testing.v1.app_test.MemoryMediaFileStorage", _RecordingStorage)
    _RecordingStorage.files.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


VIEWS = ["Value bridge", "Distributions", "Risk vs return", "Cash flow", "Sensitivity", "Compare & solve",
         "Negotiate", "Decisions"]


def _open(at: AppTest, view: str) -> AppTest:
    """Open one tab (the app builds only the open tab's view)."""
    at.session_state["view"] = view
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _every_view(at: AppTest) -> dict[str, list[dict]]:
    """Each tab's chart specs, opening the tabs one by one (the overview above them is in every one)."""
    return {view: _charts(_open(at, view)) for view in VIEWS}


def _metric(at: AppTest, label: str) -> float:
    (m,) = [m for m in at.metric if m.label.removesuffix(", $M") == label]
    return float(m.value.replace(",", "").rstrip("%"))


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def _chart_rows(at: AppTest) -> list[int]:
    rows = []
    for c in at.get("vega_lite_chart"):
        for ds in c.proto.datasets:
            rows.append(pa.ipc.open_stream(io.BytesIO(ds.data.data)).read_all().num_rows)
    return rows


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: p.stem)
def test_app_runs_on_every_sample_deal(monkeypatch, path):
    at = _app(monkeypatch, str(path))
    assert not at.error
    deal = dm.load_deal(path)
    assert _metric(at, "Biobucks") == pytest.approx(dm.headline(deal).biobucks, abs=0.051)
    assert _metric(at, "Contract value") == pytest.approx(dm.headline(deal).total_contract_value, abs=0.051)
    # the overview above the tabs, then each tab's own charts: only the open tab's are built
    counts = {view: len(specs) for view, specs in _every_view(at).items()}
    assert counts == {"Value bridge": 2, "Distributions": 3, "Risk vs return": 2, "Cash flow": 2, "Sensitivity": 1,
                      "Compare & solve": 2, "Negotiate": 1, "Decisions": 1}
    assert not at.error


def test_every_structure_can_be_selected(monkeypatch):
    at = _app(monkeypatch)
    for option in at.selectbox(key="selected").options:
        at.selectbox(key="selected").set_value(option).run()
        assert not at.exception, option
        assert option in [s.value for s in at.main.get("subheader")]


def test_moving_a_royalty_slider_up_raises_the_partners_value(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["revenue_share"]))
    before = _metric(at, "Partner eNPV")
    sponsor_before = _metric(at, "Sponsor eNPV")
    slider = at.slider(key=f"term::{REV}::terms[1].tiers[0].rate")
    assert slider.value == pytest.approx(10.0)  # shown in percent
    slider.set_value(13.0).run()
    assert not at.exception
    assert _metric(at, "Partner eNPV") > before
    assert _metric(at, "Sponsor eNPV") < sponsor_before
    (partner,) = [m for m in at.metric if m.label == "Partner eNPV, $M"]  # a reference on the same program
    assert partner.proto.delta.endswith(" vs baseline") and "another program" not in partner.proto.help
    # the edit is kept in the downloadable deal: the YAML holds exactly what was valued
    (name,) = [n for n in _RecordingStorage.files if n.endswith(".yaml")]
    assert name == "reference-program-revenue-share.yaml"  # no spaces or dashes a shell or a mail client trips on
    downloaded = yaml.safe_load(_RecordingStorage.files[name])
    assert downloaded["terms"][1]["tiers"][0]["rate"] == pytest.approx(0.13)
    assert downloaded["terms"][1]["tiers"][1]["rate"] == pytest.approx(0.15)  # the second tier, as written


def test_program_assumptions_move_every_structure(monkeypatch):
    at = _app(monkeypatch)
    before = _metric(at, "Sponsor eNPV")
    at.slider(key="peak_scale").set_value(2.0).run()
    assert _metric(at, "Sponsor eNPV") > before


def test_a_malformed_upload_shows_an_error_and_the_app_keeps_working(monkeypatch):
    at = _app(monkeypatch)
    selected = at.selectbox(key="selected").value
    bad = b"name: broken\nparties: {sponsor: {name: S, discount_rate: 2}}\ncandidates: []\n"
    at.file_uploader(key="upload").set_value(("broken.yaml", bad, "application/x-yaml")).run()
    assert not at.exception
    (error,) = at.error
    assert "broken.yaml" in error.value
    assert "candidates: must not be empty" in error.value
    assert "parties.partner: required field is missing" in error.value
    assert at.selectbox(key="selected").value == selected
    assert _metric(at, "Contract value") > 0
    # the file removed (or a larger one the browser refuses before the app sees it): its error goes too
    at.file_uploader(key="upload").set_value(None).run()
    assert not at.exception and not at.error


def test_invalid_yaml_and_oversized_uploads_are_refused(monkeypatch):
    at = _app(monkeypatch)
    at.file_uploader(key="upload").set_value(("x.yaml", b"name: [unclosed\n", "application/x-yaml")).run()
    assert "invalid YAML" in at.error[0].value
    at.file_uploader(key="upload").set_value(("big.yaml", b"#" * 1_100_000, "application/x-yaml")).run()
    assert "limited to 1 MB" in at.error[0].value
    assert not at.exception


def test_a_good_upload_becomes_a_structure(monkeypatch):
    at = _app(monkeypatch)
    data = (SAMPLES / "single_candidate.yaml").read_bytes()
    at.file_uploader(key="upload").set_value(("mine.yaml", data, "application/x-yaml")).run()
    assert not at.error and not at.exception
    assert at.selectbox(key="selected").value == "Single candidate — phase 2 antibody"
    assert "Single candidate — phase 2 antibody" in at.selectbox(key="selected").options


def test_chart_specs_use_pre_aggregated_fields(monkeypatch):
    at = _app(monkeypatch)
    specs, rows = [], []
    for view in VIEWS:
        specs += _charts(_open(at, view))
        rows += _chart_rows(at)
    specs = json.dumps(specs)
    for field in ("start", "end", "npv_mid", "share", "prob_above", "expected_npv", "p5", "p10", "p90", "mean"):
        assert f'"field": "{field}"' in specs, field
    assert max(rows) < 500  # small frames, never the 20,000 paths


def test_the_solver_answers_in_one_click(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["revenue_share"]))
    _open(at, "Compare & solve")
    (button,) = [b for b in at.button if b.key == "solve"]
    button.click().run()
    assert not at.exception
    (answer,) = at.success
    assert "royalty of" in answer.value and "Reference program — fee-for-service" in answer.value


def test_the_sensitivity_runs_on_request(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["milestone"]))
    _open(at, "Sensitivity")
    before = len(at.get("vega_lite_chart"))
    (button,) = [b for b in at.button if b.key == "run_tornado"]
    button.click().run()
    assert not at.exception
    specs = _charts(at)
    assert len(specs) == before + 1
    tornado = [s for s in specs if '"field": "side"' in json.dumps(s)]
    assert len(tornado) == 1
    assert '"field": "base"' in json.dumps(tornado[0])


def test_an_uploaded_deal_is_valued_with_its_own_parties_and_program(monkeypatch):
    # A deal whose sponsor discounts at 8% (the sample says 15%) must show the 8% value, not the sample's:
    # each structure keeps its own program and parties, and the figures equal the Python API's.
    text = (SAMPLES / "single_candidate.yaml").read_text()
    sponsor = "sponsor: {name: Sponsor biotech, discount_rate: %s}"
    own = text.replace("name: Single candidate — phase 2 antibody", "name: Eight percent").replace(
        sponsor % "0.15", sponsor % "0.08")
    assert own.count("0.08") == 1
    at = _app(monkeypatch)
    at.file_uploader(key="upload").set_value(("eight.yaml", own.encode(), "application/x-yaml")).run()
    assert not at.exception and not at.error
    assert at.selectbox(key="selected").value == "Eight percent"
    shown = _metric(at, "Sponsor eNPV")
    deal = dm.parse_deal_text(own, fmt="yaml")
    expected = dm.simulate(deal, paths=20_000, seed=0).summary().loc["sponsor", "expected_npv"]
    assert shown == pytest.approx(expected, abs=0.051)
    as_sample = dm.simulate(dm.load_deal(SAMPLES / "single_candidate.yaml"), paths=20_000, seed=0)
    assert abs(shown - as_sample.summary().loc["sponsor", "expected_npv"]) > 1.0
    # its difference to the baseline (a reference structure of a five-candidate program) says so
    (partner,) = [m for m in at.metric if m.label == "Partner eNPV, $M"]
    assert partner.proto.delta.endswith("vs baseline, another program")
    assert "not the effect of the terms alone" in partner.proto.help
    # the sidebar names the selected structure's own settings
    assert any("sponsor rate 8.0%" in c.value for c in at.sidebar.caption)
    # a relative program change moves it from its own rate: +2 points -> 10%
    at.slider(key="sponsor_rate_delta").set_value(2.0).run()
    moved = dm.simulate(dm.set_value(deal, "parties.sponsor.discount_rate", 0.10), paths=20_000, seed=0)
    assert _metric(at, "Sponsor eNPV") == pytest.approx(moved.summary().loc["sponsor", "expected_npv"],
                                                                abs=0.051)


@pytest.mark.parametrize(("label", "old", "new", "field"), [
    ("lognormal p90 .inf", "p90: 2000}", "p90: .inf}", "candidates[0].commercial.peak_sales.p90"),
    ("beta sd 1e-200", "phase2: {success_probability: 0.246,",
     "phase2: {success_probability: {dist: beta, mean: 0.246, sd: 1.0e-200},", "success_probability"),
    ("upfront .inf", "  - kind: milestone\n", "  - kind: upfront\n    amount: .inf\n  - kind: milestone\n",
     "terms[1].amount"),
])
def test_uploads_that_once_broke_a_session_are_refused_and_the_app_keeps_working(monkeypatch, label, old, new, field):
    text = (SAMPLES / "single_candidate.yaml").read_text()
    assert old in text
    at = _app(monkeypatch)
    selected = at.selectbox(key="selected").value
    at.file_uploader(key="upload").set_value(("bad.yaml", text.replace(old, new, 1).encode(), "text/yaml")).run()
    assert not at.exception
    (error,) = at.error
    assert field in error.value, error.value
    assert at.selectbox(key="selected").value == selected
    # the next rerun works: a slider move re-renders without an exception
    before = _metric(at, "Sponsor eNPV")
    at.slider(key="peak_scale").set_value(1.5).run()
    assert not at.exception
    assert _metric(at, "Sponsor eNPV") > before


def test_an_uploaded_structure_can_be_removed(monkeypatch):
    at = _app(monkeypatch)
    data = (SAMPLES / "single_candidate.yaml").read_bytes()
    at.file_uploader(key="upload").set_value(("mine.yaml", data, "application/x-yaml")).run()
    assert "Single candidate — phase 2 antibody" in at.selectbox(key="selected").options
    at.button(key="remove_selected").click().run()
    assert not at.exception
    assert "Single candidate — phase 2 antibody" not in at.selectbox(key="selected").options
    assert at.selectbox(key="selected").value == "Reference program — hybrid"


def test_the_three_headline_figures_are_shown(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["hybrid"]))
    result = dm.simulate(dm.load_deal(REFERENCE["hybrid"]), paths=20_000, seed=0)
    caption = next(c.value for c in at.main.caption if c.value.startswith("Biobucks"))
    assert f"expected PV of every payment to the partner {result.expected_pv_to_partner:,.1f}" in caption
    assert f"total contract value {result.total_contract_value:,.1f}" in caption


def test_negotiate_finds_the_zone_and_applies_a_split(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["revenue_share"]))
    _open(at, "Negotiate")
    assert at.selectbox(key="selected").value == REV
    param = at.selectbox(key=f"neg_param::{REV}")
    param.set_value(next(o for o in param.options if "rate above" not in o and "rate" in o)).run()
    at.button(key="run_negotiate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (found,) = [s.value for s in at.success if s.value.startswith("Both parties gain")]
    # the same zone from the API, on the same paths against the baseline (fee-for-service)
    deal = dm.load_deal(REFERENCE["revenue_share"])
    talk = dm.negotiate(deal, "terms[1].tiers[0].rate", dm.load_deal(REFERENCE["fee_for_service"]),
                        ranges=[(0.0, 0.3)], paths=20_000, seed=0)
    (lo, hi), = talk.zone
    assert f"{lo:.2%} to {hi:.2%}" in found
    at.button(key="apply::equal_gain").click().run()
    assert not at.exception
    slider = at.slider(key=f"term::{REV}::terms[1].tiers[0].rate")
    assert slider.value == pytest.approx(100 * talk.splits["equal_gain"].x[0], rel=1e-9)
    # the structure is now valued at that rate: both gain the same over fee-for-service
    assert _metric(at, "Partner eNPV") == pytest.approx(talk.splits["equal_gain"].partner, abs=0.051)


def test_negotiate_over_two_terms_shows_the_region_and_applies_both(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["hybrid"]))
    _open(at, "Negotiate")
    name = at.selectbox(key="selected").value
    first = at.selectbox(key=f"neg_param::{name}")
    first.set_value(next(o for o in first.options if "markup" in o)).run()
    second = at.selectbox(key=f"neg_second::{name}")
    second.set_value(next(o for o in second.options if o.startswith("Approval"))).run()
    at.button(key="run_negotiate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    # the same grid from the API: markup -50% to 100%, approval milestone over its slider's range
    deal = dm.load_deal(REFERENCE["hybrid"])
    milestone = next(p for p in term_parameters(deal) if p.label.startswith("Approval"))
    talk = dm.negotiate(deal, ["terms[0].markup", milestone.path], dm.load_deal(REFERENCE["fee_for_service"]),
                        ranges=[(-0.5, 1.0), (milestone.low, milestone.high)], paths=20_000, seed=0)
    (found,) = [s.value for s in at.success if s.value.startswith("Both parties gain")]
    assert f"on {talk.zone:.0%} of the grid" in found
    at.button(key="apply::nash").click().run()
    assert not at.exception
    nash = talk.splits["nash"]
    assert at.slider(key=f"term::{name}::terms[0].markup").value == pytest.approx(100 * nash.x[0], rel=1e-9)
    assert at.slider(key=f"term::{name}::{milestone.path}").value == pytest.approx(nash.x[1], rel=1e-9)
    assert _metric(at, "Partner eNPV") == pytest.approx(nash.partner, abs=0.051)


def test_the_certainty_equivalents_are_shown_beside_the_expected_npvs(monkeypatch):
    from dealmodel.negotiate import certainty_equivalent

    at = _app(monkeypatch)
    (caption,) = [c.value for c in at.caption if c.value.startswith("Certainty equivalents")]
    deal = dm.load_deal(REFERENCE["hybrid"])
    result = dm.simulate(deal, paths=20_000, seed=0)
    sponsor = certainty_equivalent(result.npv["sponsor"], deal.parties.sponsor.risk_tolerance)
    assert f"sponsor {sponsor:,.1f}" in caption and "(R 80.0)" in caption


def test_every_money_slider_says_it_is_in_millions(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["hybrid"]))
    name = at.selectbox(key="selected").value
    params = {p.path: p for p in term_parameters(dm.load_deal(REFERENCE["hybrid"]))}
    sliders = [s for s in at.slider if s.key and s.key.startswith(f"term::{name}::")]
    assert len(sliders) == len(params) == 11
    for s in sliders:
        p = params[s.key.split("::")[-1]]
        if p.percent:
            assert "%" in s.format and "$M" not in s.label
        else:
            assert s.label.endswith(", $M"), s.label


def test_chart_legends_name_each_structure_in_full_and_keep_its_colour(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["hybrid"]))
    specs = [spec for view_specs in _every_view(at).values() for spec in view_specs]
    assert specs, "no chart on the page"
    short = ["fee-for-service", "milestone-based", "revenue share", "hybrid", "CDMO risk-share"]
    coloured = [s for s in specs for layer in [s, *s.get("layer", [])]
                if layer.get("encoding", {}).get("color", {}).get("field") == "variant"]
    assert coloured, "no chart coloured by structure"
    for spec in coloured:
        text = json.dumps(spec)
        for name in short:
            assert f'"{name}"' in text  # the legend's label is the whole short name
        color = next(layer["encoding"]["color"] for layer in [spec, *spec.get("layer", [])]
                     if layer.get("encoding", {}).get("color", {}).get("field") == "variant")
        assert color["scale"]["domain"] == short  # a fixed order: each structure keeps its colour
        assert color["legend"]["labelLimit"] >= 7 * max(map(len, short))


def test_the_comparison_shows_both_sides_value_and_risk_with_short_names(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["hybrid"]))
    _open(at, "Compare & solve")
    tables = {tuple(df.value.columns): df.value for df in at.dataframe}
    risk = next(v for k, v in tables.items() if "sponsor risk share" in k)
    value = next(v for k, v in tables.items() if "joint gain" in k)
    assert list(value.index) == list(risk.index) == ["fee-for-service", "milestone-based", "revenue share",
                                                     "hybrid", "CDMO risk-share"]
    result = dm.simulate(dm.load_deal(REFERENCE["hybrid"]), paths=20_000, seed=0, keep_flows=False)
    npv = result.npv["sponsor"]
    assert risk.loc["hybrid", "sponsor P(loss)"] == pytest.approx((npv < 0).mean())
    assert risk.loc["hybrid", "sponsor P5"] == pytest.approx(np.percentile(npv, 5), rel=1e-6)
    assert value.loc["hybrid", "sponsor eNPV"] == pytest.approx(npv.mean(), rel=1e-12)


def test_a_saved_scenario_restores_to_identical_figures_and_downloads_as_a_file(monkeypatch):
    from dealmodel.scenario import parse_scenarios

    at = _app(monkeypatch, str(REFERENCE["hybrid"]))
    name = at.selectbox(key="selected").value
    at.slider(key=f"term::{name}::terms[4].amount").set_value(120.0)
    at.slider(key="peak_scale").set_value(1.5).run()
    saved = {label: _metric(at, label) for label in ("Partner eNPV", "Sponsor eNPV", "Biobucks")}
    at.text_input(key="scenario_name").input("Board draft").run()
    at.button(key="save_scenario").click().run()
    assert not at.exception
    at.slider(key=f"term::{name}::terms[4].amount").set_value(60.0)
    at.slider(key="peak_scale").set_value(1.0).run()
    assert _metric(at, "Partner eNPV") != saved["Partner eNPV"]
    at.selectbox(key="scenario_pick").set_value("Board draft").run()
    at.button(key="restore_scenario").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert {label: _metric(at, label) for label in saved} == saved
    assert at.slider(key="peak_scale").value == 1.5
    assert at.slider(key=f"term::{name}::terms[4].amount").value == 120.0
    # the downloaded file values the same in Python
    (scenario,) = parse_scenarios(yaml.safe_load(_RecordingStorage.files["scenarios.yaml"])).values()
    table = scenario.compare().table
    assert round(table.loc[name, "partner_expected_npv"], 1) == saved["Partner eNPV"]


def test_a_saved_scenario_can_be_deleted(monkeypatch):
    at = _app(monkeypatch)
    for label in ("First", "Second"):
        at.text_input(key="scenario_name").input(label).run()
        at.button(key="save_scenario").click().run()
    assert at.selectbox(key="scenario_pick").options == ["First", "Second"]
    at.selectbox(key="scenario_pick").set_value("Second").run()
    at.button(key="delete_scenario").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="scenario_pick").options == ["First"]
    assert any(s.value == "Deleted **Second**." for s in at.sidebar.success)
    at.selectbox(key="scenario_pick").set_value("First").run()
    at.button(key="delete_scenario").click().run()
    assert not [b for b in at.selectbox if b.key == "scenario_pick"]  # none left: no list


def test_the_distribution_view_reads_like_a_simulation_report(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["hybrid"]))
    result = dm.simulate(dm.load_deal(REFERENCE["hybrid"]), paths=20_000, seed=0, keep_flows=False)
    x = result.npv["partner"]
    candidates = next(d.value for d in at.dataframe if "approved" in d.value.columns)  # on the first tab
    assert list(candidates["approved"]) == [f"{c['prob_approval']:.1%}" for c in result.candidates.values()]
    _open(at, "Distributions")
    pct = next(d.value for d in at.dataframe if "SE of mean" in d.value.columns)
    assert pct.loc["hybrid", "P5"] == pytest.approx(np.percentile(x, 5), rel=1e-12)
    assert pct.loc["hybrid", "SE of mean"] == pytest.approx(x.std(ddof=1) / np.sqrt(x.size), rel=1e-12)
    at.number_input(key="exceed_x::partner").set_value(100.0).run()
    above = next(d.value for d in at.dataframe if d.value.columns[0].startswith("P(NPV > 100"))
    assert above.iloc[:, 0]["hybrid"] == pytest.approx((x > 100.0).mean())


def test_each_candidates_worth_to_each_side_is_shown_on_request(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["hybrid"]))
    assert not [d for d in at.dataframe if "Sponsor, $M" in d.value.columns]
    at.toggle(key="by_candidate").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = next(d.value for d in at.dataframe if "Sponsor, $M" in d.value.columns)
    values = dm.candidate_values(dm.load_deal(REFERENCE["hybrid"]), paths=20_000, seed=0)
    assert list(shown.index) == list(values.index)
    for party in ("sponsor", "partner"):
        expected = [f"{m:,.1f} ± {s:,.1f}" for m, s in zip(values[party], values[f"{party}_se"], strict=True)]
        assert list(shown[f"{party.capitalize()}, $M"]) == expected
    total = float(shown.loc[dm.breakdown.TOTAL, "Partner, $M"].split(" ±")[0].replace(",", ""))
    assert total == pytest.approx(_metric(at, "Partner eNPV"), abs=0.051)


def test_the_sensitivity_stays_after_a_slider_move_and_says_what_changed(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["milestone"]))
    _open(at, "Sensitivity")
    name = at.selectbox(key="selected").value
    at.button(key="run_tornado").click().run()
    before = len(at.get("vega_lite_chart"))
    at.slider(key=f"term::{name}::terms[6].amount").set_value(200.0).run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == before  # still drawn
    (note,) = [w.value for w in at.warning if w.value.startswith("This sensitivity was run before")]
    assert "Approval: amount: 157 → 200" in note
    at.button(key="run_tornado").click().run()
    assert not [w for w in at.warning if w.value.startswith("This sensitivity was run before")]


def test_the_solved_royalty_can_be_applied(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["revenue_share"]))
    _open(at, "Compare & solve")
    at.button(key="solve").click().run()
    deal = dm.load_deal(REFERENCE["revenue_share"])
    fair = dm.solve(deal, "terms[1].tiers[0].rate", dm.load_deal(REFERENCE["fee_for_service"]), paths=20_000, seed=0)
    at.button(key="apply_solved").click().run()
    assert not at.exception
    assert at.slider(key=f"term::{REV}::terms[1].tiers[0].rate").value == pytest.approx(100 * fair.value, rel=1e-9)
    assert _metric(at, "Partner eNPV") == pytest.approx(fair.achieved, abs=0.051)


def test_a_solve_that_cannot_succeed_says_so_in_words(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["revenue_share"]))
    _open(at, "Compare & solve")
    # fees at a 50% markup: the partner beats fee-for-service with no royalty at all
    at.slider(key=f"term::{REV}::terms[0].markup").set_value(100.0).run()
    at.button(key="solve").click().run()
    assert not at.exception
    (said,) = [i.value for i in at.info if i.value.startswith("No first-tier royalty")]
    assert "always above it" in said and "cannot close the gap" in said


def test_the_decisions_view_shows_the_report_of_the_python_api(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["hybrid"]))
    _open(at, "Decisions")
    assert not [m for m in at.metric if m.label == "Value of flexibility"]
    at.toggle(key="decisions_on").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    report = dm.decision_report(dm.load_deal(REFERENCE["hybrid"]), paths=20_000, seed=0)
    (flex,) = [m for m in at.metric if m.label == "Value of flexibility"]
    assert flex.value == f"{report.flexibility:+,.1f} ± {report.flexibility_se:,.1f}"
    (cost,) = [m for m in at.metric if m.label == "Cost of the distortion"]
    assert cost.value == f"{report.distortion:,.1f} ± {report.distortion_se:,.1f}"
    spec = next(s for s in _charts(at) if "Stopped for commercial reasons" in json.dumps(s.get("title", "")))
    assert spec["encoding"]["x"]["axis"]["format"] == "%"


def test_gate_decisions_for_every_structure_from_the_sidebar(monkeypatch):
    at = _app(monkeypatch, str(REFERENCE["hybrid"]))
    at.selectbox(key="decisions_mode").set_value("sponsor").run()
    assert not at.exception, [e.value for e in at.exception]
    data = dm.load_deal(REFERENCE["hybrid"]).model_dump(mode="json", by_alias=True, exclude_none=True)
    decided = dm.parse_deal(data | {"decisions": {"rule": "optimal", "owner": "sponsor"}})
    result = dm.simulate(decided, paths=20_000, seed=0, keep_flows=False)
    assert _metric(at, "Sponsor eNPV") == pytest.approx(result.npv["sponsor"].mean(), abs=0.051)
    assert _metric(at, "Partner eNPV") == pytest.approx(result.npv["partner"].mean(), abs=0.051)
