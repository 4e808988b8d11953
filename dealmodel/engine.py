"""``simulate``: value a deal on simulated program paths, chunk by chunk, in bounded memory."""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from dealmodel.cashflows import Ledger
from dealmodel.limits import check_run
from dealmodel.program import BLOCK, ProgramPaths, Sales, sales_by_launch_year, simulate_program
from dealmodel.result import SimulationResult
from dealmodel.schema import Deal, Supply
from dealmodel.terms import add_term, escalation_draws, fee_credits, headline
from dealmodel.timing import Discount

DEFAULT_CHUNK = BLOCK  # small runs split evenly over the threads (20k paths: 3 chunks, not 2 uneven ones)
YEARLY_SAMPLE = 20_000
"""Without ``keep_flows``, ``per_year``'s mean and P10-P90 are over the yearly cash flows of the first
this many paths: a fixed subsample, the same whatever the chunking, simulated when first asked for
(:meth:`~dealmodel.result.SimulationResult.sample_flows`)."""
MAX_PATHS = 20_000_000


def _check_args(paths: int, seed: int, chunk_size: int | None) -> int:
    if isinstance(paths, bool) or not isinstance(paths, int | np.integer) or paths < 1:
        raise ValueError(f"paths must be a positive whole number (got {paths!r})")
    if paths > MAX_PATHS:
        raise ValueError(f"paths must be at most {MAX_PATHS:,} (got {paths:,})")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0 (got {seed!r})")
    if chunk_size is None:
        return DEFAULT_CHUNK
    if not isinstance(chunk_size, int | np.integer) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive whole number (got {chunk_size!r})")
    return math.ceil(chunk_size / BLOCK) * BLOCK


def _supplied(deal: Deal) -> dict[int, str]:
    """Candidates whose marketed product a supply term has the partner (or sponsor) make."""
    out: dict[int, str] = {}
    for term in deal.terms:
        if isinstance(term, Supply):
            for c in deal.covered(term):
                out[c] = term.payee
    return out


def program_flows(deal: Deal, program: ProgramPaths, sales: list[Sales],
                  only: int | None = None) -> tuple[Ledger, Ledger]:
    """Each party's own cash flows before any payment between them: ``(sponsor, partner)``.

    The sponsor sells, pays its development cost and other operating cost, and the cost of goods
    unless a supply term has the partner make the product; the partner pays for its own services
    (remade batches included). ``only``: the flows of that one candidate.
    """
    sponsor, partner = Ledger(program.n), Ledger(program.n)
    maker = _supplied(deal)
    for c, cp in enumerate(program.candidates):
        if only is not None and c != only:
            continue
        sponsor.spread_chain(cp.bounds, -cp.sponsor_cost * cp.reached)
        partner.spread_chain(cp.bounds, -cp.partner_cost * cp.reached)
        sg = sales[c]
        if sg.rows.size == 0:
            continue
        cogs = cp.cogs_fraction[sg.rows]
        opex = cp.opex_fraction[sg.rows]
        if maker.get(c) == "partner":
            sg.add_to(sponsor, 1.0 - opex)
            sg.add_to(partner, -cogs)
        else:
            sg.add_to(sponsor, 1.0 - opex - cogs)
    return sponsor, partner


