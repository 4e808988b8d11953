"""Each candidate's contribution to each party's value: the cash flows that are its own.

A candidate's contribution to a party is the expected present value of the flows that belong to
it alone: its own development costs, sales, cost of goods and operating cost, and every
candidate-level term's payments for it, each term valued as if it covered that candidate only.
What is left of the party's expected NPV is **shared**: payments that are the program's
(an upfront, an option fee, a milestone on the n-th approval, a program-wide capacity
reservation) and the interactions between candidates (royalty tiers or caps counted over several
products, fee credits, a success rebate on fees paid elsewhere). The rows add up to the expected
NPV exactly, the shared row by definition.

It is computed with the reference engine on the first ``paths`` simulated futures of the deal's
seed, the same futures as the first paths of :func:`dealmodel.simulate` (random numbers come in
fixed blocks), and reported with each mean's Monte Carlo standard error.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dealmodel.cashflows import Ledger
from dealmodel.engine import (
    DEFAULT_CHUNK,
    YEARLY_SAMPLE,
    _check_args,
    _value_chunk,
    deal_program,
    discount_table,
    program_flows,
)
from dealmodel.program import BLOCK, ProgramPaths, Sales, sales_by_launch_year
from dealmodel.schema import CapacityReservation, Deal, Milestone, Option, Upfront
from dealmodel.terms import add_term, escalation_draws

SHARED = "Shared (program-level terms, interactions)"
TOTAL = "Total (expected NPV)"
PARTIES = ("sponsor", "partner", "program")


def _alone(term, name: str):
    """The term as if it covered candidate ``name`` only, or None for a term that is the program's."""
    if isinstance(term, Upfront) or (isinstance(term, Milestone) and term.event == "approval_count"):
        return None
    if isinstance(term, CapacityReservation) and term.scope == "program":
        return None
    update = {"candidates": [name]}
    if isinstance(term, Option):
        update["option_fee"] = 0.0  # paid once at signing: the program's
    return term.model_copy(update=update)


def candidate_ledgers(deal: Deal, program: ProgramPaths, sales: list[Sales], draws: dict, c: int
                      ) -> tuple[Ledger, Ledger, Ledger]:
    """Candidate ``c``'s own flows and its candidate-level terms' payments: ``(sponsor own, partner own, paid)``.

    ``paid``: net payments to the partner, each term booked as if it covered ``c`` only.
    """
    n, name = program.n, deal.candidates[c].name
    sponsor_own, partner_own = program_flows(deal, program, sales, only=c)
    paid = Ledger(n)
    for term in deal.terms:
        if hasattr(term, "candidates") and c not in deal.covered(term):
            continue
        alone = _alone(term, name)
        if alone is None:
            continue
        led = Ledger(n)
        add_term(alone, deal, program, sales, led, own=partner_own,
                 draws={**draws, id(alone): draws.get(id(term), 0.0)})
        paid.absorb(led)
    return sponsor_own, partner_own, paid


def party_values(ledgers: tuple[Ledger, Ledger, Ledger], disc: dict) -> np.ndarray:
    """PV of :func:`candidate_ledgers` to sponsor, partner and program ``(3, n)``, each at its own rate."""
    sponsor_own, partner_own, paid = ledgers
    memo = {p: {} for p in PARTIES}
    return np.stack([
        sponsor_own.pv(disc["sponsor"], memo["sponsor"]) - paid.pv(disc["sponsor"], memo["sponsor"]),
        partner_own.pv(disc["partner"], memo["partner"]) + paid.pv(disc["partner"], memo["partner"]),
        sponsor_own.pv(disc["program"], memo["program"]) + partner_own.pv(disc["program"], memo["program"]),
    ])


def _chunk(deal: Deal, seed: int, first_block: int, n: int) -> np.ndarray:
    """Per-path values ``(candidates + 1, 3, n)``: each candidate's own flows and terms, then the total."""
    C, H = len(deal.candidates), deal.horizon_years
    disc = discount_table(deal)
    total = {"npv": {p: np.empty(n) for p in PARTIES}, "term_pv": np.empty((len(deal.terms), n))}
    program = deal_program(deal, seed, first_block, math.ceil(n / BLOCK), n)
    _value_chunk(deal, seed, first_block, n, disc, total, program)
    sales = [sales_by_launch_year(cp, H) for cp in program.candidates]
    draws = escalation_draws(deal, seed, first_block, n)
    out = np.empty((C + 1, 3, n))
    for c in range(C):
        out[c] = party_values(candidate_ledgers(deal, program, sales, draws, c), disc)
    for k, party in enumerate(PARTIES):
        out[C, k] = total["npv"][party]
    return out


def candidate_values(deal: Deal, paths: int = YEARLY_SAMPLE, seed: int = 0) -> pd.DataFrame:
    """Each candidate's contribution to sponsor, partner and program expected NPV, in millions.

    Rows: every candidate, then :data:`SHARED` (the rest of each party's value), then
    :data:`TOTAL`. Columns: ``sponsor``, ``partner``, ``program`` and each one's Monte Carlo
    standard error (``sponsor_se`` ...). Uses the first ``paths`` futures of ``seed``.
    """
    _check_args(paths, seed, None)
    mean = np.zeros((len(deal.candidates) + 2, 3))
    m2 = np.zeros_like(mean)  # sum of squared deviations, merged chunk by chunk (Chan et al.)
    done = 0
    for start in range(0, paths, DEFAULT_CHUNK):
        n = min(DEFAULT_CHUNK, paths - start)
        per_path = _chunk(deal, seed, start // BLOCK, n)
        rows = np.concatenate([per_path[:-1], (per_path[-1] - per_path[:-1].sum(axis=0))[None], per_path[-1:]])
        chunk_mean = rows.mean(axis=2)
        delta = chunk_mean - mean
        m2 += ((rows - chunk_mean[..., None]) ** 2).sum(axis=2) + delta**2 * done * n / (done + n)
        mean += delta * n / (done + n)
        done += n
    se = np.sqrt(m2 / max(paths - 1, 1) / paths)
    frame = pd.DataFrame(mean, columns=list(PARTIES), index=[*deal.candidate_names(), SHARED, TOTAL])
    for k, party in enumerate(PARTIES):
        frame[f"{party}_se"] = se[:, k]
    return frame.rename_axis("candidate")
