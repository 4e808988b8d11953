"""Valuation metrics over simulated paths: NPV, IRR and the risk figures of a distribution.

Definitions follow the rNPV method (Stewart, Allison & Johnson, Nat Biotechnol 19:813, 2001):
risk-adjust each cash flow by simulating whether it happens, then discount at the party's own
rate; the mean over paths is the risk-adjusted NPV.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

METRICS = (
    "expected_npv",
    "std_npv",
    "p5",
    "p50",
    "p95",
    "prob_loss",
    "expected_shortfall_5",
    "risk_share",
    "value_share",
)


def irr(flows: np.ndarray, low: float = -0.9, high: float = 5.0, tol: float = 1e-12) -> np.ndarray:
    """Internal rate of return of each row of ``flows`` ``(n, T)``; NaN where none exists.

    Like ``numpy_financial.irr``, where several rates give NPV = 0 the one closest to zero is
    returned. Roots are searched in [low, high] (by default -90% to +500% a year): a grid
    finds each row's sign changes, then vectorised bisection refines the bracket nearest zero.
    """
    flows = np.atleast_2d(np.asarray(flows, dtype=float))
    n, T = flows.shape
    grid = np.unique(np.concatenate([np.linspace(low, 0.0, 40), np.geomspace(1e-4, high, 60)]))
    powers = np.arange(T, dtype=float)
    out = np.full(n, np.nan)
    for lo_row in range(0, n, 65536):
        f = flows[lo_row : lo_row + 65536]
        values = f @ ((1.0 + grid)[None, :] ** -powers[:, None])  # (m, G)
        change = np.sign(values[:, :-1]) * np.sign(values[:, 1:]) <= 0
        change &= ~((values[:, :-1] == 0) & (values[:, 1:] == 0))
        if not change.any():
            continue
        # Bracket closest to zero: distance of the interval [g_i, g_i+1] from 0.
        dist = np.where(grid[:-1] * grid[1:] <= 0, 0.0, np.minimum(abs(grid[:-1]), abs(grid[1:])))
        score = np.where(change, dist[None, :], np.inf)
        which = np.argmin(score, axis=1)
        ok = np.isfinite(score[np.arange(f.shape[0]), which])
        a = grid[which][ok]
        b = grid[which + 1][ok]
        rows = f[ok]
        fa = _npv_rows(rows, a, powers)
        for _ in range(200):
            mid = 0.5 * (a + b)
            fm = _npv_rows(rows, mid, powers)
            left = np.sign(fm) * np.sign(fa) <= 0
            b = np.where(left, mid, b)
            a = np.where(left, a, mid)
            fa = np.where(left, fa, fm)
            if np.max(b - a) < tol:
                break
        out[lo_row : lo_row + f.shape[0]][ok] = 0.5 * (a + b)
    return out


def _npv_rows(rows: np.ndarray, rates: np.ndarray, powers: np.ndarray) -> np.ndarray:
    return np.sum(rows * (1.0 + rates)[:, None] ** -powers[None, :], axis=1)


def expected_shortfall(values: np.ndarray, level: float = 0.05) -> float:
    """Mean of the worst ``level`` share of outcomes (the lowest ceil(level * n) values)."""
    k = max(1, math.ceil(level * values.size))
    return float(np.mean(np.partition(values, k - 1)[:k]))


RELATIVE_ZERO = 1e-9
"""A spread or a total below this share of the numbers' own size is numerically zero."""


def _scale(*arrays: np.ndarray) -> float:
    return max(float(np.mean(np.abs(a))) for a in arrays)


def risk_share(party: np.ndarray, program: np.ndarray) -> float:
    """Slope of the party's NPV on the program's NPV across paths: cov / var (0 for a fee-taker).

    Undefined (NaN) when the program's NPV does not vary: its standard deviation is numerically
    zero against the size of the NPVs (see :func:`notes`).
    """
    std = float(np.std(program))
    if std == 0.0 or std <= RELATIVE_ZERO * _scale(party, program):
        return math.nan
    return float(np.mean((party - party.mean()) * (program - program.mean())) / std**2)


def value_share(party_mean: float, sponsor_mean: float, partner_mean: float) -> float:
    """The party's share of the two parties' total expected NPV; NaN where that total is numerically zero."""
    total = sponsor_mean + partner_mean
    if total == 0.0 or abs(total) <= RELATIVE_ZERO * max(abs(sponsor_mean), abs(partner_mean)):
        return math.nan
    return party_mean / total


def notes(npv: dict[str, np.ndarray]) -> list[str]:
    """Why a metric is undefined for these NPVs, one sentence each (empty when all are defined)."""
    out = []
    program = npv["program"]
    if math.isnan(risk_share(npv["sponsor"], program)):
        out.append("risk_share is undefined: the program's NPV does not vary across paths, so there is no program "
                   "risk to share")
    if math.isnan(value_share(1.0, float(npv["sponsor"].mean()), float(npv["partner"].mean()))):
        out.append("value_share is undefined: the two parties' expected NPVs add up to zero")
    if not all(np.isfinite(v).all() for v in npv.values()):
        out.append("some NPVs are not finite numbers; the figures that depend on them are left out")
    return out


def distribution_metrics(values: np.ndarray) -> dict[str, float]:
    p5, p50, p95 = np.quantile(values, [0.05, 0.5, 0.95])
    return {
        "expected_npv": float(values.mean()),
        "std_npv": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "p5": float(p5),
        "p50": float(p50),
        "p95": float(p95),
        "prob_loss": float(np.mean(values < 0.0)),
        "expected_shortfall_5": expected_shortfall(values),
    }


def summarize(npv: dict[str, np.ndarray]) -> pd.DataFrame:
    """Rows sponsor / partner / program, columns :data:`METRICS` and ``se_npv``, from per-path NPVs."""
    program = npv["program"]
    sponsor_mean, partner_mean = float(npv["sponsor"].mean()), float(npv["partner"].mean())
    rows = {}
    for party in ("sponsor", "partner", "program"):
        values = npv[party]
        row = distribution_metrics(values)
        row["se_npv"] = row["std_npv"] / math.sqrt(values.size)
        if party == "program":
            row["risk_share"] = 1.0
            row["value_share"] = 1.0
        else:
            row["risk_share"] = risk_share(values, program)
            row["value_share"] = value_share(row["expected_npv"], sponsor_mean, partner_mean)
        rows[party] = row
    table = pd.DataFrame.from_dict(rows, orient="index")[[*METRICS, "se_npv"]]
    table.index.name = "party"
    return table
