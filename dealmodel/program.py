"""Simulated futures of the development program: what happens to each candidate on each path.

Nothing here knows about deal terms: the program's paths are the same whatever the structure,
which is what makes two structures' difference a paired, low-noise figure.

Conventions (see docs/methodology.md):

* Time is in years from the valuation date. A candidate's remaining phases run back to back
  from t = 0; a phase's cost is spread evenly over its duration; its outcome is known at its end.
* Phase success: for phase k, every candidate of a platform group shares a factor F_k; the
  candidate's latent Z = sqrt(rho) F_k + sqrt(1 - rho) e_k and the phase succeeds when
  Z < Phi^-1(p) (a one-factor Gaussian copula; rho = 0 gives independent candidates).
* Launch is at approval (end of filing). Launch year k (k = 0, 1, ...) is the 12 months from
  launch + k; sales flow through it at the constant rate
  peak x curve(k) x (1 - erosion)^max(0, k + 1 - exclusivity) a year.
* The AI recruitment lever shortens the recruiting share of each clinical phase; the biomarker
  lever raises phase 3 success of biomarker-selected candidates; QbD lowers batch failures.
* Random numbers: paths come in fixed blocks of ``BLOCK`` paths; block b draws its latent
  normals from ``SeedSequence(seed, spawn_key=(b, 0))`` and candidate c's inputs from
  ``spawn_key=(b, c + 1)``. Results therefore do not depend on how blocks are grouped into
  chunks, and two deals with the same program and seed see identical paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from dealmodel.distributions import _Dist
from dealmodel.schema import PHASES, Candidate, Deal

BLOCK = 8192
"""Paths per random-number block: part of the reproducibility contract, do not change lightly."""

_CLINICAL = {"phase1", "phase2", "phase3"}
_COMMERCIAL_SLOTS = ("peak_sales", "exclusivity_years", "erosion_after_loe", "cogs_fraction", "opex_fraction")


@dataclass(frozen=True)
class CandidatePaths:
    """One candidate on ``n`` paths. Phase arrays are ``(n, K)`` over its K remaining phases."""

    name: str
    phases: tuple[str, ...]
    start: np.ndarray  # phase start times
    end: np.ndarray  # phase end times
    bounds: np.ndarray  # (n, K + 1): the first start, then every phase end (the phases' chain)
    reached: np.ndarray  # bool: the phase was started
    succeeded: np.ndarray  # bool: the phase was started and succeeded
    sponsor_cost: np.ndarray  # the phase's sponsor cost (incurred only where reached)
    partner_cost: np.ndarray  # the partner's actual cost, remade (failed) batches included
    remake: np.ndarray  # (n,) 1 / (1 - batch failure rate): actual over nominal manufacturing cost
    approved: np.ndarray  # (n,) bool
    launch: np.ndarray  # (n,) approval time; inf where not approved
    peak_sales: np.ndarray  # (n,)
    exclusivity_years: np.ndarray  # (n,)
    erosion_after_loe: np.ndarray  # (n,)
    cogs_fraction: np.ndarray  # (n,) actual, remade batches included
    opex_fraction: np.ndarray  # (n,)
    curve: tuple[float, ...]
    stopped: np.ndarray | None = None  # (n, K) bool: stopped at the gate after the phase (dealmodel.decisions)

    def ended(self) -> np.ndarray:
        """``(n, K)`` bool: development ended at the end of the phase (it failed, or was stopped after it)."""
        ended = self.reached & ~self.succeeded
        return ended if self.stopped is None else ended | self.stopped

    def phase_index(self, phase: str) -> int | None:
        return self.phases.index(phase) if phase in self.phases else None


@dataclass(frozen=True)
class ProgramPaths:
    n: int
    horizon: int
    candidates: tuple[CandidatePaths, ...]


# --------------------------------------------------------------------------- random streams


def _groups(deal: Deal) -> tuple[list[int], list[float]]:
    """Group index of each candidate and each group's rho (groups in first-appearance order)."""
    keys: list[str | None] = []
    index: list[int] = []
    for c in deal.candidates:
        if c.platform not in keys:
            keys.append(c.platform)
        index.append(keys.index(c.platform))
    rhos = [deal.correlation.groups.get(k, deal.correlation.rho) if k else deal.correlation.rho for k in keys]
    return index, rhos


