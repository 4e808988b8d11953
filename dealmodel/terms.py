"""Term mechanics: how each piece of a deal turns the simulated program into payments.

One function per term kind books that term's payments into a :class:`~dealmodel.cashflows.Ledger`
holding the **net flow to the partner** (a payment from the partner is negative), in continuous
time: lumps at the moment an event happens, spans over the interval a fee or a royalty accrues.
The same term's contribution to the headline figures (biobucks, total contract value) lives
beside it, so the rule for a term is in one place. Term payments only move cash between the
parties: the program's own cash flows (sales and costs) never depend on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dealmodel.cashflows import Ledger
from dealmodel.program import BLOCK, CandidatePaths, ProgramPaths, Sales, term_uniforms
from dealmodel.schema import (
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


def _sign(term) -> float:
    """+1 when the term's payer -> payee flow goes to the partner."""
    return 1.0 if term.payee == "partner" else -1.0


# --------------------------------------------------------------------------- per-kind mechanics


def billed_cost(term: ServiceFees, cp: CandidatePaths) -> np.ndarray:
    """The partner's cost a fee is billed on: nominal when the partner pays for failed batches."""
    return cp.partner_cost if term.failed_batches_paid_by == "sponsor" else cp.partner_cost / cp.remake[:, None]


def service_fees(term: ServiceFees, cp: CandidatePaths, led: Ledger, esc) -> None:
    """Cost x (1 + markup) spread over each phase reached; the at-risk part paid on success.

    With an ``escalation`` index, fees in calendar year i are x (1 + escalation)^i, deferred
    parts at the index of the year they are paid.
    """
    s = _sign(term)
    list_price = billed_cost(term, cp) * (1.0 + term.markup) * cp.reached
    led.spread_chain(cp.bounds, s * list_price * (1.0 - term.at_risk_fraction), index=esc)
    if term.at_risk_fraction == 0.0:
        return
    deferred = s * list_price * term.at_risk_fraction * (1.0 + term.success_premium)
    if term.deferred_until == "phase_success":
        led.lump(np.where(cp.succeeded, cp.end, np.inf), deferred, index=esc)
    else:
        led.lump(cp.launch, deferred.sum(axis=1), index=esc)


def _event_time(term: Milestone, cp: CandidatePaths) -> np.ndarray | None:
    if term.event in ("approval", "first_sale"):
        return cp.launch
    phase = "filing" if term.event == "filing" else term.event.removesuffix("_start")
    k = cp.phase_index(phase)
    if k is None or k == 0:  # not ahead of this candidate: nothing to pay
        return None
    return np.where(cp.reached[:, k], cp.start[:, k], np.inf)


def milestone_time(term: Milestone, cp: CandidatePaths, sales: Sales, n: int) -> np.ndarray | None:
    """When a candidate-level milestone is paid on each of ``n`` paths (inf: never), or None if it cannot be."""
    if term.event in ("annual_sales", "cumulative_sales"):
        when = np.full(n, np.inf)
        if sales.rows.size == 0:
            return when
        if term.event == "annual_sales":  # at the end of the first royalty year at the threshold
            hit = sales.rate >= term.threshold
            year = np.argmax(hit, axis=1)
            at = sales.launch + year + 1.0
        else:  # the moment cumulative sales since launch reach it, inside a launch year
            total = np.cumsum(sales.rate, axis=1)
            hit = total >= term.threshold
            year = np.argmax(hit, axis=1)
            rate = np.take_along_axis(sales.rate, year[:, None], axis=1)[:, 0]
            before = np.take_along_axis(total, year[:, None], axis=1)[:, 0] - rate
            at = sales.launch + year + (term.threshold - before) / np.where(rate > 0, rate, 1.0)
        when[sales.rows] = np.where(hit.any(axis=1), at, np.inf)
        return when
    return _event_time(term, cp)


def milestone(term: Milestone, cp: CandidatePaths, sales: Sales, led: Ledger) -> None:
    """A lump when the event happens (see :func:`milestone_time`)."""
    when = milestone_time(term, cp, sales, cp.approved.size)
    if when is not None:
        led.lump(when, _sign(term) * term.amount)


