"""Closed-form expected values for deals whose inputs are all fixed numbers and whose candidates are
independent: E[PV] = sum over cash flows of P(the flow happens) x amount x discount factor.

Written from the conventions in docs/methodology.md, independently of dealmodel's vectorised code:
plain Python loops over candidates, phases and periods.
"""

from __future__ import annotations

import math

PHASES = ["preclinical", "phase1", "phase2", "phase3", "filing"]


def df(rate: float, t: int) -> float:
    return (1.0 + rate) ** -t


def overlap(a: float, b: float, lo: float, hi: float) -> float:
    return max(0.0, min(b, hi) - max(a, lo))


def lump_pv(amount: float, when: float, rate: float, horizon: int) -> float:
    t = math.ceil(when)
    return amount * df(rate, t) if t <= horizon else 0.0


def spread_pv(amount: float, start: float, end: float, rate: float, horizon: int) -> float:
    if end == start:
        return lump_pv(amount, start, rate, horizon)
    return sum(amount * overlap(start, end, t - 1, t) / (end - start) * df(rate, t) for t in range(1, horizon + 1))


class Cand:
    """One candidate's timeline and probabilities, with fixed inputs."""

    def __init__(self, spec: dict, horizon: int):
        self.name = spec["name"]
        order = PHASES[PHASES.index(spec["start_phase"]):]
        self.phases = order
        p = [spec["phases"][ph] for ph in order]
        self.prob = [x["success_probability"] for x in p]
        self.dur = [x["duration_years"] for x in p]
        self.cost = [x.get("cost", 0.0) for x in p]
        failure = spec.get("batch_failure_rate", 0.0)
        self.pcost = [x.get("partner_cost", 0.0) / (1.0 - failure) for x in p]
        self.start = [sum(self.dur[:k]) for k in range(len(order))]
        self.end = [sum(self.dur[: k + 1]) for k in range(len(order))]
        self.reach = [math.prod(self.prob[:k]) for k in range(len(order))]
        self.succeed = [math.prod(self.prob[: k + 1]) for k in range(len(order))]
        self.p_approval = self.succeed[-1]
        self.launch = self.end[-1]
        com = spec["commercial"]
        self.com = com
        self.cogs = com["cogs_fraction"] / (1.0 - failure)
        self.opex = com["opex_fraction"]
        self.horizon = horizon

    def curve(self, k: int) -> float:
        c = self.com.get("launch_curve", [0.11, 0.31, 0.58, 0.76, 0.89, 1.0])
        return c[k] if k < len(c) else 1.0

    def year_sales(self, k: int, weight=lambda k: 1.0) -> float:
        """Net sales in launch year k (0-based, covering [k, k+1) after launch), times a weight."""
        past = max(0.0, k + 1 - self.com["exclusivity_years"])
        return self.com["peak_sales"] * self.curve(k) * (1 - self.com["erosion_after_loe"]) ** past * weight(k)

    def sales(self, weight=lambda k: 1.0) -> list[float]:
        """Net sales in periods 0..H, if approved."""
        out = []
        for t in range(self.horizon + 1):
            total = 0.0
            for k in range(self.horizon + 2):
                total += self.year_sales(k, weight) * overlap(self.launch + k, self.launch + k + 1, t - 1, t)
            out.append(total)
        return out


def phase_pv(c: Cand, amounts: list[float], rate: float) -> float:
    """Expected PV of per-phase amounts spread over each phase, paid if the phase is reached."""
    return sum(c.reach[k] * spread_pv(amounts[k], c.start[k], c.end[k], rate, c.horizon) for k in range(len(amounts)))


def series_pv(values: list[float], rate: float) -> float:
    return sum(v * df(rate, t) for t, v in enumerate(values))


def tiered(s: float, tiers: list[dict]) -> float:
    bounds = [t["above"] for t in tiers] + [math.inf]
    return sum(t["rate"] * max(0.0, min(s, hi) - lo) for t, lo, hi in zip(tiers, bounds[:-1], bounds[1:], strict=True))


