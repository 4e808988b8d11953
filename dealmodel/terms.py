"""Term mechanics: how each piece of a deal turns the simulated program into payments.

One function per term kind books that term's payments into a :class:`~dealmodel.cashflows.Ledger`
holding the **net flow to the partner** (a payment from the partner is negative), in continuous
time: lumps at the moment an event happens, spans over the interval a fee or a royalty accrues.
The same term's contribution to the headline figures (biobucks, total contract value) lives
beside it, so the rule for a term is in one place. Term payments only move cash between the
parties: the program's own cash flows (sales and costs) never depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dealmodel.cashflows import Ledger
from dealmodel.program import CandidatePaths, ProgramPaths, Sales
from dealmodel.schema import (
    CostShare,
    Deal,
    Milestone,
    Royalty,
    ServiceFees,
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


def service_fees(term: ServiceFees, cp: CandidatePaths, sales: Sales, led: Ledger) -> None:
    """Cost x (1 + markup) spread over each phase reached; the at-risk part paid on success."""
    s = _sign(term)
    list_price = billed_cost(term, cp) * (1.0 + term.markup) * cp.reached
    led.spread_chain(cp.bounds, s * list_price * (1.0 - term.at_risk_fraction))
    if term.at_risk_fraction == 0.0:
        return
    deferred = s * list_price * term.at_risk_fraction * (1.0 + term.success_premium)
    if term.deferred_until == "phase_success":
        led.lump(np.where(cp.succeeded, cp.end, np.inf), deferred)
    else:
        led.lump(cp.launch, deferred.sum(axis=1))


def _event_time(term: Milestone, cp: CandidatePaths) -> np.ndarray | None:
    if term.event in ("approval", "first_sale"):
        return cp.launch
    phase = "filing" if term.event == "filing" else term.event.removesuffix("_start")
    k = cp.phase_index(phase)
    if k is None or k == 0:  # not ahead of this candidate: nothing to pay
        return None
    return np.where(cp.reached[:, k], cp.start[:, k], np.inf)


def milestone(term: Milestone, cp: CandidatePaths, sales: Sales, led: Ledger) -> None:
    """A lump when the event happens; a sales milestone at the end of the first royalty year at threshold."""
    s = _sign(term)
    if term.event == "annual_sales":
        hit = sales.rate >= term.threshold
        reached = hit.any(axis=1)
        year = np.argmax(hit, axis=1)
        led.lump(sales.launch[reached] + year[reached] + 1.0, s * term.amount, sales.rows[reached])
        return
    when = _event_time(term, cp)
    if when is not None:
        led.lump(when, s * term.amount)


def supply(term: Supply, cp: CandidatePaths, sales: Sales, led: Ledger) -> None:
    """The partner sells the marketed product at cost of goods x (1 + markup)."""
    cogs = cp.cogs_fraction[sales.rows]
    if term.failed_batches_paid_by == "partner":
        cogs = cogs / cp.remake[sales.rows]
    sales.add_to(led, _sign(term) * cogs * (1.0 + term.markup))


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


def _streams(term: Royalty, sales: list[Sales]) -> _Streams:
    rates = _widened(sales)
    if term.tier_basis == "product":
        launch = np.concatenate([s.launch for s in sales])[:, None]
        excl = np.concatenate([s.exclusivity for s in sales])[:, None]
        return _Streams(
            rows=np.concatenate([s.rows for s in sales]),
            launch=launch,
            rate=np.concatenate(rates)[:, None, :],
            loe=launch + excl,
            term_end=_term_end(term, launch, excl),
        )
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
    if streams.rows.size == 0:
        return
    s = _sign(term)
    bounds, rates, stepped = royalty_rates(term)
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
                start = t0 + (a - counted) / safe
                stop = t0 + (b - counted) / safe
                if term.cap is not None:
                    room = np.maximum(term.cap - paid, 0.0)
                    amount = r * (stop - start)
                    over = moving & (amount > room)
                    stop = np.where(over, start + room / np.where(r > 0, r, 1.0), stop)
                    paid += np.where(moving, np.minimum(amount, room), 0.0)
                led.span(np.where(moving, start, np.inf), stop, s * r, streams.rows)
            counted = x1


# --------------------------------------------------------------------------- dispatch

_MECHANICS = {
    ServiceFees: service_fees,
    Milestone: milestone,
    Supply: supply,
    CostShare: cost_share,
}


def add_term(term, deal: Deal, program: ProgramPaths, sales: list[Sales], led: Ledger) -> None:
    """Book one term's net payments to the partner into ``led``."""
    if isinstance(term, Upfront):
        led.lump(np.zeros(program.n), _sign(term) * term.amount)
        return
    covered = deal.covered(term)
    if isinstance(term, Royalty):
        royalty(term, _streams(term, [sales[c] for c in covered]), deal.horizon_years, led)
        return
    mechanics = _MECHANICS[type(term)]
    for c in covered:
        mechanics(term, program.candidates[c], sales[c], led)


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
    count = 0
    for c in deal.covered(term):
        phases = [p for p, _ in deal.candidates[c].remaining_phases()]
        if term.event in ("approval", "first_sale", "annual_sales"):
            count += 1
        else:
            phase = "filing" if term.event == "filing" else term.event.removesuffix("_start")
            count += phase in phases[1:]
    return count


def headline_parts(term, deal: Deal) -> tuple[float, float]:
    """A term's (biobucks, total contract value) contribution; 0 for sales-linked terms.

    Royalties, supply revenue and profit shares depend on sales and count in neither; payments
    from the partner count in neither.
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
    return 0.0, 0.0


def headline(deal: Deal) -> Headline:
    """Biobucks and total contract value of a deal, in millions."""
    parts = [headline_parts(t, deal) for t in deal.terms]
    return Headline(
        biobucks=float(sum(b for b, _ in parts)),
        total_contract_value=float(sum(v for _, v in parts)),
    )