def approval_count_time(term: Milestone, program: ProgramPaths, covered: list[int]) -> np.ndarray:
    """When the ``count``-th covered candidate is approved on each path (inf: never)."""
    launches = np.sort(np.stack([program.candidates[c].launch for c in covered], axis=1), axis=1)
    if term.count > launches.shape[1]:
        return np.full(program.n, np.inf)
    return launches[:, term.count - 1]


def failure_time(cp: CandidatePaths) -> np.ndarray:
    """When the candidate's development ends short of approval: the end of the phase that fails, or
    the gate where it is stopped (inf if approved)."""
    return np.where(cp.ended(), cp.end, np.inf).min(axis=1)  # at most one phase per path


def cancellation_fee(term: CancellationFee, cp: CandidatePaths, sales: Sales, led: Ledger) -> None:
    """On failure or a stop: the fixed amount plus a fraction of the next phase's fees at list price."""
    failed = cp.ended()
    nominal = cp.partner_cost / cp.remake[:, None]
    next_fees = np.zeros_like(nominal)
    next_fees[:, :-1] = nominal[:, 1:] * (1.0 + term.markup)  # the phase after the failed one
    amount = term.amount + term.fraction_of_next_phase * np.where(failed, next_fees, 0.0).sum(axis=1)
    led.lump(failure_time(cp), _sign(term) * amount)


def success_rebate(term: SuccessRebate, deal: Deal, program: ProgramPaths, c: int, led: Ledger,
                   draws: dict[int, Any]) -> None:
    """On approval, a fraction of the service fees paid for the candidate (as booked, undiscounted)."""
    cp = program.candidates[c]
    fees = Ledger(program.n)
    for other in deal.terms:
        if isinstance(other, ServiceFees) and other.payee == "partner" and c in deal.covered(other):
            service_fees(other, cp, fees, draws[id(other)])
    paid = fees.total(100)  # every fee for it is paid by its approval, well inside any horizon
    led.lump(cp.launch, _sign(term) * term.fraction * paid)


def capacity_reservation(term: CapacityReservation, failed_at: np.ndarray, led: Ledger, own: Ledger,
                         esc) -> None:
    """Reservation fees until release (notice after failure), a take-or-pay true-up, the partner's capacity.

    ``failed_at`` is when the reserved-for development fails on each path (inf: never).
    """
    s = _sign(term)
    start, end = term.start_years, term.end_years
    release = np.clip(failed_at + term.notice_years, start, end)
    led.span(np.full(release.shape, start), release, s * term.fee_per_year, index=esc)
    if term.minimum_commitment > 0:
        paid = Ledger(release.size)
        paid.span(np.full(release.shape, start), release, term.fee_per_year, index=esc)
        shortfall = np.maximum(term.minimum_commitment - paid.total(100), 0.0)
        led.lump(release, s * shortfall)  # at release, or at the end of a reservation that ran its term
    if term.partner_cost_per_year:
        own.span(np.full(release.shape, start), np.full(release.shape, end), -term.partner_cost_per_year)
    if term.resale_utilisation:
        own.span(release, np.full(release.shape, end), term.resale_utilisation * term.fee_per_year, index=esc)


_EXERCISE_PHASE = {"phase2_start": "phase2", "phase3_start": "phase3", "filing": "filing"}


def exercise_time(term: Option, cp: CandidatePaths) -> np.ndarray:
    """When the option on a candidate is exercised: when it reaches ``exercise_at`` (inf: never).

    Reaching a phase depends only on the phases before it, so the decision never uses a draw
    revealed later on the path.
    """
    if term.exercise_at == "approval":
        return cp.launch
    k = cp.phase_index(_EXERCISE_PHASE[term.exercise_at])
    if k is None:
        return np.full(cp.approved.size, np.inf)
    return np.where(cp.reached[:, k], cp.start[:, k], np.inf)


