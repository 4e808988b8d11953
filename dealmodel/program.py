"""Simulated futures of the development program: what happens to each candidate on each path.

Nothing here knows about deal terms: the program's paths are the same whatever the structure,
which is what makes two structures' difference a paired, low-noise figure.

Conventions (see docs/methodology.md):

* Time is in years from the valuation date. A candidate's remaining phases run back to back
  from t = 0; a phase's cost is spread evenly over its duration; its outcome is known at its end.
* Phase success: for phase k, every candidate of a platform group shares a factor F_k; the
  candidate's latent Z = sqrt(rho) F_k + sqrt(1 - rho) e_k and the phase succeeds when
  Z < Phi^-1(p) (a one-factor Gaussian copula; rho = 0 gives independent candidates).
* Launch is at approval (end of filing). Sales in launch year j (j = 1, 2, ...) are
  peak x curve(j) x (1 - erosion)^max(0, j - exclusivity).
* Random numbers: paths come in fixed blocks of ``BLOCK`` paths; block b draws its latent
  normals from ``SeedSequence(seed, spawn_key=(b, 0))`` and candidate c's inputs from
  ``spawn_key=(b, c + 1)``. Results therefore do not depend on how blocks are grouped into
  chunks, and two deals with the same program and seed see identical paths.
"""

from __future__ import annotations

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
    reached: np.ndarray  # bool: the phase was started
    succeeded: np.ndarray  # bool: the phase was started and succeeded
    sponsor_cost: np.ndarray  # the phase's sponsor cost (incurred only where reached)
    partner_cost: np.ndarray  # the partner's actual cost, failed batches included
    approved: np.ndarray  # (n,) bool
    launch: np.ndarray  # (n,) approval time; inf where not approved
    peak_sales: np.ndarray  # (n,)
    exclusivity_years: np.ndarray  # (n,)
    erosion_after_loe: np.ndarray  # (n,)
    cogs_fraction: np.ndarray  # (n,) actual, failed batches included
    opex_fraction: np.ndarray  # (n,)
    curve: tuple[float, ...]

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


def draw_blocks(deal: Deal, seed: int, first_block: int, n_blocks: int):
    """Latent normals ``(n, C, 5)`` and per-candidate uniforms ``[(slots, n)]`` for whole blocks."""
    group_of, rhos = _groups(deal)
    n_groups = len(rhos)
    C = len(deal.candidates)
    latents, uniforms = [], [[] for _ in range(C)]
    for b in range(first_block, first_block + n_blocks):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(b, 0))))
        factor = rng.standard_normal((BLOCK, n_groups, len(PHASES)))
        own = rng.standard_normal((BLOCK, C, len(PHASES)))
        latents.append((factor, own))
        for c, cand in enumerate(deal.candidates):
            rc = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(b, c + 1))))
            uniforms[c].append(rc.random((_n_slots(cand), BLOCK)))
    factor = np.concatenate([f for f, _ in latents])
    own = np.concatenate([o for _, o in latents])
    sq = np.sqrt(np.asarray(rhos))
    z = sq[group_of][None, :, None] * factor[:, group_of, :] + np.sqrt(1.0 - sq**2)[group_of][None, :, None] * own
    return z, [np.concatenate(u, axis=1) for u in uniforms]


# --------------------------------------------------------------------------- the simulation


def _sample(q: _Dist, u: np.ndarray) -> np.ndarray | float:
    """A quantity on each path (a scalar for a fixed number: cheaper, and broadcasts)."""
    return q.value if q.is_fixed else q.ppf(u)  # type: ignore[attr-defined]