def _n_slots(candidate: Candidate) -> int:
    return 4 * len(candidate.remaining_phases()) + len(_COMMERCIAL_SLOTS) + 1


def _slot_quantities(candidate: Candidate) -> list[_Dist]:
    """The quantities drawn from a candidate's uniforms, in slot order (as :func:`simulate_program` reads them)."""
    out: list[_Dist] = []
    for _, spec in candidate.remaining_phases():
        out += [spec.duration_years, spec.cost, spec.partner_cost, spec.success_probability]
    out += [getattr(candidate.commercial, name) for name in _COMMERCIAL_SLOTS]
    return [*out, candidate.batch_failure_rate]


class Latents:
    """The copula's latent normals of whole blocks, computed per candidate and phase when asked.

    ``z(c, k) = sqrt(rho) F[group(c), k] + sqrt(1 - rho) e[c, k]``: the same arithmetic, element by
    element, as forming the whole ``(n, C, 5)`` array, without the phases no candidate has left.
    """

    def __init__(self, factor: np.ndarray, own: np.ndarray, group_of: list[int], rhos: list[float]):
        self.factor, self.own, self.group_of = factor, own, group_of
        sq = np.sqrt(np.asarray(rhos))
        self.a, self.b = sq, np.sqrt(1.0 - sq**2)

    def z(self, c: int, k: int, n: int) -> np.ndarray:
        g = self.group_of[c]
        return self.a[g] * self.factor[:n, g, k] + self.b[g] * self.own[:n, c, k]


def draw_blocks(deal: Deal, seed: int, first_block: int, n_blocks: int) -> tuple[Latents, list[np.ndarray]]:
    """The copula's latent normals (:class:`Latents`) and per-candidate uniforms ``[(slots, n)]`` for whole blocks."""
    group_of, rhos = _groups(deal)
    n_groups = len(rhos)
    C = len(deal.candidates)
    N = n_blocks * BLOCK
    factor = np.empty((N, n_groups, len(PHASES)))
    own = np.empty((N, C, len(PHASES)))
    uniforms = [np.empty((_n_slots(cand), N)) for cand in deal.candidates]  # rows of fixed quantities: never read
    drawn = [[not q.is_fixed for q in _slot_quantities(cand)] for cand in deal.candidates]
    for i, b in enumerate(range(first_block, first_block + n_blocks)):
        rows = slice(i * BLOCK, (i + 1) * BLOCK)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(b, 0))))
        rng.standard_normal(out=factor[rows])  # the same numbers as drawing each shape in turn
        rng.standard_normal(out=own[rows])
        for c in range(C):
            rc = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(b, c + 1))))
            for slot, needed in enumerate(drawn[c]):  # slot by slot: the same numbers as one (slots, BLOCK) draw
                if needed:
                    rc.random(out=uniforms[c][slot, rows])
                else:  # a fixed quantity reads no uniform: skip its numbers (a double is one 64-bit output)
                    rc.bit_generator.advance(BLOCK)
    return Latents(factor, own, group_of, rhos), uniforms


# --------------------------------------------------------------------------- the simulation


def _sample(q: _Dist, u: np.ndarray) -> np.ndarray | float:
    """A quantity on each path (a scalar for a fixed number: cheaper, and broadcasts)."""
    return q.value if q.is_fixed else q.ppf(u)  # type: ignore[attr-defined]