def _value_chunk(deal: Deal, seed: int, first_block: int, n: int, disc: dict[str, Discount], out: dict,
                 program: ProgramPaths | None = None) -> list:
    """Simulate and value paths ``[first_block * BLOCK, ... + n)``, writing into ``out``'s slices.

    ``program``: those paths already simulated (:func:`deal_program`). Returns the chunk's
    per-candidate counts (phases reached, approvals, sum of launch times).
    """
    H = deal.horizon_years
    if program is None:
        program = deal_program(deal, seed, first_block, math.ceil(n / BLOCK), n)
    sales = [sales_by_launch_year(cp, H) for cp in program.candidates]
    sponsor_own, partner_own = program_flows(deal, program, sales)
    memo: dict[str, dict] = {party: {} for party in disc}  # chain integrals shared within this chunk
    terms = []
    paid_partner = np.zeros(n)
    paid_sponsor = np.zeros(n)
    draws = escalation_draws(deal, seed, first_block, n)
    ledgers = [Ledger(n) for _ in deal.terms]
    for term, led in zip(deal.terms, ledgers, strict=True):
        add_term(term, deal, program, sales, led, own=partner_own, draws=draws)
    fee_credits(deal, program, sales, ledgers)
    for i, led in enumerate(ledgers):
        out["term_pv"][i] = led.pv(disc["partner"], memo["partner"])
        paid_partner += out["term_pv"][i]
        paid_sponsor += led.pv(disc["sponsor"], memo["sponsor"])
        terms.append(led)
    out["npv"]["sponsor"][:] = sponsor_own.pv(disc["sponsor"], memo["sponsor"]) - paid_sponsor
    out["npv"]["partner"][:] = partner_own.pv(disc["partner"], memo["partner"]) + paid_partner
    out["npv"]["program"][:] = (sponsor_own.pv(disc["program"], memo["program"])
                                + partner_own.pv(disc["program"], memo["program"]))
    if "flows" in out:
        payments = Ledger.combine(terms, n).annual(H)
        out["flows"]["sponsor"][:] = sponsor_own.annual(H) - payments
        out["flows"]["partner"][:] = partner_own.annual(H) + payments
    return _counts(program)


def deal_program(deal: Deal, seed: int, first_block: int, n_blocks: int, n: int | None = None) -> ProgramPaths:
    """The program's paths as the deal runs them: :func:`~dealmodel.program.simulate_program`, then the
    gate decisions of ``deal.decisions`` (none by default)."""
    program = simulate_program(deal, seed, first_block, n_blocks, n)
    if deal.decision_rule == "none":
        return program
    from dealmodel.decisions import decide

    return decide(deal, program, seed, first_block)


def discount_table(deal: Deal) -> dict[str, Discount]:
    """Discount of sponsor, partner and program under the deal's timing convention."""
    H = deal.horizon_years
    return {
        "sponsor": Discount(deal.parties.sponsor.discount_rate, H, deal.timing),
        "partner": Discount(deal.parties.partner.discount_rate, H, deal.timing),
        "program": Discount(deal.program_rate, H, deal.timing),
    }


def value_paths(deal: Deal, seed: int, first_path: int, n: int, engine: str | None = None) -> dict:
    """NPVs of paths ``[first_path, first_path + n)`` only, without keeping cash flows.

    ``first_path`` must start a random-number block (a multiple of :data:`BLOCK`): the unit of
    work for batch runs, whose results then match :func:`simulate` path for path.
    """
    return value_paths_many([deal], seed, first_path, n, engine)[0]


