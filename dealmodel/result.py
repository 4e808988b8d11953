"""The frozen result of a simulation, with the tables people read."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dealmodel import metrics
from dealmodel.schema import Deal

PARTIES = ("sponsor", "partner", "program")


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """What a deal is worth to each party on ``paths`` simulated futures (money in millions).

    Attributes
    ----------
    npv : dict party -> (paths,) array
        NPV of each path for ``sponsor`` and ``partner`` at their own discount rates, and for the
        whole ``program`` (sponsor + partner cash flows) at the program rate.
    flows : dict party -> (paths, horizon + 1) array
        Cash flows per path and period for ``sponsor`` and ``partner``; period 0 is the
        valuation date, period t the year (t - 1, t].
    term_pv : (terms, paths) array
        Present value to the partner (at the partner's rate) of each term's payments, per path.
    """

    deal: Deal
    paths: int
    seed: int
    headline_value: float
    npv: dict[str, np.ndarray]
    flows: dict[str, np.ndarray]
    term_pv: np.ndarray
    candidates: dict[str, dict[str, Any]]
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ per-path views

    def cash_flows(self, party: str) -> np.ndarray:
        """Per-path cash flows ``(paths, horizon + 1)`` of a party (``program`` = their sum)."""
        if not self.flows:
            raise ValueError("this result was simulated with keep_flows=False: per-path cash flows were not kept")
        if party == "program":
            return self.flows["sponsor"] + self.flows["partner"]
        return self.flows[party]

    def irr(self, party: str) -> np.ndarray:
        """IRR of each path's cash flows for a party; NaN where no rate in [-90%, 500%] exists."""
        key = f"irr:{party}"
        if key not in self._cache:
            self._cache[key] = metrics.irr(self.cash_flows(party))
        return self._cache[key]

    # ------------------------------------------------------------------ tables

    def summary(self) -> pd.DataFrame:
        """Rows sponsor / partner / program; columns the metrics of :data:`metrics.METRICS`."""
        if "summary" not in self._cache:
            self._cache["summary"] = metrics.summarize(self.npv)
        return self._cache["summary"].copy()

    def payments_by_kind(self) -> dict[str, float]:
        """Expected PV to the partner (partner's rate) of the payments of each term kind."""
        out: dict[str, float] = {}
        for i, term in enumerate(self.deal.terms):
            out[term.kind] = out.get(term.kind, 0.0) + float(self.term_pv[i].mean())
        return out

    def per_year(self) -> pd.DataFrame:
        """Expected cash flow per period and party with the P10-P90 band across paths."""
        if "per_year" not in self._cache:
            frames = []
            periods = np.arange(self.deal.horizon_years + 1)
            for party in PARTIES:
                cf = self.cash_flows(party)
                p10, p90 = np.quantile(cf, [0.1, 0.9], axis=0)
                frames.append(
                    pd.DataFrame(
                        {
                            "party": party,
                            "period": periods,
                            "year": self.deal.valuation_year + np.maximum(periods - 1, 0),
                            "mean": cf.mean(axis=0),
                            "p10": p10,
                            "p90": p90,
                        }
                    )
                )
            self._cache["per_year"] = pd.concat(frames, ignore_index=True)
        return self._cache["per_year"].copy()

    def candidate_table(self) -> pd.DataFrame:
        table = pd.DataFrame.from_dict(self.candidates, orient="index")
        table.index.name = "candidate"
        return table

    def to_dict(self) -> dict[str, Any]:
        """The ``dealmodel value --json`` document (money in millions)."""
        summary = self.summary()
        return {
            "deal": self.deal.name,
            "paths": self.paths,
            "seed": self.seed,
            "currency": self.deal.currency,
            "headline_value": self.headline_value,
            "parties": {
                party: {m: _clean(summary.loc[party, m]) for m in metrics.METRICS} for party in PARTIES
            },
            "candidates": {
                name: {
                    "prob_approval": _clean(row["prob_approval"]),
                    "expected_launch_year": _clean(row["expected_launch_year"]),
                }
                for name, row in self.candidates.items()
            },
            "payments": {k: _clean(v) for k, v in self.payments_by_kind().items()},
        }


def _clean(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x
