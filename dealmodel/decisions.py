"""Go/no-go at the gates: who stops a candidate, when, and what the deal's terms do to it.

At the start of every remaining phase but the first (a **gate**) the candidate's owner sees a
forecast of its peak sales and decides whether to run the phase. Stopping ends development
there: no later phase is started or paid for, no later milestone or fee falls due, and terms
that fire when development ends (wind-down fees, capacity release) fire at the gate.

**Forecasts.** On each path, the log forecast at gate k is ``log(peak sales) + e_k``. The errors
shrink from gate to gate with standard deviations ``s_k`` (``decisions.forecast_noise``, by the
phase about to start) and are built forward, each from a draw revealed at its gate:
``e_1 = s_1 x_1`` and ``e_(k+1) = (s_(k+1)^2 / s_k^2) e_k + s_(k+1) sqrt(1 - s_(k+1)^2 / s_k^2) x_(k+1)``,
so that ``e_k - e_(k+1)`` is independent of ``e_(k+1)``: the latest forecast holds everything the
earlier ones said. The draws ``x`` come from their own random stream (block b, candidate c:
``SeedSequence(seed, spawn_key=(b, 2_000_000 + c))``), so the program's paths do not move.

**Rules.** ``threshold``: go on where the forecast is at least ``decisions.threshold``.
``optimal``: go on where the owner's expected value of going on exceeds that of stopping, given
the forecast and the gate's date. The owner's value is that of the candidate's own flows and of
every candidate-level term's payments for it (:func:`dealmodel.breakdown.candidate_ledgers`), to
the sponsor, the partner or both as one (``program``), at that party's rate. The expectation is
a least-squares regression (Longstaff & Schwartz, Rev Financ Stud 14:113, 2001) of the realised
difference, going on under the rule at later gates less stopping now, on functions of the
forecast and date, fitted gate by gate from the last on ``decisions.fit_paths`` paths of
their own (blocks from :data:`FIT_BLOCK` on), so that a path's own future never informs its
decision. Program-level terms (an upfront) and interactions between candidates (tiers over
several products, fee credits) are not part of a gate decision.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from dealmodel.program import BLOCK, CandidatePaths, ProgramPaths, sales_by_launch_year, simulate_program
from dealmodel.schema import Deal

FIT_BLOCK = 1 << 40
"""The optimal rule is fitted on blocks from this one on: far from any run's own paths."""
SIGNAL_KEY = 2_000_000
MIN_FIT = 50
"""Fewer fitting paths than this at a gate: the candidate always goes on there."""
PARTY_INDEX = {"sponsor": 0, "partner": 1, "program": 2}


def forecast_draws(deal: Deal, seed: int, first_block: int, n_blocks: int, n: int) -> list[np.ndarray]:
    """Each candidate's standard normal draws ``(n, K)``, one revealed at each phase's start."""
    out = []
    for c, cand in enumerate(deal.candidates):
        K = len(cand.remaining_phases())
        parts = [np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(b, SIGNAL_KEY + c))))
                 .standard_normal((BLOCK, K)) for b in range(first_block, first_block + n_blocks)]
        out.append(np.concatenate(parts)[:n])
    return out


def forecasts(deal: Deal, program: ProgramPaths, draws: list[np.ndarray]) -> list[np.ndarray]:
    """Log forecast of peak sales at each phase's start ``(n, K)`` (column 0, the phase under way: unused)."""
    noise = deal.decisions.forecast_noise
    out = []
    for cp, x in zip(program.candidates, draws, strict=True):
        sd = [getattr(noise, p, 0.0) for p in cp.phases]
        log_peak = np.log(np.maximum(cp.peak_sales, 1e-9))
        f = np.zeros((program.n, len(cp.phases)))
        e = np.zeros(program.n)
        for k in range(1, len(cp.phases)):
            if k == 1:
                e = sd[k] * x[:, k]
            elif sd[k - 1] > 0.0:
                ratio = sd[k] ** 2 / sd[k - 1] ** 2
                e = ratio * e + sd[k] * math.sqrt(max(1.0 - ratio, 0.0)) * x[:, k]
            else:
                e = np.zeros(program.n)
            f[:, k] = log_peak + e
        out.append(f)
    return out


