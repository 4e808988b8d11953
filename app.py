"""dealmodel in the browser: tune a deal's terms with sliders and see both parties' risk.

    streamlit run app.py -- [DEAL_FILE]

The page turns widgets into deals, calls the same Python API a notebook would, and draws charts
from pre-aggregated frames (dealmodel.views / dealmodel.charts). No model logic lives here.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import streamlit as st

import dealmodel as dm
from dealmodel import charts, team, views
from dealmodel.compare import compare_results
from dealmodel.edit import changed_inputs, set_values, term_parameters
from dealmodel.export import csv_text
from dealmodel.io import file_stem, parse_text
from dealmodel.negotiate import comparison_frontier
from dealmodel.scenario import ProgramChanges, Scenario, Structure, parse_scenarios, scenarios_text
from dealmodel.store import ResultStore

ROOT = Path(__file__).resolve().parent
REFERENCE_FILES = [ROOT / "sample_deals" / f"reference_{k}.yaml"
                   for k in ("fee_for_service", "milestone", "revenue_share", "hybrid", "cdmo_risk_share")]
MAX_UPLOAD_BYTES = 1_000_000
MAX_PATHS = 100_000
DEFAULT_PATHS = 20_000
SENSITIVITY_PATHS = 5_000

ss = st.session_state


@st.cache_resource(show_spinner=False, max_entries=32)
def _deal_file(path: str, mtime_ns: int, size: int) -> dm.Deal:
    return dm.load_deal(path)


def deal_file(path: Path) -> dm.Deal:
    """A deal file's deal, parsed once for every session (deals are immutable) and again when the file
    changes. Parsing the five reference files took a quarter of the server's time with ten people opening
    the app at once (docs/serving.md)."""
    try:
        info = Path(path).stat()
    except OSError:
        return dm.load_deal(path)  # which says what is wrong with the file, as a DealError
    return _deal_file(str(path), info.st_mtime_ns, info.st_size)


@st.cache_resource(show_spinner=False)
def _reference_names() -> list[str]:  # one look-up a rerun, not one per file
    return [deal_file(p).name for p in REFERENCE_FILES]


REFERENCE_NAMES = _reference_names()


# --------------------------------------------------------------------------- cached model calls


@st.cache_resource(show_spinner=False)
def result_store() -> ResultStore:
    """One store for every session (docs/serving.md: about 12 MB a result)."""
    return ResultStore(max_entries=RESULTS_KEPT, ttl=3600.0)


RESULTS_KEPT = 24


def simulate_cached(deal_json: str, paths: int, seed: int) -> dm.SimulationResult:
    return result_store().get_many([deal_json], paths, seed)[0]


@st.cache_data(max_entries=16, ttl=3600, show_spinner="Running the sensitivity…")
def tornado_cached(deal_json: str, party: str, paths: int, seed: int) -> pd.DataFrame:
    return dm.tornado(dm.Deal.model_validate_json(deal_json), party=party, paths=paths, seed=seed)


@st.cache_data(max_entries=16, ttl=3600, show_spinner="Solving…")
def solve_cached(deal_json: str, parameter: str, target_json: str, paths: int, seed: int) -> dict:
    deal, target = dm.Deal.model_validate_json(deal_json), dm.Deal.model_validate_json(target_json)
    try:
        return dm.solve(deal, parameter, target, party="partner", paths=paths, seed=seed).to_dict()
    except dm.SolveError as exc:
        return {"error": str(exc), "low": exc.low, "high": exc.high, "at_low": exc.at_low, "at_high": exc.at_high,
                "target": exc.target}


@st.cache_data(max_entries=16, ttl=3600, show_spinner="Finding the zone of agreement…")
def negotiate_cached(deal_json: str, parameters: tuple[str, ...], ranges: tuple[tuple[float, float], ...],
                     walk_json: str, measure: str, paths: int, seed: int) -> dict:
    deal, walk = dm.Deal.model_validate_json(deal_json), dm.Deal.model_validate_json(walk_json)
    result = dm.negotiate(deal, list(parameters), walk, measure=measure, ranges=list(ranges), paths=paths, seed=seed)
    return {**result.to_dict(), "table": result.table, "curves": result.curves, "summary": result.summary()}


@st.cache_data(max_entries=16, ttl=3600, show_spinner="Splitting the value by candidate…")
def candidate_values_cached(deal_json: str, paths: int, seed: int) -> pd.DataFrame:
    return dm.candidate_values(dm.Deal.model_validate_json(deal_json), paths=min(paths, CANDIDATE_PATHS), seed=seed)


CANDIDATE_PATHS = 20_000


@st.cache_data(max_entries=8, ttl=3600, show_spinner=False)
def workbook_bytes(deal_jsons: tuple[tuple[str, str], ...], baseline: str, paths: int, seed: int) -> bytes:
    results = {name: simulate_cached(js, paths, seed) for name, js in deal_jsons}
    with tempfile.TemporaryDirectory() as tmp:
        path = dm.export(Path(tmp) / "comparison.xlsx", comparison=compare_results(results, baseline))
        return path.read_bytes()


# --------------------------------------------------------------------------- state


def _unique(name: str) -> str:
    label, k = name, 2
    while label in ss.structures:
        label = f"{name} ({k})"
        k += 1
    return label


def init_state(files: team.UserFiles | None) -> None:
    if "structures" in ss:
        return
    ss.team_files = files
    ss.stored = {}  # team mode: structure name -> its stored upload
    ss.team_message = None
    ss.structures = {}
    ss.edits = {}
    for path in REFERENCE_FILES:
        deal = deal_file(path)
        ss.structures[deal.name] = deal
        ss.edits[deal.name] = {}
    ss.seen_uploads = set()
    ss.upload_error = None
    ss.scenarios = {}
    names = list(ss.structures)
    ss.selected = names[3]  # the hybrid, unless a file is named on the command line
    if len(sys.argv) > 1:
        arg = Path(sys.argv[1]).resolve()
        match = [n for n, p in zip(names, REFERENCE_FILES, strict=True) if p == arg]
        if match:
            ss.selected = match[0]
        else:
            try:
                deal = deal_file(arg)
            except dm.DealError as exc:
                ss.upload_error = (str(sys.argv[1]), exc.problems)
            else:
                name = _unique(deal.name)
                ss.structures[name] = deal
                ss.edits[name] = {}
                ss.selected = name
    if files is not None:
        load_user_files(files)


def parse_upload(name: str, data: bytes) -> dm.Deal:
    """An uploaded deal file's deal; DealError names the file and what is wrong."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise dm.DealError(name, [f"the file is {len(data) / 1e6:.1f} MB; deal files are limited to 1 MB"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise dm.DealError(name, ["not a text file (expected UTF-8 YAML or JSON)"]) from None
    return dm.parse_deal_text(text, source=name, fmt="json" if name.lower().endswith(".json") else "yaml")


def load_user_files(files: team.UserFiles) -> None:
    """Team mode: the signed-in user's stored uploads and scenarios into a new session."""
    unreadable = []
    for stored in files.upload_names():
        try:
            deal = parse_upload(stored, files.read_upload(stored))
        except (dm.DealError, OSError) as exc:
            unreadable.append(f"{stored}: {'; '.join(getattr(exc, 'problems', [str(exc)]))}")
            continue
        name = _unique(deal.name)
        ss.structures[name] = deal
        ss.edits[name] = {}
        ss.stored[name] = stored
    try:
        text = files.read_scenarios()
        if text:
            ss.scenarios = parse_scenarios(parse_text(text, team.SCENARIOS, "yaml"), team.SCENARIOS)
    except (dm.DealError, OSError) as exc:
        unreadable.append(f"{team.SCENARIOS}: {'; '.join(getattr(exc, 'problems', [str(exc)]))}")
    if unreadable:
        ss.team_message = ("error", "Some of your saved files could not be read (they are kept on the server as "
                                    "they are):\n\n" + "\n".join(f"- `{u}`" for u in unreadable))


