"""The compiled valuation kernel: one pass per path values every structure of a comparison.

The NumPy engine (:mod:`dealmodel.engine`, :mod:`dealmodel.terms`) is the reference
implementation: it books every payment as a lump or a constant-rate span for a whole chunk of
paths at once. This module does the same arithmetic **path by path** in compiled code
(numba, ``nogil``, cached on disk; chunks of paths run on threads): for each path it builds the program's
events once, then books each structure's terms straight into running present values, so no
``paths x flows`` array exists and structures that share a program share its work.

What stays in NumPy: drawing the random numbers and sampling the distributions
(:func:`dealmodel.program.simulate_program`), so the random-number contract is unchanged and
both engines see bit-identical program inputs. A test requires the two engines' per-path NPVs
to agree to 1e-9 relative on every sample deal and on generated deals.

Layout (built by :class:`Plan`): every structure's terms are rows of two tables, ``TF`` (floats)
and ``TI`` (ints); a row's kind is ``TI[row, 0]``, its payment sign ``TF[row, 0]`` (+1 to the
partner), its covered candidates ``TI[row, NI:NI + TI[row, 7]]``. See :data:`FLOAT_FIELDS` for the
other float columns of each kind.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

try:  # numba is a dependency; the reference engine still works where it cannot be imported
    import numba
    from numba import njit
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None

from dealmodel.program import BLOCK
from dealmodel.schema import (
    PHASES,
    CancellationFee,
    CapacityReservation,
    CostShare,
    Deal,
    Milestone,
    Option,
    Royalty,
    ServiceFees,
    SuccessRebate,
    Supply,
    Upfront,
)
from dealmodel.terms import royalty_rates

AVAILABLE = numba is not None

UPFRONT, FEES, MILESTONE, ROYALTY, SUPPLY, COST_SHARE, CANCEL, REBATE, CAPACITY, OPTION = range(10)
EV_APPROVAL, EV_ANNUAL, EV_CUMULATIVE, EV_COUNT = 10, 11, 12, 13
TIMING_CODE = {"exact": 0, "end_of_year": 1, "mid_year": 2, "start_of_year": 3}
NP, NI = 8, 9
SPONSOR, PARTNER, PROGRAM = 0, 1, 2
_YEARS = 101.0  # past every horizon: where a price index stops (as in cashflows._YEARS)

FLOAT_FIELDS = {
    UPFRONT: ("sign", "amount"),
    FEES: ("sign", "markup", "at_risk_fraction", "success_premium"),
    MILESTONE: ("sign", "amount", "threshold"),
    ROYALTY: ("sign", "", "term_years", "cap"),
    SUPPLY: ("sign", "markup"),
    COST_SHARE: ("sign", "cost_fraction", "profit_fraction"),
    CANCEL: ("sign", "amount", "fraction_of_next_phase", "markup"),
    REBATE: ("sign", "fraction"),
    CAPACITY: ("sign", "fee_per_year", "start_years", "end_years", "notice_years", "minimum_commitment",
               "partner_cost_per_year", "resale_utilisation"),
    OPTION: ("sign", "option_fee", "exercise_fee", "markup_given_up", "royalty_rate", "royalty_years"),
}


# --------------------------------------------------------------------------- the plan (Python side)


def _inf(x) -> float:
    return math.inf if x is None else float(x)


def _milestone_code(term: Milestone) -> int:
    if term.event in ("approval", "first_sale"):
        return EV_APPROVAL
    if term.event == "annual_sales":
        return EV_ANNUAL
    if term.event == "cumulative_sales":
        return EV_CUMULATIVE
    if term.event == "approval_count":
        return EV_COUNT
    return PHASES.index("filing" if term.event == "filing" else term.event.removesuffix("_start"))


def _row(term, deal: Deal, C: int, max_tiers: int):
    """One term as (kind, floats, ints, covered, tier bounds, tier rates, stepped rates)."""
    tp = np.zeros(NP)
    ti = np.zeros(NI, dtype=np.int64)
    tb = np.full(max_tiers + 1, np.inf)
    tr = np.zeros(max_tiers)
    ts = np.zeros(max_tiers)
    tp[0] = 1.0 if term.payee == "partner" else -1.0
    covered = [] if isinstance(term, Upfront) else deal.covered(term)
    cov = np.full(C, -1, dtype=np.int64)
    cov[: len(covered)] = covered
    ti[7] = len(covered)
    if isinstance(term, Upfront):
        ti[0], tp[1], ti[2] = UPFRONT, term.amount, int(term.creditable)
    elif isinstance(term, ServiceFees):
        ti[0] = FEES
        tp[1:4] = term.markup, term.at_risk_fraction, term.success_premium
        ti[1] = int(term.failed_batches_paid_by == "sponsor")
        ti[3] = int(term.deferred_until == "approval")
    elif isinstance(term, Milestone):
        ti[0], tp[1], tp[2] = MILESTONE, term.amount, _inf(term.threshold)
        ti[1], ti[2], ti[4] = _milestone_code(term), int(term.creditable), term.count or 0
    elif isinstance(term, Royalty):
        ti[0] = ROYALTY
        tp[2], tp[3] = _inf(term.term_years), _inf(term.cap)
        ti[1] = int(term.tier_basis == "aggregate")
        ti[3] = int(term.term_end == "later_of_years_and_exclusivity")
        bounds, rates, stepped = royalty_rates(term)
        ti[5] = rates.size
        tb[: bounds.size], tr[: rates.size], ts[: rates.size] = bounds, rates, stepped
    elif isinstance(term, Supply):
        ti[0], tp[1] = SUPPLY, term.markup
        ti[1] = int(term.failed_batches_paid_by == "partner")
        if term.markup_tiers is not None:
            ti[6] = 1
            ti[5] = len(term.markup_tiers)
            tb[: ti[5]] = [t.above for t in term.markup_tiers]
            tr[: ti[5]] = ts[: ti[5]] = [1.0 + t.markup for t in term.markup_tiers]
    elif isinstance(term, CostShare):
        ti[0], tp[1], tp[2] = COST_SHARE, term.cost_fraction, term.profit_fraction
        ti[1] = int(term.payee == "sponsor")
    elif isinstance(term, CancellationFee):
        ti[0] = CANCEL
        tp[1:4] = term.amount, term.fraction_of_next_phase, term.markup
    elif isinstance(term, SuccessRebate):
        ti[0], tp[1] = REBATE, term.fraction
    elif isinstance(term, CapacityReservation):
        ti[0] = CAPACITY
        tp[1:8] = (term.fee_per_year, term.start_years, term.end_years, term.notice_years,
                   term.minimum_commitment, term.partner_cost_per_year, term.resale_utilisation)
        ti[1] = int(term.scope == "program")
    elif isinstance(term, Option):
        ti[0] = OPTION
        tp[1:6] = term.option_fee, term.exercise_fee, term.markup_given_up, term.royalty_rate, _inf(term.royalty_years)
        ti[1] = -1 if term.exercise_at == "approval" else PHASES.index(
            {"phase2_start": "phase2", "phase3_start": "phase3", "filing": "filing"}[term.exercise_at])
    else:  # pragma: no cover - the schema has no other kind
        raise TypeError(f"no kernel mechanics for {type(term).__name__}")
    return tp, ti, cov, tb, tr, ts


class Plan:
    """Every structure's terms as flat arrays for the kernel (structures share one program)."""

    def __init__(self, deals: list[Deal]):
        first = deals[0]
        C = len(first.candidates)
        max_tiers = max([1] + [len(getattr(t, "tiers", None) or getattr(t, "markup_tiers", None) or [])
                               for d in deals for t in d.terms])
        rows = [_row(t, d, C, max_tiers) for d in deals for t in d.terms]
        TT = len(rows)
        # TF: the floats, then tier bounds (nt + 1, the last inf), rates and stepped rates (nt each)
        self.TF = np.zeros((TT, NP + 3 * max_tiers + 1))
        self.TI = np.zeros((TT, NI + C), dtype=np.int64)  # the ints, then the covered candidates
        for i, (tp, ti, cov, tb, tr, ts) in enumerate(rows):
            nt = max(int(ti[5]), 0)
            self.TF[i, :NP] = tp
            self.TF[i, NP:NP + nt + 1] = tb[:nt + 1]
            self.TF[i, NP + nt + 1:NP + 2 * nt + 1] = tr[:nt]
            self.TF[i, NP + 2 * nt + 1:NP + 3 * nt + 1] = ts[:nt]
            self.TI[i, :NI] = ti
            self.TI[i, NI:] = cov
        # TI[row, 8]: the row of the term's price index in escalation_table (-1: not indexed)
        escalated = [getattr(t, "escalation", None) is not None for d in deals for t in d.terms]
        self.TI[:, 8] = np.where(escalated, np.cumsum(escalated) - 1, -1)
        self.offsets = np.cumsum([0] + [len(d.terms) for d in deals]).astype(np.int64)
        self.maker = np.zeros((len(deals), C), dtype=np.int64)  # 1: the partner makes the marketed product
        for s, deal in enumerate(deals):
            for term in deal.terms:
                if isinstance(term, Supply):
                    for c in deal.covered(term):
                        self.maker[s, c] = int(term.payee == "partner")
        # PI: index of each PHASES entry among a candidate's remaining phases (-1: behind it), the
        # number of remaining phases and the length of its launch curve
        self.PI = np.full((C, len(PHASES) + 2), -1, dtype=np.int64)
        self.curve = np.ones((C, max(len(c.commercial.curve()) for c in first.candidates)))
        for c, cand in enumerate(first.candidates):
            for k, (phase, _) in enumerate(cand.remaining_phases()):
                self.PI[c, PHASES.index(phase)] = k
            self.PI[c, len(PHASES)] = len(cand.remaining_phases())
            curve = cand.commercial.curve()
            self.curve[c, : len(curve)] = curve
            self.PI[c, len(PHASES) + 1] = len(curve)
        fees = max(sum(1 for t in d.terms if isinstance(t, ServiceFees)) for d in deals)  # one structure's
        K = max(len(c.remaining_phases()) for c in first.candidates)
        H = first.horizon_years
        # recorded fee flows per path: per fee term and candidate, K spans split at <= H + 2 new years, K lumps
        self.record = max(1, fees * C * (3 * K + H + 4))
        self.horizon = H


