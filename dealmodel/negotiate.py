"""Negotiation: each side's walk-away, the zone of possible agreement, fair splits, the frontier.

Every evaluation uses one seed, so each party's value is a deterministic, smooth function of the
term parameter (inputs are sampled by inverse CDF) and a difference between two evaluations is a
paired figure. A party's value is its expected NPV (``measure="enpv"``) or its certainty
equivalent under exponential utility with its ``risk_tolerance`` R (``measure="ce"``):

    CE = -R ln E[exp(-X / R)]          (risk-neutral, R = None: CE = E[X])

computed as ``-R (logsumexp(-X / R) - ln n)`` so no exponential overflows.

Gains are values over walk-away: ``g = value(x) - walkaway``. The zone of possible agreement is
where both gains are >= 0. Inside it:

* **Nash** bargaining point: maximises ``w ln g_sponsor + (1 - w) ln g_partner`` (``w`` the
  sponsor's bargaining weight, 1/2 by default), i.e. the weighted product of the gains;
* **equal gain**: ``g_sponsor = g_partner``;
* **equal share** (Kalai-Smorodinsky): each party gets the same share of the most it could gain
  anywhere in the zone, ``g_s / max g_s = g_p / max g_p``.

Each comes with both parties' values and the joint gain, and standard errors from the per-path
influence of each figure (paired across the evaluations, which share their paths).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from dealmodel.edit import get_value, set_value, set_values
from dealmodel.engine import simulate_many
from dealmodel.schema import Deal, ServiceFees, SuccessRebate
from dealmodel.solver import default_range

PARTIES = ("sponsor", "partner")
MEASURES = ("enpv", "ce")
_TERM_PATH = re.compile(r"^terms\[(\d+)\]\.")


# --------------------------------------------------------------------------- certainty equivalents


def certainty_equivalent(values: np.ndarray, tolerance: float | None) -> float:
    """``-R ln E[exp(-X/R)]`` of the sample ``values`` (the mean when ``tolerance`` is None)."""
    values = np.asarray(values, dtype=float)
    if tolerance is None:
        return float(values.mean())
    if not tolerance > 0:
        raise ValueError(f"risk tolerance must be > 0 (got {tolerance!r})")
    return float(-tolerance * (special.logsumexp(-values / tolerance) - math.log(values.size)))


def influence(values: np.ndarray, tolerance: float | None) -> np.ndarray:
    """Each path's influence on the value (mean or CE): its standard error is ``std / sqrt(n)``.

    For the CE, d CE / d m = -R / m with m = E[exp(-X/R)], so path i contributes
    ``-R (e_i - m) / m``, e_i = exp(-X_i / R), computed relative to the largest e_i.
    """
    values = np.asarray(values, dtype=float)
    if tolerance is None:
        return values - values.mean()
    z = -values / tolerance
    e = np.exp(z - z.max())
    m = e.mean()
    return -tolerance * (e - m) / m


def _se(influence_values: np.ndarray) -> float:
    n = influence_values.size
    return float(influence_values.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0


# --------------------------------------------------------------------------- walk-aways


@dataclass(frozen=True)
class WalkAway:
    """A party's walk-away: a number (millions) or a structure valued on the same paths."""

    value: float | None = None
    deal: Deal | None = None

    def label(self) -> str:
        return f"{self.value:,.1f}" if self.deal is None else self.deal.name


def _walkaways(walkaway: Any) -> dict[str, WalkAway]:
    """``walkaway``: a number or a Deal for both parties, or a mapping party -> number or Deal."""
    if isinstance(walkaway, Mapping):
        missing = [p for p in PARTIES if p not in walkaway]
        extra = [p for p in walkaway if p not in PARTIES]
        if missing or extra:
            raise ValueError(f"walkaway needs exactly the parties sponsor and partner (missing {missing}, "
                             f"unknown {extra})")
        return {p: _walkaway(walkaway[p], p) for p in PARTIES}
    return {p: _walkaway(walkaway, p) for p in PARTIES}