def store_upload(name: str, upload_name: str, data: bytes) -> None:
    """Team mode: keep an accepted upload in the user's files (a full quota says so and keeps the session's)."""
    files = ss.get("team_files")
    if files is None:
        return
    try:
        ss.stored[name] = files.save_upload(upload_name, data)
        ss.team_message = None
    except (team.QuotaError, OSError) as exc:
        ss.team_message = ("warning", f"**{upload_name}** is open in this session but {exc}")


def store_scenarios() -> tuple[str, str]:
    """Keep the session's scenarios in the user's files in team mode: (message level, what to add to it)."""
    files = ss.get("team_files")
    if files is None:
        return "success", " Download the scenarios file to keep it."
    try:
        files.save_scenarios(scenarios_text(ss.scenarios))
    except (team.QuotaError, OSError) as exc:
        return "warning", f" It is {exc}"
    return "success", " Kept on the server for your next visit."


def handle_upload(upload) -> None:
    if upload is None:
        # the file was removed, or the browser refused it (over the 1 MB limit): an earlier upload's error
        # no longer describes what is on screen (a deal named on the command line keeps its own)
        if ss.upload_error and ss.upload_error[0] in ss.get("uploaded_names", set()):
            ss.upload_error = None
        return
    if upload.file_id in ss.seen_uploads:
        return
    ss.seen_uploads.add(upload.file_id)
    ss.setdefault("uploaded_names", set()).add(upload.name)
    data = upload.getvalue()
    try:
        deal = parse_upload(upload.name, data)
    except dm.DealError as exc:
        ss.upload_error = (upload.name, exc.problems)
        return
    name = _unique(deal.name)
    ss.structures[name] = deal
    ss.edits[name] = {}
    ss.selected = name
    ss.upload_error = None
    store_upload(name, upload.name, data)


# --------------------------------------------------------------------------- deals from widgets


LEVERS = {"biomarker_selection": "Biomarker-selected trials", "ai_recruitment": "AI-driven recruitment",
          "qbd": "Quality by Design (QbD)"}
AS_WRITTEN = "as in each deal"
DECISION_LABELS = {AS_WRITTEN: "As in each deal", "none": "None: every candidate that passes goes on",
                   "sponsor": "Sponsor stops what is not worth it to it", "partner": "Partner decides",
                   "program": "Both together (the program's best)"}
TIMING_LABELS = {AS_WRITTEN: "As in each deal", "exact": "Exact (continuous time)",
                 "end_of_year": "End of year (Excel NPV)", "mid_year": "Mid-year", "start_of_year": "Start of year"}


def program_changes() -> ProgramChanges:
    """The sidebar's program changes: relative to each deal's own inputs (x for sales and
    probabilities, + percentage points for rates and correlation) and lever switches that default
    to each deal's own setting, so every structure is valued with its own program and parties,
    moved by the same amount."""
    levers = {lever: ss[f"{lever}_mode"] == "on" for lever in LEVERS
              if ss.get(f"{lever}_mode", AS_WRITTEN) != AS_WRITTEN}
    timing = ss.get("timing_mode", AS_WRITTEN)
    decisions = ss.get("decisions_mode", AS_WRITTEN)
    return ProgramChanges(peak_scale=ss.get("peak_scale", 1.0), prob_scale=ss.get("prob_scale", 1.0),
                          sponsor_rate_delta=ss.get("sponsor_rate_delta", 0.0),
                          partner_rate_delta=ss.get("partner_rate_delta", 0.0), rho_delta=ss.get("rho_delta", 0.0),
                          timing=None if timing == AS_WRITTEN else timing, levers=levers,
                          decisions=None if decisions == AS_WRITTEN else decisions)


def with_program(deal: dm.Deal) -> dm.Deal:
    """The deal under the sidebar's program changes (see :class:`dealmodel.scenario.ProgramChanges`)."""
    return program_changes().apply(deal)


def program_caption(deal: dm.Deal) -> str:
    """The selected structure's own program settings, as written in its file."""
    levers = ", ".join(label for key, label in LEVERS.items() if getattr(deal.levers, key).enabled) or "none"
    return (f"**{deal.name}** as written: sponsor rate {deal.parties.sponsor.discount_rate:.1%}, partner rate "
            f"{deal.parties.partner.discount_rate:.1%}, correlation ρ {deal.correlation.rho:.2f}, levers on: {levers}, "
            f"timing {deal.timing.replace('_', ' ')}.")


def value_all(paths: int, seed: int) -> tuple[dict, dict, dict]:
    """Every structure as edited and its result; a structure that fails is reported, not fatal."""
    deals, results, failed = {}, {}, {}
    for n in ss.structures:
        try:
            deals[n] = edited(n)
        except dm.DealError as exc:
            failed[n] = "\n".join(f"- `{p}`" for p in exc.problems)
        except (ValueError, ArithmeticError) as exc:  # a parameter path or an edit the model refuses
            failed[n] = f"- {exc}"
    jsons = {n: d.model_dump_json(by_alias=True) for n, d in deals.items()}
    try:  # together: structures on one program share its simulation
        results = dict(zip(jsons, result_store().get_many(list(jsons.values()), paths, seed, list(deals.values())),
                           strict=True))
    except (ValueError, ArithmeticError):  # one of them is refused: value each alone to say which
        for n, js in jsons.items():
            try:
                results[n] = simulate_cached(js, paths, seed)
            except (ValueError, ArithmeticError) as exc:
                failed[n] = f"- {exc}"
    for n in failed:
        deals.pop(n, None)
    return deals, results, failed


def valuing_message() -> str:
    """What the page says while it values (past half a second): before this server's first valuation,
    that the compiled kernel is loaded -- or, the first time after an install, compiled."""
    from dealmodel import kernel

    if kernel.AVAILABLE and not kernel.value_chunk.signatures:
        return ("Valuing the structures… The first valuation on this server loads the compiled valuation kernel; "
                "the first after an install compiles it (about a minute, once).")
    return "Valuing the structures…"


def remove_structure(name: str) -> None:
    """Drop an uploaded structure (the reference structures stay) and show the reference hybrid."""
    ss.structures.pop(name, None)
    ss.edits.pop(name, None)
    stored = ss.get("stored", {}).pop(name, None)
    if stored is not None and ss.get("team_files") is not None:
        ss.team_files.delete_upload(stored)
    for key in [k for k in ss if isinstance(k, str) and k.startswith(f"term::{name}::")]:
        del ss[key]
    ss.selected = REFERENCE_NAMES[3]  # the hybrid; a button callback runs before the widgets are drawn again


def edited(name: str) -> dm.Deal:
    deal = with_program(ss.structures[name])
    return set_values(deal, ss.edits[name]) if ss.edits[name] else deal


# --------------------------------------------------------------------------- widgets