def option(term: Option, cp: CandidatePaths, sales: Sales, led: Ledger) -> None:
    """Exercise fee, lower fees from the exercise phase on, and a royalty to the holder after exercise."""
    s = _sign(term)  # the holder pays the fees; it receives the royalty and the fee cut goes against it
    when = exercise_time(term, cp)
    led.lump(when, s * term.exercise_fee)
    k = None if term.exercise_at == "approval" else cp.phase_index(_EXERCISE_PHASE[term.exercise_at])
    if term.markup_given_up and k is not None:  # None: the candidate is past the exercise point, never exercised
        nominal = cp.partner_cost / cp.remake[:, None] * cp.reached
        cut = np.where(np.arange(nominal.shape[1])[None, :] >= k, nominal, 0.0) * term.markup_given_up
        led.spread_chain(cp.bounds, s * cut)
    if sales.rows.size and term.royalty_rate:
        stop = sales.launch + (term.royalty_years if term.royalty_years is not None else np.inf)
        exercised = np.isfinite(when[sales.rows])  # approval implies having reached the exercise point
        led.chain(np.minimum(sales.bounds, stop[:, None]), -s * term.royalty_rate * sales.rate * exercised[:, None],
                  sales.rows)


def supply_cogs(term: Supply, cp: CandidatePaths, sales: Sales) -> np.ndarray:
    """The cost of goods per unit of sales the supply price is set on, per launched path."""
    cogs = cp.cogs_fraction[sales.rows]
    return cogs / cp.remake[sales.rows] if term.failed_batches_paid_by == "partner" else cogs


def supply(term: Supply, cp: CandidatePaths, sales: Sales, led: Ledger, esc) -> None:
    """The partner sells the marketed product at cost of goods x (1 + markup) (flat markup)."""
    if sales.rows.size == 0:
        return
    price = _sign(term) * supply_cogs(term, cp, sales) * (1.0 + term.markup)
    led.chain(sales.bounds, sales.rate * price[:, None], sales.rows, index=esc)


def cost_share(term: CostShare, cp: CandidatePaths, sales: Sales, led: Ledger) -> None:
    """The payer funds a share of the payee's development cost; the payee pays a share of profit back."""
    s = _sign(term)
    funded = cp.sponsor_cost if term.payee == "sponsor" else cp.partner_cost
    led.spread_chain(cp.bounds, s * term.cost_fraction * funded * cp.reached)
    if term.profit_fraction == 0.0:
        return
    rows = sales.rows
    margin = 1.0 - cp.cogs_fraction[rows] - cp.opex_fraction[rows]
    sales.add_to(led, -s * term.profit_fraction * margin)


# --------------------------------------------------------------------------- royalties


@dataclass(frozen=True)
class _Streams:
    """Sales a royalty's tiers are counted on: M streams of P products each.

    Per-product tiers give one stream per launched (candidate, path) with P = 1; aggregate
    tiers one stream per path with every covered product in it (launch = inf where a product
    did not launch). Royalty years of a stream start at its first launch.
    """

    rows: np.ndarray  # (M,) path of each stream
    launch: np.ndarray  # (M, P)
    rate: np.ndarray  # (M, P, K) net sales in each product's launch year k
    loe: np.ndarray  # (M, P) loss-of-exclusivity time
    term_end: np.ndarray  # (M, P) end of the royalty term


def _term_end(term: Royalty, launch: np.ndarray, exclusivity: np.ndarray) -> np.ndarray:
    if term.term_years is None:
        return np.full(launch.shape, np.inf)
    years = term.term_years
    if term.term_end == "later_of_years_and_exclusivity":
        years = np.maximum(years, exclusivity)
    return launch + years


def _widened(sales: list[Sales]) -> list[np.ndarray]:
    """Each product's launch-year sales padded with zeros to a common number of years."""
    K = max(s.rate.shape[1] for s in sales)
    return [np.pad(s.rate, ((0, 0), (0, K - s.rate.shape[1]))) for s in sales]