def _walkaway(x: Any, party: str) -> WalkAway:
    if isinstance(x, Deal):
        return WalkAway(deal=x)
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(float(x)):
        raise ValueError(f"walkaway for {party}: a number (millions) or a deal (got {x!r})")
    return WalkAway(value=float(x))


# --------------------------------------------------------------------------- evaluations


def separable(deal: Deal, parameters: Sequence[str]) -> bool:
    """Two plain parameters of two different terms whose payments no other term depends on.

    Not so: ``scale(...)``/``all(...)`` parameters, two fields of one term, service fees where a
    payment is creditable against them or a success rebate refunds them, and creditable
    payments where there are fees (fee credits tie those terms together).
    """
    if len(parameters) != 2:
        return False
    index = []
    for p in parameters:
        m = _TERM_PATH.match(p)
        if not m or int(m.group(1)) >= len(deal.terms):
            return False
        index.append(int(m.group(1)))
    if index[0] == index[1]:
        return False
    fees = any(isinstance(t, ServiceFees) for t in deal.terms)
    tied = any(getattr(t, "creditable", False) for t in deal.terms) or any(
        isinstance(t, SuccessRebate) for t in deal.terms)
    for i in index:
        term = deal.terms[i]
        if (isinstance(term, ServiceFees) and tied) or (getattr(term, "creditable", False) and fees):
            return False
    return True


