"""Batch valuation: identical tables whatever n_jobs, task size or backend; failures stay in their row."""

from __future__ import annotations

import json

import distributed
import pandas as pd
import pytest

import dealmodel as dm
from dealmodel import batch
from dealmodel.cli import main
from dealmodel.program import BLOCK
from tests.conftest import REFERENCE, SAMPLES

FILES = [str(REFERENCE[k]) for k in ("fee_for_service", "milestone", "hybrid")]
GRID = {"terms[1].tiers[0].rate": [0.03, 0.06], "terms[0].at_risk_fraction": [0.25, 0.5]}
PATHS = 2 * BLOCK + 500  # three tasks per item at the smallest task size, the last one partial


@pytest.fixture(scope="module")
def serial():
    return dm.value_many(FILES, paths=PATHS, seed=5)


def test_rows_match_compare_on_the_same_paths(serial):
    table = dm.compare([dm.load_deal(f) for f in FILES], paths=PATHS, seed=5).table
    for column in ("partner_expected_npv", "sponsor_p5", "partner_risk_share", "joint_gain", "biobucks",
                   "total_contract_value"):
        assert list(serial[column]) == list(table[column]), column
    # the same payments, added per path here and per term and chunk there: equal to rounding
    assert list(serial["expected_pv_to_partner"]) == pytest.approx(list(table["expected_pv_to_partner"]), rel=1e-13)


def test_two_processes_give_the_identical_table(serial):
    assert dm.value_many(FILES, paths=PATHS, seed=5, n_jobs=2).equals(serial)


def test_task_size_does_not_change_the_table(serial):
    assert dm.value_many(FILES, paths=PATHS, seed=5, task_paths=BLOCK).equals(serial)


def test_a_dask_local_cluster_gives_the_identical_table(serial):
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        table = dm.value_many(FILES, paths=PATHS, seed=5, backend="dask", scheduler=cluster.scheduler_address)
    assert table.equals(serial)