def _streams_per_product(sales: list[Sales], term: Royalty | None) -> _Streams:
    """One stream per launched (candidate, path); no term end where ``term`` is None."""
    launch = np.concatenate([s.launch for s in sales])[:, None]
    excl = np.concatenate([s.exclusivity for s in sales])[:, None]
    return _Streams(
        rows=np.concatenate([s.rows for s in sales]),
        launch=launch,
        rate=np.concatenate(_widened(sales))[:, None, :],
        loe=launch + excl,
        term_end=np.full(launch.shape, np.inf) if term is None else _term_end(term, launch, excl),
    )


def _streams(term: Royalty, sales: list[Sales]) -> _Streams:
    if term.tier_basis == "product":
        return _streams_per_product(sales, term)
    rates = _widened(sales)
    rows = np.unique(np.concatenate([s.rows for s in sales]))
    M, P, K = rows.size, len(sales), rates[0].shape[1]
    launch = np.full((M, P), np.inf)
    excl = np.zeros((M, P))
    rate = np.zeros((M, P, K))
    for p, s in enumerate(sales):
        at = np.searchsorted(rows, s.rows)
        launch[at, p], excl[at, p], rate[at, p] = s.launch, s.exclusivity, rates[p]
    return _Streams(rows=rows, launch=launch, rate=rate, loe=launch + excl, term_end=_term_end(term, launch, excl))