@dataclass
class _Evaluator:
    """Both parties' values at any parameter value, on common paths, with their per-path influence."""

    deal: Deal
    parameters: tuple[str, ...]
    measure: str
    paths: int
    seed: int
    walk: dict[str, WalkAway]
    evaluations: int = 0
    _memo: dict[tuple[float, ...], dict[str, Any]] = field(default_factory=dict)
    _walk_values: dict[str, tuple[float, np.ndarray]] = field(default_factory=dict)

    def tolerance(self, party: str) -> float | None:
        if self.measure == "enpv":
            return None
        return getattr(self.deal.parties, party).risk_tolerance

    def _value(self, x: np.ndarray, party: str) -> tuple[float, np.ndarray]:
        """A party's value (mean or CE) of the NPVs ``x`` and each path's influence on it."""
        tol = self.tolerance(party)
        return certainty_equivalent(x, tol), influence(x, tol)

    def deal_at(self, x: Sequence[float]) -> Deal:
        if not any(p.startswith(("scale(", "all(")) for p in self.parameters):  # plain paths: one edit
            return set_values(self.deal, {p: float(v) for p, v in zip(self.parameters, x, strict=True)})
        deal = self.deal
        for parameter, value in zip(self.parameters, x, strict=True):
            deal = set_value(deal, parameter, float(value))
        return deal

    def prepare(self) -> None:
        """Value the structures given as walk-aways (on the same paths)."""
        deals = {p: w.deal for p, w in self.walk.items() if w.deal is not None}
        if deals:
            results = simulate_many(list(deals.values()), paths=self.paths, seed=self.seed, keep_flows=False,
                                    yearly_sample=0)
            for party, result in zip(deals, results, strict=True):
                self._walk_values[party] = self._value(result.npv[party], party)
        for party, w in self.walk.items():
            if w.deal is None:
                self._walk_values[party] = (w.value, np.zeros(self.paths))

    def walkaway(self, party: str) -> float:
        return self._walk_values[party][0]

    def _npvs(self, points: Sequence[tuple[float, ...]]) -> list[dict[str, np.ndarray]]:
        results = simulate_many([self.deal_at(p) for p in points], paths=self.paths, seed=self.seed,
                                keep_flows=False, yearly_sample=0)
        self.evaluations += len(points)
        return [{party: r.npv[party] for party in PARTIES} for r in results]

    def _entry(self, p: tuple[float, ...], npv: dict[str, np.ndarray]) -> dict[str, Any]:
        entry: dict[str, Any] = {"x": p}
        for party in PARTIES:
            value, infl = self._value(npv[party], party)
            w_value, w_infl = self._walk_values[party]
            entry[party] = value
            entry[f"{party}_gain"] = value - w_value
            entry[f"{party}_influence"] = infl - w_infl
        return entry

    def many(self, points: Sequence[Sequence[float]]) -> list[dict[str, Any]]:
        """Gains at each point (evaluated together: one program simulation for all)."""
        todo = [tuple(float(v) for v in p) for p in points]
        new = [p for p in dict.fromkeys(todo) if p not in self._memo]
        if new:
            for p, npv in zip(new, self._npvs(new), strict=True):
                self._memo[p] = self._entry(p, npv)
        return [self._memo[p] for p in todo]

    def grid(self, axes: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """Gains at every point of a two-parameter grid (row-major).

        Where the two parameters sit in different terms that no other term depends on
        (:func:`separable`), each path's NPV is the base plus one change per parameter:
        NPV(a, b) = NPV(a, b0) + NPV(a0, b) - NPV(a0, b0), exactly (to rounding). Then only the
        two lines through the first corner are simulated, and the sum is checked against a full
        valuation at three other points; any disagreement (beyond 1e-9) values the whole grid.
        """
        points = [(float(a), float(b)) for a in axes[0] for b in axes[1]]
        if not separable(self.deal, self.parameters):
            return self.many(points)
        a0, b0 = float(axes[0][0]), float(axes[1][0])
        line = list(dict.fromkeys([(float(a), b0) for a in axes[0]] + [(a0, float(b)) for b in axes[1]]))
        npv = dict(zip(line, self._npvs(line), strict=True))

        def summed(a: float, b: float) -> dict[str, np.ndarray]:
            return {q: npv[(a, b0)][q] + npv[(a0, b)][q] - npv[(a0, b0)][q] for q in PARTIES}

        n = len(axes[0])
        checks = [points[-1], points[(n // 2) * len(axes[1]) + len(axes[1]) // 2], points[len(axes[1]) + 1]]
        checks = [c for c in dict.fromkeys(checks) if c not in npv]
        for c, exact in zip(checks, self._npvs(checks), strict=True):
            for q in PARTIES:
                if not np.allclose(summed(*c)[q], exact[q], rtol=1e-9, atol=1e-9 * (1.0 + np.abs(exact[q]).max())):
                    return self.many(points)
            self._memo[c] = self._entry(c, exact)
        for p in points:
            if p not in self._memo:
                self._memo[p] = self._entry(p, npv[p] if p in npv else summed(*p))
        return [self._memo[p] for p in points]

    def one(self, x: Sequence[float]) -> dict[str, Any]:
        return self.many([x])[0]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Split:
    """One fair point inside the zone."""

    rule: str
    x: tuple[float, ...]
    sponsor: float
    partner: float
    sponsor_gain: float
    partner_gain: float
    joint_gain: float
    sponsor_se: float
    partner_se: float
    joint_gain_se: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True, eq=False)
class Negotiation:
    """The zone of agreement over one or two term parameters, its fair splits and the value curves.

    ``table``: both parties' values and gains at every evaluated grid point. ``zone``: for one
    parameter, the list of intervals ``(low, high)`` where both gains are >= 0 (empty: none); for
    two, the share of grid points inside. ``shortfall``: when there is no zone, the least total
    (millions) by which the walk-aways are missed at any point of the range. ``splits``: rule -> :class:`Split`.
    """

    deal: Deal
    parameters: tuple[str, ...]
    measure: str
    walkaway: dict[str, WalkAway]
    walkaway_values: dict[str, float]
    ranges: tuple[tuple[float, float], ...]
    table: pd.DataFrame
    zone: list[tuple[float, float]] | float
    shortfall: float
    splits: dict[str, Split]
    paths: int
    seed: int
    evaluations: int

    @property
    def has_zone(self) -> bool:
        return bool(self.zone) if isinstance(self.zone, list) else self.zone > 0

    @property
    def curves(self) -> pd.DataFrame:
        """Each party's walk-away curve over two parameters: for every grid value of the first,
        the value of the second at which the party's gain is 0 (linear between grid points; NaN
        where its gain keeps one sign along the line). The zone lies between the two curves,
        where both gains are >= 0. Empty for one parameter."""
        if len(self.parameters) != 2:
            return pd.DataFrame()
        first, second = self.parameters
        rows = []
        for a, line in self.table.groupby(first, sort=True):
            line = line.sort_values(second)
            b = line[second].to_numpy()
            row = {first: float(a)}
            for party in PARTIES:
                g = line[f"{party}_gain"].to_numpy()
                row[party] = _crossing(b, g)
            rows.append(row)
        return pd.DataFrame(rows, columns=[first, *PARTIES])

    def summary(self) -> str:
        names = " x ".join(self.parameters)
        walk = ", ".join(f"{p} {w.label()} ({self.walkaway_values[p]:,.1f})" for p, w in self.walkaway.items())
        measure = "certainty equivalents" if self.measure == "ce" else "expected NPVs"
        lines = [f"{self.deal.name}: zone of agreement over {names}", f"  measure: {measure}; walk-away: {walk}"]
        if not self.has_zone:
            lines.append(f"  no zone on this range: at best the walk-aways are missed by {self.shortfall:,.1f} $M "
                         f"in all")
        elif isinstance(self.zone, list):
            low, high = self.ranges[0]

            def end(x: float) -> str:
                return f"{x:.6g}" + (" (end of the range searched)" if x in (low, high) else "")

            lines.append("  zone: " + ", ".join(f"{end(lo)} to {end(hi)}" for lo, hi in self.zone))
        else:
            lines.append(f"  zone: {self.zone:.0%} of the grid")
        for split in self.splits.values():
            at = ", ".join(f"{v:.6g}" for v in split.x)
            lines.append(f"  {split.rule:<11} at {at}: sponsor gains {split.sponsor_gain:,.1f} "
                         f"± {split.sponsor_se:.1f}, partner {split.partner_gain:,.1f} ± {split.partner_se:.1f}, "
                         f"joint {split.joint_gain:,.1f} ± {split.joint_gain_se:.1f} $M")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "deal": self.deal.name, "parameters": list(self.parameters), "measure": self.measure,
            "walkaway": {p: {"value": self.walkaway_values[p], "structure": w.deal.name if w.deal else None}
                         for p, w in self.walkaway.items()},
            "ranges": [list(r) for r in self.ranges],
            "zone": [list(z) for z in self.zone] if isinstance(self.zone, list) else self.zone,
            "shortfall": self.shortfall, "splits": {k: s.to_dict() for k, s in self.splits.items()},
            **({"curves": [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                           for row in self.curves.to_dict("records")]} if len(self.parameters) == 2 else {}),
            "paths": self.paths, "seed": self.seed, "evaluations": self.evaluations,
        }


def _crossing(x: np.ndarray, g: np.ndarray) -> float:
    """The first x where g (sampled at x) crosses 0, by linear interpolation; NaN if it does not."""
    for i in range(len(g) - 1):
        if g[i] == 0.0:
            return float(x[i])
        if (g[i] < 0.0) != (g[i + 1] < 0.0):
            return float(x[i] + (x[i + 1] - x[i]) * g[i] / (g[i] - g[i + 1]))
    return float(x[-1]) if len(g) and g[-1] == 0.0 else math.nan


def _split(rule: str, entry: dict[str, Any]) -> Split:
    joint = entry["sponsor_influence"] + entry["partner_influence"]
    return Split(
        rule=rule, x=entry["x"], sponsor=entry["sponsor"], partner=entry["partner"],
        sponsor_gain=entry["sponsor_gain"], partner_gain=entry["partner_gain"],
        joint_gain=entry["sponsor_gain"] + entry["partner_gain"],
        sponsor_se=_se(entry["sponsor_influence"]), partner_se=_se(entry["partner_influence"]),
        joint_gain_se=_se(joint),
    )


def _root(f, lo: float, hi: float) -> float:
    return float(optimize.brentq(f, lo, hi, xtol=1e-12, rtol=4 * np.finfo(float).eps, maxiter=200))


def _zone_1d(ev: _Evaluator, grid: np.ndarray) -> list[tuple[float, float]]:
    """Intervals of the grid's range where both gains are >= 0, ends refined by Brent's method."""
    entries = ev.many([[x] for x in grid])
    inside = np.array([e["sponsor_gain"] >= 0 and e["partner_gain"] >= 0 for e in entries])

    def edge(a: float, b: float) -> float:
        """The boundary between a (inside or not) and b (the other) for the party that switches."""
        ea, eb = ev.one([a]), ev.one([b])
        for party in PARTIES:
            ga, gb = ea[f"{party}_gain"], eb[f"{party}_gain"]
            if (ga >= 0) != (gb >= 0):
                return _root(lambda x, p=party: ev.one([x])[f"{p}_gain"], a, b)
        return 0.5 * (a + b)

    zones = []
    i = 0
    while i < grid.size:
        if not inside[i]:
            i += 1
            continue
        j = i
        while j + 1 < grid.size and inside[j + 1]:
            j += 1
        lo = grid[i] if i == 0 else edge(grid[i - 1], grid[i])
        hi = grid[j] if j == grid.size - 1 else edge(grid[j], grid[j + 1])
        zones.append((float(lo), float(hi)))
        i = j + 1
    return zones


def _splits_1d(ev: _Evaluator, zone: tuple[float, float], weight: float) -> dict[str, Split]:
    lo, hi = zone
    out: dict[str, Split] = {}
    if hi <= lo:
        entry = ev.one([lo])
        return {rule: _split(rule, entry) for rule in ("nash", "equal_gain", "equal_share")}

    def nash(x: float) -> float:
        e = ev.one([x])
        gs, gp = max(e["sponsor_gain"], 1e-300), max(e["partner_gain"], 1e-300)
        return -(weight * math.log(gs) + (1.0 - weight) * math.log(gp))

    best = optimize.minimize_scalar(nash, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10 * (hi - lo)})
    out["nash"] = _split("nash", ev.one([float(best.x)]))

    def balance(x: float, ms: float = 1.0, mp: float = 1.0) -> float:
        e = ev.one([x])
        return e["sponsor_gain"] / ms - e["partner_gain"] / mp

    def balanced(ms: float, mp: float) -> float:
        a, b = balance(lo, ms, mp), balance(hi, ms, mp)
        if a == 0:
            return lo
        if b == 0 or (a > 0) == (b > 0):
            return hi if abs(b) < abs(a) else lo
        return _root(lambda x: balance(x, ms, mp), lo, hi)

    out["equal_gain"] = _split("equal_gain", ev.one([balanced(1.0, 1.0)]))
    # the most each party can gain in the zone: at one of its ends (gains are monotone in a transfer)
    ends = ev.many([[lo], [hi]])
    ms = max(e["sponsor_gain"] for e in ends)
    mp = max(e["partner_gain"] for e in ends)
    if ms > 0 and mp > 0:
        out["equal_share"] = _split("equal_share", ev.one([balanced(ms, mp)]))
    else:
        out["equal_share"] = out["equal_gain"]
    return out


def negotiate(
    deal: Deal,
    parameters: str | Sequence[str],
    walkaway: Any,
    measure: str = "enpv",
    ranges: Sequence[tuple[float, float]] | None = None,
    paths: int = 20_000,
    seed: int = 0,
    weight: float = 0.5,
    grid: int = 25,
) -> Negotiation:
    """The zone of possible agreement over one or two term parameters of ``deal``.

    ``walkaway``: a number (millions) or a deal for both parties, or ``{"sponsor": ..., "partner":
    ...}``; a deal is valued on the same paths. ``measure``: ``"enpv"`` or ``"ce"`` (each party's
    certainty equivalent at its ``risk_tolerance``). ``ranges``: one ``(low, high)`` per
    parameter (default: the solver's range for that kind of number). ``weight``: the sponsor's
    bargaining weight in the Nash product. ``grid``: points per parameter.
    """
    params = (parameters,) if isinstance(parameters, str) else tuple(parameters)
    if not 1 <= len(params) <= 2:
        raise ValueError(f"negotiate takes one or two parameters (got {len(params)})")
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)} (got {measure!r})")
    if not 0.0 < weight < 1.0:
        raise ValueError(f"weight (the sponsor's bargaining weight) must be between 0 and 1 (got {weight!r})")
    if isinstance(grid, bool) or not isinstance(grid, int) or not 3 <= grid <= 201:
        raise ValueError(f"grid must be a whole number from 3 to 201 (got {grid!r})")
    for p in params:  # a path that names nothing fails here, with its name
        if not p.startswith(("scale(", "all(")):
            get_value(deal, p)
    if ranges is None:
        ranges = [default_range(deal, p) for p in params]
    ranges = tuple((float(lo), float(hi)) for lo, hi in ranges)
    if len(ranges) != len(params):
        raise ValueError(f"give one range per parameter ({len(params)} parameters, {len(ranges)} ranges)")
    for p, (lo, hi) in zip(params, ranges, strict=True):
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"range of {p}: low must be below high (got {lo!r} to {hi!r})")
    ev = _Evaluator(deal, params, measure, paths, seed, _walkaways(walkaway))
    ev.prepare()
    axes = [np.linspace(lo, hi, grid) for lo, hi in ranges]
    if len(params) == 1:
        zones = _zone_1d(ev, axes[0])
        points = [[x] for x in axes[0]]
    else:
        points = [[a, b] for a in axes[0] for b in axes[1]]
        zones = []
    entries = ev.many(points) if len(params) == 1 else ev.grid(axes)
    table = pd.DataFrame([{**{p: e["x"][i] for i, p in enumerate(params)},
                           **{k: e[k] for k in ("sponsor", "partner", "sponsor_gain", "partner_gain")},
                           "joint_gain": e["sponsor_gain"] + e["partner_gain"],
                           "inside": e["sponsor_gain"] >= 0 and e["partner_gain"] >= 0} for e in entries])
    # the least total by which the walk-aways are missed at any point (0 inside a zone); for a
    # transfer both value alike (an upfront) it is minus the best joint gain
    deficit = float((np.maximum(0.0, -table["sponsor_gain"]) + np.maximum(0.0, -table["partner_gain"])).min())
    splits: dict[str, Split] = {}
    if len(params) == 1:
        zone: list[tuple[float, float]] | float = zones
        if zones:
            widest = max(zones, key=lambda z: z[1] - z[0])
            splits = _splits_1d(ev, widest, weight)
    else:
        zone = float(table["inside"].mean())
        inside = table[table["inside"]]
        if len(inside):
            gs, gp = inside["sponsor_gain"].clip(lower=1e-300), inside["partner_gain"].clip(lower=1e-300)
            rows = {
                "nash": (weight * np.log(gs) + (1 - weight) * np.log(gp)).idxmax(),
                "equal_gain": (inside["sponsor_gain"] - inside["partner_gain"]).abs().idxmin(),
                "equal_share": (inside["sponsor_gain"] / inside["sponsor_gain"].max()
                                - inside["partner_gain"] / inside["partner_gain"].max()).abs().idxmin(),
            }
            for rule, i in rows.items():
                splits[rule] = _split(rule, ev.one(entries[i]["x"]))
    has_zone = bool(zone) if isinstance(zone, list) else zone > 0
    return Negotiation(
        deal=deal, parameters=params, measure=measure, walkaway=ev.walk,
        walkaway_values={p: ev.walkaway(p) for p in PARTIES}, ranges=ranges, table=table, zone=zone,
        shortfall=0.0 if has_zone else deficit, splits=splits, paths=paths, seed=seed,
        evaluations=ev.evaluations,
    )