def stop_at(cp: CandidatePaths, k: int, mask: np.ndarray) -> CandidatePaths:
    """The candidate stopped at the start of phase ``k`` on the paths of ``mask`` (it passed phase k - 1)."""
    mask = mask & cp.succeeded[:, k - 1]
    if not mask.any():
        return cp
    stopped = np.zeros_like(cp.reached) if cp.stopped is None else cp.stopped.copy()
    stopped[:, k - 1] |= mask
    reached, succeeded = cp.reached.copy(), cp.succeeded.copy()
    reached[:, k:] &= ~mask[:, None]
    succeeded[:, k:] &= ~mask[:, None]
    return dataclasses.replace(cp, reached=reached, succeeded=succeeded, stopped=stopped,
                               approved=cp.approved & ~mask, launch=np.where(mask, np.inf, cp.launch))


def _basis(f: np.ndarray, t: np.ndarray, centre: float, scale: float) -> np.ndarray:
    """Regressors of a gate's decision: a quadratic in the standardised log forecast, and the date.

    Few regressors on purpose: measured on the reference hybrid (benchmarks/bench_decisions.py), a
    richer basis (a cubic and the forecast itself) fitted on 16,384 paths gave rules worth up to
    2 $M less to their decider than the same basis fitted on 131,072; this one is within 0.5.
    """
    z = (f - centre) / scale
    return np.stack([np.ones_like(z), z, z**2, t], axis=1)


@dataclass(frozen=True)
class Gate:
    """A fitted decision: go on where ``basis @ coef > 0`` (``coef`` None: always go on)."""

    coef: np.ndarray | None
    centre: float
    scale: float

    def go_on(self, f: np.ndarray, t: np.ndarray) -> np.ndarray:
        if self.coef is None:
            return np.ones(f.shape, dtype=bool)
        return _basis(f, t, self.centre, self.scale) @ self.coef > 0.0


@dataclass(frozen=True)
class Policy:
    """A deal's decision rule: per candidate, a :class:`Gate` for each phase k >= 1 (index k - 1)."""

    rule: str
    threshold: float | None
    gates: tuple[tuple[Gate, ...], ...]

    def go_on(self, c: int, k: int, f: np.ndarray, t: np.ndarray) -> np.ndarray:
        if self.rule == "threshold":
            return np.exp(f) >= self.threshold
        return self.gates[c][k - 1].go_on(f, t)


def _fit(deal: Deal, seed: int) -> Policy:
    from dealmodel.breakdown import candidate_ledgers, party_values
    from dealmodel.engine import discount_table
    from dealmodel.terms import escalation_draws

    spec = deal.decisions
    if spec.rule == "threshold":
        return Policy("threshold", spec.threshold, ())
    n = spec.fit_paths
    blocks = math.ceil(n / BLOCK)
    program = simulate_program(deal, seed, FIT_BLOCK, blocks, n)
    fcast = forecasts(deal, program, forecast_draws(deal, seed, FIT_BLOCK, blocks, n))
    disc = discount_table(deal)
    draws = escalation_draws(deal, seed, FIT_BLOCK, n)
    H = deal.horizon_years
    gates = []
    for c, cp in enumerate(program.candidates):
        who = PARTY_INDEX[spec.owners.get(cp.name, spec.owner)]
        def value(cand: CandidatePaths, c: int = c, who: int = who) -> np.ndarray:
            others = program.candidates
            trial = dataclasses.replace(program, candidates=(*others[:c], cand, *others[c + 1:]))
            sales = [sales_by_launch_year(x, H) if i == c else None for i, x in enumerate(trial.candidates)]
            return party_values(candidate_ledgers(deal, trial, sales, draws, c), disc)[who]

        K = len(cp.phases)
        policy_value = value(cp)  # no stop after the last gate
        fitted: list[Gate] = [Gate(None, 0.0, 1.0)] * max(K - 1, 0)
        everyone = np.ones(n, dtype=bool)
        for k in range(K - 1, 0, -1):
            stop_value = value(stop_at(cp, k, everyone))
            at_gate = cp.succeeded[:, k - 1]
            if at_gate.sum() < MIN_FIT:
                continue  # too few paths to fit: go on (policy_value unchanged)
            f, t = fcast[c][at_gate, k], cp.start[at_gate, k]
            centre = float(f.mean())
            scale = float(f.std()) if f.std() > 1e-12 else 1.0
            coef, *_ = np.linalg.lstsq(_basis(f, t, centre, scale), (policy_value - stop_value)[at_gate], rcond=None)
            gate = Gate(coef, centre, scale)
            fitted[k - 1] = gate
            stop = np.zeros(n, dtype=bool)
            stop[at_gate] = ~gate.go_on(f, t)
            policy_value = np.where(stop, stop_value, policy_value)
        gates.append(tuple(fitted))
    return Policy("optimal", None, tuple(gates))


_WHO = {"sponsor": "the sponsor", "partner": "the partner", "program": "both parties together"}


