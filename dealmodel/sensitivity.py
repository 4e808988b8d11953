"""Tornado sensitivity: which inputs swing a party's value most.

Each input is moved to its low and its high — a distribution's P10 and P90, a fixed number
-20% and +20% — one at a time with everything else at its base, on common random numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import TypeAdapter

from dealmodel.compare import metric_value
from dealmodel.distributions import Quantity
from dealmodel.edit import _all_paths, get_value, set_values
from dealmodel.engine import simulate
from dealmodel.schema import PHASES, Deal

_QUANTITY = TypeAdapter(Quantity)

_PROGRAM_FIELDS = [
    *[(f"phases.{p}.{f}", f"{p} {f.replace('_', ' ')}") for p in PHASES
      for f in ("success_probability", "duration_years", "cost", "partner_cost")],
    ("commercial.peak_sales", "peak sales"),
    ("commercial.exclusivity_years", "exclusivity years"),
    ("commercial.erosion_after_loe", "erosion after LOE"),
    ("commercial.cogs_fraction", "COGS fraction"),
    ("commercial.opex_fraction", "other operating cost fraction"),
    ("batch_failure_rate", "batch failure rate"),
]
_UNIT_INTERVAL = ("success_probability", "fraction", "erosion", "rate", "rho")


@dataclass(frozen=True)
class Input:
    """One tornado bar: a set of paths moved together to their low and high values."""

    name: str
    label: str
    low: dict[str, Any]
    high: dict[str, Any]


def _bounds(value: Any, path: str, relative: float) -> tuple[Any, Any] | None:
    """Low and high for one number or distribution; None when it cannot move (a fixed zero)."""
    if isinstance(value, dict):
        q = _QUANTITY.validate_python(value)
        return q.quantile(0.10), q.quantile(0.90)
    if value == 0:
        return None
    lo, hi = value * (1 - relative), value * (1 + relative)
    lo, hi = min(lo, hi), max(lo, hi)
    leaf = path.rsplit(".", 1)[-1]
    if any(key in leaf for key in _UNIT_INTERVAL):
        hi = min(hi, 1.0 if "batch_failure" not in leaf else 0.95)
        if leaf == "rho":
            hi = min(hi, 0.99)
    return lo, hi


def _moved(deal: Deal, targets: list[str], relative: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Low and high values of each target path (those that cannot move are left out)."""
    low, high = {}, {}
    for target in targets:
        b = _bounds(get_value(deal, target), target, relative)
        if b is not None:
            low[target], high[target] = b
    return low, high


def _targets(deal: Deal, path: str) -> list[str]:
    return _all_paths(deal, path[4:-1]) if path.startswith("all(") else [path]


def default_inputs(deal: Deal, relative: float = 0.2) -> list[Input]:
    """Program inputs (each across all candidates), discount rates, correlation, term parameters."""
    out: list[Input] = []
    for field, label in _PROGRAM_FIELDS:
        try:
            low, high = _moved(deal, _all_paths(deal, field), relative)
        except ValueError:
            continue
        if low:
            out.append(Input(f"all({field})", f"{label} (all candidates)", low, high))
    for party in ("sponsor", "partner"):
        p = f"parties.{party}.discount_rate"
        b = _bounds(get_value(deal, p), p, relative)
        if b:
            out.append(Input(p, f"{party} discount rate", {p: b[0]}, {p: b[1]}))
    b = _bounds(deal.correlation.rho, "correlation.rho", relative)
    if b:
        out.append(Input("correlation.rho", "correlation", {"correlation.rho": b[0]}, {"correlation.rho": b[1]}))
    for t, term in enumerate(deal.terms):
        name = term.label or term.kind
        fields: list[tuple[str, str]] = []
        if term.kind == "royalty":
            fields = [(f"tiers[{i}].rate", f"tier {i + 1} rate") for i in range(len(term.tiers))]
        else:
            for f in ("amount", "markup", "at_risk_fraction", "success_premium", "cost_fraction", "profit_fraction"):
                if f in type(term).model_fields:
                    fields.append((f, f.replace("_", " ")))
        for f, flabel in fields:
            p = f"terms[{t}].{f}"
            b = _bounds(get_value(deal, p), p, relative)
            if b:
                out.append(Input(p, f"{name}: {flabel}", {p: b[0]}, {p: b[1]}))
    return out


def _custom_inputs(deal: Deal, inputs: Iterable[str] | Mapping[str, tuple[float, float]], relative: float):
    out = []
    for p in inputs:
        targets = _targets(deal, p)
        if isinstance(inputs, Mapping):
            lo, hi = inputs[p]
            out.append(Input(p, p, dict.fromkeys(targets, lo), dict.fromkeys(targets, hi)))
            continue
        low, high = _moved(deal, targets, relative)
        if low:
            out.append(Input(p, p, low, high))
    return out


def tornado(
    deal: Deal,
    party: str = "partner",
    inputs: Iterable[str] | Mapping[str, tuple[float, float]] | None = None,
    metric: str = "expected_npv",
    paths: int = 20_000,
    seed: int = 0,
    relative: float = 0.2,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """The party's ``metric`` with each input at its low and at its high, sorted by swing.

    ``inputs``: None for :func:`default_inputs`; a list of parameter paths (``all(FIELD)`` for a
    field of every candidate); or a mapping path -> (low, high) to set the values yourself.
    Columns: ``input``, ``label``, ``low``, ``high`` (the values used, as text), ``base``,
    ``value_low``, ``value_high``, ``swing`` = |value_high - value_low|.
    """
    base_value, _ = metric_value(simulate(deal, paths=paths, seed=seed, keep_flows=False, yearly_sample=0), party,
                                 metric)
    chosen = default_inputs(deal, relative) if inputs is None else _custom_inputs(deal, inputs, relative)
    rows = []
    for i, item in enumerate(chosen):
        lo, hi = (metric_value(simulate(set_values(deal, values), paths=paths, seed=seed, keep_flows=False,
                                        yearly_sample=0), party, metric)[0] for values in (item.low, item.high))
        rows.append({
            "input": item.name,
            "label": item.label,
            "low": _describe(item.low),
            "high": _describe(item.high),
            "base": base_value,
            "value_low": lo,
            "value_high": hi,
            "swing": abs(hi - lo),
        })
        if progress is not None:
            progress(i + 1, len(chosen))
    table = pd.DataFrame(rows, columns=["input", "label", "low", "high", "base", "value_low", "value_high", "swing"])
    return table.sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)


def _describe(values: dict[str, Any]) -> str:
    """One value as a number ("320"); several (one per candidate) as their range ("225 to 400, 5 values")."""
    distinct = sorted({round(float(v), 6) for v in values.values()})
    if len(distinct) == 1:
        return f"{distinct[0]:g}"
    return f"{distinct[0]:,.4g} to {distinct[-1]:,.4g}, {len(distinct)} values"