# --------------------------------------------------------------------------- the frontier


def frontier(deals: Sequence[Deal] | Mapping[str, Deal], measure: str = "enpv", paths: int = 20_000,
             seed: int = 0) -> pd.DataFrame:
    """Sponsor value against partner value for each structure, and which are dominated.

    A structure is dominated when another is at least as good for both parties and better for
    one. Values are expected NPVs or certainty equivalents (each party's ``risk_tolerance``).
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)} (got {measure!r})")
    labelled = dict(deals) if isinstance(deals, Mapping) else {d.name: d for d in deals}
    results = simulate_many(list(labelled.values()), paths=paths, seed=seed, keep_flows=False, yearly_sample=0)
    rows = []
    for (name, deal), result in zip(labelled.items(), results, strict=True):
        row = {"structure": name}
        for party in PARTIES:
            tol = getattr(deal.parties, party).risk_tolerance if measure == "ce" else None
            row[party] = certainty_equivalent(result.npv[party], tol)
        rows.append(row)
    return dominance(pd.DataFrame(rows).set_index("structure"))


def frontier_sweep(deal: Deal, parameter: str, values: Sequence[float],
                   others: Sequence[Deal] | Mapping[str, Deal] = (), measure: str = "enpv", paths: int = 20_000,
                   seed: int = 0) -> pd.DataFrame:
    """The frontier of a family of structures: ``deal`` with ``parameter`` at each of ``values``
    (rows named ``"PARAMETER = VALUE"``), placed beside ``others`` (e.g. the structures on the table),
    all on the same paths; see :func:`frontier`."""
    if len(values) < 1:
        raise ValueError("frontier_sweep needs at least one value of the parameter")
    family = {f"{parameter} = {float(v):g}": set_value(deal, parameter, float(v)) for v in values}
    extra = dict(others) if isinstance(others, Mapping) else {d.name: d for d in others}
    clash = set(family) & set(extra)
    if clash:
        raise ValueError(f"structure names used twice: {', '.join(sorted(clash))}")
    table = frontier({**family, **extra}, measure=measure, paths=paths, seed=seed)
    table["swept"] = [name in family for name in table.index]
    return table


def dominance(table: pd.DataFrame) -> pd.DataFrame:
    """Flag each row (columns ``sponsor``, ``partner``) that another beats for one party without
    losing for the other: ``dominated`` and ``dominated_by`` (the names of those that beat it)."""
    table = table.copy()
    s, p = table["sponsor"].to_numpy(), table["partner"].to_numpy()
    better = (s[None, :] >= s[:, None]) & (p[None, :] >= p[:, None]) & ((s[None, :] > s[:, None])
                                                                          | (p[None, :] > p[:, None]))
    table["dominated"] = better.any(axis=1)
    table["dominated_by"] = [", ".join(map(str, table.index[better[i]])) for i in range(len(table))]
    return table


def comparison_frontier(comparison_table: pd.DataFrame, measure: str = "enpv") -> pd.DataFrame:
    """The frontier of the structures of a comparison (``Comparison.table``), from its columns."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)} (got {measure!r})")
    column = "expected_npv" if measure == "enpv" else "certainty_equivalent"
    table = pd.DataFrame({p: comparison_table[f"{p}_{column}"] for p in PARTIES})
    table.index.name = "structure"
    return dominance(table)