def value_paths_many(deals: list[Deal], seed: int, first_path: int, n: int, engine: str | None = None) -> list[dict]:
    """:func:`value_paths` of several deals; deals that share a program share its simulation (kernel)."""
    if first_path % BLOCK:
        raise ValueError(f"first_path must be a multiple of {BLOCK} (got {first_path})")
    engine = resolve_engine(engine)
    outs = [{"npv": {party: np.empty(n) for party in ("sponsor", "partner", "program")},
             "term_pv": np.empty((len(deal.terms), n))} for deal in deals]
    if engine == "numpy":
        for deal, out in zip(deals, outs, strict=True):
            out["counts"] = _value_chunk(deal, seed, first_path // BLOCK, n, discount_table(deal), out)
        return outs
    from dealmodel import kernel

    groups: dict[str, list[int]] = {}
    for i, deal in enumerate(deals):
        groups.setdefault(program_key(deal), []).append(i)
    for members in groups.values():
        group = [deals[i] for i in members]
        plan = kernel.Plan(group)
        program = deal_program(group[0], seed, first_path // BLOCK, math.ceil(n / BLOCK), n)
        out_npv = np.empty((len(group), 3, n))
        out_tpv = np.empty((int(plan.offsets[-1]), n))
        kernel.run_chunk(group, plan, program, seed, first_path // BLOCK, False, out_npv, out_tpv,
                         np.empty((len(group), 2, 0, group[0].horizon_years)))
        counts = _counts(program)
        for s, i in enumerate(members):
            for k, party in enumerate(("sponsor", "partner", "program")):
                outs[i]["npv"][party][:] = out_npv[s, k]
            outs[i]["term_pv"][:] = out_tpv[plan.offsets[s]:plan.offsets[s + 1]]
            outs[i]["counts"] = counts
    return outs


ENGINES = ("numba", "numpy")


def resolve_engine(engine: str | None) -> str:
    """``numba`` (the compiled kernel) or ``numpy`` (the reference); default: the kernel where it imports.

    ``DEALMODEL_ENGINE`` sets the default (e.g. ``numpy`` for mutation testing of the reference).
    """
    from dealmodel import kernel

    if engine is None:
        engine = os.environ.get("DEALMODEL_ENGINE") or ("numba" if kernel.AVAILABLE else "numpy")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)} (got {engine!r})")
    if engine == "numba" and not kernel.AVAILABLE:
        raise ValueError("engine 'numba' needs the numba package (pip install numba); engine='numpy' works without it")
    return engine


def paths_key(deal: Deal) -> str:
    """Everything a deal's random futures depend on: deals with equal keys see the same draws, so
    their difference is paired, whatever their terms and gate decisions."""
    return deal.model_dump_json(exclude={"name", "description", "terms", "decisions"})


def program_key(deal: Deal) -> str:
    """Everything of a deal but its name and terms: deals with equal keys share program paths.

    Where gate decisions depend on the terms (an owner other than ``program``), the terms too.
    """
    if deal.decision_rule != "none":
        from dealmodel.decisions import policy_key

        return policy_key(deal)
    return deal.model_dump_json(exclude={"name", "description", "terms"})


class _ProgramCache:
    """Recently simulated chunks of programs, by (program, seed, first block, paths), up to a size.

    A solver or a slider that changes only terms revalues the same program again and again: its
    chunks are simulated once. Thread-safe; the least recently used chunk goes first.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, tuple[ProgramPaths, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, deal: Deal, key: str, seed: int, first_block: int, n: int):
        """The chunk's :class:`dealmodel.kernel.PackedProgram` (simulated now unless kept)."""
        k = (key, seed, first_block, n)
        with self._lock:
            if k in self._items:
                self._items.move_to_end(k)
                return self._items[k][0]
        from dealmodel import kernel

        program = kernel.pack_program(deal, seed, first_block, n)
        size = program.nbytes
        with self._lock:
            if k not in self._items and size <= self.max_bytes:
                self._items[k] = (program, size)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (_, dropped) = self._items.popitem(last=False)
                    self._bytes -= dropped
        return program

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


CACHED_PATHS = 200_000
PROGRAMS = _ProgramCache(int(os.environ.get("DEALMODEL_PROGRAM_CACHE_MB", "256")) * 2**20)


def _counts(program: ProgramPaths) -> list:
    """Per-candidate counts of a chunk: phases reached, approvals, sum of launch times, stops after each phase."""
    return [
        (cp.reached.sum(axis=0), int(cp.approved.sum()), float(cp.launch[cp.approved].sum()),
         np.zeros(cp.reached.shape[1]) if cp.stopped is None else cp.stopped.sum(axis=0))
        for cp in program.candidates
    ]


