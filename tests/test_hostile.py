"""Hostile and careless input: a generated corpus of bad deal files, each refused cleanly and cheaply.

Every file must give exit 2, a message naming the field or key (or the limit) it breaks, no
traceback, and take under 5 s; one `dealmodel validate` process over the whole corpus must stay
under 500 MB of peak memory. The corpus is generated here (the 50 MB file is sparse, the alias
bombs are a few hundred bytes).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dealmodel.cli import main
from tests.conftest import ROOT, SAMPLES

BASE = yaml.safe_load((SAMPLES / "single_candidate.yaml").read_text())
PHASE2 = ("candidates", 0, "phases", "phase2")
COMMERCIAL = ("candidates", 0, "commercial")


def _set(path: tuple, value) -> dict:
    data = copy.deepcopy(BASE)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def _dotted(path: tuple) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


CORPUS: list[tuple[str, str, str]] = []  # (id, file text, a substring the message must contain)


def _add(name: str, data_or_text, expected: str, suffix: str = ".yaml") -> None:
    text = data_or_text if isinstance(data_or_text, str) else yaml.safe_dump(data_or_text, sort_keys=False)
    CORPUS.append((name + suffix, text, expected))


# 1. non-finite, huge and out-of-range numbers in every kind of field --------------------------------------
NUMBER_FIELDS = [
    (*PHASE2, "cost"), (*PHASE2, "partner_cost"), (*PHASE2, "duration_years"), (*PHASE2, "success_probability"),
    (*COMMERCIAL, "peak_sales"), (*COMMERCIAL, "exclusivity_years"), (*COMMERCIAL, "cogs_fraction"),
    ("terms", 1, "amount"), ("terms", 2, "tiers", 0, "rate"), ("terms", 0, "markup"),
    ("parties", "sponsor", "discount_rate"), ("horizon_years",),
]
BAD_NUMBERS = {"inf": float("inf"), "nan": float("nan"), "huge": 1e308, "minus_huge": -1e308, "text": "lots"}
for field in NUMBER_FIELDS:
    for label, value in BAD_NUMBERS.items():
        _add(f"{_dotted(field)}={label}", _set(field, value), _dotted(field))
_add("rate_-0.999999", _set(("parties", "partner", "discount_rate"), -0.999999),
     "parties.partner.discount_rate: must be >= -0.5")
_add("threshold_inf", _set(("terms", 1), {"kind": "milestone", "event": "annual_sales", "amount": 5,
                                          "threshold": float("inf")}), "terms[1].threshold")
_add("cap_inf", _set(("terms", 2, "cap"), float("inf")), "terms[2].cap")

# 2. distributions that cannot be sampled ------------------------------------------------------------------
BAD_DISTS = {
    "beta_sd_1e-200": {"dist": "beta", "mean": 0.3, "sd": 1e-200},
    "beta_sd_too_big": {"dist": "beta", "mean": 0.3, "sd": 0.6},
    "beta_mean_1": {"dist": "beta", "mean": 1.0, "sd": 0.1},
    "lognormal_p90_inf": {"dist": "lognormal", "median": 700, "p90": float("inf")},
    "lognormal_p90_below_median": {"dist": "lognormal", "median": 700, "p90": 300},
    "lognormal_p90_huge_ratio": {"dist": "lognormal", "median": 1e-3, "p90": 1e5},
    "triangular_zero_width": {"dist": "triangular", "low": 2, "mode": 2, "high": 2},
    "triangular_unordered": {"dist": "triangular", "low": 3, "mode": 2, "high": 4},
    "pert_nan": {"dist": "pert", "low": 1, "mode": float("nan"), "high": 4},
    "uniform_equal": {"dist": "uniform", "low": 2, "high": 2},
    "unknown_dist": {"dist": "cauchy", "loc": 1},
    "no_dist_key": {"low": 1, "high": 2},
}
for label, dist in BAD_DISTS.items():
    field = (*PHASE2, "success_probability") if label.startswith("beta") else (*COMMERCIAL, "peak_sales")
    _add(f"{label}", _set(field, dist), _dotted(field))
for label in ("triangular_zero_width", "pert_nan", "uniform_equal"):
    _add(f"duration_{label}", _set((*PHASE2, "duration_years"), BAD_DISTS[label]), "phases.phase2.duration_years")

# 3. YAML features a deal file does not need --------------------------------------------------------------
TAGS = ["!!float ''", "!!bool maybe", "!!timestamp garbage", "!!python/object:os.system ls", "!!binary AAAA",
        "!!set {a: null}", "!!omap [a: 1]", "!custom 3", "!!int 0x"]
for i, tag in enumerate(TAGS):
    _add(f"tag_{i}", f"name: {tag}\n", "tag")
BOMB = "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9) if p else ', '.join(['lol'] * 9)}]\n"
               for p, c in zip(["", *list("abcdefgh")], "abcdefghi", strict=True))
_add("alias_bomb_top", BOMB, "expands to more than")
_add("alias_bomb_in_candidates", BOMB.replace("i: &i", "candidates: &i"), "expands to more than")
_add("alias_bomb_in_terms", BOMB.replace("i: &i", "terms: &i"), "expands to more than")
_add("too_many_aliases", "x: &x 1\ny: [" + ", ".join(["*x"] * 150) + "]\n", "more than 100 aliases")
_add("deep_lists", "[" * 3000 + "]" * 3000 + "\n", "nested more than")
_add("deep_maps", "".join("  " * i + "a:\n" for i in range(60)) + "  " * 60 + "b: 1\n", "nested more than")
_add("deep_json", "[" * 3000 + "]" * 3000, "nested more than", suffix=".json")

# 4. duplicate keys ------------------------------------------------------------------------------------------
text = (SAMPLES / "single_candidate.yaml").read_text()
_add("duplicate_terms", text + "terms: []\n", "duplicate key 'terms'")
_add("duplicate_name", "name: a\nname: b\n", "duplicate key 'name'")
_add("duplicate_nested", text.replace("sponsor: {name: Sponsor biotech,", "sponsor: {name: X, name: Sponsor biotech,"),
     "duplicate key 'name'")
_add("duplicate_json", json.dumps(BASE)[:-1] + ', "terms": []}', "duplicate key 'terms'", suffix=".json")
_add("nan_json", json.dumps(BASE).replace('"horizon_years": 25', '"horizon_years": NaN'), "NaN", suffix=".json")
_add("infinity_json", json.dumps(BASE).replace('"horizon_years": 25', '"horizon_years": Infinity'), "Infinity",
     suffix=".json")

# 5. counts and sizes ---------------------------------------------------------------------------------------
many = copy.deepcopy(BASE)
many["candidates"] = [dict(copy.deepcopy(BASE["candidates"][0]), name=f"C{i}") for i in range(500)]
_add("500_candidates", many, "candidates: list should have at most 50 items")
_add("300_terms", _set(("terms",), [{"kind": "upfront", "amount": i} for i in range(300)]),
     "terms: list should have at most 100")
_add("300_shared_terms", _set(("terms",), [{"kind": "upfront", "amount": 1}] * 300), "more than 100 aliases")
_add("100_tiers", _set(("terms", 2, "tiers"), [{"above": i, "rate": 0.01} for i in range(100)]),
     "terms[2].tiers: list should have at most 20")
_add("1000_year_curve", _set((*COMMERCIAL, "launch_curve"), [0.5] * 1000), "launch_curve")
_add("long_name", _set(("name",), "x" * 20_000), "name: string should have at most 500 characters")
_add("horizon_1000", _set(("horizon_years",), 1000), "horizon_years")
_add("big_text_file", "# " + "x" * 2_100_000 + "\n", "may be at most 2 MB")

# 6. wrong shapes and types ---------------------------------------------------------------------------------
_add("top_level_list", "- 1\n- 2\n", "top level must be a mapping")
_add("top_level_scalar", "42\n", "top level must be a mapping")
_add("empty", "", "empty")
_add("only_comment", "# nothing\n", "empty")
_add("candidates_mapping", _set(("candidates",), {"a": 1}), "candidates")
_add("phases_list", _set(("candidates", 0, "phases"), [1, 2]), "candidates[0].phases")
_add("bool_amount", _set(("terms", 1, "amount"), True), "terms[1].amount")
_add("null_parties", _set(("parties",), None), "parties")
_add("unknown_term_kind", _set(("terms", 0, "kind"), "equity"), "terms[0]")
_add("unknown_field", _set(("candidates", 0, "colour"), "red"), "candidates[0].colour: unknown field")
_add("unknown_event", _set(("terms", 1, "event"), "phase4_start"), "terms[1].event")
_add("payer_is_payee", _set(("terms", 1, "payer"), "partner"), "terms[1]")
_add("unknown_candidate", _set(("terms", 1, "candidates"), ["MAB-2"]), "terms[1].candidates[0]")
_add("tiers_descending", _set(("terms", 2, "tiers"), [{"above": 0, "rate": 0.1}, {"above": 0, "rate": 0.2}]),
     "terms[2].tiers[1].above")
_add("invalid_yaml", "name: [unclosed\n", "invalid YAML at line")
_add("invalid_json", "{", "invalid JSON", suffix=".json")
_add("tab_indent", "name: x\n\tparties: 1\n", "invalid YAML")
_add("floor_above_one", _set(("terms", 2, "floor_rate"), 2.0), "terms[2].floor_rate")
_add("timing_unknown", _set(("timing",), "quarterly"), "timing")
_add("tier_basis_unknown", _set(("terms", 2, "tier_basis"), "portfolio"), "terms[2].tier_basis")


def test_the_corpus_is_large_and_varied():
    assert len(CORPUS) >= 120
    assert len({name for name, _, _ in CORPUS}) == len(CORPUS)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for name, text, _ in CORPUS:
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(("name", "expected"), [(n, e) for n, _, e in CORPUS], ids=[n for n, _, _ in CORPUS])
def test_each_bad_file_exits_2_naming_the_field(corpus_dir, capsys, name, expected):
    started = time.perf_counter()
    rc = main(["validate", str(corpus_dir / name)])
    elapsed = time.perf_counter() - started
    err = capsys.readouterr().err
    assert rc == 2, err
    assert expected in err, err
    assert "Traceback" not in err and "unexpected error" not in err
    assert len(err) < 5_000  # messages never render a huge value
    assert elapsed < 5.0


def test_one_process_over_the_whole_corpus_stays_small(corpus_dir, tmp_path):
    # plus what cannot live in the corpus folder as text: a sparse 50 MB file, a FIFO, /dev/zero
    sparse = tmp_path / "sparse.yaml"
    with sparse.open("wb") as fh:
        fh.truncate(50 * 2**20)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    files = [*sorted(str(p) for p in corpus_dir.iterdir()), str(sparse), str(fifo), "/dev/zero"]
    # The child reports its own peak resident memory, VmHWM of its address space: getrusage's maxrss would
    # carry over the parent's (pytest's) from before the exec.
    peak_file = tmp_path / "peak"
    child = ("import re, sys\nfrom dealmodel.cli import main\ntry:\n    code = main(sys.argv[1:])\nfinally:\n"
             "    status = open('/proc/self/status').read()\n"
             f"    open({str(peak_file)!r}, 'w').write(re.search(r'VmHWM:\\s+(\\d+)', status).group(1))\n"
             "sys.exit(code)\n")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", child, "validate", *files], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    elapsed = time.perf_counter() - started
    peak_mb = int(peak_file.read_text()) / 1024
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    for path in files:
        assert f"{path}: " in proc.stderr, path  # every file reported, none stops the others
    assert "sparse.yaml: the file is 52.4 MB; a deal file may be at most 2 MB" in proc.stderr
    assert "fifo.yaml: is not a regular file" in proc.stderr
    assert peak_mb < 500, peak_mb
    assert elapsed < 5.0 * len(files)
    print(f"\ncorpus: {len(files)} files, {elapsed:.1f} s, peak {peak_mb:.0f} MB")


def test_a_folder_without_deal_files_is_an_error(tmp_path, capsys):
    assert main(["validate", str(tmp_path)]) == 2
    assert "no deal files" in capsys.readouterr().err


def test_a_run_beyond_the_work_budget_is_refused_before_it_starts(capsys):
    # 10M paths x 4 structures: refused at once with the limit named, not after gigabytes
    started = time.perf_counter()
    files = [str(SAMPLES / f"reference_{k}.yaml") for k in ("fee_for_service", "milestone", "revenue_share", "hybrid")]
    assert main(["compare", *files, "--paths", "10000000", "--out", "/tmp/never.xlsx"]) == 2
    err = capsys.readouterr().err
    assert "DEALMODEL_MEMORY_MB" in err or "DEALMODEL_WORK" in err
    assert time.perf_counter() - started < 5.0
    assert not Path("/tmp/never.xlsx").exists()


def test_too_many_workers_is_refused(capsys):
    assert main(["batch", str(SAMPLES / "single_candidate.yaml"), "--workers", "64", "--out", "/tmp/never.csv"]) == 2
    assert "use at most" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["directory", "unwritable"])
def test_out_that_cannot_be_written_exits_2_with_the_reason(tmp_path, capsys, where):
    if where == "directory":
        out = tmp_path / "already_a_dir.csv"
        out.mkdir()
        expected = "is a directory"
    else:
        if os.geteuid() == 0:
            out = Path("/proc/dealmodel/out.csv")  # not writable even for root
        else:
            locked = tmp_path / "locked"
            locked.mkdir(mode=0o500)
            out = locked / "out.csv"
        expected = "cannot write"
    rc = main(["batch", str(SAMPLES / "single_candidate.yaml"), "--paths", "1000", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert expected in err and "unexpected error" not in err


PAYLOADS = ["=cmd|' /C calc'!A0", "\r=cmd|' /C calc'!A0", "\n=1+1", "\t=1+1", " =1+1", "+1+1", "-1+1", "@SUM(A1)",
            "\x00=1+1"]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_no_injection_payload_reads_back_as_a_formula(tmp_path, suffix):
    import csv

    import openpyxl
    import pandas as pd

    from dealmodel.export import write_table

    frame = pd.DataFrame({"label": PAYLOADS, "value": range(len(PAYLOADS))},
                         index=pd.Index(PAYLOADS, name="item"))
    out = write_table(frame, tmp_path / f"t{suffix}")
    if suffix == ".csv":
        with out.open(newline="") as fh:
            cells = [c for row in csv.reader(fh) for c in row[:2]][2:]
    else:
        ws = openpyxl.load_workbook(out)["Results"]
        cells = [c for row in ws.iter_rows(min_row=3, max_col=2) for c in row]
        assert all(c.data_type != "f" for c in cells)
        cells = [c.value for c in cells]
    assert len(cells) == 2 * len(PAYLOADS)
    for cell in cells:
        assert cell.startswith("'"), repr(cell)  # shown as text, never evaluated
        assert cell[1] in "=+-@", repr(cell)
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