def test_a_bad_file_gives_an_error_row_and_the_rest_complete(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: broken\n")
    table = dm.value_many([FILES[0], str(bad), FILES[1]], paths=5_000, seed=1)
    assert list(table.index) == [
        "Reference program — fee-for-service", "bad.yaml", "Reference program — milestone-based"]
    assert "parties: required field is missing" in table.loc["bad.yaml", "error"]
    assert pd.isna(table.loc["bad.yaml", "partner_expected_npv"])
    assert table["error"].isna().sum() == 2
    assert table["partner_expected_npv"].notna().sum() == 2


def test_sweep_rows_follow_the_grid_and_an_invalid_point_is_an_error_row():
    deal = dm.load_deal(REFERENCE["revenue_share"])
    grid = {"terms[1].tiers[0].rate": [0.03, 1.5, 0.09], "parties.partner.discount_rate": [0.1]}
    table = dm.sweep(deal, grid, paths=5_000, seed=2)
    assert list(table["grid:terms[1].tiers[0].rate"]) == [0.03, 1.5, 0.09]
    assert "must be <= 1" in table.iloc[1]["error"]
    # a higher royalty moves value to the partner on the same paths
    assert table.iloc[2]["partner_expected_npv"] > table.iloc[0]["partner_expected_npv"]
    assert table.iloc[2]["program_diff"] == pytest.approx(0.0, abs=1e-9)


def test_sweep_points_equal_deals_built_by_hand():
    deal = dm.load_deal(REFERENCE["revenue_share"])
    table = dm.sweep(deal, GRID, paths=5_000, seed=2)
    assert len(table) == 4
    by_hand = dm.set_value(dm.set_value(deal, "terms[1].tiers[0].rate", 0.06), "terms[0].at_risk_fraction", 0.25)
    one = dm.simulate(by_hand, paths=5_000, seed=2).summary()
    row = table[(table["grid:terms[1].tiers[0].rate"] == 0.06) & (table["grid:terms[0].at_risk_fraction"] == 0.25)]
    assert row["partner_expected_npv"].item() == one.loc["partner", "expected_npv"]


def test_rows_stream_as_they_finish():
    seen = []
    dm.value_many(FILES, paths=5_000, seed=1, on_row=lambda row: seen.append(row["item"]))
    assert sorted(seen) == sorted(dm.load_deal(f).name for f in FILES)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet", ".json"])
def test_cli_batch_writes_every_format(tmp_path, capsys, suffix):
    out = tmp_path / f"results{suffix}"
    assert main(["batch", *FILES, "--paths", "5000", "--out", str(out)]) == 0
    assert "valued 3 of 3 items" in capsys.readouterr().out
    assert out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # the partial file is gone
    if suffix == ".parquet":
        assert len(pd.read_parquet(out)) == 3
    if suffix == ".csv":
        assert pd.read_csv(out, index_col="item").shape[0] == 3


def test_cli_batch_grid_and_directory_with_a_bad_file(tmp_path, capsys):
    deals = tmp_path / "deals"
    deals.mkdir()
    (deals / "a.yaml").write_bytes(REFERENCE["revenue_share"].read_bytes())
    (deals / "z.yaml").write_text("name: [unclosed\n")
    grid = tmp_path / "grid.yaml"
    grid.write_text("terms[1].tiers[0].rate: [0.05, 0.07]\n")
    out = tmp_path / "sweep.csv"
    assert main(["batch", str(deals), "--grid", str(grid), "--paths", "4000", "--workers", "2",
                 "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "valued 2 of 3 items" in captured.out
    assert "z.yaml: invalid YAML" in captured.err
    table = pd.read_csv(out, index_col="item")
    assert table["error"].notna().sum() == 1


def test_cli_batch_keeps_finished_rows_when_interrupted(tmp_path, capsys, monkeypatch):
    real = batch._task
    monkeypatch.setattr(batch, "GROUP", 1)  # one item per task: rows finish one by one

    def interrupt_on_the_third(indices, *args):
        if 2 in indices:
            raise KeyboardInterrupt
        return real(indices, *args)

    monkeypatch.setattr(batch, "_task", interrupt_on_the_third)
    out = tmp_path / "results.csv"
    assert main(["batch", *FILES, "--paths", "3000", "--out", str(out)]) == 130
    assert not out.exists()
    partial = tmp_path / "results.csv.partial.jsonl"
    header, *rows = [json.loads(line) for line in partial.read_text().splitlines()]
    assert header["settings"]["paths"] == 3000
    assert [r["item"] for r in rows] == ["Reference program — fee-for-service", "Reference program — milestone-based"]
    assert "interrupted" in capsys.readouterr().err

    # the same command again resumes: the saved rows are kept, only what is missing is valued
    valued = []

    def counting(indices, *args):
        valued.extend(indices)
        return real(indices, *args)

    monkeypatch.setattr(batch, "_task", counting)
    assert main(["batch", *FILES, "--paths", "3000", "--out", str(out)]) == 0
    assert "resuming: 2 of 3 rows" in capsys.readouterr().err
    assert 1 not in valued and 2 in valued  # the milestone row was not valued again; the baseline's paths were
    table = pd.read_csv(out, index_col="item")
    assert list(table.index) == [r["item"] for r in rows] + ["Reference program — hybrid"]
    fresh = dm.value_many(FILES, paths=3000, seed=0)
    assert list(table["partner_expected_npv"]) == pytest.approx(list(fresh["partner_expected_npv"]), rel=1e-12)
    assert not partial.exists()


def test_cli_batch_refuses_a_second_run_on_the_same_output(tmp_path, capsys):
    import fcntl

    out = tmp_path / "results.csv"
    partial = tmp_path / "results.csv.partial.jsonl"
    with partial.open("a") as held:  # another run holds the output
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert main(["batch", FILES[0], "--paths", "1000", "--out", str(out)]) == 2
    assert "another dealmodel batch is writing" in capsys.readouterr().err
    assert not out.exists()


def test_cli_batch_keeps_rows_of_a_run_with_other_settings(tmp_path, capsys):
    out = tmp_path / "results.csv"
    partial = tmp_path / "results.csv.partial.jsonl"
    old = json.dumps({"dealmodel_batch": 1, "settings": {"paths": 5}}) + "\n" + json.dumps({"item": "x"}) + "\n"
    partial.write_text(old)
    assert main(["batch", FILES[0], "--paths", "1000", "--out", str(out)]) == 0
    kept = tmp_path / "results.csv.partial.1.jsonl"
    assert kept.read_text() == old
    assert "kept them as results.csv.partial.1.jsonl" in capsys.readouterr().err


def test_cli_batch_refuses_a_bad_grid_and_output(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("terms[1].tiers[0].rate: 0.05\n")
    assert main(["batch", FILES[0], "--grid", str(grid), "--out", str(tmp_path / "r.csv")]) == 2
    assert "terms[1].tiers[0].rate: needs a non-empty list of finite numbers (got 0.05)" in capsys.readouterr().err
    assert main(["batch", FILES[0], "--out", str(tmp_path / "r.pdf")]) == 2
    assert "--out must end in" in capsys.readouterr().err
    assert main(["batch", str(SAMPLES / "nothing_here"), "--out", str(tmp_path / "r.csv")]) == 2


def test_sigterm_ends_the_run_and_its_worker_processes(tmp_path):
    import contextlib
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    out = tmp_path / "results.csv"
    proc = subprocess.Popen([sys.executable, "-m", "dealmodel", "batch", *FILES, "--paths", "2000000", "--workers",
                             "2", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def children() -> set[int]:
        found = set()
        for task in Path(f"/proc/{proc.pid}/task").glob("*"):
            with contextlib.suppress(OSError):  # a thread may end while we read
                found |= {int(p) for p in (task / "children").read_text().split()}
        return found

    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(workers) < 2:
        workers |= children()
        time.sleep(0.2)
    assert len(workers) >= 2, "the worker processes did not start"
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again to resume" in err
    deadline = time.monotonic() + 15
    alive = workers
    while time.monotonic() < deadline and alive:
        alive = {pid for pid in alive if Path(f"/proc/{pid}").exists()
                 and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]}
        time.sleep(0.2)
    assert not alive, f"worker processes still running after SIGTERM: {sorted(alive)}"
    assert not out.exists()
    assert (tmp_path / "results.csv.partial.jsonl").exists()  # kept for a resume


def test_items_sharing_a_program_give_the_same_rows_valued_together_or_alone(monkeypatch):
    together = dm.value_many(FILES, paths=9000, seed=4, task_paths=8192)
    monkeypatch.setattr(batch, "GROUP", 1)
    alone = dm.value_many(FILES, paths=9000, seed=4, task_paths=8192)
    pd.testing.assert_frame_equal(together, alone)