def simulate(
    deal: Deal,
    paths: int = 10_000,
    seed: int = 0,
    chunk_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    threads: int | None = None,
    keep_flows: bool = True,
    engine: str | None = None,
    yearly_sample: int | None = None,
) -> SimulationResult:
    """Value ``deal`` on ``paths`` simulated futures of its program.

    Memory is O(chunk_size x candidates x horizon) per thread for the work and
    O(paths x horizon) for the per-path cash flows kept in the result. The result does not
    depend on ``chunk_size``, ``threads`` or ``engine`` (to rounding): random numbers come in
    fixed blocks (see :mod:`dealmodel.program`) and per-chunk totals are added in chunk order.
    ``progress`` is called with the number of paths done after each chunk. ``threads`` defaults
    to the machine's cores, at most 4, or the environment variable ``DEALMODEL_THREADS``.
    ``keep_flows=False`` keeps only the NPVs (memory O(paths)); ``per_year`` then reads the yearly
    flows of the first ``yearly_sample`` paths (default :data:`YEARLY_SAMPLE`; 0: none), simulated
    on first use: everything but
    ``cash_flows`` and ``irr`` still works. ``engine``: ``"numba"`` (the compiled kernel, the
    default where numba imports) or ``"numpy"`` (the reference implementation).
    """
    report = None if progress is None else (lambda done, _total: progress(done))
    return simulate_many([deal], paths, seed, chunk_size, report, threads, keep_flows, engine, yearly_sample)[0]


def simulate_many(
    deals: list[Deal],
    paths: int = 10_000,
    seed: int = 0,
    chunk_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
    keep_flows: bool = True,
    engine: str | None = None,
    yearly_sample: int | None = None,
) -> list[SimulationResult]:
    """Value several deals on the same seed: :func:`simulate` of each, in one pass where they share a program.

    With the kernel, deals whose program is the same (:func:`program_key`) are valued together:
    each chunk's program is simulated once and every structure's terms are booked on it in the
    same pass over the paths. Results are the same as valuing each deal alone.
    ``progress(done, total)`` counts paths x program groups.
    """
    chunk = _check_args(paths, seed, chunk_size)
    engine = resolve_engine(engine)
    sample = YEARLY_SAMPLE if yearly_sample is None else yearly_sample
    if isinstance(sample, bool) or not isinstance(sample, int | np.integer) or sample < 0:
        raise ValueError(f"yearly_sample must be a whole number >= 0 (got {yearly_sample!r})")
    deals = list(deals)
    for deal in deals:
        check_run(paths, len(deal.candidates), deal.horizon_years, len(deal.terms), 1, keep_flows)
    groups: dict[str, list[int]] = {}
    for i, deal in enumerate(deals):
        groups.setdefault(program_key(deal) if engine == "numba" else str(i), []).append(i)
    results: list[SimulationResult | None] = [None] * len(deals)
    total = paths * len(groups)
    for g, members in enumerate(groups.values()):
        def tick(done: int, base: int = g * paths) -> None:
            if progress is not None:
                progress(base + done, total)

        group = [deals[i] for i in members]
        for i, result in zip(members, _simulate_group(group, paths, seed, chunk, tick, threads, keep_flows, engine,
                                                      int(sample)), strict=True):
            results[i] = result
    return results  # type: ignore[return-value]