def sidebar() -> tuple[int, int]:
    sb = st.sidebar
    sb.header("Deal")
    handle_upload(sb.file_uploader("Add a deal file (YAML or JSON, up to 1 MB)", type=["yaml", "yml", "json"],
                                   key="upload"))
    if ss.get("team_message"):  # team mode: an upload not kept on the server, or saved files unreadable
        level, text = ss.team_message
        (sb.warning if level == "warning" else sb.error)(text)
    sb.selectbox("Structure to edit", list(ss.structures), key="selected")
    if ss.selected not in REFERENCE_NAMES:
        sb.button("Remove this structure", key="remove_selected", on_click=remove_structure, args=(ss.selected,))
    sb.header("Simulation")
    paths = int(sb.number_input("Simulated paths", min_value=1_000, max_value=MAX_PATHS, value=DEFAULT_PATHS,
                                step=5_000, key="paths", help=f"Up to {MAX_PATHS:,} to keep the app responsive; "
                                "use the CLI or Python for more."))
    seed = int(sb.number_input("Random seed", min_value=0, value=0, step=1, key="seed"))
    sb.header("Program changes")
    sb.caption("Changes to each structure's own inputs (× or + percentage points), the same for every "
               "structure so they stay comparable.")
    sb.caption(program_caption(ss.structures[ss.selected]))
    sb.slider("Peak sales ×", 0.25, 3.0, 1.0, 0.05, key="peak_scale")
    sb.slider("Phase success probabilities ×", 0.5, 1.5, 1.0, 0.05, key="prob_scale",
              help="Every phase of every candidate; capped at 100%.")
    sb.slider("Sponsor discount rate, + points", -10.0, 15.0, 0.0, 0.5, key="sponsor_rate_delta", format="%+.1f pp",
              help="Added to each structure's own sponsor rate (15% + 2 pp = 17%).")
    sb.slider("Partner discount rate, + points", -10.0, 15.0, 0.0, 0.5, key="partner_rate_delta", format="%+.1f pp",
              help="Added to each structure's own partner rate.")
    sb.slider("Correlation of outcomes (ρ), +", -0.5, 0.5, 0.0, 0.05, key="rho_delta", format="%+.2f",
              help="Added to each structure's own ρ (kept within 0 to 0.95).")
    sb.selectbox("Discounting", list(TIMING_LABELS), format_func=TIMING_LABELS.get, key="timing_mode",
                 help="Exact continuous-time discounting, or a spreadsheet's period convention.")
    sb.selectbox("Go/no-go at each phase gate", list(DECISION_LABELS), format_func=DECISION_LABELS.get,
                 key="decisions_mode", help="Whether a candidate can be stopped at the start of a phase when its "
                 "sales forecast makes going on worth less, to the deciding party under each structure's terms, than "
                 "stopping. See the Decisions tab.")
    sb.subheader("Scenario levers (article figures)")
    for lever, label in LEVERS.items():
        sb.radio(label, [AS_WRITTEN, "on", "off"], horizontal=True, key=f"{lever}_mode")
    scenarios_panel(sb, paths, seed)
    return paths, seed


# --------------------------------------------------------------------------- scenarios

# the sidebar's widgets and their ranges: a scenario restores only into values they can show
_PROGRAM_WIDGETS = {"peak_scale": (0.25, 3.0), "prob_scale": (0.5, 1.5), "sponsor_rate_delta": (-10.0, 15.0),
                    "partner_rate_delta": (-10.0, 15.0), "rho_delta": (-0.5, 0.5)}


def current_scenario(name: str, paths: int, seed: int) -> Scenario:
    return Scenario(name=name, paths=paths, seed=seed, selected=ss.selected, program=program_changes(),
                    structures={n: Structure(deal=d, edits=dict(ss.edits[n])) for n, d in ss.structures.items()})


def _save_scenario(paths: int, seed: int) -> None:
    name = (ss.get("scenario_name") or "").strip() or f"Scenario {len(ss.scenarios) + 1}"
    ss.scenarios[name] = current_scenario(name, paths, seed)
    level, kept = store_scenarios()
    ss.scenario_message = (level, f"Saved **{name}**: {len(ss.structures)} structures, {paths:,} paths, seed {seed}."
                                  f"{kept}")


def _restore_scenario(name: str) -> None:
    """Button callback: put every widget back as the scenario has it (before they are drawn)."""
    sc = ss.scenarios[name]
    program = sc.program.model_dump()
    outside = [f"{k} = {program[k]:g} (the slider goes {lo:g} to {hi:g})"
               for k, (lo, hi) in _PROGRAM_WIDGETS.items() if not lo <= program[k] <= hi]
    outside += [f"paths = {sc.paths:,} (the app takes up to {MAX_PATHS:,})"] if not 1_000 <= sc.paths <= MAX_PATHS \
        else []
    for n, st_ in sc.structures.items():
        for p in term_parameters(st_.deal):
            if p.path in st_.edits and not p.low <= st_.edits[p.path] <= p.high:
                outside.append(f"{n}: {p.label} = {st_.edits[p.path]:g} (the slider goes {p.low:g} to {p.high:g})")
    if outside:
        ss.scenario_message = ("error", f"**{name}** has values the app's sliders cannot show, so it was not "
                                        "restored (value it with `dealmodel scenario` or `dm.load_scenario`): "
                                        + "; ".join(outside))
        return
    for key in [k for k in ss if isinstance(k, str) and k.startswith("term::")]:
        del ss[key]
    ss.structures = {n: st_.deal for n, st_ in sc.structures.items()}
    ss.edits = {n: dict(st_.edits) for n, st_ in sc.structures.items()}
    ss.selected = sc.selected if sc.selected in ss.structures else next(iter(ss.structures))
    ss.paths, ss.seed = sc.paths, sc.seed
    for k in _PROGRAM_WIDGETS:
        ss[k] = program[k]
    ss.timing_mode = sc.program.timing or AS_WRITTEN
    ss.decisions_mode = sc.program.decisions or AS_WRITTEN
    for lever in LEVERS:
        ss[f"{lever}_mode"] = AS_WRITTEN if lever not in sc.program.levers else (
            "on" if sc.program.levers[lever] else "off")
    ss.scenario_message = ("success", f"Restored **{name}**.")


def _delete_scenario(name: str) -> None:
    ss.scenarios.pop(name, None)
    ss.pop("scenario_pick", None)  # the list changed: pick its first entry again
    level, kept = store_scenarios()
    ss.scenario_message = (level, f"Deleted **{name}**." + ("" if level == "success" else kept))


def _load_scenarios_file(upload) -> None:
    if upload is None or upload.file_id in ss.seen_uploads:
        return
    ss.seen_uploads.add(upload.file_id)
    data = upload.getvalue()
    try:
        if len(data) > 4 * MAX_UPLOAD_BYTES:
            raise dm.DealError(upload.name, [f"the file is {len(data) / 1e6:.1f} MB; scenarios files are limited "
                                             f"to {4 * MAX_UPLOAD_BYTES / 1e6:.0f} MB"])
        loaded = parse_scenarios(parse_text(data.decode("utf-8-sig"), upload.name, "yaml"), upload.name)
    except UnicodeDecodeError:
        ss.scenario_message = ("error", f"Could not read **{upload.name}**: not a text file (expected YAML).")
        return
    except dm.DealError as exc:
        ss.scenario_message = ("error", f"Could not read **{upload.name}**:\n\n"
                                        + "\n".join(f"- `{p}`" for p in exc.problems))
        return
    ss.scenarios.update(loaded)
    level, kept = store_scenarios() if ss.get("team_files") is not None else ("success", "")
    ss.scenario_message = (level, f"Loaded {len(loaded)} scenario(s) from **{upload.name}**: " + ", ".join(loaded)
                                  + f". Pick one and restore it.{kept}")


