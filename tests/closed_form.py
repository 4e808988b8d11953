"""Closed-form expected values for deals whose inputs are all fixed numbers and whose candidates are
independent: E[PV] = sum over cash flows of P(the flow happens) x amount x discount factor.

Written from the conventions in docs/methodology.md, independently of dealmodel's vectorised code:
plain Python loops over candidates, phases, royalty years and calendar years.

Time is continuous, in years from the valuation date; the window is [0, H). Under ``exact`` timing
a payment at t is worth v^t (v = 1 / (1 + r)) and a rate q over [a, b) is worth
q (v^a - v^b) / ln(1 + r). Under a period convention everything in calendar year [i, i + 1) is
valued at i + 1, i + 0.5 or i.
"""

from __future__ import annotations

import itertools
import math

PHASES = ["preclinical", "phase1", "phase2", "phase3", "filing"]
OFFSET = {"end_of_year": 1.0, "mid_year": 0.5, "start_of_year": 0.0}


class Disc:
    def __init__(self, rate: float, horizon: int, timing: str = "exact"):
        self.r, self.H, self.timing = rate, horizon, timing

    def lump(self, t: float) -> float:
        if not 0 <= t < self.H:
            return 0.0
        if self.timing == "exact":
            return (1 + self.r) ** -t
        return (1 + self.r) ** -(math.floor(t) + OFFSET[self.timing])

    def spread(self, rate: float, a: float, b: float) -> float:
        """PV of ``rate`` per year paid over [a, b), clipped to the window."""
        a, b = max(a, 0.0), min(b, float(self.H))
        if b <= a:
            return 0.0
        if self.timing == "exact":
            if self.r == 0:
                return rate * (b - a)
            g = math.log(1 + self.r)
            return rate * ((1 + self.r) ** -a - (1 + self.r) ** -b) / g
        total = 0.0
        for i in range(self.H):
            total += rate * max(0.0, min(b, i + 1) - max(a, i)) * (1 + self.r) ** -(i + OFFSET[self.timing])
        return total


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
        self.failure = spec.get("batch_failure_rate", 0.0)
        self.nominal_pcost = [x.get("partner_cost", 0.0) for x in p]
        self.pcost = [c / (1.0 - self.failure) for c in self.nominal_pcost]
        self.start = [sum(self.dur[:k]) for k in range(len(order))]
        self.end = [sum(self.dur[: k + 1]) for k in range(len(order))]
        self.reach = [math.prod(self.prob[:k]) for k in range(len(order))]
        self.succeed = [math.prod(self.prob[: k + 1]) for k in range(len(order))]
        self.p_approval = self.succeed[-1]
        self.launch = self.end[-1]
        com = spec["commercial"]
        self.com = com
        self.excl = com["exclusivity_years"]
        self.cogs = com["cogs_fraction"] / (1.0 - self.failure)
        self.nominal_cogs = com["cogs_fraction"]
        self.opex = com["opex_fraction"]
        self.horizon = horizon

    def curve(self, k: int) -> float:
        c = self.com.get("launch_curve", [0.11, 0.31, 0.58, 0.76, 0.89, 1.0])
        return c[k] if k < len(c) else 1.0

    def year_sales(self, k: int) -> float:
        """Net sales in launch (royalty) year k: [launch + k, launch + k + 1), at a constant rate."""
        past = max(0.0, k + 1 - self.excl)
        return self.com["peak_sales"] * self.curve(k) * (1 - self.com["erosion_after_loe"]) ** past

    def sales_pieces(self) -> list[tuple[float, float, float]]:
        """(start, end, rate) of each launch year that starts inside the horizon, if approved."""
        out = []
        k = 0
        while self.launch + k < self.horizon:
            out.append((self.launch + k, self.launch + k + 1, self.year_sales(k)))
            k += 1
        return out

    def sales_pv(self, d: Disc, factor: float = 1.0) -> float:
        return sum(d.spread(q * factor, a, b) for a, b, q in self.sales_pieces())