def _simulate_group(deals: list[Deal], paths: int, seed: int, chunk: int, progress: Callable[[int], None],
                    threads: int | None, keep_flows: bool, engine: str, yearly_sample: int) -> list[SimulationResult]:
    first = deals[0]
    T = first.horizon_years
    S = len(deals)
    df = discount_table(first)
    flows = [{"sponsor": np.empty((paths, T)), "partner": np.empty((paths, T))} if keep_flows else {}
             for _ in deals]
    # without the flows, the yearly subsample is simulated when first asked for (SimulationResult.sample_flows)
    n_sample = 0 if keep_flows else min(paths, yearly_sample)
    npv = [{party: np.empty(paths) for party in df} for _ in deals]
    # per-path term PVs only with the flows; otherwise their per-chunk sums (added in chunk order)
    term_pv = [np.empty((len(d.terms), paths if keep_flows else 0)) for d in deals]
    term_sums: dict[int, list[np.ndarray]] = {}
    C = len(first.candidates)
    reached_sum = [np.zeros(len(c.remaining_phases())) for c in first.candidates]
    approved = np.zeros(C)
    launch_sum = np.zeros(C)
    stopped_sum = [np.zeros(len(c.remaining_phases())) for c in first.candidates]
    if engine == "numba":
        from dealmodel import kernel

        plan = kernel.Plan(deals)
        key = program_key(first)
        cache = paths <= CACHED_PATHS  # interactive sizes; a large run would only churn the cache

    def job(start: int) -> list:
        n = min(chunk, paths - start)
        sl = slice(start, start + n)
        if engine == "numpy":
            out = {
                **({"flows": {k: v[sl] for k, v in flows[0].items()}} if keep_flows else {}),
                "npv": {k: v[sl] for k, v in npv[0].items()},
                "term_pv": term_pv[0][:, sl] if keep_flows else np.empty((len(first.terms), n)),
            }
            counts = _value_chunk(first, seed, start // BLOCK, n, df, out)
            term_sums[start] = [out["term_pv"].sum(axis=1)]
            return counts
        program = (PROGRAMS.get(first, key, seed, start // BLOCK, n) if cache
                   else kernel.pack_program(first, seed, start // BLOCK, n))
        out_npv = np.empty((S, 3, n))
        out_tpv = np.empty((int(plan.offsets[-1]), n if keep_flows else 0))
        out_ann = np.empty((S, 2, n if keep_flows else 0, T))
        sums = kernel.run_chunk(deals, plan, program, seed, start // BLOCK, keep_flows, out_npv, out_tpv, out_ann)
        for s in range(S):
            for i, party in enumerate(("sponsor", "partner", "program")):
                npv[s][party][sl] = out_npv[s, i]
            if keep_flows:
                term_pv[s][:, sl] = out_tpv[plan.offsets[s]:plan.offsets[s + 1]]
                flows[s]["sponsor"][sl] = out_ann[s, 0]
                flows[s]["partner"][sl] = out_ann[s, 1]
        term_sums[start] = [sums[plan.offsets[s]:plan.offsets[s + 1]] for s in range(S)]
        return program.counts

    starts = list(range(0, paths, chunk))
    if threads is None:
        threads = int(os.environ.get("DEALMODEL_THREADS", "0")) or min(4, os.cpu_count() or 1)
    workers = max(1, min(threads, len(starts)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # one worker: chunks run on the calling thread (what profilers and mutation testing see)
        done = map(job, starts) if workers == 1 else pool.map(job, starts)
        for start, counts in zip(starts, done, strict=True):
            for c, (reached, n_approved, launch_total, stopped) in enumerate(counts):
                reached_sum[c] += reached
                stopped_sum[c] += stopped
                approved[c] += n_approved
                launch_sum[c] += launch_total
            progress(min(start + chunk, paths))

    candidates = {}
    for c, cand in enumerate(first.candidates):
        phases = [p for p, _ in cand.remaining_phases()]
        candidates[cand.name] = {
            "start_phase": cand.start_phase,
            **{f"prob_reach_{p}": float(reached_sum[c][k] / paths) for k, p in enumerate(phases)},
            "prob_approval": float(approved[c] / paths),
            **({f"prob_stopped_before_{p}": float(stopped_sum[c][k - 1] / paths) for k, p in enumerate(phases) if k}
               if first.decision_rule != "none" else {}),
            "expected_launch_year": (
                float(first.valuation_year + launch_sum[c] / approved[c]) if approved[c] else math.nan
            ),
        }
    return [
        SimulationResult(deal=deal, paths=paths, seed=seed, headline=headline(deal), npv=npv[s], flows=flows[s],
                         sample_paths=n_sample, engine=engine,
                         term_pv=term_pv[s], candidates={k: dict(v) for k, v in candidates.items()},
                         term_mean=np.sum([term_sums[start][s] for start in starts], axis=0).reshape(-1) / paths)
        for s, deal in enumerate(deals)
    ]