def _program_decides(deal: Deal) -> bool:
    """Every gate decided by both parties together (or by a threshold): the terms do not move a decision."""
    d = deal.decisions
    return d.rule == "threshold" or (d.owner == "program" and set(d.owners.values()) <= {"program"})


def policy_key(deal: Deal) -> str:
    """Everything a deal's decisions depend on: the program, and the terms unless the program decides."""
    exclude = {"name", "description"} | ({"terms"} if _program_decides(deal) else set())
    return deal.model_dump_json(exclude=exclude)


class _PolicyCache:
    """Fitted rules by (deal, seed): fitted once per run and reused by every chunk and revaluation."""

    def __init__(self, size: int = 32):
        self.size = size
        self._items: OrderedDict[tuple[str, int], Policy] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, deal: Deal, seed: int) -> Policy:
        key = (policy_key(deal), seed)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            policy = _fit(deal, seed)  # under the lock: threads of one run wait for one fit
            self._items[key] = policy
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return policy

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


POLICIES = _PolicyCache()


def decide(deal: Deal, program: ProgramPaths, seed: int, first_block: int,
           draws: list[np.ndarray] | None = None) -> ProgramPaths:
    """The program's paths with the deal's gate decisions applied (from the first gate on).

    ``draws``: the forecast draws (default: the paths' own, :func:`forecast_draws`).
    """
    policy = POLICIES.get(deal, seed)
    n = program.n
    if draws is None:
        draws = forecast_draws(deal, seed, first_block, math.ceil(n / BLOCK), n)
    fcast = forecasts(deal, program, draws)
    out = []
    for c, cp in enumerate(program.candidates):
        for k in range(1, len(cp.phases)):
            at_gate = cp.succeeded[:, k - 1]  # passed phase k - 1 and not stopped before
            if not at_gate.any():
                continue
            stop = np.zeros(n, dtype=bool)
            stop[at_gate] = ~policy.go_on(c, k, fcast[c][at_gate, k], cp.start[at_gate, k])
            cp = stop_at(cp, k, stop)
        if cp.stopped is None:
            cp = dataclasses.replace(cp, stopped=np.zeros_like(cp.reached))
        out.append(cp)
    return dataclasses.replace(program, candidates=tuple(out))


# --------------------------------------------------------------------------- what the decisions do


def _with(deal: Deal, **changes) -> Deal:
    """The deal with its decisions set (``rule``, ``owner``; None: no decisions)."""
    from dealmodel.io import deal_to_dict

    data = deal_to_dict(deal)
    if changes.get("rule") == "none":
        data.pop("decisions", None)
    else:
        data["decisions"] = {**data.get("decisions", {}), **changes}
    return Deal.model_validate(data)


@dataclass(frozen=True)
class DecisionReport:
    """What gate decisions do to one structure, on the same futures three ways (docs/methodology.md).

    ``values``: sponsor, partner and program expected NPV (rows ``no decisions``, ``decided under
    the deal``, ``decided as the program would``: the same terms, the candidates stopped where the
    two parties together would stop them); ``stops``: each candidate's probability of being
    stopped for commercial reasons at each gate, under the deal and as the program would;
    ``flexibility``: program eNPV decided under the deal less with no decisions; ``distortion``:
    program eNPV decided as the program would less decided under the deal (what the terms'
    influence on the decisions costs the program); each with its paired standard error.
    """

    deal: Deal
    paths: int
    seed: int
    rule: str
    owner: str
    threshold: float | None
    values: object  # pandas DataFrame
    values_se: object
    stops: object
    flexibility: float
    flexibility_se: float
    distortion: float
    distortion_se: float

    def moved(self):
        """The gates where the deal changes the stopping probability by more than its noise (2 standard errors)."""
        st = self.stops
        p, q = st["under the deal"], st["as the program would"]
        noise = 2.0 * np.sqrt((p * (1 - p) + q * (1 - q)) / self.paths)
        return st[(st["change"].abs() > noise) & (st["change"].abs() > 0.0005)]

    def summary(self) -> str:
        who = _WHO[self.owner]
        others = self.deal.decisions.owners
        if others:
            who += " (" + ", ".join(f"{n}: {_WHO[o]}" for n, o in others.items()) + ")"
        cur = self.deal.currency
        rule = "optimal" if self.rule == "optimal" else f"threshold: forecast peak sales ≥ {self.threshold:,.0f}"
        lines = [f"Gate decisions ({rule}; decided by {who}); {self.paths:,} futures, seed {self.seed}; "
                 f"{cur} millions, ± one standard error on the same futures",
                 f"  Value of flexibility to the program: {self.flexibility:+,.1f} ± {self.flexibility_se:,.1f} "
                 "(program eNPV with decisions less without)"]
        moved = self.moved()
        if _program_decides(self.deal) or moved.empty:
            lines.append("  The deal does not change which candidates are stopped.")
        else:
            lines.append(f"  The deal distorts decisions by {self.distortion:,.1f} ± {self.distortion_se:,.1f} of "
                         "program value (against stopping where the two parties together would):")
            for (cand, gate), row in moved.iterrows():
                lines.append(f"    {cand} before {gate}: stopped in {row['under the deal']:.1%} of futures "
                             f"(the program would: {row['as the program would']:.1%})")
        v = self.values
        lines.append(f"  {'expected NPV':14}{'no decisions':>16}{'under the deal':>16}{'as program would':>18}")
        for party in ("sponsor", "partner", "program"):
            lines.append(f"  {party:14}" + "".join(f"{v.loc[r, party]:>{w},.1f}" for r, w in zip(ROWS, (16, 16, 18),
                                                                                                 strict=True)))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        stops = [{"candidate": c, "gate": g, **{k: float(x) for k, x in row.items()}}
                 for (c, g), row in self.stops.iterrows()]
        return {"deal": self.deal.name, "paths": self.paths, "seed": self.seed, "rule": self.rule, "owner": self.owner,
                "threshold": self.threshold,
                "values": {r: {p: float(x) for p, x in row.items()} for r, row in self.values.iterrows()},
                "values_se": {r: {p: float(x) for p, x in row.items()} for r, row in self.values_se.iterrows()},
                "stops": stops, "flexibility": self.flexibility, "flexibility_se": self.flexibility_se,
                "distortion": self.distortion, "distortion_se": self.distortion_se}