def scenarios_panel(sb, paths: int, seed: int) -> None:
    sb.header("Scenarios")
    sb.caption("Save every structure's terms, the program changes, paths and seed under a name; restore it, "
               "compare saved scenarios (Compare & solve), or value the file with `dealmodel scenario`.")
    sb.text_input("Scenario name", key="scenario_name", placeholder="e.g. Board draft, 12 May")
    sb.button("Save this scenario", key="save_scenario", on_click=_save_scenario, args=(paths, seed))
    _load_scenarios_file(sb.file_uploader("Load a scenarios file (YAML)", type=["yaml", "yml"],
                                          key="scenario_upload"))
    if ss.scenarios:
        pick = sb.selectbox("Saved scenarios", list(ss.scenarios), key="scenario_pick")
        restore, delete = sb.columns(2)
        restore.button("Restore", key="restore_scenario", on_click=_restore_scenario, args=(pick,),
                       help="Put every structure, slider and setting back as this scenario has them.")
        delete.button("Delete", key="delete_scenario", on_click=_delete_scenario, args=(pick,),
                      help="Remove this scenario from the list (and from the server in team mode).")
        sb.download_button("Download the scenarios file", scenarios_text(ss.scenarios), file_name="scenarios.yaml",
                           mime="application/x-yaml", key="download_scenarios", on_click="ignore")
    message = ss.get("scenario_message")
    if message:
        {"success": sb.success, "warning": sb.warning}.get(message[0], sb.error)(message[1])


_NOT_MONEY = {"notice_years": "years"}


def _slider_label(field: str, p) -> str:
    """A slider's label: the field in words, with its unit ($M for money; % shows in the value)."""
    last = p.path.rsplit(".", 1)[-1]
    unit = "" if p.percent else f", {_NOT_MONEY.get(last, '$M')}"
    return f"{field}{unit}"


def term_sliders(name: str) -> None:
    """The structure's terms, grouped by term, in a compact scrolling panel."""
    base = ss.structures[name]
    params = term_parameters(base)
    st.markdown(f"**Terms of {name}**")
    if not params:
        st.info("This structure has no adjustable terms.")
        return
    groups: dict[str, list] = {}
    for p in params:
        term = p.path.split("]", 1)[0] + "]"
        groups.setdefault(term, []).append(p)
    def slider(p, label: str) -> None:
        current = float(ss.edits[name].get(p.path, p.value))
        key = f"term::{name}::{p.path}"
        if p.percent:
            value = st.slider(label, 100 * p.low, 100 * p.high, 100 * current, 100 * p.step, format="%.1f%%",
                              key=key) / 100.0
        else:
            value = st.slider(label, p.low, p.high, current, p.step, format="%.0f" if p.step >= 1 else "%.2f",
                              key=key)
        if abs(value - p.value) > 1e-12:
            ss.edits[name][p.path] = value
        else:
            ss.edits[name].pop(p.path, None)

    def grid(items: list[tuple]) -> None:
        cols = st.columns(2)
        for i, (p, label) in enumerate(items):
            with cols[i % 2]:
                slider(p, label)

    with st.container(height=400, border=True):
        singles: list[tuple] = []  # one-number terms share a two-column grid under their own names
        for members in groups.values():
            if len(members) == 1:
                singles.append((members[0], _slider_label(members[0].label, members[0])))
                continue
            if singles:
                grid(singles)
                singles = []
            st.markdown(f"<small><b>{members[0].label.rsplit(': ', 1)[0]}</b></small>", unsafe_allow_html=True)
            grid([(p, _slider_label(p.label.rsplit(": ", 1)[-1], p)) for p in members])
        if singles:
            grid(singles)
    if ss.edits[name] and st.button("Reset these terms", key=f"reset::{name}"):
        ss.edits[name] = {}
        for p in params:
            ss.pop(f"term::{name}::{p.path}", None)
        st.rerun()


# --------------------------------------------------------------------------- the page


def money(x: float) -> str:
    return f"{x:,.1f}"


TEAM = team.team_mode()


def sign_in_page() -> None:
    st.markdown("<span style='font-size:1.35rem;font-weight:700'>dealmodel</span>&nbsp;&nbsp;"
                "<span style='color:#595959'>your team's deal structures</span>", unsafe_allow_html=True)
    st.info("Sign in to open your deals. Your uploads and saved scenarios are yours alone; the reference "
            "structures are there for everyone.")
    st.button("Sign in", key="sign_in", type="primary", on_click=st.login)


def team_files() -> team.UserFiles | None:
    """Team mode: the signed-in user's files, after a sign-in page when needed (None outside team mode)."""
    if not TEAM:
        return None
    try:
        quota = team.quota_bytes()
    except ValueError as exc:
        st.error(f"The server's team settings are wrong: {exc}")
        st.stop()
    if os.environ.get("DEALMODEL_TEAM_SIGNIN") != "1":
        address = st.get_option("server.address") or "every interface"
        if address not in team.LOOPBACK:
            st.error(f"Team mode without sign-in serves this machine only, and this server listens on {address}. "
                     "Start it with `python3 tasks.py team` after configuring [auth] (docs/serving.md).")
            st.stop()
        return team.UserFiles(team.data_dir(), "local", quota, "you (this machine only, no sign-in)")
    if not st.user.is_logged_in:
        sign_in_page()
        st.stop()
    user = st.user.to_dict()
    try:
        key = team.user_key(user)
    except ValueError as exc:
        st.error(f"Signed in, but {exc}; ask the server's administrator.")
        st.stop()
    return team.UserFiles(team.data_dir(), key, quota, str(user.get("email") or user.get("name") or key))


def team_box(files: team.UserFiles, sb) -> None:
    """Who is signed in and how much of their quota is used (drawn after this run's upload is stored)."""
    sb.caption(f"Signed in as **{files.label}** · your files {team.size_text(files.used())} of "
               f"{team.size_text(files.quota)}")
    if os.environ.get("DEALMODEL_TEAM_SIGNIN") == "1":
        sb.button("Sign out", key="sign_out", on_click=st.logout)