def index_factor(e, i: int) -> float:
    """Expected price-index factor E[(1 + e)^i] of calendar year i: e a number, or a uniform distribution
    ({dist: uniform, low: a, high: b}: the integral of (1 + x)^i over [a, b], divided by b - a)."""
    if isinstance(e, dict):
        a, b = e["low"], e["high"]
        return ((1 + b) ** (i + 1) - (1 + a) ** (i + 1)) / ((i + 1) * (b - a))
    return (1 + e) ** i


def spread_esc(d: Disc, rate: float, a: float, b: float, e=0.0) -> float:
    """PV of ``rate`` a year over [a, b) under a yearly price index e (x (1 + e)^i in calendar year i).

    The PV is linear in each year's factor, so a random index enters through E[(1 + e)^i].
    """
    if e == 0.0:
        return d.spread(rate, a, b)
    return sum(d.spread(rate * index_factor(e, i), max(a, i), min(b, i + 1)) for i in range(101))


def lump_esc(d: Disc, amount: float, t: float, e=0.0) -> float:
    return amount * index_factor(e, math.floor(max(t, 0.0))) * d.lump(t) if math.isfinite(t) else 0.0


def phase_pv(c: Cand, amounts: list[float], d: Disc, e: float = 0.0, reach: list[float] | None = None) -> float:
    """Expected PV of per-phase amounts spread over each phase, paid if the phase is reached."""
    reach = c.reach if reach is None else reach
    total = 0.0
    for k, amount in enumerate(amounts):
        if c.dur[k] == 0:
            total += reach[k] * lump_esc(d, amount, c.start[k], e)
        else:
            total += reach[k] * spread_esc(d, amount / c.dur[k], c.start[k], c.end[k], e)
    return total


def failure_times(c: Cand) -> list[tuple[float, float]]:
    """(probability, time) of each way the candidate's development ends: failing a phase, or approval (inf)."""
    out = [(c.reach[k] * (1 - c.prob[k]), c.end[k]) for k in range(len(c.phases))]
    return [*out, (c.p_approval, math.inf)]


# --------------------------------------------------------------------------- royalty, by royalty year


def royalty_stream_pv(term: dict, products: list[Cand], d: Disc) -> float:
    """PV of a royalty on the products of one stream, every one of them launched (a fixed path).

    Royalty years run from the first launch; in each, the sales counted so far X(t) grow at the
    summed eligible rate, tiers apply to X, the step-down to sales after a product's exclusivity.
    """
    tiers = term["tiers"]
    lows = [t["above"] for t in tiers] + [math.inf]
    step = term.get("loe_step_down", 0.0)
    floor = term.get("floor_rate")
    years = term.get("term_years")

    def eff(rate: float, after_loe: bool) -> float:
        if not after_loe:
            return rate
        r = rate * (1 - step)
        return max(r, min(rate, floor)) if floor is not None else r

    def term_end(c: Cand) -> float:
        if years is None:
            return math.inf
        if term.get("term_end", "years") == "later_of_years_and_exclusivity":
            return c.launch + max(years, c.excl)
        return c.launch + years

    def rate_of(c: Cand, t: float) -> float:
        if t < c.launch or t >= term_end(c):
            return 0.0
        return c.year_sales(math.floor(t - c.launch))

    anchor = min(c.launch for c in products)
    cap = term.get("cap")
    paid = 0.0
    total = 0.0
    w = 0
    while anchor + w < d.H:
        lo, hi = anchor + w, min(anchor + w + 1, d.H)
        cuts = {lo, hi}
        for c in products:
            for t in [c.launch + k for k in range(int(d.H) + 2)] + [term_end(c), c.launch + c.excl]:
                if lo < t < hi:
                    cuts.add(t)
        cuts = sorted(cuts)
        counted = 0.0
        for t0, t1 in itertools.pairwise(cuts):
            mid = 0.5 * (t0 + t1)
            parts = [(rate_of(c, mid), mid >= c.launch + c.excl) for c in products]
            q = sum(p for p, _ in parts)
            if q <= 0:
                continue
            x0, x1 = counted, counted + q * (t1 - t0)
            for j, tier in enumerate(tiers):
                a, b = min(max(x0, lows[j]), lows[j + 1]), min(max(x1, lows[j]), lows[j + 1])
                if b <= a:
                    continue
                s, e = t0 + (a - x0) / q, t0 + (b - x0) / q
                r = sum(p * eff(tier["rate"], after) for p, after in parts)
                if cap is not None:
                    if r * (e - s) > cap - paid:
                        e = s + max(cap - paid, 0.0) / r if r > 0 else e
                    paid += r * (e - s)
                total += d.spread(r, s, e)
            counted = x1
        w += 1
    return total


