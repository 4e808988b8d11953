"""The risk figures of a distribution on small arrays whose answers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import numpy_financial as npf
import pytest

from dealmodel import metrics


def test_the_distribution_figures_of_five_numbers():
    # -2, 0, 1, 3, 8: mean 2; squared deviations 16 + 4 + 1 + 1 + 36 = 58, sample variance 58 / 4;
    # a loss is a value below zero (0 is not one); the worst 5% of five values is the lowest one
    values = np.array([3.0, -2.0, 8.0, 0.0, 1.0])
    row = metrics.distribution_metrics(values)
    assert row["expected_npv"] == 2.0
    assert row["std_npv"] == pytest.approx(math.sqrt(58 / 4), rel=1e-15)
    assert row["prob_loss"] == 0.2
    assert row["expected_shortfall_5"] == -2.0
    assert row["p50"] == 1.0
    # two values: the sample deviation of 1 and 4 is |4 - 1| / sqrt 2; one value: no spread at all
    assert metrics.distribution_metrics(np.array([1.0, 4.0]))["std_npv"] == pytest.approx(3 / math.sqrt(2))
    one = metrics.distribution_metrics(np.array([7.0]))
    assert one["std_npv"] == 0.0 and one["expected_shortfall_5"] == 7.0
    # values between zero and one are no loss either
    assert metrics.distribution_metrics(np.array([0.5, 0.25, -1.0, 2.0]))["prob_loss"] == 0.25


@pytest.mark.parametrize(("level", "expected"), [
    (0.05, 0.0),         # ceil(0.05 x 20) = 1: the lowest value
    (0.10, 0.5),         # 2 values: 0 and 1
    (0.25, 2.0),         # 5 values: 0 ... 4
    (0.01, 0.0),         # ceil(0.2) = 1
])
def test_expected_shortfall_averages_the_lowest_ceil_of_level_times_n_values(level, expected):
    values = np.arange(20.0)[::-1].copy()  # 19, 18, ..., 0: the lowest values last
    assert metrics.expected_shortfall(values, level) == expected


def test_expected_shortfall_of_a_thousand_shuffled_values_is_the_mean_of_the_lowest_fifty():
    values = np.random.default_rng(1).permutation(1000).astype(float)  # 0 ... 999 in random order
    assert metrics.expected_shortfall(values) == pytest.approx(sum(range(50)) / 50, rel=1e-15)  # 24.5


def test_risk_share_is_undefined_only_when_the_program_is_flat_against_the_size_of_the_numbers():
    # a program with a standard deviation of exactly 1 varies: party = 2 x program has a slope of 2
    program = np.array([-1.0, 1.0])
    assert metrics.risk_share(2.0 * program, program) == pytest.approx(2.0, rel=1e-15)
    # a spread of 1e-4 on numbers of a million is numerically flat (1e-4 < 1e-9 x 1e6) ...
    big = 1e6 + np.array([0.0, 2e-4])
    assert math.isnan(metrics.risk_share(np.array([0.0, 1.0]), big))
    # ... whichever of the two arrays is the large one
    assert math.isnan(metrics.risk_share(np.array([-1e6, 1e6]), np.array([0.0, 2e-4])))
    # while the same spread on numbers of size one is a real one
    assert metrics.risk_share(np.array([0.0, 1.0]), np.array([0.0, 2e-4])) == pytest.approx(5000.0, rel=1e-9)


def test_value_share_is_undefined_only_when_the_total_is_zero_against_the_size_of_the_means():
    assert metrics.value_share(0.25, 0.25, 0.75) == 0.25  # a total of exactly 1 is a total
    assert metrics.value_share(3.0, 3.0, 1.0) == 0.75
    # 1e6 and -(1e6 - 1e-6): the total 1e-6 is below 1e-9 of the means: nothing to share
    assert math.isnan(metrics.value_share(1e6, 1e6, -1e6 + 1e-6))
    # a total of 1e-6 between means of size one is a real (small) total
    assert metrics.value_share(1.0, 1.0, -1.0 + 1e-6) == pytest.approx(1e6, rel=1e-6)


def test_the_summary_table_has_the_program_as_the_whole_and_every_figure_named():
    # the program's NPV is at the program's own rate, so it is not the parties' sum (here 44 and 20)
    npv = {"sponsor": np.array([30.0, 10.0]), "partner": np.array([5.0, 15.0]), "program": np.array([44.0, 20.0])}
    table = metrics.summarize(npv)
    assert table.index.name == "party"
    assert list(table.index) == ["sponsor", "partner", "program"]
    assert list(table.columns) == [*metrics.METRICS, "se_npv"]
    # the program bears all of its own risk and holds all of the value
    assert table.loc["program", "risk_share"] == 1.0 and table.loc["program", "value_share"] == 1.0
    # sponsor: slope of (30, 10) on (44, 20) = 20 / 24; partner: -10 / 24; values 20 and 10 of 30
    assert table.loc["sponsor", "risk_share"] == pytest.approx(20 / 24)
    assert table.loc["partner", "risk_share"] == pytest.approx(-10 / 24)
    assert table.loc["sponsor", "value_share"] == pytest.approx(2 / 3)
    assert table.loc["partner", "se_npv"] == pytest.approx(math.sqrt(50.0) / math.sqrt(2))  # sd(5, 15) / sqrt 2


def test_irr_is_undefined_for_flows_that_are_zero_throughout():
    assert np.isnan(metrics.irr(np.zeros((2, 4)))).all()
    assert np.isnan(npf.irr([0.0, 0.0, 0.0, 0.0]))


def test_irr_finds_a_root_after_a_whole_batch_of_rows_without_one():
    # 65,536 rows are searched at a time: a batch with no sign change does not end the search
    flows = np.tile([[100.0, 10.0, 10.0]], (65_537, 1))
    flows[-1] = [-100.0, 110.0, 0.0]
    out = metrics.irr(flows)
    assert np.isnan(out[:-1]).all()
    assert out[-1] == pytest.approx(0.10, abs=1e-12)


@pytest.mark.parametrize("flows", [
    [-1.0, 2.15, -1.155],     # roots 5% and 10% (x = 1 / (1 + r): 1.155 x^2 - 2.15 x + 1 = 0)
    [-1.0, 1.95, -0.95],      # roots 0% and -5%: zero is a point of the search grid
    [-1.0, 1.83, -0.836],     # roots -12% and -5%, both below zero
    [1.0, -1.9, 0.8925],      # roots 5% and -15%: one on each side of zero
    [-1.0, 1.994, -0.99328],  # roots 2.4% and -3%: the search brackets [2.04%, 2.45%] and [-4.6%, -2.3%]
    [-100.0, 100.0],          # the root exactly 0, a point of the search grid
])
def test_irr_with_two_roots_is_the_one_nearest_zero_as_numpy_financial(flows):
    assert metrics.irr(np.array([flows]))[0] == pytest.approx(npf.irr(flows), abs=1e-9)