def main() -> None:
    st.set_page_config(page_title="dealmodel — deal structures", page_icon="📈", layout="wide")
    files = team_files()
    if files is not None and ss.get("team_files") is not None and ss.team_files.key != files.key:
        for key in list(ss):  # another user signed in on this session: nothing of the last one stays
            del ss[key]
    init_state(files)
    slot = st.sidebar.container()  # the signed-in user, at the top of the sidebar
    paths, seed = sidebar()
    if files is not None:
        team_box(files, slot)
    # metric labels wrap instead of being cut at 1280 px
    st.markdown("<style>[data-testid='stMetricLabel'] p {white-space: normal; overflow: visible;}"
                " .block-container {padding-top: 2.5rem;}</style>", unsafe_allow_html=True)
    st.markdown("<span style='font-size:1.35rem;font-weight:700'>dealmodel</span>&nbsp;&nbsp;"
                "<span style='color:#595959'>what each sponsor–CDMO deal structure is worth to each side, and "
                "how risky it is</span>", unsafe_allow_html=True)
    if ss.upload_error:
        source, problems = ss.upload_error
        st.error(f"Could not use **{source}** (the app keeps working with the last good deals):\n\n"
                 + "\n".join(f"- `{p}`" for p in problems))
    name = ss.selected
    header = st.container()
    left, right = st.columns([5, 6], gap="medium")
    with left:
        term_sliders(name)

    started = time.perf_counter()
    with st.spinner(valuing_message()):  # shown only past half a second
        deals, results, failed = value_all(paths, seed)
    for bad, message in failed.items():
        st.error(f"**{bad}** cannot be valued as it stands (the other structures are shown):\n\n{message}")
        if bad not in REFERENCE_NAMES:
            st.button(f"Remove {bad}", key=f"remove_failed::{bad}", on_click=remove_structure, args=(bad,))
    if name not in results:
        if not results:
            return
        name = next(iter(results))
        st.info(f"Showing **{name}** instead.")
    jsons = {n: d.model_dump_json(by_alias=True) for n, d in deals.items()}
    baseline = next(iter(results))
    comparison = compare_results(results, baseline=baseline)
    result = results[name]
    row = comparison.table.loc[name]
    currency = result.deal.currency

    header.subheader(name)
    header.caption(f"Money in {currency} millions · {paths:,} paths, seed {seed} · differences against "
                   f"**{baseline}** · computed in {time.perf_counter() - started:.2f} s")
    m = header.columns(6)
    m[0].metric("Biobucks, $M", money(result.biobucks),
                help="Upfront + every milestone to the partner, sales milestones as if reached.")
    m[1].metric("Contract value, $M", money(result.total_contract_value),
                help="Total contract value: biobucks + service fees at list price + success premiums + reserved "
                "capacity: how CDMO deals are announced.")
    # against a baseline of another program (an uploaded deal, a changed program) the difference is not the
    # terms' alone: say so where the number is
    vs = "vs baseline" if row["paired"] else "vs baseline, another program"
    other = ("" if row["paired"] else f" The difference is against {baseline}, a structure on another program "
             "(other candidates, costs or settings): it is not the effect of the terms alone.")
    m[2].metric("Partner eNPV, $M", money(row["partner_expected_npv"]),
                delta=None if name == baseline else f"{row['partner_diff']:+,.1f} {vs}",
                help="Mean over paths of the partner's NPV: payments received less its own costs." + other)
    m[3].metric("Sponsor eNPV, $M", money(row["sponsor_expected_npv"]),
                delta=None if name == baseline else f"{row['sponsor_diff']:+,.1f} {vs}",
                help="Mean over paths of the sponsor's NPV: its sales less its costs and its payments to the partner."
                + other)
    m[4].metric("Partner P(loss)", f"{row['partner_prob_loss']:.1%}",
                help="Share of simulated futures in which the partner's NPV is below zero.")
    m[5].metric("Partner risk share", f"{row['partner_risk_share']:.2f}",
                help="Slope of the partner's NPV on the program's NPV across paths: 0 = no program risk.")
    # legends show short names; each structure keeps its colour (its place in the list of structures)
    short = views.short_names(list(ss.structures))
    domain = [short[n] for n in ss.structures]

    def shortened(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(variant=frame["variant"].map(short))

    order = [short[n] for n in results]
    right.vega_lite_chart(spec=charts.overview_chart(shortened(views.overview_frame(comparison)), order, short[name]),
                       width="stretch")
    tolerance = {p: getattr(deals[name].parties, p).risk_tolerance for p in ("sponsor", "partner")}
    if any(v is not None for v in tolerance.values()):
        st.caption("Certainty equivalents — what each party would take for sure instead, at its risk tolerance R: "
                   + " · ".join(f"{p} {money(row[f'{p}_certainty_equivalent'])}"
                                + (f" (R {money(tolerance[p])})" if tolerance[p] else " (risk-neutral)")
                                for p in ("sponsor", "partner")) + f" ({currency} millions)",
                   help="−R ln E[exp(−NPV/R)] over the simulated futures: the expected NPV less a price for its "
                        "spread; see docs/methodology.md.")

    st.sidebar.download_button("Download the edited deal (YAML)", dm.dump_deal(deals[name]).encode(),
                               file_name=f"{file_stem(name)}.yaml", mime="application/x-yaml", key="dl_deal",
                               on_click="ignore")  # a download needs no rerun (and a rerun can cancel one)

    tabs = st.tabs(["Value bridge", "Distributions", "Risk vs return", "Cash flow", "Sensitivity",
                    "Compare & solve", "Negotiate", "Decisions"], key="view",
                   on_change="rerun")  # lazy: only the open tab's view is built and sent (docs/serving.md)
    with tabs[0]:
        if tabs[0].open:
            st.caption(f"Biobucks {money(result.biobucks)} · total contract value "
                       f"{money(result.total_contract_value)} · expected PV of every payment to the partner "
                       f"{money(result.expected_pv_to_partner)} ({currency} millions; definitions in "
                       "docs/methodology.md)")
            st.vega_lite_chart(spec=charts.bridge_chart(views.bridge_frame(result), currency), width="stretch")
            payments = pd.Series({k.replace("_", " "): v for k, v in result.payments_by_kind().items()},
                                 name="expected PV to partner, $M").rename_axis("term kind")
            st.dataframe(payments.to_frame().style.format("{:,.1f}"), width="content")
            st.markdown("**Candidates**: how far each gets on the simulated futures")
            st.dataframe(views.candidate_table(result), width="content")
            if st.toggle("Show what each candidate is worth to each side", key="by_candidate",
                         help="Each candidate's own costs and sales and every candidate-level term's payments for it, "
                              "valued as if the term covered it alone; what is left is shared. Takes about a second."):
                values = candidate_values_cached(jsons[name], paths, seed)
                st.dataframe(views.contribution_table(values), width="content")
                st.caption(f"Expected NPV ± its Monte Carlo standard error, {currency} millions, over the first "
                           f"{min(paths, CANDIDATE_PATHS):,} simulated futures. Shared: the upfront, option fees and "
                           "other program-level terms, and what candidates change in each other's terms (tiers or caps "
                           "counted over several products, fee credits); see docs/methodology.md.")
    with tabs[1]:
        if tabs[1].open:
            party = st.radio("Party", ["partner", "sponsor"], horizontal=True, key="dist_party")
            left, right = st.columns(2)
            left.vega_lite_chart(spec=charts.distribution_chart(shortened(views.distribution_frame(comparison, party)),
                                                        shortened(views.markers_frame(comparison, party)), party,
                                                        domain), width="stretch")
            exceedance = shortened(views.exceedance_frame(comparison, party))
            right.vega_lite_chart(spec=charts.exceedance_chart(exceedance, party, domain), width="stretch")
            values = {short[n]: r.npv[party] for n, r in results.items()}
            st.markdown(f"**{party.capitalize()} NPV by percentile**, $M")
            pct = views.percentile_table(values)
            st.dataframe(pct.style.format("{:,.1f}").format("{:,.2f}", subset=["SE of mean"]), width="stretch")
            st.caption("P5: the NPV is below this on 5% of the simulated futures (linear interpolation between paths); "
                       "SE of mean: the Monte Carlo standard error of the expected NPV, sd / √paths.")
            x = st.number_input(f"Probability the {party}'s NPV is above x: x, $M", value=0.0, step=10.0,
                                key=f"exceed_x::{party}")
            above = views.exceedance_at(values, float(x))
            st.dataframe(above.to_frame().style.format("{:.1%}"), width="content")
    with tabs[2]:
        if tabs[2].open:
            downside = st.radio("Downside measure", ["p5", "expected_shortfall_5"], horizontal=True, key="downside",
                                format_func=lambda x: "P5" if x == "p5" else "Expected shortfall (worst 5%)")
            st.vega_lite_chart(spec=charts.risk_return_chart(shortened(views.risk_return_frame(comparison)), downside,
                                                     domain), width="stretch")
    with tabs[3]:
        if tabs[3].open:
            party = st.radio("Party", ["partner", "sponsor", "program"], horizontal=True, key="fan_party")
            st.vega_lite_chart(spec=charts.fan_chart(views.fan_frame(result, party), party), width="stretch")
            if result.per_year_paths < result.paths:
                st.caption(f"Mean and P10–P90 per year over the first {result.per_year_paths:,} of the "
                           f"{result.paths:,} simulated futures (a fixed subsample; the NPVs above use them all).")
    with tabs[4]:
        if tabs[4].open:
            sensitivity(jsons[name], seed)
    with tabs[5]:
        if tabs[5].open:
            compare_and_solve(comparison, deals, jsons, name, baseline, paths, seed)
    with tabs[6]:
        if tabs[6].open:
            negotiation(deals, jsons, name, baseline, paths, seed)
    with tabs[7]:
        if tabs[7].open:
            decisions_view(jsons[name], paths, seed, currency)


DECISION_PATHS = 20_000


@st.cache_data(max_entries=8, ttl=3600, show_spinner="Valuing the decisions three ways…")
def decision_report_cached(deal_json: str, paths: int, seed: int):
    return dm.decision_report(dm.Deal.model_validate_json(deal_json), paths=paths, seed=seed)


def decisions_view(deal_json: str, paths: int, seed: int, currency: str) -> None:
    """Go/no-go at the gates for the selected structure: what stopping is worth, and what the terms change."""
    deal = dm.Deal.model_validate_json(deal_json)
    if deal.decision_rule == "none":
        st.info("This structure runs every candidate that passes a phase. The analysis lets the sponsor stop a "
                "candidate at a gate where its forecast makes going on worth less to it than stopping; to value "
                "every structure that way, set **Go/no-go at each phase gate** in the sidebar.")
    if not st.toggle("Analyse the gate decisions", key="decisions_on",
                     help="Values this structure with no decisions, with its decisions and with the decisions both "
                          "parties together would make, on the same futures. Takes a few seconds."):
        return
    n = min(paths, DECISION_PATHS)
    report = decision_report_cached(deal_json, n, seed)
    who = {"sponsor": "the sponsor", "partner": "the partner", "program": "both parties together"}[report.owner]
    st.caption(f"Decided by {who} ({report.rule} rule), {n:,} futures, {currency} millions, ± one paired standard "
               "error. The forecast of peak sales sharpens phase by phase (docs/methodology.md).")
    a, b, c, d = st.columns(4)
    a.metric("Value of flexibility", f"{report.flexibility:+,.1f} ± {report.flexibility_se:,.1f}",
             help="Program eNPV with gate decisions less without: what being able to stop is worth.")
    b.metric("Cost of the distortion", f"{report.distortion:,.1f} ± {report.distortion_se:,.1f}",
             help="Program eNPV if candidates were stopped where both parties together would stop them, less "
                  "under this deal: what the terms' pull on the decisions costs the program.")
    v = report.values
    for col, party in ((c, "sponsor"), (d, "partner")):
        change = v.loc["decided under the deal", party] - v.loc["decided as the program would", party]
        col.metric(f"{party.capitalize()} eNPV change", f"{change:+,.1f}",
                   help=f"The {party}'s eNPV with the candidates stopped as decided under this deal, less with them "
                        "stopped where both parties together would stop them (the same terms).")
    left, right = st.columns(2)
    frame = views.stops_frame(report)
    if frame.empty:
        left.markdown("No candidate is stopped at any gate: every continuation is worth it.")
    else:
        left.vega_lite_chart(spec=charts.stops_chart(frame), width="stretch")
    right.markdown("**Expected NPV**, $M")
    right.dataframe(v.rename(index={"decided under the deal": "decided under this deal",
                                    "decided as the program would": "as both together would"})
                    .style.format("{:,.1f}"), width="stretch")
    moved = report.moved()
    if report.owner != "program" and not moved.empty:
        right.markdown("**The deal moves these decisions** (share of futures stopped)")
        table = moved[["under the deal", "as the program would"]].rename(
            columns={"as the program would": "both together"})
        table.index = [f"{cand} before {gate}" for cand, gate in moved.index]
        right.dataframe(table.style.format("{:.1%}"), width="stretch")


NEGOTIATE_PATHS = 20_000


def _apply(name: str, settings: list[tuple[str, float, bool]]) -> None:
    """Button callback: set terms to negotiated values (before the sliders are drawn again)."""
    for path, value, percent in settings:
        ss.edits[name][path] = value
        ss[f"term::{name}::{path}"] = 100 * value if percent else value


def negotiation(deals, jsons, name, baseline, paths, seed) -> None:
    if name == baseline:
        st.info(f"Pick a structure other than the baseline (**{baseline}**): the baseline is each party's "
                f"walk-away.")
        return
    params = term_parameters(ss.structures[name])
    if not params:
        st.info("This structure has no adjustable terms.")
        return
    left, mid, right = st.columns([2, 2, 1.4])
    p = left.selectbox("Term to negotiate", params, format_func=lambda q: q.label, key=f"neg_param::{name}")
    q = mid.selectbox("Second term (optional)", [None, *[o for o in params if o.path != p.path]],
                      format_func=lambda o: "none: one term" if o is None else o.label, key=f"neg_second::{name}",
                      help="With two terms: a 25 × 25 grid over both sliders' ranges, each party's walk-away "
                           "curve, and the region between them where both sign.")
    measure = right.radio("Each party's value", ["enpv", "ce"], horizontal=True, key="neg_measure",
                          format_func=lambda m: "expected NPV" if m == "enpv" else "certainty equivalent",
                          help="Certainty equivalent: −R ln E[exp(−NPV/R)] at each party's risk tolerance R "
                               "(risk-neutral parties: the expected NPV).")
    terms = [p] if q is None else [p, q]
    n = min(paths, NEGOTIATE_PATHS)

    def span(o) -> str:
        return f"{o.low:.1%} to {o.high:.1%}" if o.percent else f"{o.low:,.0f} to {o.high:,.0f}"

    st.caption(f"Walk-away: each party's value under **{baseline}**, on the same {n:,} simulated futures. The zone "
               f"is where both gain; searched over the sliders' ranges ({'; '.join(span(o) for o in terms)}), the "
               f"other terms as they are now.")
    # the structure as edited, but for the negotiated terms themselves: applying a split keeps the answer on screen
    around = set_values(deals[name], {o.path: o.value for o in terms}).model_dump_json(by_alias=True)
    paths_ = tuple(o.path for o in terms)
    ranges = tuple((o.low, o.high) for o in terms)
    key = ("negotiate", around, paths_, jsons[baseline], measure, n, seed)
    if st.button("Find the zone of agreement", key="run_negotiate"):
        ss.negotiate_key = key
    if ss.get("negotiate_key") != key:
        return
    out = negotiate_cached(around, paths_, ranges, jsons[baseline], measure, n, seed)
    if q is None:
        _zone_one(out, p, baseline)
    else:
        _zone_two(out, p, q, baseline)
    if not out["splits"]:
        return

    def shown_value(o, v: float) -> float:
        return v * (100 if o.percent else 1)

    # columns named by the term's field where that is enough ("markup"), so the table fits at 1280 px
    heads = [o.label.rsplit(": ", 1)[-1] if len(o.label) > 28 else o.label for o in terms]
    if len(set(heads)) < len(heads):
        heads = [o.label for o in terms]
    heads = [h + ("" if o.percent else ", $M") for h, o in zip(heads, terms, strict=True)]
    rows = []
    for rule, sp in out["splits"].items():
        at = {h: shown_value(o, sp["x"][i]) for i, (h, o) in enumerate(zip(heads, terms, strict=True))}
        rows.append({"split": rule.replace("_", " "), **at,
                     "sponsor gain, $M": sp["sponsor_gain"], "partner gain, $M": sp["partner_gain"],
                     "joint gain, $M": sp["joint_gain"], "± joint (2 se)": 2 * sp["joint_gain_se"]})
    shown = pd.DataFrame(rows).set_index("split")
    st.dataframe(shown.style.format({c: "{:,.1f}" for c in shown.columns} |
                                    {h: "{:.2f}%" for h, o in zip(heads, terms, strict=True) if o.percent}),
                 width="stretch", column_config={h: st.column_config.NumberColumn(help=o.label)
                                                 for h, o in zip(heads, terms, strict=True)})
    st.caption("Nash: the largest product of the two gains; equal gain: both gain the same; equal share: each "
               "gets the same share of the most it could gain in the zone. ± is two standard errors, paired."
               + (" With two terms each split is the best point of the grid." if q is not None else ""))
    cols = st.columns(len(out["splits"]))
    for col, (rule, sp) in zip(cols, out["splits"].items(), strict=True):
        col.button(f"Apply the {rule.replace('_', ' ')} point", key=f"apply::{rule}", on_click=_apply,
                   args=(name, [(o.path, float(sp["x"][i]), o.percent) for i, o in enumerate(terms)]))


def _zone_one(out: dict, p, baseline: str) -> None:
    table = out["table"]
    gains = pd.concat([pd.DataFrame({"x": table[p.path], "party": party, "gain": table[f"{party}_gain"]})
                       for party in ("sponsor", "partner")], ignore_index=True)
    zone = pd.DataFrame(out["zone"], columns=["x_from", "x_to"]) if out["zone"] else \
        pd.DataFrame(columns=["x_from", "x_to"])
    splits = pd.DataFrame([{"x": s["x"][0], "rule": s["rule"].replace("_", " "), "joint": s["joint_gain"]}
                           for s in out["splits"].values()])
    if not out["zone"]:
        st.warning(f"No terms in this range make both sides better off than under {baseline}: at best the "
                   f"walk-aways are missed by {out['shortfall']:,.1f} $M in all.")
    else:
        fmt = (lambda v: f"{v:.2%}") if p.percent else (lambda v: f"{v:,.1f}")
        st.success("Both parties gain for " + ", ".join(f"{fmt(lo)} to {fmt(hi)}" for lo, hi in out["zone"]) + ".")
    st.vega_lite_chart(spec=charts.negotiation_chart(gains, zone, splits if len(splits) else
                                             pd.DataFrame(columns=["x", "rule", "joint"]), p.label, p.percent),
                    width="stretch")


def _zone_two(out: dict, p, q, baseline: str) -> None:
    if not out["zone"]:
        st.warning(f"No pair of values in these ranges makes both sides better off than under {baseline}: at best "
                   f"the walk-aways are missed by {out['shortfall']:,.1f} $M in all.")
    else:
        st.success(f"Both parties gain on {out['zone']:.0%} of the grid: between the two walk-away curves.")
    splits = pd.DataFrame([{"x": s["x"][0], "y": s["x"][1], "rule": s["rule"].replace("_", " "),
                            "joint": s["joint_gain"]} for s in out["splits"].values()],
                          columns=["x", "y", "rule", "joint"])
    st.vega_lite_chart(spec=charts.region_chart(out["table"], out["curves"], splits, (p.path, p.label, p.percent),
                                        (q.path, q.label, q.percent)), width="stretch")


def sensitivity(deal_json: str, seed: int) -> None:
    party = st.radio("Party", ["partner", "sponsor"], horizontal=True, key="tornado_party")
    st.caption(f"Each input at its low and high (a distribution's P10/P90, a fixed number ±20%), on "
               f"{SENSITIVITY_PATHS:,} common paths: fewer than the headline's, so its centre can differ from the "
               f"headline figure by Monte Carlo noise; the swings are paired and far more precise.")
    key = ("tornado", deal_json, party, seed)
    runs = ss.setdefault("tornado_runs", {})
    last = runs.get(party)
    if st.button("Run the sensitivity" if last is None or last[0] == key else "Run it again on the inputs as they "
                 "are now", key="run_tornado"):
        runs[party] = last = (key, tornado_cached(deal_json, party, SENSITIVITY_PATHS, seed))
    if last is None:
        return
    (_, run_json, _, run_seed), table = last
    if last[0] != key:  # kept, and labelled with what has changed since
        now = dm.Deal.model_validate_json(deal_json)
        labels = {p.path: p.label for p in term_parameters(now)}
        changed = [next((c.replace(path, label, 1) for path, label in labels.items() if c.startswith(path + ":")),
                        c) for c in changed_inputs(dm.Deal.model_validate_json(run_json), now)]
        if run_seed != seed:
            changed.append(f"seed {run_seed} → {seed}")
        st.warning("This sensitivity was run before the latest changes (" + ("; ".join(changed[:4]) or "the deal")
                   + ("; …" if len(changed) > 4 else "") + "). Its figures are for the inputs as they were then.")
    st.vega_lite_chart(spec=charts.tornado_chart(table, party), width="stretch")
    shown = table[["label", "low", "high", "value_low", "value_high", "swing"]].rename(columns={
        "label": "input", "low": "low value(s)", "high": "high value(s)", "value_low": f"{party} eNPV at low, $M",
        "value_high": f"{party} eNPV at high, $M", "swing": "swing, $M"})
    st.dataframe(shown.style.format({c: "{:,.1f}" for c in shown.columns[3:]}), hide_index=True, width="stretch")


def scenario_table(scenario: Scenario) -> pd.DataFrame:
    """One row per structure of a saved scenario: both sides' expected NPV."""
    deals = scenario.deals()
    jsons = [d.model_dump_json(by_alias=True) for d in deals.values()]
    results = dict(zip(deals, result_store().get_many(jsons, scenario.paths, scenario.seed), strict=True))
    t = compare_results(results).table
    return pd.DataFrame({"scenario": scenario.name, "structure": list(t.index),
                         "sponsor eNPV": t["sponsor_expected_npv"].to_numpy(),
                         "partner eNPV": t["partner_expected_npv"].to_numpy()})


def saved_scenarios(paths: int, seed: int) -> None:
    if not ss.scenarios:
        return
    st.markdown("**Saved scenarios side by side**, $M")
    now = current_scenario("(now, unsaved)", paths, seed)
    frames = []
    for sc in [*ss.scenarios.values(), now]:
        try:
            frames.append(scenario_table(sc))
        except (ValueError, ArithmeticError) as exc:
            st.error(f"Scenario **{sc.name}** cannot be valued: {exc}")
    table = pd.concat(frames, ignore_index=True)
    short = views.short_names(sorted(set(table["structure"])))
    table["structure"] = table["structure"].map(short)
    wide = table.pivot_table(index="structure", columns="scenario", values=["sponsor eNPV", "partner eNPV"],
                             sort=False)
    wide.columns = [f"{scenario}: {what}" for what, scenario in wide.columns]
    st.dataframe(wide.style.format("{:,.1f}"), width="stretch")
    st.caption("Each scenario valued at its own paths and seed; \"(now, unsaved)\" is the page as it stands. "
               "Restore one from the sidebar.")


def compare_and_solve(comparison, deals, jsons, name, baseline, paths, seed) -> None:
    t = comparison.table
    short = views.short_names(list(t.index))

    def plus_minus(x: pd.Series, se: pd.Series) -> list[str]:
        return [f"{a:+,.1f} ± {2 * b:,.1f}" if math.isfinite(b) else f"{a:+,.1f}" for a, b in zip(x, se, strict=True)]

    value = pd.DataFrame({
        "biobucks": t["biobucks"],
        "contract value": t["total_contract_value"],
        "PV to partner": t["expected_pv_to_partner"],
        "sponsor eNPV": t["sponsor_expected_npv"],
        "sponsor CE": t["sponsor_certainty_equivalent"],
        "partner eNPV": t["partner_expected_npv"],
        "partner CE": t["partner_certainty_equivalent"],
        "partner Δ": plus_minus(t["partner_diff"], t["partner_diff_se"]),
        "joint gain": plus_minus(t["joint_gain"], t["joint_gain_se"]),
    }).rename(index=short).rename_axis("structure")
    st.markdown("**Value to each side**, $M")
    numbers = [c for c in value.columns if c not in ("partner Δ", "joint gain")]
    st.dataframe(value.style.format({c: "{:,.1f}" for c in numbers}), width="stretch", column_config={
        "contract value": st.column_config.NumberColumn(help="Biobucks + service fees at list price + success "
                                                              "premiums + reserved capacity."),
        "PV to partner": st.column_config.NumberColumn(help="Expected PV of every payment to the partner."),
        "sponsor CE": st.column_config.NumberColumn(help="Certainty equivalent: what the sponsor would take for "
                                                         "sure, at its risk tolerance."),
        "partner CE": st.column_config.NumberColumn(help="Certainty equivalent: what the partner would take for "
                                                         "sure, at its risk tolerance."),
        "partner Δ": st.column_config.TextColumn(help=f"Partner eNPV less under {baseline}, ± two standard "
                                                      "errors (paired)."),
        "joint gain": st.column_config.TextColumn(help="Sponsor's change + partner's change against the "
                                                       "baseline, ± two standard errors (paired).")})
    risk = pd.DataFrame({f"{party} {label}": t[f"{party}_{column}"] for party in ("sponsor", "partner")
                         for label, column in (("P5", "p5"), ("P(loss)", "prob_loss"),
                                               ("shortfall", "expected_shortfall_5"),
                                               ("risk share", "risk_share"))}).rename(index=short) \
        .rename_axis("structure")
    st.markdown("**Risk each side carries**, $M")
    st.dataframe(risk.style.format({c: ("{:.1%}" if "P(loss)" in c else "{:.2f}" if "risk share" in c
                                        else "{:,.1f}") for c in risk.columns}), width="stretch",
                 column_config={c: st.column_config.NumberColumn(help=help_) for c, help_ in (
                     [(f"{p} P5", f"The {p}'s NPV is below this in 5% of futures.") for p in ("sponsor", "partner")]
                     + [(f"{p} P(loss)", f"Share of simulated futures where the {p}'s NPV is below 0.")
                        for p in ("sponsor", "partner")]
                     + [(f"{p} shortfall", f"Expected shortfall: the {p}'s mean NPV over its worst 5% "
                                              "of futures.") for p in ("sponsor", "partner")]
                     + [(f"{p} risk share", f"Slope of the {p}'s NPV on the program's NPV: the share of the "
                                            "program's risk it carries (0 none, 1 all).")
                        for p in ("sponsor", "partner")])})
    st.caption("Δ and joint gain (sponsor's change + partner's change) are against the baseline, paired on "
               "common paths; ± is two standard errors. Hover a column's name for its definition.")
    front = comparison_frontier(t).reset_index()
    st.vega_lite_chart(spec=charts.frontier_chart(front.assign(structure=front["structure"].map(short)),
                                          domain=[short[n] for n in t.index]), width="stretch")
    beaten = front[front["dominated"]]
    if len(beaten):
        st.caption("Dominated: " + "; ".join(f"**{r.structure}** by {r.dominated_by}" for r in beaten.itertuples())
                   + ".")
    saved_scenarios(paths, seed)
    c1, c2, _ = st.columns([1, 1, 2])
    pairs = tuple(jsons.items())
    c1.download_button("Download the comparison (Excel)", lambda: workbook_bytes(pairs, baseline, paths, seed),
                       file_name="dealmodel-comparison.xlsx", key="dl_xlsx",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", on_click="ignore")
    c2.download_button("Download the comparison (CSV)", csv_text(t).encode(), file_name="dealmodel-comparison.csv",
                       mime="text/csv", key="dl_csv", on_click="ignore")

    st.markdown("#### Fair terms")
    royalty = next((i for i, term in enumerate(deals[name].terms) if term.kind == "royalty"), None)
    if royalty is None or name == baseline:
        st.info(f"Pick a structure with a royalty (e.g. the revenue share) to find the royalty rate at which the "
                f"partner is indifferent to **{baseline}**.")
        return
    parameter = f"terms[{royalty}].tiers[0].rate"
    key = (jsons[name], parameter, jsons[baseline], paths, seed)
    # on request: a solve is a dozen valuations, too many to run on every slider move
    if st.button(f"Find the royalty rate at which the partner is indifferent to {baseline}", key="solve"):
        ss.solve_key = key
    if ss.get("solve_key") != key:
        return
    answer = solve_cached(*key)
    if "error" in answer:  # said in words: what the royalty can and cannot do
        side = "above" if answer["at_low"] > answer["target"] else "below"
        st.info(f"No first-tier royalty from {answer['low']:.0%} to {answer['high']:.0%} leaves the partner exactly "
                f"as well off as under **{baseline}** (expected NPV {answer['target']:,.1f}): its expected NPV runs "
                f"from {answer['at_low']:,.1f} at {answer['low']:.0%} to {answer['at_high']:,.1f} at "
                f"{answer['high']:.0%}, always {side} it. The royalty alone cannot close the gap: change another term "
                f"(a milestone, the fee markup) and look again.")
        return
    st.success(f"A first-tier royalty of **{answer['value']:.2%}** gives the partner an expected NPV of "
               f"{answer['achieved']:,.1f}, the same as under {baseline} "
               f"(± {answer['standard_error']:,.1f} Monte Carlo standard error).")
    tiers = deals[name].terms[royalty].tiers
    if len(tiers) > 1 and answer["value"] > tiers[1].rate:
        st.warning(f"That first-tier rate is above the next tier's ({tiers[1].rate:.2%} above "
                   f"{tiers[1].above:,.0f}): the royalty would fall as sales grow. Raise the next tier too, or "
                   f"solve on it instead.")
    st.button(f"Apply {answer['value']:.2%} to {name}", key="apply_solved", on_click=_apply,
              args=(name, [(parameter, float(answer["value"]), True)]))

main()
