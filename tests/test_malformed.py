"""Malformed deal files: each gives exit 2 and a message naming the offending field, no traceback."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml

import dealmodel as dm
from dealmodel.cli import main
from tests.conftest import SAMPLES, base_deal, candidate


def _with(path: str, value):
    """A base deal with the value at a dotted path (list indices as numbers) replaced."""
    deal = base_deal()
    node = deal
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return deal


def _without(path: str):
    deal = base_deal()
    node = deal
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        node = node[key]
    del node[keys[-1]]
    return deal


def _two_candidates(**second):
    return base_deal(candidates=[candidate("A"), candidate("B", **second)])


def _rename_key(path: str, old: str, new: str):
    deal = base_deal()
    node = deal
    for key in [int(k) if k.isdigit() else k for k in path.split(".")]:
        node = node[key]
    node[new] = node.pop(old)
    return deal


P2 = "candidates.0.phases.phase2"

# (id, deal data or raw text, [substrings the message must contain])
CASES = [
    ("probability above 1", _with(f"{P2}.success_probability", 1.4),
     ["candidates[0].phases.phase2.success_probability: must be between 0 and 1 (got 1.4)"]),
    ("negative duration", _with(f"{P2}.duration_years", -1),
     ["candidates[0].phases.phase2.duration_years: must be >= 0"]),
    ("negative cost", _with(f"{P2}.cost", -5), ["candidates[0].phases.phase2.cost: must be >= 0"]),
    ("triangular out of order", _with(f"{P2}.duration_years", {"dist": "triangular", "low": 3, "mode": 2, "high": 4}),
     ["candidates[0].phases.phase2.duration_years", "low <= mode <= high"]),
    ("unknown dist", _with(f"{P2}.cost", {"dist": "gamma", "shape": 2}),
     ["candidates[0].phases.phase2.cost", "unknown dist 'gamma'"]),
    ("dist key missing", _with(f"{P2}.cost", {"low": 1, "high": 2}),
     ["candidates[0].phases.phase2.cost", "needs a 'dist' key"]),
    ("lognormal p90 below median",
     _with("candidates.0.commercial.peak_sales", {"dist": "lognormal", "median": 500, "p90": 400}),
     ["candidates[0].commercial.peak_sales", "p90 must be above the median"]),
    ("beta sd too large", _with(f"{P2}.success_probability", {"dist": "beta", "mean": 0.5, "sd": 0.6}),
     ["candidates[0].phases.phase2.success_probability", "sd must be"]),
    ("probability as lognormal", _with(f"{P2}.success_probability", {"dist": "lognormal", "median": 0.3, "p90": 0.5}),
     ["candidates[0].phases.phase2.success_probability: must be between 0 and 1"]),
    ("unknown top-level key", base_deal(horizon=30), ["horizon: unknown field (did you mean 'horizon_years'?)"]),
    ("misspelt field", _rename_key(P2, "success_probability", "sucess_probability"),
     ["candidates[0].phases.phase2.sucess_probability: unknown field (did you mean 'success_probability'?)",
      "candidates[0].phases.phase2.success_probability: required field is missing"]),
    ("parties missing", _without("parties"), ["parties: required field is missing"]),
    ("discount rate below -1", _with("parties.sponsor.discount_rate", -1.5),
     ["parties.sponsor.discount_rate: must be >= -0.5 (got -1.5)"]),
    ("correlation of 1", base_deal(correlation={"rho": 1.0}), ["correlation.rho: must be < 1"]),
    ("royalty tiers descending",
     base_deal(terms=[{"kind": "royalty", "tiers": [
         {"above": 0, "rate": 0.05}, {"above": 500, "rate": 0.07}, {"above": 300, "rate": 0.1}]}]),
     ["terms[0].tiers[2].above: tiers must be ascending"]),
    ("royalty rate above 1", base_deal(terms=[{"kind": "royalty", "tiers": [{"above": 0, "rate": 1.5}]}]),
     ["terms[0].tiers[0].rate: must be <= 1"]),
    ("milestone for unknown candidate",
     base_deal(terms=[{"kind": "milestone", "event": "approval", "amount": 10, "candidates": ["Z"]}]),
     ["terms[0].candidates[0]: unknown candidate 'Z'"]),
    ("milestone event before start phase",
     base_deal(terms=[{"kind": "milestone", "event": "phase1_start", "amount": 10, "candidates": ["A"]}]),
     ["terms[0].event: phase1_start can never happen"]),
    ("sales milestone without threshold",
     base_deal(terms=[{"kind": "milestone", "event": "annual_sales", "amount": 10}]),
     ["terms[0].threshold: required for event annual_sales"]),
    ("unknown term kind", base_deal(terms=[{"kind": "equity", "amount": 10}]),
     ["terms[0]: unknown kind 'equity'"]),
    ("payer is payee", base_deal(terms=[{"kind": "upfront", "amount": 5, "payer": "partner", "payee": "partner"}]),
     ["terms[0]: payer and payee are both partner"]),
    ("duplicate candidate names", base_deal(candidates=[candidate("A"), candidate("A")]),
     ["candidates[1].name: duplicate candidate name 'A'"]),
    ("missing remaining phase", _without(f"{P2.rsplit('.', 1)[0]}.phase3"),
     ["candidates[0].phases.phase3: missing"]),
    ("phase before start phase", _with("candidates.0.phases.phase1",
                                       {"success_probability": 0.5, "duration_years": 2, "cost": 1}),
     ["candidates[0].phases.phase1: comes before start_phase phase2"]),
    ("horizon too short", base_deal(horizon_years=5), ["horizon_years: 5 is too short for candidates[0]"]),
    ("bad currency", base_deal(currency="dollars"), ["currency: must be a three-letter ISO code"]),
    ("text where a number goes", _with(f"{P2}.duration_years", "three"),
     ["candidates[0].phases.phase2.duration_years: must be a number or a distribution"]),
    ("no candidates", base_deal(candidates=[]), ["candidates: must not be empty"]),
    ("two ramps", _with("candidates.0.commercial.years_to_peak", 5),
     ["candidates[0].commercial: give launch_curve or years_to_peak, not both"]),
    ("correlation group without candidates", base_deal(correlation={"rho": 0.2, "groups": {"mrna": 0.5}}),
     ["correlation.groups.mrna: no candidate has platform 'mrna'"]),
    ("unknown start phase", _with("candidates.0.start_phase", "phase4"),
     ["candidates[0].start_phase: must be one of"]),
    ("cogs above 1", _with("candidates.0.commercial.cogs_fraction", 1.2),
     ["candidates[0].commercial.cogs_fraction: must be between 0 and 1 (got 1.2)"]),
    ("boolean as a number", _with(f"{P2}.cost", True),
     ["candidates[0].phases.phase2.cost: must be a number or a distribution (got True)"]),
    ("two supply terms for one product",
     base_deal(terms=[{"kind": "supply", "markup": 0.1}, {"kind": "supply", "markup": 0.2, "candidates": ["A"]}]),
     ["terms[1].candidates: A is already supplied under terms[0]"]),
    ("second candidate bad", _two_candidates(biomarker_selected="maybe"),
     ["candidates[1].biomarker_selected: must be true or false"]),
]

RAW = [
    ("empty file", "", ["the file is empty"]),
    ("only a comment", "# nothing here\n", ["the file is empty"]),
    ("invalid YAML", "name: [unclosed\nparties: {\n", ["invalid YAML at line"]),
    ("top level is a list", "- a\n- b\n", ["the top level must be a mapping"]),
    ("top level is a number", "42\n", ["the top level must be a mapping"]),
]


def _run(capsys, *args):
    rc = main(["validate", *args])
    captured = capsys.readouterr()
    return rc, captured.err


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_deal_gives_exit_2_and_names_the_field(tmp_path, capsys, data, expected):
    path = tmp_path / "deal.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    rc, err = _run(capsys, str(path))
    assert rc == 2
    for text in expected:
        assert text in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in RAW], ids=[c[0] for c in RAW])
def test_unreadable_file_gives_exit_2(tmp_path, capsys, text, expected):
    path = tmp_path / "deal.yaml"
    path.write_text(text)
    rc, err = _run(capsys, str(path))
    assert rc == 2
    for t in expected:
        assert t in err, err


def test_file_not_found(tmp_path, capsys):
    rc, err = _run(capsys, str(tmp_path / "nope.yaml"))
    assert rc == 2
    assert "nope.yaml: file not found" in err


def test_invalid_json(tmp_path, capsys):
    path = tmp_path / "deal.json"
    path.write_text('{"name": "x",}')
    rc, err = _run(capsys, str(path))
    assert rc == 2
    assert "invalid JSON at line 1" in err


def test_json_deal_is_read_as_json(tmp_path, capsys):
    path = tmp_path / "deal.json"
    path.write_text(json.dumps(base_deal()))
    rc, err = _run(capsys, str(path))
    assert (rc, err) == (0, "")


def test_every_problem_is_listed_not_just_the_first(tmp_path, capsys):
    data = base_deal()
    data["candidates"][0]["phases"]["phase2"]["success_probability"] = 1.4
    data["candidates"][0]["phases"]["phase3"]["cost"] = -1
    data["parties"]["partner"]["discount_rate"] = -2
    path = tmp_path / "deal.yaml"
    path.write_text(yaml.safe_dump(data))
    rc, err = _run(capsys, str(path))
    assert rc == 2
    assert len([line for line in err.splitlines() if line.strip()]) == 3


def test_valid_and_invalid_files_together_exit_2(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(base_deal()))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(base_deal(horizon_years=5)))
    rc = main(["validate", str(good), str(bad)])
    out = capsys.readouterr()
    assert rc == 2
    assert "good.yaml: ok" in out.out
    assert "bad.yaml: horizon_years" in out.err


def test_load_deal_raises_one_error_type_with_problems():
    data = base_deal()
    data["candidates"][0]["phases"]["phase2"]["success_probability"] = 1.4
    with pytest.raises(dm.DealError) as info:
        dm.parse_deal(copy.deepcopy(data), "x.yaml")
    assert info.value.problems == [
        "candidates[0].phases.phase2.success_probability: must be between 0 and 1 (got 1.4)"
    ]


def test_cli_process_prints_no_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    proc = subprocess.run([sys.executable, "-m", "dealmodel", "validate", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "invalid YAML" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_validate_every_sample_as_the_shell_globs_them(capsys):
    # `dealmodel validate sample_deals/*`
    assert main(["validate", *sorted(str(p) for p in SAMPLES.glob("*"))]) == 0
    assert main(["validate", str(SAMPLES)]) == 0  # a directory: each deal file in it
    assert capsys.readouterr().out.count(": ok (") == 2 * len(list(SAMPLES.glob("*.yaml")))


def test_schema_command_prints_json_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "dealmodel deal file"
    assert "candidates" in schema["required"]
