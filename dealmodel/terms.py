"""Term mechanics: how each piece of a deal turns the simulated program into payments.

One function per term kind adds that term's payments to a :class:`~dealmodel.cashflows.Channel`
holding the **net flow to the partner** (a payment from the partner is negative). The same
term's contribution to the headline deal value lives beside it, so the rule for a term is in
one place. Term payments only move cash between the parties: the program's own cash flows
(sales and costs) never depend on them.
"""

from __future__ import annotations

import numpy as np

from dealmodel.cashflows import Channel, Phased
from dealmodel.program import CandidatePaths, ProgramPaths, SalesGrid
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


def service_fees(term: ServiceFees, cp: CandidatePaths, ph: Phased, grid: SalesGrid, ch: Channel) -> None:
    s = _sign(term)
    list_price = cp.partner_cost * (1.0 + term.markup) * cp.reached
    ch.spread(ph, s * list_price * (1.0 - term.at_risk_fraction))
    if term.at_risk_fraction == 0.0:
        return
    deferred = s * list_price * term.at_risk_fraction * (1.0 + term.success_premium)
    if term.deferred_until == "phase_success":
        ch.lump(np.where(cp.succeeded, cp.end, np.inf), deferred)
    else:
        ch.lump(cp.launch, deferred.sum(axis=1))


def _event_time(term: Milestone, cp: CandidatePaths) -> np.ndarray | None:
    if term.event in ("approval", "first_sale"):
        return cp.launch
    phase = "filing" if term.event == "filing" else term.event.removesuffix("_start")
    k = cp.phase_index(phase)
    if k is None or k == 0:  # not ahead of this candidate: nothing to pay
        return None
    return np.where(cp.reached[:, k], cp.start[:, k], np.inf)


def milestone(term: Milestone, cp: CandidatePaths, ph: Phased, grid: SalesGrid, ch: Channel) -> None:
    s = _sign(term)
    if term.event == "annual_sales":
        sales = grid.sales()
        hit = sales >= term.threshold
        reached = hit.any(axis=1)
        period = np.argmax(hit, axis=1)
        ch.lump_at_period(period[reached], s * term.amount, grid.rows[reached])
        return
    when = _event_time(term, cp)
    if when is not None:
        ch.lump(when, np.full(when.shape, s * term.amount))


def tiered(sales: np.ndarray, tiers) -> np.ndarray:
    """Royalty on annual net sales with marginal tiers: each rate applies to its slice of sales."""
    out = np.zeros_like(sales)
    bounds = [t.above for t in tiers] + [np.inf]
    for tier, lo, hi in zip(tiers, bounds[:-1], bounds[1:], strict=True):
        out += tier.rate * np.clip(sales - lo, 0.0, hi - lo)
    return out


def royalty(term: Royalty, cp: CandidatePaths, ph: Phased, grid: SalesGrid, ch: Channel) -> None:
    if grid.rows.size == 0:
        return
    sales = grid.sales()
    years = np.arange(grid.horizon + 2, dtype=float)[None, :]
    # Share of each launch year inside the royalty term, and the rate cut after exclusivity.
    in_term = np.ones_like(years) if term.term_years is None else np.clip(term.term_years - years, 0.0, 1.0)
    past_loe = np.clip(years + 1.0 - grid.exclusivity[:, None], 0.0, 1.0)
    weight = in_term * (1.0 - term.loe_step_down * past_loe)
    eligible = grid.sales(weight)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(sales > 0, eligible / sales, 0.0)
    amount = tiered(sales, term.tiers) * share
    if term.cap is not None:
        amount = np.diff(np.minimum(np.cumsum(amount, axis=1), term.cap), axis=1, prepend=0.0)
    ch.dense(grid.rows, _sign(term) * amount)


def supply(term: Supply, cp: CandidatePaths, ph: Phased, grid: SalesGrid, ch: Channel) -> None:
    if grid.rows.size == 0:
        return
    cogs = grid.sales() * cp.cogs_fraction[grid.rows, None]
    ch.dense(grid.rows, _sign(term) * cogs * (1.0 + term.markup))


def cost_share(term: CostShare, cp: CandidatePaths, ph: Phased, grid: SalesGrid, ch: Channel) -> None:
    s = _sign(term)
    funded = cp.sponsor_cost if term.payee == "sponsor" else cp.partner_cost
    ch.spread(ph, s * term.cost_fraction * funded * cp.reached)
    if grid.rows.size == 0 or term.profit_fraction == 0.0:
        return
    sales = grid.sales()
    rows = grid.rows
    profit = sales * (1.0 - cp.cogs_fraction[rows, None] - cp.opex_fraction[rows, None])
    ch.dense(rows, -s * term.profit_fraction * profit)


_MECHANICS = {
    ServiceFees: service_fees,
    Milestone: milestone,
    Royalty: royalty,
    Supply: supply,
    CostShare: cost_share,
}


def add_term(term, deal: Deal, program: ProgramPaths, phased: list[Phased], grids: list[SalesGrid],
             ch: Channel) -> None:
    """Add one term's net payments to the partner to channel ``ch``."""
    if isinstance(term, Upfront):
        ch.lump_at_period(np.zeros(program.n, dtype=np.int64), _sign(term) * term.amount, np.arange(program.n))
        return
    mechanics = _MECHANICS[type(term)]
    for c in deal.covered(term):
        mechanics(term, program.candidates[c], phased[c], grids[c], ch)


# --------------------------------------------------------------------------- headline value


def _phase_list_price(deal: Deal, c: int, markup: float) -> list[float]:
    cand = deal.candidates[c]
    remake = 1.0 / (1.0 - _lever_failure(deal, cand.batch_failure_rate.mean()))
    return [spec.partner_cost.mean() * remake * (1.0 + markup) for _, spec in cand.remaining_phases()]


def _lever_failure(deal: Deal, rate: float) -> float:
    if deal.levers.qbd.enabled:
        return rate * (1.0 - deal.levers.qbd.batch_failure_reduction)
    return rate


def headline_payment(term, deal: Deal) -> float:
    """A term's fixed payments to the partner if every candidate succeeds (0 for sales-linked terms).

    Fees count at list price (mean partner cost x (1 + markup)), the deferred part with its
    success premium; upfront and every milestone count in full (sales-threshold milestones as
    if reached, as "biobucks" are quoted). Royalties, supply and profit shares depend on sales
    and are reported apart; payments from the partner do not count.
    """
    if term.payee != "partner":
        return 0.0
    if isinstance(term, Upfront):
        return term.amount
    if isinstance(term, ServiceFees):
        factor = (1.0 - term.at_risk_fraction) + term.at_risk_fraction * (1.0 + term.success_premium)
        return sum(sum(_phase_list_price(deal, c, term.markup)) * factor for c in deal.covered(term))
    if isinstance(term, Milestone):
        count = 0
        for c in deal.covered(term):
            cand = deal.candidates[c]
            phases = [p for p, _ in cand.remaining_phases()]
            if term.event in ("approval", "first_sale", "annual_sales"):
                count += 1
            else:
                phase = "filing" if term.event == "filing" else term.event.removesuffix("_start")
                count += phase in phases[1:]
        return term.amount * count
    return 0.0


def headline_value(deal: Deal) -> float:
    """The partner's headline ("biobucks") deal value, in millions."""
    return float(sum(headline_payment(t, deal) for t in deal.terms))