def royalty_pv(term: dict, covered: list[Cand], d: Disc) -> float:
    """Expected PV of a royalty: per product, or over every set of approved products (aggregate)."""
    if term.get("tier_basis", "product") == "product":
        return sum(c.p_approval * royalty_stream_pv(term, [c], d) for c in covered if c.launch < d.H)
    total = 0.0
    for approved in itertools.product([False, True], repeat=len(covered)):
        prob = math.prod(c.p_approval if a else 1 - c.p_approval for c, a in zip(covered, approved, strict=True))
        launched = [c for c, a in zip(covered, approved, strict=True) if a and c.launch < d.H]
        if launched:
            total += prob * royalty_stream_pv(term, launched, d)
    return total


# --------------------------------------------------------------------------- every other term


def term_pv(term: dict, c: Cand, d: Disc) -> float:
    """Expected PV of one (non-royalty) term's net payments to the partner for one candidate."""
    kind = term["kind"]
    sign = 1.0 if term.get("payee", "sponsor" if kind == "cost_share" else "partner") == "partner" else -1.0
    if kind == "service_fees":
        m, a, prem = term["markup"], term.get("at_risk_fraction", 0.0), term.get("success_premium", 0.0)
        e = term.get("escalation", 0.0)
        billed = c.pcost if term.get("failed_batches_paid_by", "partner") == "sponsor" else c.nominal_pcost
        now = phase_pv(c, [x * (1 + m) * (1 - a) for x in billed], d, e)
        deferred = [x * (1 + m) * a * (1 + prem) for x in billed]
        if term.get("deferred_until", "phase_success") == "phase_success":
            later = sum(c.succeed[k] * lump_esc(d, deferred[k], c.end[k], e) for k in range(len(deferred)))
        else:
            later = c.p_approval * lump_esc(d, sum(deferred), c.launch, e)
        return sign * (now + later)
    if kind == "cancellation_fee":
        total = 0.0
        for k in range(len(c.phases)):
            nxt = c.nominal_pcost[k + 1] * (1 + term.get("markup", 0.0)) if k + 1 < len(c.phases) else 0.0
            amount = term.get("amount", 0.0) + term.get("fraction_of_next_phase", 0.0) * nxt
            total += c.reach[k] * (1 - c.prob[k]) * amount * d.lump(c.end[k])
        return sign * total
    if kind == "option":
        sign = 1.0 if term.get("payer", "partner") == "sponsor" else -1.0  # to the partner, for the fees
        phase = {"phase2_start": "phase2", "phase3_start": "phase3", "filing": "filing"}.get(term["exercise_at"])
        if phase is None:
            p_ex, t_ex, k = c.p_approval, c.launch, None
        else:
            k = c.phases.index(phase)
            p_ex, t_ex = c.reach[k], c.start[k]
        total = sign * p_ex * term.get("exercise_fee", 0.0) * d.lump(t_ex)
        if k is not None:
            cut = [x * term.get("markup_given_up", 0.0) if j >= k else 0.0 for j, x in enumerate(c.nominal_pcost)]
            total += sign * phase_pv(c, cut, d)
        years = term.get("royalty_years")
        end = c.launch + years if years is not None else math.inf
        royalty = sum(d.spread(q * term["royalty_rate"], a, min(b, end)) for a, b, q in c.sales_pieces())
        return total - sign * c.p_approval * royalty
    if kind == "milestone":
        event, amount = term["event"], term["amount"]
        if event == "cumulative_sales":
            total = 0.0
            for a, _, q in c.sales_pieces():
                if total + q >= term["threshold"]:
                    return sign * c.p_approval * amount * d.lump(a + (term["threshold"] - total) / q)
                total += q
            return 0.0
        if event in ("approval", "first_sale"):
            return sign * c.p_approval * amount * d.lump(c.launch)
        if event == "annual_sales":
            for k, (_, _, q) in enumerate(c.sales_pieces()):
                if q >= term["threshold"]:
                    return sign * c.p_approval * amount * d.lump(c.launch + k + 1)
            return 0.0
        phase = "filing" if event == "filing" else event.removesuffix("_start")
        if phase not in c.phases[1:]:
            return 0.0
        k = c.phases.index(phase)
        return sign * c.reach[k] * amount * d.lump(c.start[k])
    if kind == "supply":
        cogs = c.cogs if term.get("failed_batches_paid_by", "partner") == "sponsor" else c.nominal_cogs
        e = term.get("escalation", 0.0)
        if term.get("markup_tiers"):
            tiers = [{"above": t["above"], "rate": 1 + t["markup"]} for t in term["markup_tiers"]]
            return sign * c.p_approval * cogs * royalty_stream_pv({"tiers": tiers}, [c], d)
        return sign * c.p_approval * sum(spread_esc(d, q * cogs * (1 + term["markup"]), a, b, e)
                                         for a, b, q in c.sales_pieces())
    if kind == "cost_share":
        funded = c.cost if term.get("payee", "sponsor") == "sponsor" else c.pcost
        cost_part = phase_pv(c, [x * term["cost_fraction"] for x in funded], d)
        profit = c.p_approval * c.sales_pv(d, (1 - c.cogs - c.opex) * term["profit_fraction"])
        return sign * (cost_part - profit)
    raise ValueError(kind)


