"""The small tables the app shows beside its charts, computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dealmodel as dm
from dealmodel import views
from tests.conftest import REFERENCE, ROOT


def test_percentiles_mean_sd_and_standard_error_by_hand():
    table = views.percentile_table({"a": np.arange(1.0, 101.0)})
    row = table.loc["a"]
    # linear interpolation between order statistics: P_q = 1 + q/100 x 99 on 1..100
    for q in (1, 5, 10, 25, 50, 75, 90, 95, 99):
        assert row[f"P{q}"] == pytest.approx(1 + q / 100 * 99, rel=1e-12)
    sd = math.sqrt(100 * 101 / 12)  # sample sd of 1..100: n (n + 1) / 12 with n = 100
    assert row["mean"] == 50.5 and row["sd"] == pytest.approx(sd, rel=1e-12)
    assert row["SE of mean"] == pytest.approx(sd / 10, rel=1e-12)


def test_probability_above_x_by_hand():
    values = {"a": np.arange(1.0, 101.0), "b": np.zeros(4)}
    above = views.exceedance_at(values, 90.0)
    assert above["a"] == 0.10 and above["b"] == 0.0
    assert views.exceedance_at(values, -1.0)["b"] == 1.0


def test_the_candidate_table_reads_the_simulation_counts():
    result = dm.simulate(dm.load_deal(REFERENCE["hybrid"]), paths=3000, seed=2, keep_flows=False)
    table = views.candidate_table(result)
    assert list(table.index) == list(result.candidates)
    for name, c in result.candidates.items():
        assert table.loc[name, "approved"] == f"{c['prob_approval']:.1%}"
        assert table.loc[name, "launch (if approved)"] == f"{c['expected_launch_year']:.1f}"
    assert "stopped at a gate" not in table.columns
    decided = dm.load_deal(ROOT / "examples" / "hybrid_with_gate_decisions.yaml")
    result = dm.simulate(decided, paths=3000, seed=2, keep_flows=False)
    c = result.candidates["ONC-202"]
    stopped = c["prob_stopped_before_phase2"] + c["prob_stopped_before_phase3"] + c["prob_stopped_before_filing"]
    assert stopped > 0.05
    assert views.candidate_table(result).loc["ONC-202", "stopped at a gate"] == f"{stopped:.1%}"


def test_short_names_drop_only_a_shared_prefix_at_a_separator():
    assert views.short_names(["Ref — a", "Ref — b"]) == {"Ref — a": "a", "Ref — b": "b"}
    names = ["Alpha deal", "Alpine deal"]  # no separator in the shared "Alp": names stay whole
    assert views.short_names(names) == {n: n for n in names}
    assert views.short_names(["Only one"]) == {"Only one": "Only one"}