ROWS = ("no decisions", "decided under the deal", "decided as the program would")


def decision_report(deal: Deal, paths: int = 20_000, seed: int = 0, rule: str | None = None,
                    owner: str | None = None, threshold: float | None = None) -> DecisionReport:
    """Value ``deal`` with no decisions, with its decisions and with the program's, on the same futures.

    ``rule`` / ``owner`` / ``threshold`` override the deal's own (a deal without decisions:
    ``optimal``, decided by the sponsor).
    """
    import pandas as pd

    from dealmodel.engine import simulate_many

    own = deal.decisions
    rule = rule or (own.rule if own is not None and own.rule != "none" else "optimal")
    owner = owner or (own.owner if own is not None else "sponsor")
    if rule not in ("threshold", "optimal"):
        raise ValueError(f"rule must be threshold or optimal (got {rule!r})")
    if owner not in PARTY_INDEX:
        raise ValueError(f"owner must be sponsor, partner or program (got {owner!r})")
    changes = {"rule": rule, "owner": owner} | ({"threshold": threshold} if threshold is not None else {})
    decided = _with(deal, **changes)
    variants = [_with(deal, rule="none"), decided, _with(decided, owner="program", owners={})]
    results = simulate_many(variants, paths, seed, keep_flows=False, yearly_sample=0)
    parties = ("sponsor", "partner", "program")
    values = pd.DataFrame({p: [float(r.npv[p].mean()) for r in results] for p in parties}, index=list(ROWS))
    def se(x: np.ndarray) -> float:  # of a mean; one future has no spread to estimate: 0
        return float(x.std(ddof=1) / np.sqrt(paths)) if paths > 1 else 0.0

    values_se = pd.DataFrame({p: [se(r.npv[p]) for r in results] for p in parties}, index=list(ROWS))

    def paired(a, b) -> tuple[float, float]:
        d = a.npv["program"] - b.npv["program"]
        return float(d.mean()), se(d)

    flex, flex_se = paired(results[1], results[0])
    dist, dist_se = paired(results[2], results[1])
    rows = []
    for name, info in results[1].candidates.items():
        program_info = results[2].candidates[name]
        for key, p in info.items():
            if key.startswith("prob_stopped_before_"):
                gate = key.removeprefix("prob_stopped_before_")
                rows.append((name, gate, p, program_info[key], p - program_info[key]))
    stops = pd.DataFrame(rows, columns=["candidate", "gate", "under the deal", "as the program would", "change"])
    stops = stops.set_index(["candidate", "gate"])
    return DecisionReport(deal=decided, paths=paths, seed=seed, rule=rule, owner=owner,
                          threshold=decided.decisions.threshold, values=values,
                          values_se=values_se, stops=stops, flexibility=flex, flexibility_se=flex_se,
                          distortion=dist, distortion_se=dist_se)