def _recruitment_cut(deal: Deal, phase: str, spec, d):
    """Duration and sponsor-cost saving of a clinical phase under the AI recruitment lever."""
    lever = deal.levers.ai_recruitment
    if not lever.enabled or phase not in _CLINICAL:
        return d, 0.0
    share = spec.recruitment_share if spec.recruitment_share is not None else lever.recruitment_share
    saved_years = d * lever.recruitment_time_reduction * share
    saving = 12.0 * saved_years * lever.saving_per_month + spec.patients * lever.saving_per_patient
    return d - saved_years, saving


def candidate_inputs(deal: Deal, cand: Candidate, u: np.ndarray) -> list[np.ndarray | float]:
    """A candidate's sampled inputs on the paths of its uniforms ``u`` (slots x paths), each a number
    where it is fixed, else one value per path. In order: per remaining phase, its duration (after the
    recruitment lever), sponsor cost (less that lever's saving, at least 0), partner cost before
    remakes, and success threshold Phi^-1(p) (p after the biomarker lever); then peak sales,
    exclusivity, erosion, cost of goods before remakes, opex, and the remake factor
    1 / (1 - batch failure rate) (after the QbD lever).
    """
    levers = deal.levers
    slot = iter(range(u.shape[0]))
    out: list[np.ndarray | float] = []
    for phase, spec in cand.remaining_phases():
        d, saving = _recruitment_cut(deal, phase, spec, _sample(spec.duration_years, u[next(slot)]))
        out.append(d)
        out.append(np.maximum(0.0, _sample(spec.cost, u[next(slot)]) - saving))
        out.append(_sample(spec.partner_cost, u[next(slot)]))
        p = _sample(spec.success_probability, u[next(slot)])
        if levers.biomarker_selection.enabled and cand.biomarker_selected and phase == "phase3":
            p = np.minimum(1.0, np.multiply(p, 1.0 + levers.biomarker_selection.phase3_success_uplift))
        out.append(special.ndtri(p))
    com = cand.commercial
    out += [_sample(getattr(com, name), u[next(slot)]) for name in _COMMERCIAL_SLOTS]
    failure = _sample(cand.batch_failure_rate, u[next(slot)])
    if levers.qbd.enabled:
        failure = np.multiply(failure, 1.0 - levers.qbd.batch_failure_reduction)
    out.append(1.0 / (1.0 - np.asarray(failure, dtype=float)))
    return out


def simulate_program(deal: Deal, seed: int, first_block: int, n_blocks: int, n: int | None = None) -> ProgramPaths:
    """Simulate the program on the paths of blocks ``[first_block, first_block + n_blocks)``.

    ``n`` keeps only the first ``n`` of those paths (for a final partial block).
    """
    latents, uniforms = draw_blocks(deal, seed, first_block, n_blocks)
    total = n_blocks * BLOCK
    n = total if n is None else n
    out = []
    for c, cand in enumerate(deal.candidates):
        remaining = cand.remaining_phases()
        K = len(remaining)
        values = candidate_inputs(deal, cand, uniforms[c][:, :n])
        durations = np.empty((n, K))
        s_cost = np.empty((n, K))
        p_cost = np.empty((n, K))
        success = np.empty((n, K), dtype=bool)
        for k, (phase, _) in enumerate(remaining):
            durations[:, k], s_cost[:, k], p_cost[:, k], threshold = values[4 * k:4 * k + 4]
            success[:, k] = latents.z(c, PHASES.index(phase), n) < threshold
        peak, exclusivity, erosion, cogs, opex, remake = values[4 * K:]
        full = np.ones(n)
        remake = full * remake
        # the phases' chain, a column at a time (as cumsum / cumprod along a row, in the same order)
        bounds = np.empty((n, K + 1))
        bounds[:, 0] = 0.0
        succeeded = np.empty((n, K), dtype=bool)
        reached = np.ones((n, K), dtype=bool)
        for k in range(K):
            bounds[:, k + 1] = bounds[:, k] + durations[:, k]
            succeeded[:, k] = success[:, k] if k == 0 else succeeded[:, k - 1] & success[:, k]
            if k:
                reached[:, k] = succeeded[:, k - 1]
        start, end = bounds[:, :-1], bounds[:, 1:]
        approved = succeeded[:, -1]
        launch = np.where(approved, end[:, -1], np.inf)
        out.append(
            CandidatePaths(
                name=cand.name,
                phases=tuple(p for p, _ in remaining),
                start=start,
                end=end,
                bounds=bounds,
                reached=reached,
                succeeded=succeeded,
                sponsor_cost=s_cost,
                partner_cost=p_cost * remake[:, None],
                remake=remake,
                approved=approved,
                launch=launch,
                peak_sales=peak * full,
                exclusivity_years=exclusivity * full,
                erosion_after_loe=erosion * full,
                cogs_fraction=cogs * remake,
                opex_fraction=opex * full,
                curve=cand.commercial.curve(),
            )
        )
    return ProgramPaths(n=n, horizon=deal.horizon_years, candidates=tuple(out))


