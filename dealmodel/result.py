"""The frozen result of a simulation, with the tables people read."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dealmodel import metrics
from dealmodel.schema import Deal
from dealmodel.terms import Headline

PARTIES = ("sponsor", "partner", "program")
_SAMPLING = threading.Lock()  # one yearly subsample simulated at a time (two sessions asking share it)


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """What a deal is worth to each party on ``paths`` simulated futures (money in millions).

    Attributes
    ----------
    npv : dict party -> (paths,) array
        NPV of each path for ``sponsor`` and ``partner`` at their own discount rates, and for the
        whole ``program`` (sponsor + partner cash flows) at the program rate.
    flows : dict party -> (paths, horizon) array
        Cash flows per path and calendar year for ``sponsor`` and ``partner``: column i holds
        the year [i, i + 1) from the valuation date, i.e. ``valuation_year + i``. A report of
        the flows; the NPVs are valued in continuous time under the deal's ``timing``.
    term_pv : (terms, paths) array
        Present value to the partner (at the partner's rate) of each term's payments, per path
        (``(terms, 0)`` when simulated with ``keep_flows=False``: NPVs are then the only
        per-path storage).
    term_mean : (terms,) array
        The mean of each term's present value over all paths.
    sample_paths : int
        Without ``flows`` (``keep_flows=False``): how many first paths, m = min(paths, 20,000) by
        default, make the fixed yearly subsample that :meth:`per_year` reads. Their yearly cash flows
        (:meth:`sample_flows`) are simulated when first asked for -- the same numbers as the paths'
        own, at a tenth of a second for 20,000 paths -- so a valuation that no one reads per year
        (a slider's, a solver's) does not pay for them.
    engine : the engine that valued the paths (the subsample is simulated with it too)
    """

    deal: Deal
    paths: int
    seed: int
    headline: Headline
    npv: dict[str, np.ndarray]
    flows: dict[str, np.ndarray]
    term_pv: np.ndarray
    candidates: dict[str, dict[str, Any]]
    term_mean: np.ndarray = field(default_factory=lambda: np.empty(0))
    sample_paths: int = 0
    engine: str | None = None
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def biobucks(self) -> float:
        """Upfront + every milestone to the partner, sales milestones as if reached (millions)."""
        return self.headline.biobucks

    @property
    def total_contract_value(self) -> float:
        """Biobucks + service fees at list price + success premiums (millions)."""
        return self.headline.total_contract_value

    @property
    def expected_pv_to_partner(self) -> float:
        """Expected PV, at the partner's rate, of every payment to the partner (sales-linked included)."""
        return float(self.term_mean.sum())

    # ------------------------------------------------------------------ per-path views

    def cash_flows(self, party: str) -> np.ndarray:
        """Per-path cash flows ``(paths, horizon)`` by calendar year of a party (``program`` = their sum)."""
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

    def certainty_equivalents(self) -> dict[str, float]:
        """Each party's certainty equivalent at its ``risk_tolerance`` (only parties that have one)."""
        from dealmodel.negotiate import certainty_equivalent

        out = {}
        for party in ("sponsor", "partner"):
            tolerance = getattr(self.deal.parties, party).risk_tolerance
            if tolerance is not None:
                out[party] = certainty_equivalent(self.npv[party], tolerance)
        return out

    def payments_by_kind(self) -> dict[str, float]:
        """Expected PV to the partner (partner's rate) of the payments of each term kind."""
        out: dict[str, float] = {}
        for i, term in enumerate(self.deal.terms):
            out[term.kind] = out.get(term.kind, 0.0) + float(self.term_mean[i])
        return out

    @property
    def per_year_paths(self) -> int:
        """How many paths :meth:`per_year` is taken over: all, or the fixed yearly subsample."""
        return self.paths if self.flows else self.sample_paths

    def sample_flows(self) -> dict[str, np.ndarray]:
        """The yearly cash flows ``(sample_paths, horizon)`` of sponsor and partner on the first
        :attr:`sample_paths` paths, simulated on first use (``{}`` when there is no subsample)."""
        if not self.sample_paths:
            return {}
        with _SAMPLING:
            if "sample_flows" not in self._cache:
                from dealmodel.engine import simulate

                first = simulate(self.deal, paths=self.sample_paths, seed=self.seed, keep_flows=True,
                                 engine=self.engine)
                self._cache["sample_flows"] = {p: first.flows[p] for p in ("sponsor", "partner")}
        return self._cache["sample_flows"]

    def _yearly(self, party: str) -> np.ndarray:
        if self.flows:
            return self.cash_flows(party)
        sample = self.sample_flows()
        if not sample:
            raise ValueError("this result keeps no yearly cash flows")
        if party == "program":
            return sample["sponsor"] + sample["partner"]
        return sample[party]

    def per_year(self) -> pd.DataFrame:
        """Expected cash flow per calendar year and party with the P10-P90 band across paths.

        Each calendar year appears once; ``year_index`` i is [i, i + 1) from the valuation date.
        Over every path when the flows were kept, else over the yearly subsample
        (:attr:`per_year_paths`, the first 20,000 paths).
        """
        if "per_year" not in self._cache:
            frames = []
            years = np.arange(self.deal.horizon_years)
            for party in PARTIES:
                cf = self._yearly(party)
                p10, p90 = np.quantile(cf, [0.1, 0.9], axis=0)
                frames.append(
                    pd.DataFrame(
                        {
                            "party": party,
                            "year_index": years,
                            "year": self.deal.valuation_year + years,
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
            "timing": self.deal.timing,
            "biobucks": self.biobucks,
            "total_contract_value": self.total_contract_value,
            "expected_pv_to_partner": self.expected_pv_to_partner,
            "parties": {
                party: {m: _clean(summary.loc[party, m]) for m in metrics.METRICS} for party in PARTIES
            },
            "candidates": {
                name: {
                    "prob_approval": _clean(row["prob_approval"]),
                    "expected_launch_year": _clean(row["expected_launch_year"]),
                    **{k: _clean(v) for k, v in row.items() if k.startswith("prob_stopped_before_")},
                }
                for name, row in self.candidates.items()
            },
            "certainty_equivalents": {k: _clean(v) for k, v in self.certainty_equivalents().items()},
            "payments": {k: _clean(v) for k, v in self.payments_by_kind().items()},
            "notes": metrics.notes(self.npv),
        }


def _clean(x: Any) -> float | None:
    """A number for JSON: null where it is undefined or not finite (``notes`` says why)."""
    x = float(x)
    return x if math.isfinite(x) else None