def program_arrays(program) -> np.ndarray:
    """The chunk's program as one array ``(n, C, 7 + 6 K)`` (K: the most remaining phases).

    Per candidate: remake, launch, peak sales, exclusivity, erosion, cost of goods, opex; then
    per phase k at ``7 + 6 k``: start, end, reached, succeeded (0 failed, 1 succeeded, 2 succeeded and
    then stopped at the gate), sponsor cost, partner cost.
    """
    if isinstance(program, PackedProgram):
        return program.arrays()
    packed = getattr(program, "_packed", None)
    if packed is not None:  # a cached chunk's program, packed once for every revaluation
        return packed
    n, C = program.n, len(program.candidates)
    K = max(len(cp.phases) for cp in program.candidates)
    P = np.zeros((n, C, 7 + 6 * K))
    for c, cp in enumerate(program.candidates):
        for f, name in enumerate(("remake", "launch", "peak_sales", "exclusivity_years", "erosion_after_loe",
                                  "cogs_fraction", "opex_fraction")):
            P[:, c, f] = getattr(cp, name)
        for f, name in enumerate(("start", "end", "reached", "succeeded", "sponsor_cost", "partner_cost")):
            P[:, c, 7 + f:7 + 6 * len(cp.phases):6] = getattr(cp, name)
        if cp.stopped is not None:  # succeeded = 2: succeeded, then stopped at the next gate
            P[:, c, 7 + SU:7 + 6 * len(cp.phases):6] += cp.stopped
    object.__setattr__(program, "_packed", P)  # the program is immutable, so is its packing
    return P


class BuilderInputs(NamedTuple):
    """What :func:`_build_program` builds a chunk's ``P`` from (in its argument order)."""

    V: np.ndarray  # (C, rows, n): the quantities that vary, per path (candidate_inputs' values)
    fixed: np.ndarray  # (C, Q): the quantities that do not
    varies: np.ndarray  # (C, Q) bool
    slot: np.ndarray  # (C, Q): the row of V of a quantity that varies
    K: np.ndarray  # (C,): phases left per candidate
    phase: np.ndarray  # (C, K): each one's index in PHASES (for the copula's normals)
    group: np.ndarray  # (C,): platform group
    a: np.ndarray  # (groups,): sqrt(rho), the shared factor's weight
    b: np.ndarray  # (groups,): sqrt(1 - rho)
    factor: np.ndarray  # (n, groups, 5): shared normals
    own: np.ndarray  # (n, C, 5): each candidate's own normals


@dataclass(frozen=True)
class PackedProgram:
    """A chunk's program as the kernel reads it, and the chunk's counts (per candidate: paths reaching
    each phase, approvals, sum of launch times, stops after each phase).

    Kept compact: the inputs of the compiled builder (the quantities that vary, per path, and the
    copula's normals: about a third of ``P``'s size), from which :meth:`arrays` builds ``P`` into a
    buffer each thread reuses. Writing a fresh ``P`` for every chunk cost more in the operating
    system's first touch of its memory than in the building. A program that goes the long way
    (gate decisions) keeps its ``P``.
    """

    n: int
    counts: list
    inputs: BuilderInputs | None = None
    P: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        if self.P is not None:
            return self.P.nbytes
        return sum(a.nbytes for a in self.inputs if isinstance(a, np.ndarray))

    def arrays(self, reached: np.ndarray | None = None, launch: np.ndarray | None = None) -> np.ndarray:
        """``P`` (:func:`program_arrays`' layout), valid until this thread's next call; ``reached`` /
        ``launch``: where the builder also counts phases reached and writes launch times."""
        if self.P is not None:
            return self.P
        C, K = self.inputs.V.shape[0], self.inputs.K
        P = _thread_buffer("P", (self.n, C, PH0 + 6 * int(K.max())))
        if reached is None:
            if getattr(_THREAD, "built", None) is self:  # this thread's buffer still holds this program
                return P
            reached = np.zeros((C, self.inputs.phase.shape[1]), dtype=np.int64)
            launch = _thread_buffer("L", (C, self.n))
        _THREAD.built = None
        _build_program(*self.inputs, P, reached, launch)
        _THREAD.built = self
        return P


_THREAD = threading.local()


