"""Comparing deal structures on common random numbers.

Every variant is simulated with the same seed, so variants that share a program see the same
program paths: a difference between two of them is a paired figure whose standard error is
that of the per-path differences, far smaller than either variant's own spread.
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dealmodel import metrics
from dealmodel.engine import paths_key, simulate_many
from dealmodel.limits import check_run
from dealmodel.result import PARTIES, SimulationResult
from dealmodel.schema import Deal
from dealmodel.terms import Headline

COMPARE_METRICS = (
    "expected_npv",
    "std_npv",
    "p5",
    "p95",
    "prob_loss",
    "expected_shortfall_5",
    "risk_share",
    "value_share",
)


@dataclass(frozen=True, eq=False)
class Comparison:
    """Variants valued on common paths. ``table`` has one row per variant (see :func:`compare`)."""

    table: pd.DataFrame
    results: dict[str, SimulationResult]
    baseline: str
    paths: int
    seed: int
    sources: dict[str, str] = field(default_factory=dict)

    def decisions(self) -> dict:
        """:func:`~dealmodel.decisions.decision_report` of every structure with gate decisions, on this
        comparison's paths and seed (computed once, on first use)."""
        cached = self.__dict__.get("_decisions")
        if cached is None:
            from dealmodel.decisions import decision_report

            cached = {name: decision_report(r.deal, self.paths, self.seed) for name, r in self.results.items()
                      if r.deal.decision_rule != "none"}
            object.__setattr__(self, "_decisions", cached)
        return cached

    def per_year(self) -> pd.DataFrame:
        frames = []
        for name, result in self.results.items():
            frame = result.per_year()
            frame.insert(0, "variant", name)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def npv_histogram(self, party: str = "partner", bins: int = 60, tail: float = 0.005) -> pd.DataFrame:
        """Share of paths per NPV bin for each variant, on common bins spanning every variant's
        ``tail`` to ``1 - tail`` quantiles (paths beyond fall in the end bins)."""
        values = {name: r.npv[party] for name, r in self.results.items()}
        lo = min(float(np.quantile(v, tail)) for v in values.values())
        hi = max(float(np.quantile(v, 1 - tail)) for v in values.values())
        if hi <= lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, bins + 1)
        table = pd.DataFrame({"npv_low": edges[:-1], "npv_high": edges[1:], "npv_mid": 0.5 * (edges[:-1] + edges[1:])})
        for name, v in values.items():
            counts, _ = np.histogram(np.clip(v, lo, hi), bins=edges)
            table[name] = counts / v.size
        return table