def term_uniforms(seed: int, first_block: int, n_blocks: int, n: int, term_index: int) -> np.ndarray:
    """One uniform per path for a term's own uncertain input (a price index), from its own stream.

    Block b of term t draws from ``SeedSequence(seed, spawn_key=(b, 1_000_000 + t))``: apart from
    the program's streams, so adding or changing a term never moves the program's paths.
    """
    parts = [np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(b, 1_000_000 + term_index))))
             .random(BLOCK) for b in range(first_block, first_block + n_blocks)]
    return np.concatenate(parts)[:n]


# --------------------------------------------------------------------------- sales by launch year


@dataclass(frozen=True)
class Sales:
    """Net sales of one candidate on the paths where it launches inside the horizon.

    Launch year k (k = 0, 1, ...) is the 12 months ``[launch + k, launch + k + 1)``, the
    contracts' royalty year; sales flow at a constant rate through it:
    ``rate[:, k] = peak x curve(k) x (1 - erosion)^max(0, k + 1 - exclusivity)``, which is
    also that year's total. Arrays are over the launched paths ``rows``.
    """

    rows: np.ndarray  # (m,) path indices
    launch: np.ndarray  # (m,)
    rate: np.ndarray  # (m, K) net sales in launch year k (K years reach the horizon from the earliest launch)
    exclusivity: np.ndarray  # (m,) years from launch to loss of exclusivity
    bounds: np.ndarray  # (m, K + 1) launch + k: the launch years' chain

    def add_to(self, ledger, factor: np.ndarray) -> None:
        """Book ``factor`` x sales into ``ledger`` (``factor``: one number per launched path, as ``rows``)."""
        if self.rows.size == 0:
            return
        ledger.chain(self.bounds, self.rate * factor[:, None], self.rows)


def sales_by_launch_year(cp: CandidatePaths, horizon: int) -> Sales:
    rows = np.flatnonzero(cp.launch < horizon)
    launch = cp.launch[rows]
    # launch years that can start inside the horizon: k < horizon - launch
    K = max(1, math.ceil(horizon - launch.min())) if rows.size else 1
    years = np.arange(K, dtype=float)
    n_curve = min(len(cp.curve), K)
    curve = np.ones(K)
    curve[:n_curve] = cp.curve[:n_curve]
    excl = cp.exclusivity_years[rows]
    past_loe = np.maximum(0.0, years[None, :] + 1.0 - excl[:, None])
    rate = cp.peak_sales[rows, None] * curve[None, :] * (1.0 - cp.erosion_after_loe[rows, None]) ** past_loe
    bounds = launch[:, None] + np.arange(K + 1, dtype=float)[None, :]
    return Sales(rows=rows, launch=launch, rate=rate, exclusivity=excl, bounds=bounds)