def simulate_program(deal: Deal, seed: int, first_block: int, n_blocks: int, n: int | None = None) -> ProgramPaths:
    """Simulate the program on the paths of blocks ``[first_block, first_block + n_blocks)``.

    ``n`` keeps only the first ``n`` of those paths (for a final partial block).
    """
    z, uniforms = draw_blocks(deal, seed, first_block, n_blocks)
    total = n_blocks * BLOCK
    n = total if n is None else n
    z = z[:n]
    levers = deal.levers
    out = []
    for c, cand in enumerate(deal.candidates):
        u = uniforms[c][:, :n]
        remaining = cand.remaining_phases()
        K = len(remaining)
        slot = iter(range(u.shape[0]))
        durations = np.empty((n, K))
        s_cost = np.empty((n, K))
        p_cost = np.empty((n, K))
        success = np.empty((n, K), dtype=bool)
        probs = []
        for k, (phase, spec) in enumerate(remaining):
            d = _sample(spec.duration_years, u[next(slot)])
            if levers.ai_recruitment.enabled and phase in _CLINICAL:
                d = d * (1.0 - levers.ai_recruitment.duration_reduction)
            durations[:, k] = d
            s_cost[:, k] = _sample(spec.cost, u[next(slot)])
            p_cost[:, k] = _sample(spec.partner_cost, u[next(slot)])
            p = _sample(spec.success_probability, u[next(slot)])
            if levers.biomarker_selection.enabled and cand.biomarker_selected and phase == "phase3":
                p = np.minimum(1.0, np.multiply(p, 1.0 + levers.biomarker_selection.phase3_success_uplift))
            probs.append(p)
            success[:, k] = z[:, c, PHASES.index(phase)] < special.ndtri(p)
        com = cand.commercial
        commercial = {name: _sample(getattr(com, name), u[next(slot)]) for name in _COMMERCIAL_SLOTS}
        failure = _sample(cand.batch_failure_rate, u[next(slot)])
        if levers.qbd.enabled:
            failure = np.multiply(failure, 1.0 - levers.qbd.batch_failure_reduction)
        remake = 1.0 / (1.0 - np.asarray(failure, dtype=float))
        end = np.cumsum(durations, axis=1)
        start = np.concatenate([np.zeros((n, 1)), end[:, :-1]], axis=1)
        ok_so_far = np.cumprod(success, axis=1)
        reached = np.ones((n, K), dtype=bool)
        reached[:, 1:] = ok_so_far[:, :-1]
        succeeded = ok_so_far.astype(bool)
        approved = succeeded[:, -1]
        launch = np.where(approved, end[:, -1], np.inf)
        full = np.ones(n)
        out.append(
            CandidatePaths(
                name=cand.name,
                phases=tuple(p for p, _ in remaining),
                start=start,
                end=end,
                reached=reached,
                succeeded=succeeded,
                sponsor_cost=s_cost,
                partner_cost=p_cost * (remake[:, None] if np.ndim(remake) else remake),
                approved=approved,
                launch=launch,
                peak_sales=commercial["peak_sales"] * full,
                exclusivity_years=commercial["exclusivity_years"] * full,
                erosion_after_loe=commercial["erosion_after_loe"] * full,
                cogs_fraction=commercial["cogs_fraction"] * remake * full,
                opex_fraction=commercial["opex_fraction"] * full,
                curve=com.curve(),
            )
        )
    return ProgramPaths(n=n, horizon=deal.horizon_years, candidates=tuple(out))


# --------------------------------------------------------------------------- sales on the grid


@dataclass(frozen=True)
class SalesGrid:
    """Annual net sales of one candidate on the paths where it launches inside the horizon.

    ``rows`` are path indices; arrays are ``(m, H + 1)`` over periods 0..H, where period t holds
    the time (t - 1, t]. A period straddles two launch years, k and k + 1 (0-based), with time
    shares ``1 - phi`` and ``phi``.
    """

    rows: np.ndarray
    k: np.ndarray  # (m, T) int: launch year (0-based) at the start of the period, clipped at -2
    phi: np.ndarray  # (m, T)
    peak: np.ndarray  # (m,)
    exclusivity: np.ndarray  # (m,)
    erosion: np.ndarray  # (m,)
    horizon: int

    curve: tuple[float, ...]

    def year_table(self, weight: np.ndarray | None = None) -> np.ndarray:
        """Share of peak in launch years 0..H+1 ``(m, H+2)``, times an optional per-year weight."""
        n_years = self.horizon + 2
        curve = np.ones(n_years)
        ramp = np.asarray(self.curve[:n_years], dtype=float)
        curve[: ramp.size] = ramp
        past_loe = np.maximum(0.0, np.arange(1, n_years + 1)[None, :] - self.exclusivity[:, None])
        table = curve[None, :] * (1.0 - self.erosion[:, None]) ** past_loe
        return table if weight is None else table * weight

    def sales(self, weight: np.ndarray | None = None) -> np.ndarray:
        """Net sales per period ``(m, T)``; with ``weight`` (per launch year), weighted sales."""
        table = self.year_table(weight)
        padded = np.concatenate([np.zeros((table.shape[0], 1)), table], axis=1)  # index j = year j - 1
        j = self.k + 1
        first = np.take_along_axis(padded, np.clip(j, 0, padded.shape[1] - 1), axis=1)
        second = np.take_along_axis(padded, np.clip(j + 1, 0, padded.shape[1] - 1), axis=1)
        return self.peak[:, None] * ((1.0 - self.phi) * first + self.phi * second)


def sales_grid(cp: CandidatePaths, horizon: int) -> SalesGrid:
    rows = np.flatnonzero(cp.launch < horizon)
    launch = cp.launch[rows]
    t = np.arange(horizon + 1, dtype=float)
    u = t[None, :] - 1.0 - launch[:, None]  # time since launch at the start of each period
    k = np.floor(u)
    phi = u - k
    k = np.maximum(k, -2).astype(np.int64)
    return SalesGrid(
        rows=rows,
        k=k,
        phi=phi,
        peak=cp.peak_sales[rows],
        exclusivity=cp.exclusivity_years[rows],
        erosion=cp.erosion_after_loe[rows],
        horizon=horizon,
        curve=cp.curve,
    )