def term_pv(term: dict, c: Cand, rate: float) -> float:
    """Expected PV of one term's net payments to the partner for one candidate."""
    kind = term["kind"]
    sign = 1.0 if term.get("payee", "sponsor" if kind == "cost_share" else "partner") == "partner" else -1.0
    H = c.horizon
    if kind == "service_fees":
        m, a, prem = term["markup"], term.get("at_risk_fraction", 0.0), term.get("success_premium", 0.0)
        now = phase_pv(c, [x * (1 + m) * (1 - a) for x in c.pcost], rate)
        deferred = [x * (1 + m) * a * (1 + prem) for x in c.pcost]
        if term.get("deferred_until", "phase_success") == "phase_success":
            later = sum(c.succeed[k] * lump_pv(deferred[k], c.end[k], rate, H) for k in range(len(deferred)))
        else:
            later = c.p_approval * lump_pv(sum(deferred), c.launch, rate, H)
        return sign * (now + later)
    if kind == "milestone":
        event, amount = term["event"], term["amount"]
        if event in ("approval", "first_sale"):
            return sign * c.p_approval * lump_pv(amount, c.launch, rate, H)
        if event == "annual_sales":
            s = c.sales()
            hit = [t for t, v in enumerate(s) if v >= term["threshold"]]
            return sign * c.p_approval * (amount * df(rate, hit[0]) if hit else 0.0)
        phase = "filing" if event == "filing" else event.removesuffix("_start")
        if phase not in c.phases[1:]:
            return 0.0
        k = c.phases.index(phase)
        return sign * c.reach[k] * lump_pv(amount, c.start[k], rate, H)
    if kind == "royalty":
        E = c.com["exclusivity_years"]
        term_years = term.get("term_years")
        step = term.get("loe_step_down", 0.0)

        def weight(k):
            inside = 1.0 if term_years is None else min(1.0, max(0.0, term_years - k))
            return inside * (1.0 - step * min(1.0, max(0.0, k + 1 - E)))

        sales, eligible = c.sales(), c.sales(weight)
        pay = [tiered(s, term["tiers"]) * (e / s) if s > 0 else 0.0 for s, e in zip(sales, eligible, strict=True)]
        if term.get("cap") is not None:
            capped, total = [], 0.0
            for x in pay:
                new = min(total + x, term["cap"])
                capped.append(new - total)
                total = new
            pay = capped
        return sign * c.p_approval * series_pv(pay, rate)
    if kind == "supply":
        return sign * c.p_approval * series_pv([s * c.cogs * (1 + term["markup"]) for s in c.sales()], rate)
    if kind == "cost_share":
        funded = c.cost if term.get("payee", "sponsor") == "sponsor" else c.pcost
        cost_part = phase_pv(c, [x * term["cost_fraction"] for x in funded], rate)
        profit = [s * (1 - c.cogs - c.opex) * term["profit_fraction"] for s in c.sales()]
        return sign * (cost_part - c.p_approval * series_pv(profit, rate))
    raise ValueError(kind)


def expected_npvs(deal: dict) -> dict[str, float]:
    """Expected NPV of sponsor, partner and program for a fixed-input, independent-candidate deal."""
    H = deal["horizon_years"]
    rs = deal["parties"]["sponsor"]["discount_rate"]
    rp = deal["parties"]["partner"]["discount_rate"]
    rprog = deal.get("program_discount_rate") or rs
    cands = [Cand(c, H) for c in deal["candidates"]]
    names = [c.name for c in cands]
    supplied = set()
    for t in deal["terms"]:
        if t["kind"] == "supply":
            supplied |= set(names if t.get("candidates", "all") == "all" else t["candidates"])

    def own(c: Cand, rate: float) -> tuple[float, float]:
        sales = c.sales()
        sponsor_margin = 1 - c.opex - (0.0 if c.name in supplied else c.cogs)
        sponsor = -phase_pv(c, c.cost, rate) + c.p_approval * series_pv([s * sponsor_margin for s in sales], rate)
        partner = -phase_pv(c, c.pcost, rate)
        if c.name in supplied:
            partner -= c.p_approval * series_pv([s * c.cogs for s in sales], rate)
        return sponsor, partner

    out = {"sponsor": 0.0, "partner": 0.0, "program": 0.0}
    for c in cands:
        out["sponsor"] += own(c, rs)[0]
        out["partner"] += own(c, rp)[1]
        out["program"] += sum(own(c, rprog))
    for t in deal["terms"]:
        if t["kind"] == "upfront":
            sign = 1.0 if t.get("payee", "partner") == "partner" else -1.0
            out["partner"] += sign * t["amount"]
            out["sponsor"] -= sign * t["amount"]
            continue
        covered = [c for c in cands if t.get("candidates", "all") == "all" or c.name in t["candidates"]]
        for c in covered:
            out["partner"] += term_pv(t, c, rp)
            out["sponsor"] -= term_pv(t, c, rs)
    return out


def expected_payments(deal: dict, index: int) -> float:
    """Expected PV to the partner, at the partner's rate, of the payments of term ``index``."""
    t = deal["terms"][index]
    rp = deal["parties"]["partner"]["discount_rate"]
    if t["kind"] == "upfront":
        return t["amount"] if t.get("payee", "partner") == "partner" else -t["amount"]
    cands = [Cand(c, deal["horizon_years"]) for c in deal["candidates"]]
    return sum(term_pv(t, c, rp) for c in cands if t.get("candidates", "all") == "all" or c.name in t["candidates"])