def exceedance(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Share of paths whose value is above each grid point: the exceedance curve P(X > x)."""
    ordered = np.sort(values)
    return 1.0 - np.searchsorted(ordered, grid, side="right") / ordered.size


def _label(deal: Deal, taken: set[str]) -> str:
    name = deal.name
    k = 2
    while name in taken:
        name = f"{deal.name} ({k})"
        k += 1
    return name


def compare(
    deals: Sequence[Deal] | Mapping[str, Deal],
    paths: int = 20_000,
    seed: int = 0,
    baseline: int | str | None = None,
    progress: Callable[[int, int], None] | None = None,
    sources: Mapping[str, str] | None = None,
    keep_flows: bool = True,
    engine: str | None = None,
) -> Comparison:
    """Value any number of deal variants on the same program paths and set them side by side.

    ``deals`` is a list (labelled by deal name) or a mapping label -> deal. ``baseline`` is a
    label or position (default: the first). The table has one row per variant and, for each
    party, the columns ``{party}_{metric}`` for the metrics of :data:`COMPARE_METRICS`, then
    ``biobucks``, ``total_contract_value``, ``expected_pv_to_partner``, ``paired`` (shares the
    baseline's program paths), the paired difference
    against the baseline ``{party}_diff`` with its standard error ``{party}_diff_se``, and the
    **joint gain** (sponsor's change + partner's change) with its standard error.
    Variants that share a program are valued in one pass (one program simulation per chunk).
    ``progress(done, total)`` is called after each chunk (paths x program groups).
    ``keep_flows=False`` keeps NPVs only, and the yearly flows of the first 20,000 paths for the
    yearly table: what a large run needs. ``engine``:
    see :func:`~dealmodel.engine.simulate`.
    """
    if isinstance(deals, Mapping):
        labelled = dict(deals)
    else:
        labelled = {}
        for deal in deals:
            labelled[_label(deal, set(labelled))] = deal
    if not labelled:
        raise ValueError("compare needs at least one deal")
    names = list(labelled)
    if baseline is None:
        base = names[0]
    elif isinstance(baseline, int):
        if not -len(names) <= baseline < len(names):
            raise ValueError(f"baseline position {baseline} is out of range (0..{len(names) - 1})")
        base = names[baseline]
    elif baseline in labelled:
        base = baseline
    else:
        raise ValueError(f"baseline {baseline!r} is not one of the variants: {', '.join(names)}")

    deals_ = list(labelled.values())
    check_run(paths, max(len(d.candidates) for d in deals_), max(d.horizon_years for d in deals_),
              max(len(d.terms) for d in deals_), len(deals_), keep_flows)
    valued = simulate_many(deals_, paths=paths, seed=seed, keep_flows=keep_flows, engine=engine, progress=progress)
    results = dict(zip(names, valued, strict=True))
    return compare_results(results, baseline=base, sources=sources)


def compare_results(
    results: Mapping[str, SimulationResult], baseline: str | None = None, sources: Mapping[str, str] | None = None
) -> Comparison:
    """The comparison of results already simulated (with one seed and path count, to be paired)."""
    names = list(results)
    base = names[0] if baseline is None else baseline
    if base not in results:
        raise ValueError(f"baseline {base!r} is not one of the variants: {', '.join(names)}")
    first = results[names[0]]
    if any(r.paths != first.paths or r.seed != first.seed for r in results.values()):
        raise ValueError("results to compare need the same number of paths and the same seed")
    base_result = results[base]
    base_key = paths_key(base_result.deal)
    items = list(results.items())
    workers = min(len(items), os.cpu_count() or 1)
    if first.paths >= _PARALLEL_PATHS and workers > 1:  # NumPy's sorts and sums let go of the GIL: rows in parallel
        with ThreadPoolExecutor(max_workers=workers) as pool:
            rows = list(pool.map(lambda item: _row(item[0], item[1], base_result, base_key), items))
    else:
        rows = [_row(name, r, base_result, base_key) for name, r in items]
    table = pd.DataFrame(rows).set_index("variant")
    return Comparison(table=table, results=dict(results), baseline=base, paths=first.paths, seed=first.seed,
                      sources=dict(sources or {}))


_PARALLEL_PATHS = 100_000  # below this, a row takes a few milliseconds: threads would cost more than they save


def _row(name: str, result: SimulationResult, base: SimulationResult, base_key: str) -> dict[str, object]:
    """:func:`comparison_row` of ``result`` against ``base``, kept on the result for the next comparison
    against the same baseline object (the app compares every structure again on each rerun, most of them
    unchanged)."""
    kept = result._cache.get(("comparison_row", name))
    if kept is not None and kept[0]() is base:
        return dict(kept[1])
    row = comparison_row(name, result.summary(), result.headline, result.expected_pv_to_partner, result.npv,
                         base.npv, paths_key(result.deal) == base_key, result.deal)
    result._cache[("comparison_row", name)] = (weakref.ref(base), row)
    return dict(row)


def comparison_row(
    name: str,
    summary: pd.DataFrame,
    headline: Headline,
    expected_pv_to_partner: float,
    npv: Mapping[str, np.ndarray],
    base_npv: Mapping[str, np.ndarray],
    paired: bool,
    deal: Deal | None = None,
) -> dict[str, object]:
    """One row of a comparison table: each party's metrics, headline, paired differences, joint gain.

    With the ``deal``, also each party's certainty equivalent at its risk tolerance
    (``{party}_certainty_equivalent``; the expected NPV for a risk-neutral party).
    """
    from dealmodel.negotiate import certainty_equivalent

    row: dict[str, object] = {"variant": name}
    for party in PARTIES:
        for m in COMPARE_METRICS:
            row[f"{party}_{m}"] = float(summary.loc[party, m])
    if deal is not None:
        for party in ("sponsor", "partner"):
            row[f"{party}_certainty_equivalent"] = certainty_equivalent(
                npv[party], getattr(deal.parties, party).risk_tolerance)
    row["biobucks"] = headline.biobucks
    row["total_contract_value"] = headline.total_contract_value
    row["expected_pv_to_partner"] = expected_pv_to_partner
    row["paired"] = paired
    for party in PARTIES:
        row[f"{party}_diff"], row[f"{party}_diff_se"] = _difference(npv[party], base_npv[party], paired)
    joint = npv["sponsor"] + npv["partner"]
    joint_base = base_npv["sponsor"] + base_npv["partner"]
    row["joint_gain"], row["joint_gain_se"] = _difference(joint, joint_base, paired)
    return row


def _difference(x: np.ndarray, base: np.ndarray, paired: bool) -> tuple[float, float]:
    """Mean difference and its standard error: per-path differences if paired, else independent."""
    n = x.size
    if paired:
        d = x - base
        return float(d.mean()), float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    se = math.sqrt(x.var(ddof=1) / n + base.var(ddof=1) / n) if n > 1 else 0.0
    return float(x.mean() - base.mean()), se


def metric_value(result: SimulationResult, party: str, metric: str) -> tuple[float, float]:
    """A summary metric of a result and, for the mean, its standard error (else NaN)."""
    if party not in PARTIES:
        raise ValueError(f"party must be one of {', '.join(PARTIES)} (got {party!r})")
    if metric not in metrics.METRICS:
        raise ValueError(f"metric must be one of {', '.join(metrics.METRICS)} (got {metric!r})")
    summary = result.summary()
    se = float(summary.loc[party, "se_npv"]) if metric == "expected_npv" else math.nan
    return float(summary.loc[party, metric]), se