def royalty_rates(term: Royalty) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tier lower bounds (with inf appended), rates, and the rates after the step-down and floor."""
    bounds = np.array([t.above for t in term.tiers] + [np.inf])
    rates = np.array([t.rate for t in term.tiers])
    stepped = rates * (1.0 - term.loe_step_down)
    if term.floor_rate is not None:
        stepped = np.maximum(stepped, np.minimum(rates, term.floor_rate))
    return bounds, rates, stepped


def royalty(term: Royalty, streams: _Streams, horizon: int, led: Ledger) -> None:
    """Book a tiered royalty by royalty year, with its term, step-down, floor and cap.

    Within one royalty year every product's sales rate, its term and its exclusivity are
    piecewise constant between breakpoints (window ends, launch-year boundaries, term ends,
    loss of exclusivity). Between two breakpoints the counted sales X grow linearly, so the
    times at which X crosses each tier bound are exact, and each (interval, tier) piece is a
    constant-rate span: ``rate_j x (sales before LOE) + stepped_j x (sales after LOE)``. A cap
    truncates the piece during which cumulative royalty reaches it.
    """
    bounds, rates, stepped = royalty_rates(term)
    tiered_spans(streams, bounds, rates, stepped, horizon, led, _sign(term), cap=term.cap)


def tiered_spans(streams: _Streams, bounds: np.ndarray, rates: np.ndarray, stepped: np.ndarray, horizon: int,
                 led: Ledger, sign: float, cap: float | None = None, scale: np.ndarray | None = None,
                 escalation: float = 0.0) -> None:
    """Marginal tiers on each royalty year's counted sales, booked as spans (see :func:`royalty`).

    ``rates`` apply before loss of exclusivity, ``stepped`` after; ``scale`` multiplies each
    stream's amounts (a per-path price basis); ``escalation`` indexes them by calendar year.
    """
    if streams.rows.size == 0:
        return
    s = sign
    L, loe, end = streams.launch, streams.loe, streams.term_end
    M, P, K = streams.rate.shape
    anchor = L.min(axis=1)
    paid = np.zeros(M)
    flat_rate = streams.rate.reshape(M * P, K)
    index = np.arange(M * P)
    for w in range(horizon):
        lo = anchor + w
        if not (lo < horizon).any():
            break
        hi = np.minimum(lo + 1.0, horizon)
        with np.errstate(invalid="ignore"):
            k_next = np.maximum(0.0, np.floor(lo[:, None] - L) + 1.0)
        boundary = L + k_next  # next launch-year boundary of each product after the window opens
        points = np.concatenate([lo[:, None], hi[:, None], boundary, end, loe], axis=1)
        points = np.sort(np.clip(points, lo[:, None], np.maximum(hi, lo)[:, None]), axis=1)
        counted = np.zeros(M)
        for i in range(points.shape[1] - 1):
            t0, t1 = points[:, i], points[:, i + 1]
            dt = t1 - t0
            if not (dt > 0).any():
                continue
            mid = 0.5 * (t0 + t1)[:, None]
            launched = mid >= L
            k = np.clip(np.floor(np.where(launched, mid - L, 0.0)), 0, K - 1).astype(np.int64)
            q = np.where(launched & (mid < end), flat_rate[index, k.ravel()].reshape(M, P), 0.0)
            after = mid >= loe
            q_before = np.where(after, 0.0, q).sum(axis=1)
            q_after = np.where(after, q, 0.0).sum(axis=1)
            total = q_before + q_after
            x1 = counted + total * dt
            moving = total > 0
            safe = np.where(moving, total, 1.0)
            for j in range(rates.size):
                r = rates[j] * q_before + stepped[j] * q_after
                a = np.clip(counted, bounds[j], bounds[j + 1])
                b = np.clip(x1, bounds[j], bounds[j + 1])
                with np.errstate(over="ignore"):  # a vanishing sales rate: the crossing is beyond any horizon
                    start = t0 + (a - counted) / safe
                    stop = t0 + (b - counted) / safe
                if scale is not None:
                    r = r * scale
                if cap is not None:
                    room = np.maximum(cap - paid, 0.0)
                    with np.errstate(invalid="ignore"):  # a crossing beyond any horizon pays nothing here
                        amount = np.where(np.isfinite(start), r * (stop - start), 0.0)
                    over = moving & (amount > room)
                    with np.errstate(over="ignore"):  # a tiny rate: the cap is never reached in this piece
                        stop = np.where(over, start + room / np.where(r > 0, r, 1.0), stop)
                    paid += np.where(moving, np.minimum(amount, room), 0.0)
                led.span(np.where(moving, start, np.inf), stop, s * r, streams.rows, index=escalation)
            counted = x1


# --------------------------------------------------------------------------- dispatch

def tiered_supply(term: Supply, deal: Deal, program: ProgramPaths, sales: list[Sales], led: Ledger,
                  esc) -> None:
    """Volume-tiered supply: each tier's markup on the cost of goods of its slice of the royalty year's sales."""
    covered = deal.covered(term)
    streams = _streams_per_product([sales[c] for c in covered], None)
    scale = np.concatenate([supply_cogs(term, program.candidates[c], sales[c]) for c in covered])
    bounds = np.array([t.above for t in term.markup_tiers] + [np.inf])
    prices = np.array([1.0 + t.markup for t in term.markup_tiers])
    tiered_spans(streams, bounds, prices, prices, deal.horizon_years, led, _sign(term), scale=scale,
                 escalation=esc)


def escalation_draws(deal: Deal, seed: int | None, first_block: int, n: int) -> dict[int, Any]:
    """Each indexed term's yearly price index on the chunk's ``n`` paths, keyed by ``id(term)``.

    A fixed index is a number; a distribution is drawn once per path by inverse CDF from the
    term's own random stream (:func:`~dealmodel.program.term_uniforms`), so the program's paths
    do not move.
    """
    out: dict[int, Any] = {}
    for t, term in enumerate(deal.terms):
        q = getattr(term, "escalation", None)
        if q is None:
            continue
        if q.is_fixed:
            out[id(term)] = q.value
        else:
            if seed is None:
                raise ValueError("a distribution of escalation needs the run's seed")
            out[id(term)] = q.ppf(term_uniforms(seed, first_block, math.ceil(n / BLOCK), n, t))
    return out


_MECHANICS = {
    Milestone: milestone,
    CostShare: cost_share,
    CancellationFee: cancellation_fee,
}


def add_term(term, deal: Deal, program: ProgramPaths, sales: list[Sales], led: Ledger, *,
             own: Ledger, draws: dict[int, Any]) -> None:
    """Book one term's net payments to the partner into ``led``.

    ``own`` receives what the term changes in the partner's own flows with third parties (a
    capacity reservation's cost and resale income); no other kind has any. ``draws`` maps
    ``id(term)`` to the term's price index on each path (see :func:`escalation_draws`).
    """
    n = program.n
    esc = draws.get(id(term), 0.0)
    if isinstance(term, Upfront):
        led.lump(np.zeros(n), _sign(term) * term.amount)
        return
    covered = deal.covered(term)
    if isinstance(term, Royalty):
        royalty(term, _streams(term, [sales[c] for c in covered]), deal.horizon_years, led)
    elif isinstance(term, Supply) and term.markup_tiers is not None:
        tiered_supply(term, deal, program, sales, led, esc)
    elif isinstance(term, Supply):
        for c in covered:
            supply(term, program.candidates[c], sales[c], led, esc)
    elif isinstance(term, ServiceFees):
        for c in covered:
            service_fees(term, program.candidates[c], led, esc)
    elif isinstance(term, Milestone) and term.event == "approval_count":
        led.lump(approval_count_time(term, program, covered), _sign(term) * term.amount)
    elif isinstance(term, SuccessRebate):
        for c in covered:
            success_rebate(term, deal, program, c, led, draws)
    elif isinstance(term, CapacityReservation):
        failed = [failure_time(program.candidates[c]) for c in covered]
        if term.scope == "program":  # released when every covered candidate has failed
            failed = [np.max(np.stack(failed), axis=0)]
        for failed_at in failed:
            capacity_reservation(term, failed_at, led, own, esc)
    elif isinstance(term, Option):
        led.lump(np.zeros(n), _sign(term) * term.option_fee)
        for c in covered:
            option(term, program.candidates[c], sales[c], led)
    else:
        mechanics = _MECHANICS[type(term)]
        for c in covered:
            mechanics(term, program.candidates[c], sales[c], led)



# --------------------------------------------------------------------------- fee credits


def credit_arrivals(deal: Deal, program: ProgramPaths, sales: list[Sales]) -> list[tuple[int, np.ndarray, float]]:
    """Every creditable payment to the partner: (term index, when on each path, amount)."""
    n = program.n
    out = []
    for i, term in enumerate(deal.terms):
        if not getattr(term, "creditable", False) or term.payee != "partner":
            continue
        if isinstance(term, Upfront):
            out.append((i, np.zeros(n), term.amount))
        elif term.event == "approval_count":
            out.append((i, approval_count_time(term, program, deal.covered(term)), term.amount))
        else:
            for c in deal.covered(term):
                when = milestone_time(term, program.candidates[c], sales[c], n)
                if when is not None:
                    out.append((i, when, term.amount))
    return out


def fee_credits(deal: Deal, program: ProgramPaths, sales: list[Sales], ledgers: list[Ledger]) -> None:
    """Credit each creditable payment against the service fees that come after it, in time order.

    The credits form one balance per path. From each credit's arrival to the next, the balance
    pays the deal's service fees as they fall due (deferred parts included) until it is used up;
    the fees so paid are booked, negative, into the ledger of the term whose credit opened that
    stretch. The moment the balance runs out is found by bisection on the fees paid so far (a
    deferred fee that the balance covers only in part is credited in part).
    """
    arrivals = credit_arrivals(deal, program, sales)
    if not arrivals:
        return
    n, H = program.n, deal.horizon_years
    paid_to_partner = [ledgers[i] for i, t in enumerate(deal.terms) if isinstance(t, ServiceFees)
                       and t.payee == "partner"]
    fees = Ledger.combine(paid_to_partner, n).clipped(np.zeros(n), np.full(n, float(H)))  # chains as spans
    times = np.stack([when for _, when, _ in arrivals], axis=1)
    order = np.argsort(times, axis=1, kind="stable")
    times = np.take_along_axis(times, order, axis=1)
    amounts = np.array([a for _, _, a in arrivals])[order]
    owners = np.array([i for i, _, _ in arrivals])[order]
    balance = np.zeros(n)
    for j in range(times.shape[1]):
        active = times[:, j] < H
        t0 = np.where(active, times[:, j], float(H))
        t1 = np.minimum(times[:, j + 1], H) if j + 1 < times.shape[1] else np.full(n, float(H))
        balance = balance + np.where(active, amounts[:, j], 0.0)
        available = fees.clipped(t0, t1).total(H)
        enough = available <= balance
        lo, hi = t0.copy(), t1.copy()
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            covered = fees.clipped(t0, mid).total(H) <= balance
            lo, hi = np.where(covered, mid, lo), np.where(covered, hi, mid)
        stop = np.where(enough, t1, lo)
        rest = np.where(enough | ~active, 0.0, balance - fees.clipped(t0, stop).total(H))
        for owner in np.unique(owners[:, j]):
            mask = active & (owners[:, j] == owner)
            ledgers[owner].absorb(fees.clipped(t0, stop, scale=-1.0, mask=mask))
            ledgers[owner].lump(np.where(mask & (rest > 0.0), stop, np.inf), -rest)
        balance = np.where(enough, balance - available, 0.0)


# --------------------------------------------------------------------------- headline figures


@dataclass(frozen=True)
class Headline:
    """The deal's headline figures to the partner, in millions (see docs/methodology.md).

    ``biobucks``: upfront + every milestone, each counted once per candidate that can reach it
    (sales milestones as if reached) — the licensing convention. ``total_contract_value``:
    biobucks + service fees at list price + success premiums — how CDMO/CRO agreements are
    announced.
    """

    biobucks: float
    total_contract_value: float


def _lever_failure(deal: Deal, rate: float) -> float:
    if deal.levers.qbd.enabled:
        return rate * (1.0 - deal.levers.qbd.batch_failure_reduction)
    return rate


def fee_list_price(term: ServiceFees, deal: Deal) -> float:
    """Fees at list price if every phase is run: mean billed cost x (1 + markup), summed."""
    total = 0.0
    for c in deal.covered(term):
        cand = deal.candidates[c]
        remake = 1.0 / (1.0 - _lever_failure(deal, cand.batch_failure_rate.mean()))
        billed = remake if term.failed_batches_paid_by == "sponsor" else 1.0
        total += sum(spec.partner_cost.mean() * billed * (1.0 + term.markup) for _, spec in cand.remaining_phases())
    return total


def _milestone_count(term: Milestone, deal: Deal) -> int:
    if term.event == "approval_count":  # once for the program, if there are that many candidates
        return int(term.count <= len(deal.covered(term)))
    count = 0
    for c in deal.covered(term):
        phases = [p for p, _ in deal.candidates[c].remaining_phases()]
        if term.event in ("approval", "first_sale", "annual_sales", "cumulative_sales"):
            count += 1
        else:
            phase = "filing" if term.event == "filing" else term.event.removesuffix("_start")
            count += phase in phases[1:]
    return count


def headline_parts(term, deal: Deal) -> tuple[float, float]:
    """A term's (biobucks, total contract value) contribution; 0 for sales-linked terms.

    Royalties, supply revenue and profit shares depend on sales and count in neither; payments
    from the partner count in neither. A capacity reservation counts in the contract value at its
    fee over the whole reservation (per candidate, or once for the program), before escalation;
    cancellation fees (paid only when candidates fail), success rebates and options count in
    neither.
    """
    if term.payee != "partner":
        return 0.0, 0.0
    if isinstance(term, Upfront):
        return term.amount, term.amount
    if isinstance(term, Milestone):
        value = term.amount * _milestone_count(term, deal)
        return value, value
    if isinstance(term, ServiceFees):
        return 0.0, fee_list_price(term, deal) * (1.0 + term.at_risk_fraction * term.success_premium)
    if isinstance(term, CapacityReservation):
        units = len(deal.covered(term)) if term.scope == "candidate" else 1
        return 0.0, term.fee_per_year * (term.end_years - term.start_years) * units
    return 0.0, 0.0


def headline(deal: Deal) -> Headline:
    """Biobucks and total contract value of a deal, in millions."""
    parts = [headline_parts(t, deal) for t in deal.terms]
    return Headline(
        biobucks=float(sum(b for b, _ in parts)),
        total_contract_value=float(sum(v for _, v in parts)),
    )