def _covered(term: dict, cands: list[Cand]) -> list[Cand]:
    return [c for c in cands if term.get("candidates", "all") == "all" or c.name in term["candidates"]]


def _subsets(cands: list[Cand]):
    """Each combination of approvals of independent candidates, with its probability."""
    for approved in itertools.product([False, True], repeat=len(cands)):
        prob = math.prod(c.p_approval if a else 1 - c.p_approval for c, a in zip(cands, approved, strict=True))
        yield prob, [c for c, a in zip(cands, approved, strict=True) if a]


def reservation_pv(term: dict, covered: list[Cand], d: Disc) -> tuple[float, float]:
    """(payments to the partner, the partner's own capacity flows) of a capacity reservation."""
    start, end, notice = term.get("start_years", 0.0), term["end_years"], term.get("notice_years", 0.0)
    fee, e = term["fee_per_year"], term.get("escalation", 0.0)

    def one(release_after: float) -> tuple[float, float]:
        r = min(max(release_after + notice, start), end)
        paid_total = sum(fee * (1 + e) ** i * max(0.0, min(r, i + 1) - max(start, i)) for i in range(101))
        pay = spread_esc(d, fee, start, r, e)
        if r < end:
            pay += max(term.get("minimum_commitment", 0.0) - paid_total, 0.0) * d.lump(r)
        own = -d.spread(term.get("partner_cost_per_year", 0.0), start, end)
        own += spread_esc(d, term.get("resale_utilisation", 0.0) * fee, r, end, e)
        return pay, own

    units = [[c] for c in covered] if term.get("scope", "candidate") == "candidate" else [covered]
    pay = own = 0.0
    for unit in units:
        # every way each candidate of the unit ends, independent candidates: the unit ends at the last failure
        for combo in itertools.product(*[failure_times(c) for c in unit]):
            prob = math.prod(p for p, _ in combo)
            a, b = one(max(t for _, t in combo))
            pay, own = pay + prob * a, own + prob * b
    return pay, own