def _thread_buffer(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A scratch array of ``shape`` this thread reuses (grown when too small)."""
    size = math.prod(shape)
    buf = getattr(_THREAD, name, None)
    if buf is None or buf.size < size:
        buf = np.empty(size)
        setattr(_THREAD, name, buf)
    return buf[:size].reshape(shape)


def pack_program(deal: Deal, seed: int, first_block: int, n: int) -> PackedProgram:
    """The chunk's program, simulated straight into the kernel's layout.

    The same numbers as :func:`program_arrays` of :func:`dealmodel.engine.deal_program` (tested bit for
    bit): the random numbers and each quantity's inverse CDF stay in NumPy
    (:func:`dealmodel.program.candidate_inputs`, only for the quantities that are not fixed), the
    phases' chain and the copula's latents are compiled, one path at a time. This skips building the
    ``(paths, phases)`` arrays of :class:`dealmodel.program.ProgramPaths` and then copying them field by field
    into ``P``, which took a third of the kernel's time. Gate decisions need those arrays: a deal with
    them goes the long way.
    """
    from dealmodel.engine import _counts, deal_program
    from dealmodel.program import candidate_inputs, draw_blocks

    n_blocks = math.ceil(n / BLOCK)
    if deal.decision_rule != "none" or not AVAILABLE:
        program = deal_program(deal, seed, first_block, n_blocks, n)
        return PackedProgram(n, _counts(program), P=program_arrays(program))
    latents, uniforms = draw_blocks(deal, seed, first_block, n_blocks)
    C = len(deal.candidates)
    K = np.array([len(c.remaining_phases()) for c in deal.candidates], dtype=np.int64)
    Q = 4 * int(K.max()) + 6
    fixed = np.zeros((C, Q))
    varies = np.zeros((C, Q), dtype=np.bool_)
    inputs = [candidate_inputs(deal, cand, uniforms[c][:, :n]) for c, cand in enumerate(deal.candidates)]
    V = np.empty((C, max(1, max(sum(np.ndim(v) > 0 for v in vals) for vals in inputs)), n))
    slot = np.zeros((C, Q), dtype=np.int64)  # row of V of a quantity that varies
    for c, vals in enumerate(inputs):
        row = 0
        for q, v in enumerate(vals):
            if np.ndim(v):
                varies[c, q], slot[c, q] = True, row
                V[c, row] = v
                row += 1
            else:
                fixed[c, q] = float(v)
    phase = np.zeros((C, max(1, int(K.max()))), dtype=np.int64)
    for c, cand in enumerate(deal.candidates):
        for k, (name, _) in enumerate(cand.remaining_phases()):
            phase[c, k] = PHASES.index(name)
    group = np.asarray(latents.group_of, dtype=np.int64)
    # the normals of the phases some candidate has left, of these n paths only (the builder's own layout)
    factor = np.ascontiguousarray(latents.factor[:n])
    own = np.ascontiguousarray(latents.own[:n])
    packed = PackedProgram(n, [], BuilderInputs(V, fixed, varies, slot, K, phase, group, latents.a, latents.b, factor,
                                                own))
    reached = np.zeros((C, phase.shape[1]), dtype=np.int64)
    launch = np.empty((C, n))
    packed.arrays(reached, launch)
    for c in range(C):
        launched = launch[c][launch[c] < math.inf]  # contiguous, in path order: summed as the NumPy engine sums
        packed.counts.append((reached[c, :K[c]].astype(float), launched.size, float(launched.sum()),
                              np.zeros(K[c])))
    return packed


# --------------------------------------------------------------------------- compiled helpers
#
# Everything a path needs lives in a few flat arrays: the program ``P`` (n, C, fields), its static
# layout ``PI``, the term tables ``TF`` (floats) and ``TI`` (ints), and one work array ``W`` per
# chunk that holds every accumulator and scratch buffer at fixed offsets. Compiled calls pass
# array arguments by reference count (two atomic operations each), so the booking helpers take
# the one work array and integer offsets, and the discounts ``D`` are a tuple of plain numbers:
# (timing code, horizon, period offset, log(1 + r) of sponsor, partner, program).

# program fields per candidate, then six per phase (PH0 + 6 k + field)
RM, LA, PK, EX, ER, CG, OP = range(7)
PH0 = 7
ST, EN, RE, SU, SC, PC = range(6)
# static candidate layout: PI[c] = phase_at (5 entries) | number of phases | length of the launch curve
NPH, NCURVE = len(PHASES), len(PHASES) + 1
MEMO = 6  # the work array starts with the integral memo: (time, integral) per discount

if AVAILABLE:
    _jit = njit(cache=True, nogil=True, error_model="numpy")
    _small = njit(cache=True, nogil=True, error_model="numpy", inline="always")  # no call, no reference counts

    @_jit
    def _build_program(V, fixed, varies, slot, K, phase, group, a, b, factor, own, P, reached, launch):
        """:func:`pack_program`'s compiled part: each path's phases' chain, successes and fields into ``P``,
        in the arithmetic of :func:`dealmodel.program.simulate_program` (so the numbers are the same);
        paths reaching each phase added to ``reached`` (C, K), each candidate's launch into ``launch`` (C, n)."""
        n, C, F = P.shape
        for path in range(n):
            for c in range(C):
                nk = K[c]
                base = 4 * nk
                remake = V[c, slot[c, base + 5], path] if varies[c, base + 5] else fixed[c, base + 5]
                g = group[c]
                t = 0.0
                alive = True
                for k in range(nk):
                    q = 4 * k
                    d = V[c, slot[c, q], path] if varies[c, q] else fixed[c, q]
                    sc = V[c, slot[c, q + 1], path] if varies[c, q + 1] else fixed[c, q + 1]
                    pc = V[c, slot[c, q + 2], path] if varies[c, q + 2] else fixed[c, q + 2]
                    thr = V[c, slot[c, q + 3], path] if varies[c, q + 3] else fixed[c, q + 3]
                    end = t + d
                    z = a[g] * factor[path, g, phase[c, k]] + b[g] * own[path, c, phase[c, k]]
                    succeeded = alive and z < thr
                    o = PH0 + 6 * k
                    P[path, c, o + ST] = t
                    P[path, c, o + EN] = end
                    P[path, c, o + RE] = 1.0 if alive else 0.0
                    P[path, c, o + SU] = 1.0 if succeeded else 0.0
                    P[path, c, o + SC] = sc
                    P[path, c, o + PC] = pc * remake
                    if alive:
                        reached[c, k] += 1
                    alive = succeeded
                    t = end
                for i in range(PH0 + 6 * nk, F):  # phases another candidate has and this one not
                    P[path, c, i] = 0.0
                P[path, c, RM] = remake
                P[path, c, LA] = launch[c, path] = t if alive else math.inf
                for i, field in enumerate((PK, EX, ER, CG, OP)):  # unrolled by the compiler (a tuple)
                    q = base + i
                    v = V[c, slot[c, q], path] if varies[c, q] else fixed[c, q]
                    P[path, c, field] = v * remake if field == CG else v

    @_small
    def _year_factor(lg, off, i, H):
        """Factor of calendar year i under a period convention (0 from the horizon on)."""
        if i >= H:
            return 0.0
        return math.exp(-lg * (i + off))

    @_small
    def _lump_factor(D, d, t):
        H = D[1]
        if not (t >= 0.0 and t < H):
            return 0.0
        lg = D[3 + d]
        if D[0] == 0.0:
            return math.exp(-lg * t)
        return _year_factor(lg, D[2], math.floor(t), H)

    @_small
    def _integral(D, d, t):
        """Discounted length of [0, min(t, H)) (see timing.Discount.integral)."""
        H = D[1]
        lg = D[3 + d]
        t = min(max(t, 0.0), H)
        if D[0] == 0.0:
            if lg == 0.0:
                return t
            return -math.expm1(-lg * t) / lg
        i = min(math.floor(t), H)
        off = D[2]
        cum = i if lg == 0.0 else math.exp(-lg * off) * math.expm1(-lg * i) / math.expm1(-lg)
        return cum + (t - i) * _year_factor(lg, off, i, H)

    @_jit
    def _chain(D, d, t0, K, W, out):
        """:func:`_integral` at t0 + k for k = 0..K into W[out + 3 k]; with exact timing by the
        recurrence I(t + 1) = I(t) + exp(-lg t) I(1) (no cancellation at any rate): three
        exponentials per chain, not K + 1."""
        lg = D[3 + d]
        if D[0] != 0.0 or not (t0 >= 0.0):
            for k in range(K + 1):
                W[out + 3 * k] = _integral(D, d, t0 + k)
            return
        H = D[1]
        one = _integral(D, d, 1.0) if H >= 1.0 else 1.0
        e = math.exp(-lg * t0)
        r = math.exp(-lg)
        v = _integral(D, d, t0)
        for k in range(K + 1):
            W[out + 3 * k] = v if t0 + k < H else _integral(D, d, H)
            v += e * one
            e *= r

    @_jit
    def _side(W, s, e, q, H, ann, rec):
        """A span's yearly table entries (at ann, -1: none) and its record (at rec, -1: none)."""
        if ann >= 0:
            lo_t = max(s, 0.0)
            hi_t = min(e, H)
            y = math.floor(lo_t)
            while y < H and y < hi_t:
                lo = max(lo_t, float(y))
                hi = min(hi_t, float(y + 1))
                if hi > lo:
                    W[ann + y] += q * (hi - lo)
                y += 1
        if rec >= 0:
            i = rec + 1 + 3 * int(W[rec])
            W[i], W[i + 1], W[i + 2] = s, e, q
            W[rec] += 1.0

    @_small
    def _memo_integral(W, D, d, t):
        """:func:`_integral` through a one-entry memo per discount at W[2 d], W[2 d + 1] (key, value):
        back-to-back spans (tiers, years) share an end, so each end is computed once."""
        if W[2 * d] == t:
            return W[2 * d + 1]
        v = _integral(D, d, t)
        W[2 * d] = t
        W[2 * d + 1] = v
        return v

    @_small
    def _plain_span(s, e, q, W, a, ds, D, ann, rec):
        """Rate q over [s, e) into W: accumulators at a (ds: 0 sponsor+partner, 1 partner+program,
        2 all three), yearly table at ann (-1: none), recorded at rec (-1: not; W[rec] counts)."""
        first = 1 if ds == 1 else 0
        for j in range(3 if ds == 2 else 2):
            i_s = _memo_integral(W, D, first + j, s)
            W[a + j] += q * (_memo_integral(W, D, first + j, e) - i_s)
        if ann >= 0 or rec >= 0:
            _side(W, s, e, q, D[1], ann, rec)

    @_small
    def _cached_spread(s, e, amount, i0, W, a, ds, D, ann, rec):
        """:func:`_spread` over a chain interval whose ends' integrals are cached at W[i0:i0 + 3] and
        W[i0 + 3:i0 + 6] (sponsor, partner, program)."""
        if e - s > 0.0:
            q = amount / (e - s)
            if q == 0.0:
                return
            first = 1 if ds == 1 else 0
            for j in range(3 if ds == 2 else 2):
                W[a + j] += q * (W[i0 + 3 + first + j] - W[i0 + first + j])
            if ann >= 0 or rec >= 0:
                _side(W, s, e, q, D[1], ann, rec)
        else:
            _lump(s, amount, 0.0, W, a, ds, D, ann, rec)

    @_jit
    def _span(s, e, q, g, W, a, ds, D, ann, rec):
        """A constant rate q over [s, e) (indexed by (1 + g)^year when g != 0)."""
        if not (e > s) or q == 0.0 or not math.isfinite(s):
            return
        if g == 0.0:
            _plain_span(s, e, q, W, a, ds, D, ann, rec)
            return
        first = math.floor(min(max(s, 0.0), _YEARS))
        last = math.ceil(min(max(e, 0.0), _YEARS))
        for y in range(first, last):
            lo = min(max(s, float(y)), float(y + 1))
            hi = min(max(e, float(y)), float(y + 1))
            if hi > lo:
                _plain_span(lo, hi, q * (1.0 + g) ** y, W, a, ds, D, ann, rec)

    @_small
    def _lump(t, amount, g, W, a, ds, D, ann, rec):
        """An amount at time t (x (1 + g)^year when g != 0); t = inf: never."""
        if not math.isfinite(t) or amount == 0.0:
            return
        if g != 0.0:
            amount = amount * (1.0 + g) ** math.floor(min(max(t, 0.0), _YEARS))
        first = 1 if ds == 1 else 0
        for j in range(3 if ds == 2 else 2):
            W[a + j] += amount * _lump_factor(D, first + j, t)
        if ann >= 0 and t >= 0.0 and t < D[1]:
            W[ann + math.floor(t)] += amount
        if rec >= 0:
            i = rec + 1 + 3 * int(W[rec])
            W[i], W[i + 1], W[i + 2] = t, math.nan, amount
            W[rec] += 1.0

    @_jit
    def _spread(s, e, amount, g, W, a, ds, D, ann, rec):
        """An amount spread evenly over [s, e); paid at s when the interval is empty."""
        if e - s > 0.0:
            _span(s, e, amount / (e - s), g, W, a, ds, D, ann, rec)
        else:
            _lump(s, amount, g, W, a, ds, D, ann, rec)

    @_jit
    def _indexed_total(s, e, q, g):
        """Undiscounted total of rate q over [s, e) within [0, 100), indexed by (1 + g)^year."""
        s, e = max(s, 0.0), min(e, 100.0)
        if not (e > s):
            return 0.0
        if g == 0.0:
            return q * (e - s)
        total = 0.0
        for y in range(math.floor(s), math.ceil(e)):
            lo, hi = max(s, float(y)), min(e, float(y + 1))
            if hi > lo:
                total += q * (1.0 + g) ** y * (hi - lo)
        return total

    @_jit
    def _sort(W, lo, m):
        """Sort W[lo:lo + m] in place (insertion sort: a handful of breakpoints)."""
        for i in range(lo + 1, lo + m):
            x = W[i]
            j = i - 1
            while j >= lo and W[j] > x:
                W[j + 1] = W[j]
                j -= 1
            W[j + 1] = x

    @_jit
    def _sales_years(launch, H):
        return max(1, math.ceil(H - launch))

    @_jit
    def _failure_time(P, path, c, nk):
        t = math.inf
        for k in range(nk):
            b = PH0 + 6 * k
            if P[path, c, b + RE] != 0.0 and P[path, c, b + SU] != 1.0:  # failed, or stopped after it
                t = min(t, P[path, c, b + EN])
        return t

    @_small
    def _milestone_time(code, thr, P, path, c, PI, W, srate, H):
        """When a candidate-level milestone is paid (inf: never; -1: it cannot be)."""
        if code < 10:
            k = PI[c, code]
            if k <= 0:
                return -1.0  # not ahead of this candidate: the term never applies
            b = PH0 + 6 * k
            return P[path, c, b + ST] if P[path, c, b + RE] != 0.0 else math.inf
        return _sales_event_time(code, thr, P, path, c, W, srate, H)

    @_jit
    def _sales_event_time(code, thr, P, path, c, W, srate, H):
        """When an approval or sales milestone is paid (inf: never)."""
        L = P[path, c, LA]
        if code == EV_APPROVAL:
            return L
        if not (L < H):
            return math.inf
        total = 0.0
        base = srate + c * (int(H) + 2)
        for k in range(_sales_years(L, H)):
            r = W[base + k]
            if code == EV_ANNUAL:
                if r >= thr:
                    return L + k + 1.0
            else:
                before = total
                total += r
                if total >= thr:
                    return L + k + (thr - before) / (r if r > 0 else 1.0)
        return math.inf

    @_jit
    def _approval_count_time(row, TI, P, path, W, tmp):
        m = TI[row, 7]
        count = TI[row, 4]
        if count > m:
            return math.inf
        for i in range(m):
            W[tmp + i] = P[path, TI[row, NI + i], LA]
        _sort(W, tmp, m)
        return W[tmp + count - 1]

    @_jit
    def _tiered(row, TF, nt, n_products, streams, KY, cap, scale, sign, g, W, a, D, ann, pts):
        """Marginal tiers on each royalty year's counted sales of one stream of products.

        Product p of the stream (stride S = W[streams - 1]): launch W[streams + p], loss of
        exclusivity W[.. + S], term end W[.. + 2S], years of sales W[.. + 3S]; its launch-year
        sales at W[streams + 4S + p KY + k]. Tier bounds, rates before and after LOE are
        TF[row, NP + j], TF[row, NP + nt + 1 + j], TF[row, NP + 2 nt + 1 + j].
        """
        H = D[1]
        Lo = streams
        stride = int(W[streams - 1])
        anchor = math.inf
        for p in range(n_products):
            anchor = min(anchor, W[Lo + p])
        paid = 0.0
        for w in range(int(H)):
            lo = anchor + w
            if not (lo < H):
                break
            hi = min(lo + 1.0, H)
            top = max(hi, lo)
            m = 0
            W[pts] = lo
            W[pts + 1] = hi
            m = 2
            for p in range(n_products):
                L = W[Lo + p]
                if not math.isfinite(L):
                    continue
                kn = max(0.0, math.floor(lo - L) + 1.0)
                W[pts + m] = min(max(L + kn, lo), top)
                W[pts + m + 1] = min(max(W[Lo + 2 * stride + p], lo), top)
                W[pts + m + 2] = min(max(W[Lo + stride + p], lo), top)
                m += 3
            _sort(W, pts, m)
            counted = 0.0
            for i in range(m - 1):
                t0, t1 = W[pts + i], W[pts + i + 1]
                dt = t1 - t0
                if not (dt > 0.0):
                    continue
                mid = 0.5 * (t0 + t1)
                qb = 0.0
                qa = 0.0
                for p in range(n_products):
                    L = W[Lo + p]
                    if mid >= L and mid < W[Lo + 2 * stride + p]:
                        k = min(math.floor(mid - L), int(W[Lo + 3 * stride + p]) - 1)
                        q = W[Lo + 4 * stride + p * KY + k]
                        if mid >= W[Lo + stride + p]:
                            qa += q
                        else:
                            qb += q
                total = qb + qa
                x1 = counted + total * dt
                if total > 0:
                    for j in range(nt):
                        r = TF[row, NP + nt + 1 + j] * qb + TF[row, NP + 2 * nt + 1 + j] * qa
                        lo_b, hi_b = TF[row, NP + j], TF[row, NP + j + 1]
                        x_a = min(max(counted, lo_b), hi_b)
                        x_b = min(max(x1, lo_b), hi_b)
                        t_start = t0 + (x_a - counted) / total
                        t_stop = t0 + (x_b - counted) / total
                        r = r * scale
                        if math.isfinite(cap):
                            room = max(cap - paid, 0.0)
                            amount = r * (t_stop - t_start)
                            if amount > room:
                                t_stop = t_start + room / (r if r > 0 else 1.0)
                            paid += min(amount, room)
                        _span(t_start, t_stop, sign * r, g, W, a, 0, D, ann, -1)
                counted = x1

    @_jit
    def _service_fees(row, c, TF, TI, g, P, path, nk, W, a, D, ann, rec, iph):
        s = TF[row, 0]
        markup, ar, prem = TF[row, 1], TF[row, 2], TF[row, 3]
        remake = P[path, c, RM]
        deferred_total = 0.0
        for k in range(nk):
            b = PH0 + 6 * k
            pc = P[path, c, b + PC]
            billed = pc if TI[row, 1] == 1 else pc / remake
            list_price = billed * (1.0 + markup) * P[path, c, b + RE]
            if g == 0.0:
                _cached_spread(P[path, c, b + ST], P[path, c, b + EN], s * list_price * (1.0 - ar), iph + 3 * k, W, a,
                               0, D, ann, rec)
            else:
                _spread(P[path, c, b + ST], P[path, c, b + EN], s * list_price * (1.0 - ar), g, W, a, 0, D, ann, rec)
            if ar != 0.0:
                deferred = s * list_price * ar * (1.0 + prem)
                if TI[row, 3] == 0:
                    if P[path, c, b + SU] != 0.0:
                        _lump(P[path, c, b + EN], deferred, g, W, a, 0, D, ann, rec)
                else:
                    deferred_total += deferred
        if ar != 0.0 and TI[row, 3] == 1:
            _lump(P[path, c, LA], deferred_total, g, W, a, 0, D, ann, rec)

    @_jit
    def _fees_in(W, fees, t0, t1):
        """Recorded fees falling due in [t0, t1)."""
        total = 0.0
        for f in range(int(W[fees])):
            i = fees + 1 + 3 * f
            s, e, q = W[i], W[i + 1], W[i + 2]
            if math.isnan(e):
                if s >= t0 and s < t1:
                    total += q
            else:
                lo, hi = max(s, t0), min(e, t1)
                if hi > lo:
                    total += q * (hi - lo)
        return total

    @_jit
    def _credits(W, fees, arr, na, term0, D, ann, pts):
        """Creditable payments against later service fees, in time order (see terms.fee_credits).

        Arrivals: time W[arr + 3 j], amount W[arr + 3 j + 1], owning term W[arr + 3 j + 2]; their
        order is sorted by time, ties in arrival order (a stable sort).
        """
        H = D[1]
        nf = int(W[fees])
        balance = 0.0
        for _ in range(na):
            # the next arrival in time order, ties in arrival order
            best = -1
            for j in range(na):
                if W[arr + 3 * j + 2] < 0:
                    continue
                if best < 0 or W[arr + 3 * j] < W[arr + 3 * best]:
                    best = j
            t = W[arr + 3 * best]
            amount = W[arr + 3 * best + 1]
            owner = int(W[arr + 3 * best + 2])
            W[arr + 3 * best + 2] = -1.0  # taken
            nxt = math.inf
            for j in range(na):
                if W[arr + 3 * j + 2] >= 0:
                    nxt = min(nxt, W[arr + 3 * j])
            if not (t < H):
                continue
            t0 = t
            t1 = min(nxt, H)
            balance += amount
            available = _fees_in(W, fees, t0, t1)
            stop = t1
            if available > balance:
                m = 0
                W[pts] = t0
                m = 1
                for f in range(nf):
                    i = fees + 1 + 3 * f
                    for v in (W[i], W[i + 1]):
                        if v > t0 and v < t1:
                            W[pts + m] = v
                            m += 1
                W[pts + m] = t1
                m += 1
                _sort(W, pts, m)
                u = 1  # distinct breakpoints only: each stretch between two is walked once
                for i in range(1, m):
                    if W[pts + i] != W[pts + u - 1]:
                        W[pts + u] = W[pts + i]
                        u += 1
                m = u
                F = 0.0
                for i in range(m):
                    p = W[pts + i]
                    if p >= t1:
                        break
                    jump = 0.0
                    slope = 0.0
                    nxt_p = W[pts + i + 1]
                    for f in range(nf):
                        k = fees + 1 + 3 * f
                        if math.isnan(W[k + 1]):
                            if W[k] == p:
                                jump += W[k + 2]
                        elif W[k] <= p and W[k + 1] >= nxt_p:
                            slope += W[k + 2]
                    if F + jump > balance:
                        stop = p
                        break
                    F += jump
                    if F + slope * (nxt_p - p) > balance:
                        stop = p + (balance - F) / slope
                        break
                    F += slope * (nxt_p - p)
            # what is left of the balance at the stop pays part of a fee falling due then
            rest = balance - _fees_in(W, fees, t0, stop) if available > balance else 0.0
            a = term0 + 2 * owner
            for f in range(nf):
                i = fees + 1 + 3 * f
                s, e, q = W[i], W[i + 1], W[i + 2]
                if math.isnan(e):
                    if s >= t0 and s < stop:
                        _lump(s, -q, 0.0, W, a, 0, D, ann, -1)
                else:
                    _span(max(s, t0), min(e, stop), -q, 0.0, W, a, 0, D, ann, -1)
            if rest > 0.0:
                _lump(stop, -rest, 0.0, W, a, 0, D, ann, -1)
            balance = balance - available if available <= balance else 0.0

    @_jit
    def _structure(s_idx, path, t_lo, t_hi, P, PI, TF, TI, esc, maker, W, Lw, D, want_ann, out_npv, out_tpv,
                   out_tsum, out_ann):
        """Value one structure's terms on one path, writing its NPVs (and yearly flows)."""
        term0, own, extra, pay, xann, ownann, srate, fees, tmp, streams, arr, pts, iph, isl, KB = Lw
        H = D[1]
        C = P.shape[1]
        KY = int(H) + 2
        stride = int(W[streams - 1])
        T = t_hi - t_lo
        for i in range(term0, term0 + 2 * T):
            W[i] = 0.0
        W[extra] = 0.0
        W[extra + 1] = 0.0
        ann = pay if want_ann else -1
        xa = xann if want_ann else -1
        if want_ann:
            for y in range(int(H)):
                W[pay + y] = 0.0
                W[xann + y] = 0.0
        W[fees] = 0.0
        has_credit = False
        for row in range(t_lo, t_hi):
            kind = TI[row, 0]
            if (kind == UPFRONT or kind == MILESTONE) and TI[row, 2] == 1 and TF[row, 0] > 0:
                has_credit = True
        for row in range(t_lo, t_hi):
            kind = TI[row, 0]
            s = TF[row, 0]
            g = esc[TI[row, 8], path] if TI[row, 8] >= 0 else 0.0
            a = term0 + 2 * (row - t_lo)
            ncov = TI[row, 7]
            if kind == UPFRONT:
                _lump(0.0, s * TF[row, 1], 0.0, W, a, 0, D, ann, -1)
            elif kind == FEES:
                rec = fees if (has_credit and s > 0) else -1
                for i in range(ncov):
                    c = TI[row, NI + i]
                    _service_fees(row, c, TF, TI, g, P, path, PI[c, NPH], W, a, D, ann, rec, iph + 3 * KB * c)
            elif kind == MILESTONE:
                if TI[row, 1] == EV_COUNT:
                    _lump(_approval_count_time(row, TI, P, path, W, tmp), s * TF[row, 1], 0.0, W, a, 0, D, ann, -1)
                else:
                    for i in range(ncov):
                        c = TI[row, NI + i]
                        when = _milestone_time(TI[row, 1], TF[row, 2], P, path, c, PI, W, srate, H)
                        if when >= 0.0:
                            _lump(when, s * TF[row, 1], 0.0, W, a, 0, D, ann, -1)
            elif kind == ROYALTY or (kind == SUPPLY and TI[row, 6] == 1):
                royalty = kind == ROYALTY
                nt = TI[row, 5]
                cap = TF[row, 3] if royalty else math.inf
                years = TF[row, 2]
                aggregate = royalty and TI[row, 1] == 1
                n_p = 0
                launched = False
                for i in range(ncov):
                    c = TI[row, NI + i]
                    L = P[path, c, LA]
                    p = n_p if aggregate else 0
                    if not (L < H):
                        if aggregate:
                            W[streams + p] = math.inf
                            W[streams + stride + p] = math.inf
                            W[streams + 2 * stride + p] = math.inf
                            W[streams + 3 * stride + p] = 1.0
                            n_p += 1
                        continue
                    launched = True
                    K = _sales_years(L, H)
                    W[streams + p] = L
                    W[streams + stride + p] = L + P[path, c, EX]
                    W[streams + 3 * stride + p] = K
                    for k in range(K):
                        W[streams + 4 * stride + p * KY + k] = W[srate + c * KY + k]
                    if royalty and math.isfinite(years):
                        W[streams + 2 * stride + p] = L + (max(years, P[path, c, EX]) if TI[row, 3] == 1 else years)
                    else:
                        W[streams + 2 * stride + p] = math.inf
                    if aggregate:
                        n_p += 1
                    else:
                        scale = 1.0
                        if not royalty:
                            cogs = P[path, c, CG]
                            scale = cogs / P[path, c, RM] if TI[row, 1] == 1 else cogs
                        _tiered(row, TF, nt, 1, streams, KY, cap, scale, s, g, W, a, D, ann, pts)
                if aggregate and launched:
                    _tiered(row, TF, nt, n_p, streams, KY, cap, 1.0, s, g, W, a, D, ann, pts)
            elif kind == SUPPLY:
                for i in range(ncov):
                    c = TI[row, NI + i]
                    L = P[path, c, LA]
                    if not (L < H):
                        continue
                    cogs = P[path, c, CG]
                    basis = cogs / P[path, c, RM] if TI[row, 1] == 1 else cogs
                    price = s * basis * (1.0 + TF[row, 1])
                    for k in range(_sales_years(L, H)):
                        if g == 0.0:
                            _cached_spread(L + k, L + k + 1.0, W[srate + c * KY + k] * price, isl + 3 * (c * KY + k),
                                           W, a, 0, D, ann, -1)
                        else:
                            _span(L + k, L + k + 1.0, W[srate + c * KY + k] * price, g, W, a, 0, D, ann, -1)
            elif kind == COST_SHARE:
                for i in range(ncov):
                    c = TI[row, NI + i]
                    for k in range(PI[c, NPH]):
                        b = PH0 + 6 * k
                        funded = P[path, c, b + SC] if TI[row, 1] == 1 else P[path, c, b + PC]
                        amount = s * TF[row, 1] * funded * P[path, c, b + RE]
                        _cached_spread(P[path, c, b + ST], P[path, c, b + EN], amount, iph + 3 * (KB * c + k), W, a,
                                       0, D, ann, -1)
                    L = P[path, c, LA]
                    if TF[row, 2] != 0.0 and L < H:
                        f = -s * TF[row, 2] * (1.0 - P[path, c, CG] - P[path, c, OP])
                        for k in range(_sales_years(L, H)):
                            _cached_spread(L + k, L + k + 1.0, W[srate + c * KY + k] * f, isl + 3 * (c * KY + k), W,
                                           a, 0, D, ann, -1)
            elif kind == CANCEL:
                for i in range(ncov):
                    c = TI[row, NI + i]
                    nk = PI[c, NPH]
                    amount = TF[row, 1]
                    for k in range(nk):
                        b = PH0 + 6 * k
                        if P[path, c, b + RE] != 0.0 and P[path, c, b + SU] != 1.0 and k + 1 < nk:
                            nominal = P[path, c, b + 6 + PC] / P[path, c, RM]
                            amount += TF[row, 2] * (nominal * (1.0 + TF[row, 3]))
                    _lump(_failure_time(P, path, c, nk), s * amount, 0.0, W, a, 0, D, ann, -1)
            elif kind == REBATE:
                for i in range(ncov):
                    c = TI[row, NI + i]
                    W[tmp] = 0.0
                    for other in range(t_lo, t_hi):
                        if TI[other, 0] != FEES or TF[other, 0] < 0:
                            continue
                        for jj in range(TI[other, 7]):
                            if TI[other, NI + jj] == c:
                                # into the spare accumulators at `extra + 2`: only the record is used
                                g_other = esc[TI[other, 8], path] if TI[other, 8] >= 0 else 0.0
                                _service_fees(other, c, TF, TI, g_other, P, path, PI[c, NPH], W, extra + 2,
                                              D, -1, tmp, iph + 3 * KB * c)
                    paid = 0.0
                    for f in range(int(W[tmp])):
                        k = tmp + 1 + 3 * f
                        if math.isnan(W[k + 1]):
                            if W[k] >= 0.0 and W[k] < 100.0:
                                paid += W[k + 2]
                        else:
                            paid += _indexed_total(W[k], W[k + 1], W[k + 2], 0.0)
                    _lump(P[path, c, LA], s * TF[row, 1] * paid, 0.0, W, a, 0, D, ann, -1)
            elif kind == CAPACITY:
                fee, t_start, t_end = TF[row, 1], TF[row, 2], TF[row, 3]
                program_scope = TI[row, 1] == 1
                for u in range(1 if program_scope else ncov):
                    if program_scope:
                        failed = -math.inf
                        for i in range(ncov):
                            c = TI[row, NI + i]
                            failed = max(failed, _failure_time(P, path, c, PI[c, NPH]))
                    else:
                        c = TI[row, NI + u]
                        failed = _failure_time(P, path, c, PI[c, NPH])
                    release = min(max(failed + TF[row, 4], t_start), t_end)
                    _span(t_start, release, s * fee, g, W, a, 0, D, ann, -1)
                    if TF[row, 5] > 0:
                        shortfall = max(TF[row, 5] - _indexed_total(t_start, release, fee, g), 0.0)
                        _lump(release, s * shortfall, 0.0, W, a, 0, D, ann, -1)
                    if TF[row, 6] != 0.0:
                        _span(t_start, t_end, -TF[row, 6], 0.0, W, extra, 1, D, xa, -1)
                    if TF[row, 7] != 0.0:
                        _span(release, t_end, TF[row, 7] * fee, g, W, extra, 1, D, xa, -1)
            elif kind == OPTION:
                _lump(0.0, s * TF[row, 1], 0.0, W, a, 0, D, ann, -1)
                phase = TI[row, 1]
                for i in range(ncov):
                    c = TI[row, NI + i]
                    k0 = -1 if phase < 0 else PI[c, phase]
                    if phase < 0:
                        when = P[path, c, LA]
                    elif k0 < 0:
                        when = math.inf
                    else:
                        b = PH0 + 6 * k0
                        when = P[path, c, b + ST] if P[path, c, b + RE] != 0.0 else math.inf
                    _lump(when, s * TF[row, 2], 0.0, W, a, 0, D, ann, -1)
                    if TF[row, 3] != 0.0 and k0 >= 0:
                        for k in range(k0, PI[c, NPH]):
                            b = PH0 + 6 * k
                            cut = P[path, c, b + PC] / P[path, c, RM] * P[path, c, b + RE] * TF[row, 3]
                            _spread(P[path, c, b + ST], P[path, c, b + EN], s * cut, 0.0, W, a, 0, D, ann, -1)
                    L = P[path, c, LA]
                    if TF[row, 4] != 0.0 and L < H and math.isfinite(when):
                        stop = L + TF[row, 5]
                        for k in range(_sales_years(L, H)):
                            _span(min(L + k, stop), min(L + k + 1.0, stop), -s * TF[row, 4] * W[srate + c * KY + k],
                                  0.0, W, a, 0, D, ann, -1)
        if has_credit:
            na = 0
            for row in range(t_lo, t_hi):
                kind = TI[row, 0]
                if not ((kind == UPFRONT or kind == MILESTONE) and TI[row, 2] == 1 and TF[row, 0] > 0):
                    continue
                if kind == UPFRONT:
                    W[arr + 3 * na], W[arr + 3 * na + 1], W[arr + 3 * na + 2] = 0.0, TF[row, 1], row - t_lo
                    na += 1
                elif TI[row, 1] == EV_COUNT:
                    W[arr + 3 * na] = _approval_count_time(row, TI, P, path, W, tmp)
                    W[arr + 3 * na + 1], W[arr + 3 * na + 2] = TF[row, 1], row - t_lo
                    na += 1
                else:
                    for i in range(TI[row, 7]):
                        c = TI[row, NI + i]
                        when = _milestone_time(TI[row, 1], TF[row, 2], P, path, c, PI, W, srate, H)
                        if when >= 0.0:
                            W[arr + 3 * na], W[arr + 3 * na + 1], W[arr + 3 * na + 2] = when, TF[row, 1], row - t_lo
                            na += 1
            # the fees as the reference engine credits them: inside [0, H)
            for f in range(int(W[fees])):
                k = fees + 1 + 3 * f
                if math.isnan(W[k + 1]):
                    if not (W[k] >= 0.0 and W[k] < H):
                        W[k + 2] = 0.0
                else:
                    W[k] = max(W[k], 0.0)
                    W[k + 1] = min(W[k + 1], H)
            _credits(W, fees, arr, na, term0, D, ann, pts)
        # NPVs: each candidate's own flows (shared by the structures) + this structure's terms
        sp = 0.0
        pa = 0.0
        pr = 0.0
        for c in range(C):
            o = own + 9 * c  # [sales, sponsor cost, partner cost] x [sponsor, partner, program]
            cogs, opex = P[path, c, CG], P[path, c, OP]
            if maker[c] == 1:
                fs, fp = 1.0 - opex, -cogs
            else:
                fs, fp = 1.0 - opex - cogs, 0.0
            sp += W[o + 3 + SPONSOR] + fs * W[o + SPONSOR]
            pa += W[o + 6 + PARTNER] + fp * W[o + PARTNER]
            pr += W[o + 3 + PROGRAM] + fs * W[o + PROGRAM] + W[o + 6 + PROGRAM] + fp * W[o + PROGRAM]
            if want_ann:
                oa = ownann + 3 * c * int(H)
                for y in range(int(H)):
                    out_ann[s_idx, 0, path, y] += W[oa + int(H) + y] + fs * W[oa + y]
                    out_ann[s_idx, 1, path, y] += W[oa + 2 * int(H) + y] + fp * W[oa + y]
        paid_sp = 0.0
        paid_pa = 0.0
        for t in range(T):
            paid_sp += W[term0 + 2 * t]
            paid_pa += W[term0 + 2 * t + 1]
            if out_tpv.shape[1] > 0:
                out_tpv[t_lo + t, path] = W[term0 + 2 * t + 1]
            out_tsum[t_lo + t] += W[term0 + 2 * t + 1]
        out_npv[s_idx, SPONSOR, path] = sp - paid_sp
        out_npv[s_idx, PARTNER, path] = pa + W[extra] + paid_pa
        out_npv[s_idx, PROGRAM, path] = pr + W[extra + 1]
        if want_ann:
            for y in range(int(H)):
                out_ann[s_idx, 0, path, y] -= W[pay + y]
                out_ann[s_idx, 1, path, y] += W[pay + y] + W[xann + y]

    @_jit
    def value_chunk(P, PI, curve, TF, TI, esc, offsets, maker, D, want_ann, record, out_npv, out_tpv, out_tsum,
                    out_ann):
        """Value every structure on every path of a chunk (see the module docstring for the layout)."""
        n, C = P.shape[0], P.shape[1]
        S = offsets.size - 1
        H = int(D[1])
        Hf = D[1]
        TT = TI.shape[0]
        KY = H + 2
        # the work array's blocks (offsets), once per chunk
        term0 = MEMO  # W[:MEMO]: the integral memo of _memo_integral
        own = term0 + 2 * max(TT, 1)
        extra = own + 9 * C
        pay = extra + 4
        xann = pay + H
        ownann = xann + H
        srate = ownann + 3 * C * H
        fees = srate + C * KY
        tmp = fees + 1 + 3 * record
        streams = tmp + 1 + 3 * record + C + 1
        arr = streams + 4 * C + C * KY
        pts = arr + 3 * max(TT * C, 1)
        KB = (P.shape[2] - PH0) // 6 + 1  # phase boundaries per candidate
        iph = pts + 2 * (3 * record + C + 2) + 8  # integrals at each phase boundary, per discount
        isl = iph + 3 * C * KB  # integrals at each launch-year boundary, per discount
        size = isl + 3 * C * KY
        W = np.zeros(size)
        W[:MEMO] = math.nan  # no memo entry matches
        W[streams - 1] = C
        Lw = (term0, own, extra, pay, xann, ownann, srate, fees, tmp, streams, arr, pts, iph, isl, KB)
        for path in range(n):
            for i in range(own, extra):
                W[i] = 0.0
            if want_ann:
                for i in range(ownann, srate):
                    W[i] = 0.0
            for c in range(C):
                o = own + 9 * c
                oa = ownann + 3 * c * H
                nk = PI[c, NPH]
                ib = iph + 3 * KB * c
                reached = 0
                while reached < nk and P[path, c, PH0 + 6 * reached + RE] != 0.0:
                    reached += 1
                for k in range(reached + 1):  # the reached phases' chain: each boundary's integral once
                    t = P[path, c, PH0 + ST] if k == 0 else P[path, c, PH0 + 6 * (k - 1) + EN]
                    for d in range(3):
                        W[ib + 3 * k + d] = _integral(D, d, t)
                for k in range(reached):
                    b = PH0 + 6 * k
                    r = P[path, c, b + RE]
                    s0, e0 = P[path, c, b + ST], P[path, c, b + EN]
                    _cached_spread(s0, e0, -P[path, c, b + SC] * r, ib + 3 * k, W, o + 3, 2, D,
                                   oa + H if want_ann else -1, -1)
                    _cached_spread(s0, e0, -P[path, c, b + PC] * r, ib + 3 * k, W, o + 6, 2, D,
                                   oa + 2 * H if want_ann else -1, -1)
                L = P[path, c, LA]
                if L < Hf:
                    peak, erosion, excl = P[path, c, PK], P[path, c, ER], P[path, c, EX]
                    K = _sales_years(L, Hf)
                    sb = isl + 3 * c * KY
                    for d in range(3):  # the launch years' chain
                        _chain(D, d, L, K, W, sb + d)
                    for k in range(K):
                        cv = curve[c, k] if k < PI[c, NCURVE] else 1.0
                        past = max(0.0, k + 1.0 - excl)
                        rate = peak * cv * (1.0 - erosion) ** past
                        W[srate + c * KY + k] = rate
                        _cached_spread(L + k, L + k + 1.0, rate, sb + 3 * k, W, o, 2, D, oa if want_ann else -1, -1)
            for s in range(S):
                if want_ann:
                    out_ann[s, :, path, :] = 0.0
                _structure(s, path, offsets[s], offsets[s + 1], P, PI, TF, TI, esc, maker[s], W, Lw, D, want_ann,
                           out_npv, out_tpv, out_tsum, out_ann)


# --------------------------------------------------------------------------- the driver


_OFFSET = {"exact": 0.0, "end_of_year": 1.0, "mid_year": 0.5, "start_of_year": 0.0}


def discounts(deal: Deal) -> tuple[float, ...]:
    """The kernel's ``D``: (timing code, horizon, period offset, log(1 + r) of sponsor, partner, program)."""
    from dealmodel.engine import discount_table

    table = discount_table(deal)
    return (float(TIMING_CODE[deal.timing]), float(deal.horizon_years), _OFFSET[deal.timing],
            *(table[p].log_growth for p in ("sponsor", "partner", "program")))


def escalation_table(deals: list[Deal], seed: int, first_block: int, n: int) -> np.ndarray:
    """The yearly price index of each indexed term (in deal and term order) on each path ``(rows, n)``.

    Only terms with an ``escalation`` have a row (``Plan.TI[row, 8]`` points to it), so a grid of
    hundreds of structures without indexation costs one row, not one per term.
    """
    from dealmodel.terms import escalation_draws

    rows = []
    for deal in deals:
        draws = escalation_draws(deal, seed, first_block, n)
        for term in deal.terms:
            if getattr(term, "escalation", None) is not None:
                rows.append(np.broadcast_to(np.asarray(draws[id(term)], dtype=float), (n,)))
    return np.array(rows).reshape(len(rows), n) if rows else np.zeros((1, n))


def run_chunk(deals: list[Deal], plan: Plan, program, seed: int, first_block: int, want_annual: bool,
              out_npv: np.ndarray, out_tpv: np.ndarray, out_ann: np.ndarray) -> np.ndarray:
    """Value every structure of ``plan`` on one chunk's simulated ``program``, into the ``out_*`` arrays.

    ``out_npv`` is ``(S, 3, n)`` (sponsor, partner, program), ``out_tpv`` ``(terms, n)`` per-path
    term PVs (``(terms, 0)`` when not wanted) and ``out_ann`` ``(S, 2, n, H)`` yearly flows of
    sponsor and partner (``(S, 2, 0, H)`` when not wanted). Returns each term's PV summed over
    the chunk's paths (in path order).
    """
    esc = escalation_table(deals, seed, first_block, program.n)
    sums = np.zeros(plan.TI.shape[0])
    value_chunk(program_arrays(program), plan.PI, plan.curve, plan.TF, plan.TI, esc, plan.offsets, plan.maker,
                discounts(deals[0]), want_annual, plan.record, out_npv, out_tpv, sums, out_ann)
    return sums
