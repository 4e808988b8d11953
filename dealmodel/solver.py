"""Fair terms: the value of one term parameter that makes a party's metric hit a target.

Every evaluation uses the same seed, so the party's metric is a deterministic, (piecewise)
smooth function of the parameter and a bracketing root finder (Brent's method) applies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from dealmodel.compare import metric_value
from dealmodel.edit import get_value, set_value
from dealmodel.engine import simulate
from dealmodel.schema import Deal


class SolveError(ValueError):
    """No value of the parameter in the allowed range reaches the target.

    ``low`` / ``high``: the range searched; ``at_low`` / ``at_high``: the metric there; ``target``.
    """

    def __init__(self, message: str, low: float = math.nan, high: float = math.nan, at_low: float = math.nan,
                 at_high: float = math.nan, target: float = math.nan):
        super().__init__(message)
        self.low, self.high, self.at_low, self.at_high, self.target = low, high, at_low, at_high, target


@dataclass(frozen=True)
class Solution:
    parameter: str
    value: float
    party: str
    metric: str
    target: float
    achieved: float
    standard_error: float
    low: float
    high: float
    evaluations: int
    deal: Deal

    def to_dict(self) -> dict:
        return {
            "parameter": self.parameter,
            "value": self.value,
            "party": self.party,
            "metric": self.metric,
            "target": self.target,
            "achieved": self.achieved,
            "standard_error": None if math.isnan(self.standard_error) else self.standard_error,
            "range": [self.low, self.high],
            "evaluations": self.evaluations,
        }


def default_range(deal: Deal, parameter: str) -> tuple[float, float]:
    """The range searched when none is given, from the kind of number the parameter is."""
    leaf = parameter.rstrip(")").rsplit(".", 1)[-1]
    if parameter.startswith("scale("):
        return 0.0, 10.0
    if leaf in ("rate", "success_probability", "at_risk_fraction", "cost_fraction", "profit_fraction",
                "loe_step_down", "erosion_after_loe", "cogs_fraction", "opex_fraction"):
        return 0.0, 1.0
    if leaf == "markup":
        return -0.9, 5.0
    if leaf == "discount_rate":
        return 0.0, 0.5
    if leaf == "rho":
        return 0.0, 0.99
    current = get_value(deal, parameter)
    current = float(current) if isinstance(current, int | float) else 0.0
    return 0.0, max(10.0 * abs(current), 1000.0)


def solve(
    deal: Deal,
    parameter: str,
    target: float | Deal,
    party: str = "partner",
    metric: str = "expected_npv",
    low: float | None = None,
    high: float | None = None,
    paths: int = 20_000,
    seed: int = 0,
    xtol: float = 1e-7,
) -> Solution:
    """Find ``x`` such that ``party``'s ``metric`` equals ``target`` when ``parameter`` = x.

    ``parameter`` is a path such as ``terms[2].tiers[0].rate``, ``scale(milestone)`` or
    ``all(phases.phase3.success_probability)`` (see :mod:`dealmodel.edit`). ``target`` is a
    number or another deal, whose own metric (on the same paths) is then the target: e.g. the
    royalty rate at which the partner is indifferent to fee-for-service.
    Raises :class:`SolveError` when no value in [low, high] reaches the target.
    """
    get_value(deal, parameter)  # fails early, with a clear message, on a bad path
    if isinstance(target, Deal):
        lean = simulate(target, paths=paths, seed=seed, keep_flows=False, yearly_sample=0)
        target_value = metric_value(lean, party, metric)[0]
    else:
        target_value = float(target)
    lo_default, hi_default = default_range(deal, parameter)
    lo = lo_default if low is None else float(low)
    hi = hi_default if high is None else float(high)
    if not lo < hi:
        raise ValueError(f"the search range needs low < high (got {lo:g}, {hi:g})")
    cache: dict[float, tuple[float, float]] = {}

    def value_at(x: float) -> tuple[float, float]:
        if x not in cache:
            result = simulate(set_value(deal, parameter, x), paths=paths, seed=seed, keep_flows=False,
                              yearly_sample=0)
            cache[x] = metric_value(result, party, metric)
        return cache[x]

    f_lo = value_at(lo)[0] - target_value
    f_hi = value_at(hi)[0] - target_value
    if f_lo == 0 or f_hi == 0:
        x = lo if f_lo == 0 else hi
    elif np.sign(f_lo) == np.sign(f_hi):
        a, b = value_at(lo)[0], value_at(hi)[0]
        raise SolveError(
            f"no value of {parameter} between {lo:g} and {hi:g} gives the {party}'s {metric} = "
            f"{target_value:,.4g}: it ranges from {min(a, b):,.4g} to {max(a, b):,.4g} there",
            low=lo, high=hi, at_low=a, at_high=b, target=target_value,
        )
    else:
        x = optimize.brentq(lambda v: value_at(v)[0] - target_value, lo, hi, xtol=xtol)
    achieved, se = value_at(x)
    return Solution(parameter=parameter, value=float(x), party=party, metric=metric, target=target_value,
                    achieved=achieved, standard_error=se, low=lo, high=hi, evaluations=len(cache),
                    deal=set_value(deal, parameter, x))


def iso_value(
    deal: Deal,
    x_parameter: str,
    x_values: Sequence[float],
    y_parameter: str,
    party: str = "partner",
    metric: str = "expected_npv",
    target: float | None = None,
    y_low: float | None = None,
    y_high: float | None = None,
    paths: int = 20_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Pairs (x, y) of two parameters that keep the party's metric at ``target``.

    ``target`` defaults to the deal's own value: the menu of equivalent offers a negotiator can
    put on the table (e.g. upfront against royalty rate). Where no y in range works, y is NaN.
    """
    if target is None:
        target = metric_value(simulate(deal, paths=paths, seed=seed), party, metric)[0]
    rows = []
    for x in x_values:
        moved = set_value(deal, x_parameter, float(x))
        try:
            sol = solve(moved, y_parameter, target, party=party, metric=metric, low=y_low, high=y_high,
                        paths=paths, seed=seed)
            rows.append({"x": float(x), "y": sol.value, "achieved": sol.achieved})
        except SolveError:
            rows.append({"x": float(x), "y": math.nan, "achieved": math.nan})
    table = pd.DataFrame(rows)
    table.attrs.update({"x_parameter": x_parameter, "y_parameter": y_parameter, "target": target,
                        "party": party, "metric": metric})
    return table