def payments_pv(term: dict, cands: list[Cand], d: Disc) -> float:
    """Expected PV of all of one term's payments to the partner."""
    if term["kind"] == "upfront":
        return (1.0 if term.get("payee", "partner") == "partner" else -1.0) * term["amount"] * d.lump(0.0)
    covered = _covered(term, cands)
    if term["kind"] == "capacity_reservation":
        return reservation_pv(term, covered, d)[0]
    if term["kind"] == "option":
        sign = -1.0 if term.get("payer", "partner") == "partner" else 1.0
        return sign * term.get("option_fee", 0.0) + sum(term_pv(term, c, d) for c in covered)
    if term["kind"] == "milestone" and term["event"] == "approval_count":
        total = 0.0
        for prob, approved in _subsets(covered):
            if len(approved) >= term["count"]:
                total += prob * term["amount"] * d.lump(sorted(c.launch for c in approved)[term["count"] - 1])
        return total
    if term["kind"] == "success_rebate":
        fees = [t for t in _ALL_TERMS if t["kind"] == "service_fees"]
        total = 0.0
        for c in covered:
            paid = 0.0
            for t in fees:
                if t.get("candidates", "all") != "all" and c.name not in t["candidates"]:
                    continue
                billed = c.pcost if t.get("failed_batches_paid_by", "partner") == "sponsor" else c.nominal_pcost
                a, prem = t.get("at_risk_fraction", 0.0), t.get("success_premium", 0.0)
                paid += sum(x * (1 + t["markup"]) * (1 - a + a * (1 + prem)) for x in billed)
            total += c.p_approval * term["fraction"] * paid * d.lump(c.launch)
        return -total if term.get("payer", "partner") == "partner" else total
    if term["kind"] == "royalty":
        sign = 1.0 if term.get("payee", "partner") == "partner" else -1.0
        return sign * royalty_pv(term, covered, d)
    return sum(term_pv(term, c, d) for c in covered)


def expected_npvs(deal: dict) -> dict[str, float]:
    """Expected NPV of sponsor, partner and program for a fixed-input, independent-candidate deal."""
    H = deal["horizon_years"]
    timing = deal.get("timing", "exact")
    rs = deal["parties"]["sponsor"]["discount_rate"]
    rp = deal["parties"]["partner"]["discount_rate"]
    rprog = deal.get("program_discount_rate") or rs
    ds, dp, dprog = Disc(rs, H, timing), Disc(rp, H, timing), Disc(rprog, H, timing)
    cands = [Cand(c, H) for c in deal["candidates"]]
    supplied = set()
    for t in deal["terms"]:
        if t["kind"] == "supply":
            supplied |= {c.name for c in _covered(t, cands)}

    def own(c: Cand, d: Disc) -> tuple[float, float]:
        sponsor_margin = 1 - c.opex - (0.0 if c.name in supplied else c.cogs)
        sponsor = -phase_pv(c, c.cost, d) + c.p_approval * c.sales_pv(d, sponsor_margin)
        partner = -phase_pv(c, c.pcost, d)
        if c.name in supplied:
            partner -= c.p_approval * c.sales_pv(d, c.cogs)
        return sponsor, partner

    out = {"sponsor": 0.0, "partner": 0.0, "program": 0.0}
    for c in cands:
        out["sponsor"] += own(c, ds)[0]
        out["partner"] += own(c, dp)[1]
        out["program"] += sum(own(c, dprog))
    _ALL_TERMS[:] = deal["terms"]
    for t in deal["terms"]:
        out["partner"] += payments_pv(t, cands, dp)
        out["sponsor"] -= payments_pv(t, cands, ds)
        if t["kind"] == "capacity_reservation":  # the partner's capacity cost and resale income
            out["partner"] += reservation_pv(t, _covered(t, cands), dp)[1]
            out["program"] += reservation_pv(t, _covered(t, cands), dprog)[1]
    return out


_ALL_TERMS: list[dict] = []  # the deal's terms, for a rebate on its service fees


def expected_payments(deal: dict, index: int) -> float:
    """Expected PV to the partner, at the partner's rate, of the payments of term ``index``."""
    H = deal["horizon_years"]
    d = Disc(deal["parties"]["partner"]["discount_rate"], H, deal.get("timing", "exact"))
    _ALL_TERMS[:] = deal["terms"]
    return payments_pv(deal["terms"][index], [Cand(c, H) for c in deal["candidates"]], d)
