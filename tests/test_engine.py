"""Engine behaviour: correlation, conservation, fee-for-service safety, reproducibility, parity."""

from __future__ import annotations

import math

import numpy as np
import numpy_financial as npf
import pytest
from scipy import integrate, stats

import dealmodel as dm
from dealmodel import metrics
from tests.conftest import REFERENCE, base_deal, candidate


def _filing_only(name: str, p: float) -> dict:
    c = candidate(name, start_phase="filing")
    c["phases"]["filing"]["success_probability"] = p
    return c


def _approved_counts(data: dict, paths: int, seed: int) -> np.ndarray:
    """Number of approved candidates on each path, read from the program simulation itself."""
    from dealmodel.program import BLOCK, simulate_program

    deal = dm.parse_deal(data)
    program = simulate_program(deal, seed, 0, math.ceil(paths / BLOCK), paths)
    return np.sum([cp.approved for cp in program.candidates], axis=0)


def _p_all_one_factor(p: float, rho: float, n: int) -> float:
    """P(all n succeed) in the one-factor Gaussian copula, by numerical integration over the factor."""
    threshold = stats.norm.ppf(p)

    def integrand(x):
        return stats.norm.cdf((threshold - math.sqrt(rho) * x) / math.sqrt(1 - rho)) ** n * stats.norm.pdf(x)

    return integrate.quad(integrand, -10, 10)[0]


def test_correlation_keeps_the_mean_and_widens_the_spread():
    p, n, paths = 0.3, 5, 200_000
    cands = [_filing_only(f"C{i}", p) for i in range(n)]
    independent = _approved_counts(base_deal(candidates=cands), paths, seed=8)
    correlated = _approved_counts(base_deal(candidates=cands, correlation={"rho": 0.5}), paths, seed=8)
    se_mean = math.sqrt(n * p * (1 - p) / paths)
    assert abs(independent.mean() - n * p) <= 4 * se_mean
    assert abs(correlated.mean() - n * p) <= 4 * correlated.std() / math.sqrt(paths)
    assert independent.var() == pytest.approx(n * p * (1 - p), rel=0.02)  # binomial variance
    assert correlated.var() > 1.5 * independent.var()


@pytest.mark.parametrize("rho", [0.2, 0.5, 0.8])
def test_probability_all_succeed_matches_the_one_factor_integral(rho):
    p, n, paths = 0.3, 5, 200_000
    counts = _approved_counts(base_deal(candidates=[_filing_only(f"C{i}", p) for i in range(n)],
                                        correlation={"rho": rho}), paths, seed=21)
    expected = _p_all_one_factor(p, rho, n)
    assert expected > p**n  # correlation fattens the joint tail
    se = math.sqrt(expected * (1 - expected) / paths)
    assert abs(np.mean(counts == n) - expected) <= 4 * se


def test_platform_groups_are_independent_of_each_other():
    cands = [dict(_filing_only("A1", 0.3), platform="x"), dict(_filing_only("A2", 0.3), platform="x"),
             dict(_filing_only("B1", 0.3), platform="y")]
    data = base_deal(candidates=cands, correlation={"rho": 0.0, "groups": {"x": 0.6, "y": 0.6}})
    from dealmodel.program import simulate_program

    program = simulate_program(dm.parse_deal(data), 4, 0, 25, 200_000)
    a1, a2, b1 = (cp.approved.astype(float) for cp in program.candidates)
    assert np.corrcoef(a1, a2)[0, 1] > 0.2
    assert abs(np.corrcoef(a1, b1)[0, 1]) < 0.02


@pytest.mark.parametrize("structure", list(REFERENCE))
def test_payments_only_move_cash_between_the_parties(structure):
    deal = dm.load_deal(REFERENCE[structure])
    with_terms = dm.simulate(deal, paths=20_000, seed=3)
    without = dm.simulate(deal.model_copy(update={"terms": []}), paths=20_000, seed=3)
    # A capacity reservation also brings the partner flows with third parties (the reserved capacity's cost,
    # resale of released capacity): the program's flows move by exactly those, which the partner alone has.
    reserved = [t for t in deal.terms if t.kind == "capacity_reservation"]
    capacity = np.zeros_like(without.cash_flows("partner"))
    for term in reserved:  # with the reservation alone: partner's change = payments + capacity flows
        only = dm.simulate(deal.model_copy(update={"terms": [term]}), paths=20_000, seed=3)
        capacity += (only.cash_flows("partner") - without.cash_flows("partner")) - (
            without.cash_flows("sponsor") - only.cash_flows("sponsor"))
    assert bool(reserved) == bool(np.abs(capacity).max() > 0)
    # on every path and year: sponsor + partner flows equal the program's own flows (and capacity flows)
    np.testing.assert_allclose(
        with_terms.cash_flows("program"), without.cash_flows("program") + capacity, rtol=0, atol=1e-9
    )
    # and what the partner gains in payments is exactly what the sponsor gives up
    gained = with_terms.cash_flows("partner") - without.cash_flows("partner") - capacity
    given = without.cash_flows("sponsor") - with_terms.cash_flows("sponsor")
    np.testing.assert_allclose(gained, given, rtol=0, atol=1e-9)


def test_fee_for_service_partner_never_loses_and_carries_no_risk():
    result = dm.simulate(dm.load_deal(REFERENCE["fee_for_service"]), paths=100_000, seed=5)
    partner = result.summary().loc["partner"]
    assert partner["prob_loss"] == 0.0
    assert result.npv["partner"].min() > 0.0
    assert abs(partner["risk_share"]) < 0.02


def test_revenue_share_partner_carries_clearly_more_risk_than_fee_for_service():
    ffs = dm.simulate(dm.load_deal(REFERENCE["fee_for_service"]), paths=50_000, seed=5).summary()
    rev = dm.simulate(dm.load_deal(REFERENCE["revenue_share"]), paths=50_000, seed=5).summary()
    assert rev.loc["partner", "risk_share"] > ffs.loc["partner", "risk_share"] + 0.1
    assert rev.loc["partner", "prob_loss"] > 0.5


def test_same_seed_gives_identical_results_and_other_seeds_differ():
    deal = dm.load_deal(REFERENCE["hybrid"])
    a = dm.simulate(deal, paths=30_000, seed=42)
    b = dm.simulate(deal, paths=30_000, seed=42)
    c = dm.simulate(deal, paths=30_000, seed=43)
    for party in ("sponsor", "partner", "program"):
        assert np.array_equal(a.npv[party], b.npv[party])
        assert not np.array_equal(a.npv[party], c.npv[party])
    assert a.summary().equals(b.summary())


def test_results_do_not_depend_on_chunk_size_or_threads():
    deal = dm.load_deal(REFERENCE["hybrid"])
    reference = dm.simulate(deal, paths=40_000, seed=7, chunk_size=40_000, threads=1)
    for chunk, threads in [(8192, 1), (8192, 2), (16_384, 3), (1, 2), (100_000, 2)]:
        other = dm.simulate(deal, paths=40_000, seed=7, chunk_size=chunk, threads=threads)
        for party in ("sponsor", "partner", "program"):
            assert np.array_equal(reference.npv[party], other.npv[party]), (chunk, threads)
        assert np.array_equal(reference.term_pv, other.term_pv)
        assert reference.candidates == other.candidates


def test_a_prefix_of_paths_is_the_same_whatever_the_total():
    deal = dm.load_deal(REFERENCE["milestone"])
    small = dm.simulate(deal, paths=10_000, seed=1)
    large = dm.simulate(deal, paths=25_000, seed=1)
    assert np.array_equal(small.npv["partner"], large.npv["partner"][:10_000])


def test_structures_with_one_program_see_the_same_paths():
    a = dm.simulate(dm.load_deal(REFERENCE["milestone"]), paths=20_000, seed=2)
    b = dm.simulate(dm.load_deal(REFERENCE["revenue_share"]), paths=20_000, seed=2)
    assert a.candidates == b.candidates  # the same phase outcomes and launch times, path for path
    np.testing.assert_allclose(a.npv["program"], b.npv["program"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("path", sorted(REFERENCE.values()), ids=lambda p: p.stem)
def test_each_candidate_reads_its_uniforms_from_its_own_stream_as_documented(path):
    # The contract (dealmodel/program.py): block b of candidate c draws its slots x BLOCK uniforms, slot by
    # slot, from SeedSequence(seed, spawn_key=(b, c + 1)); the draw skips the slots of fixed quantities
    # without changing the numbers any other slot gets.
    from dealmodel.program import BLOCK, _n_slots, _slot_quantities, draw_blocks

    deal = dm.load_deal(path)
    _, uniforms = draw_blocks(deal, 7, 3, 2)
    checked = 0
    for c, cand in enumerate(deal.candidates):
        quantities = _slot_quantities(cand)
        assert len(quantities) == _n_slots(cand)
        for i, b in enumerate((3, 4)):
            stream = np.random.Generator(np.random.PCG64(np.random.SeedSequence(7, spawn_key=(b, c + 1))))
            expected = stream.random((len(quantities), BLOCK))
            for slot, q in enumerate(quantities):
                if not q.is_fixed:
                    np.testing.assert_array_equal(uniforms[c][slot, i * BLOCK:(i + 1) * BLOCK], expected[slot])
                    checked += 1
    assert checked >= 2 * len(deal.candidates)  # every reference candidate has an uncertain quantity or more


def test_single_path_parity_with_numpy_financial():
    # numpy_financial.npv values the first column at t = 0, the next at 1, ...: the start_of_year convention
    deal = dm.set_value(dm.load_deal(REFERENCE["hybrid"]), "timing", "start_of_year")
    result = dm.simulate(deal, paths=3_000, seed=13)
    rates = {"sponsor": 0.15, "partner": 0.10, "program": 0.15}
    checked = 0
    for party, rate in rates.items():
        flows = result.cash_flows(party)
        irr = result.irr(party)
        for i in range(0, 3_000, 150):
            assert result.npv[party][i] == pytest.approx(npf.npv(rate, flows[i]), rel=1e-12, abs=1e-9)
            expected = npf.irr(flows[i])
            if np.isnan(expected) or not -0.9 < expected < 5.0:
                assert np.isnan(irr[i]) or abs(npf.npv(irr[i], flows[i])) < 1e-6
                continue
            assert irr[i] == pytest.approx(expected, abs=1e-8)
            checked += 1
    assert checked >= 20


def test_irr_of_textbook_cash_flows():
    # numpy-financial's docstring example: irr([-100, 39, 59, 55, 20]) = 0.28095
    flows = np.array([[-100.0, 39, 59, 55, 20], [-100.0, 0, 0, 0, 0], [-100.0, 110, 0, 0, 0]])
    out = metrics.irr(flows)
    assert out[0] == pytest.approx(0.2809484211599611, abs=1e-10)
    assert np.isnan(out[1])  # no sign change: no IRR
    assert out[2] == pytest.approx(0.10, abs=1e-12)


@pytest.mark.parametrize("flows", [
    [-100.0, 100.0],                 # the IRR is exactly 0, a point of the search grid
    [-100.0, 230.0, -132.0],         # two IRRs, 10% and 20%: the one nearest zero, as numpy_financial
    [-100.0, 0.0, 0.0, 0.0, 150.0],
    [50.0, -200.0, 160.0],           # two IRRs again, signs the other way round
])
def test_irr_agrees_with_numpy_financial_at_the_edges(flows):
    assert metrics.irr(np.array([flows]))[0] == pytest.approx(npf.irr(flows), abs=1e-8)


def test_expected_shortfall_is_the_mean_of_the_worst_five_percent():
    values = np.arange(1, 101, dtype=float)  # worst 5 of 100: 1..5
    assert metrics.expected_shortfall(values) == pytest.approx(3.0)
    assert metrics.expected_shortfall(np.arange(1, 102, dtype=float)) == pytest.approx(3.5)  # ceil(5.05) = 6


def test_risk_share_is_the_regression_slope():
    rng = np.random.default_rng(0)
    program = rng.normal(size=10_000)
    assert metrics.risk_share(0.3 * program + 5.0, program) == pytest.approx(0.3)


def test_per_year_table_has_each_calendar_year_once_and_a_fan_around_the_mean():
    result = dm.simulate(dm.load_deal(REFERENCE["hybrid"]), paths=20_000, seed=1)
    table = result.per_year()
    assert set(table["party"]) == {"sponsor", "partner", "program"}
    for party in ("sponsor", "partner", "program"):
        years = table.loc[table["party"] == party, "year"]
        assert list(years) == list(range(2026, 2026 + 35))  # 35-year horizon: 2026 .. 2060, each once
    assert (table["p10"] <= table["p90"]).all()
    assert (table["p10"] < table["p90"]).any()


def test_bad_arguments_are_clear_errors():
    deal = dm.parse_deal(base_deal())
    with pytest.raises(ValueError, match="paths must be a positive whole number"):
        dm.simulate(deal, paths=0)
    with pytest.raises(ValueError, match="seed must be a whole number"):
        dm.simulate(deal, paths=10, seed=-1)


def test_keep_flows_false_keeps_the_same_numbers_in_bounded_memory():
    deal = dm.load_deal(REFERENCE["hybrid"])
    full = dm.simulate(deal, paths=20_000, seed=3)
    lean = dm.simulate(deal, paths=20_000, seed=3, keep_flows=False)
    assert lean.summary().equals(full.summary())
    assert lean.flows == {}
    # per-path term PVs only with the flows; the yearly subsample only without them (documented in result.py)
    assert full.term_pv.shape == (len(deal.terms), 20_000) and lean.term_pv.shape == (len(deal.terms), 0)
    assert (full.sample_paths, lean.sample_paths) == (0, 20_000) and full.sample_flows() == {}
    with pytest.raises(ValueError, match="keep_flows=False"):
        lean.cash_flows("partner")
    # the yearly table comes from the first 20,000 paths: here, all of them
    assert lean.per_year().equals(full.per_year())
    with pytest.raises(ValueError, match="keep_flows=False"):
        dm.simulate(deal, paths=19_000_000, seed=3)


@pytest.mark.parametrize("timing", ["end_of_year", "mid_year", "start_of_year"])
def test_annual_table_reproduces_the_npv_under_a_period_convention(timing):
    # Under a period convention the NPV *is* the yearly totals discounted at the year's end, middle or start
    deal = dm.set_value(dm.load_deal(REFERENCE["hybrid"]), "timing", timing)
    result = dm.simulate(deal, paths=4_000, seed=2)
    offset = {"end_of_year": 1.0, "mid_year": 0.5, "start_of_year": 0.0}[timing]
    for party, rate in (("sponsor", 0.15), ("partner", 0.10)):
        factors = (1 + rate) ** -(np.arange(35) + offset)
        by_hand = result.cash_flows(party) @ factors
        np.testing.assert_allclose(result.npv[party], by_hand, rtol=1e-10, atol=1e-8)


def test_annual_table_agrees_with_the_exact_npv_within_the_discretisation():
    # Exact timing values each flow where it falls inside its year [i, i + 1); the table's report of the
    # same flows, valued at mid-year, differs only by where inside each year a flow falls. For a one-signed
    # flow (the sponsor's sales of one launched candidate) the exact value lies between the table valued at
    # the years' ends and at their starts.
    data = base_deal(terms=[])
    data["candidates"][0]["phases"] = {p: v | {"success_probability": 1.0, "cost": 0.0, "partner_cost": 0.0}
                                       for p, v in data["candidates"][0]["phases"].items()}
    result = dm.simulate(dm.parse_deal(data), paths=10, seed=0)
    flows = result.cash_flows("sponsor")[0]
    years = np.arange(flows.size)
    at_end, at_start = flows @ 1.15 ** -(years + 1.0), flows @ 1.15 ** -years.astype(float)
    assert at_end < result.npv["sponsor"][0] < at_start
    assert abs(result.npv["sponsor"][0] - flows @ 1.15 ** -(years + 0.5)) < 0.01 * result.npv["sponsor"][0]
    # On the reference deal the expected values agree to within 2% of the NPV's scale; the largest single
    # gap is the upfront of 25 at signing, which the table's mid-year factor discounts half a year:
    # 25 x (1 - 1.1^-0.5) = 1.16 of the partner's ~89.
    deal = dm.load_deal(REFERENCE["hybrid"])
    result = dm.simulate(deal, paths=4_000, seed=2)
    for party, rate in (("sponsor", 0.15), ("partner", 0.10)):
        mid = result.cash_flows(party) @ (1 + rate) ** -(np.arange(35) + 0.5)
        assert abs(result.npv[party].mean() - mid.mean()) < 0.02 * np.abs(result.npv[party]).mean()


def test_a_deal_that_omits_every_optional_field_is_valued():
    # Every optional field left out: phases without cost or partner cost, no terms, levers, correlation or
    # timing. Defaults go through validation, so the engine sees Fixed(0) and the exact convention.
    data = {
        "name": "minimal", "valuation_year": 2026, "horizon_years": 12,
        "parties": {"sponsor": {"name": "S", "discount_rate": 0.1}, "partner": {"name": "P", "discount_rate": 0.1}},
        "candidates": [{
            "name": "X", "modality": "antibody", "start_phase": "filing",
            "phases": {"filing": {"success_probability": 1.0, "duration_years": 1.0}},
            "commercial": {"peak_sales": 100, "exclusivity_years": 20, "erosion_after_loe": 0.0,
                           "cogs_fraction": 0.0, "opex_fraction": 0.0},
        }],
    }
    result = dm.simulate(dm.parse_deal(data), paths=100, seed=0)
    # Launch at t = 1, sales 11% / 31% / 58% / 76% / 89% of 100, then 100 a year, until t = 12 (11 years);
    # each launch year k over [1 + k, 2 + k), worth 100 c_k (1.1^-(1+k) - 1.1^-(2+k)) / ln 1.1.
    curve = [0.11, 0.31, 0.58, 0.76, 0.89] + [1.0] * 6
    by_hand = sum(100 * c * (1.1 ** -(1 + k) - 1.1 ** -(2 + k)) / math.log(1.1) for k, c in enumerate(curve))
    assert result.npv["sponsor"] == pytest.approx(np.full(100, by_hand), rel=1e-12)
    assert result.npv["partner"] == pytest.approx(np.zeros(100), abs=1e-12)


@pytest.mark.parametrize("engine", ["numpy", "numba"])  # both, whatever DEALMODEL_ENGINE says: each has its branch
def test_valuing_a_range_of_paths_gives_exactly_those_paths_of_a_full_simulation(engine):
    """The unit of work of batch runs: paths [first, first + n) valued alone equal the same paths of one run."""
    from dealmodel.engine import value_paths, value_paths_many
    from dealmodel.program import BLOCK

    deals = [dm.load_deal(REFERENCE["hybrid"]), dm.load_deal(REFERENCE["milestone"])]
    full = dm.simulate_many(deals, paths=3 * BLOCK, seed=5, keep_flows=True, engine=engine)
    first, n = BLOCK, BLOCK + 100  # a range across two blocks, ending inside the second
    outs = value_paths_many(deals, seed=5, first_path=first, n=n, engine=engine)
    for deal, result, out in zip(deals, full, outs, strict=True):
        for party in ("sponsor", "partner", "program"):
            np.testing.assert_allclose(out["npv"][party], result.npv[party][first:first + n], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(out["term_pv"], result.term_pv[:, first:first + n], rtol=1e-9, atol=1e-9)
        assert out["term_pv"].shape == (len(deal.terms), n)
    alone = value_paths(deals[1], seed=5, first_path=first, n=n, engine=engine)
    np.testing.assert_allclose(alone["npv"]["partner"], outs[1]["npv"]["partner"], rtol=1e-12)
    # the per-candidate counts of the range (phases reached, approvals, launch times, stops) are the
    # program's own, the same from either engine
    from dealmodel.engine import _counts, deal_program

    expected = _counts(deal_program(deals[0], 5, first // BLOCK, 2, n))
    for out in outs:
        assert len(out["counts"]) == len(expected)
        for got, want in zip(out["counts"], expected, strict=True):
            np.testing.assert_allclose(got[0], want[0])
            assert got[1] == want[1] and got[2] == pytest.approx(want[2], rel=1e-12)
    with pytest.raises(ValueError, match=f"first_path must be a multiple of {BLOCK} \\(got 100\\)"):
        value_paths(deals[0], seed=5, first_path=100, n=10, engine=engine)


def test_deals_that_differ_only_in_terms_name_or_decisions_share_their_futures():
    from dealmodel.engine import paths_key

    hybrid, milestone = dm.load_deal(REFERENCE["hybrid"]), dm.load_deal(REFERENCE["milestone"])
    assert paths_key(hybrid) == paths_key(milestone)  # the same program, other terms and names
    data = hybrid.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert paths_key(dm.parse_deal(data | {"decisions": "optimal", "description": "another"})) == paths_key(hybrid)
    other = dm.parse_deal(data | {"correlation": {**data["correlation"], "rho": 0.5}})
    assert paths_key(other) != paths_key(hybrid)


def test_irr_searches_from_minus_90_to_plus_500_percent_unless_told_otherwise():
    # one outlay and one return a year later: the IRR is return / outlay - 1
    steep = np.array([[-1.0, 6.5]])  # +550%
    collapse = np.array([[-100.0, 5.0]])  # -95%
    assert np.isnan(metrics.irr(steep)[0]) and np.isnan(metrics.irr(collapse)[0])  # outside the default range
    assert metrics.irr(steep, high=6.0)[0] == pytest.approx(5.5, abs=1e-9)
    assert metrics.irr(collapse, low=-0.99)[0] == pytest.approx(-0.95, abs=1e-9)
    assert metrics.irr(np.array([[-100.0, 110.0]]))[0] == pytest.approx(0.1, abs=1e-11)


def test_structures_on_one_program_simulate_it_once_per_chunk(monkeypatch):
    """The compiled path values every structure of a comparison on one simulation of their shared program;
    a structure on another program (other correlation) gets its own."""
    import dealmodel.kernel as kernel
    from dealmodel.program import BLOCK

    calls = []
    real = kernel.pack_program
    monkeypatch.setattr(kernel, "pack_program", lambda deal, *a, **k: calls.append(deal.name) or real(deal, *a, **k))
    deals = [dm.load_deal(REFERENCE[k]) for k in ("fee_for_service", "milestone", "revenue_share", "hybrid")]
    other = deals[0].model_dump(mode="json", by_alias=True, exclude_none=True)
    other = dm.parse_deal(other | {"name": "other program", "correlation": {**other["correlation"], "rho": 0.6}})
    dm.simulate_many([*deals, other], paths=3 * BLOCK, seed=2, keep_flows=False, engine="numba", chunk_size=BLOCK,
                     threads=1)
    assert sorted(calls) == sorted([deals[0].name] * 3 + ["other program"] * 3)  # three chunks, two programs
    calls.clear()
    dm.simulate_many(deals, paths=3 * BLOCK, seed=2, keep_flows=False, engine="numba", chunk_size=BLOCK, threads=1)
    assert calls == []  # the same chunks again (a slider that moves only terms): none simulated anew


def test_the_program_cache_keeps_recent_chunks_within_its_size_and_drops_the_least_recently_used(monkeypatch):
    from types import SimpleNamespace

    from dealmodel import kernel
    from dealmodel.engine import _ProgramCache

    packed = []  # (key, first block) of each chunk simulated

    def pack(deal, seed, first_block, n):
        packed.append((deal, first_block))
        return SimpleNamespace(nbytes=n)  # n stands for the chunk's size in bytes

    monkeypatch.setattr(kernel, "pack_program", pack)
    cache = _ProgramCache(max_bytes=100)
    a = cache.get("a", "k", 0, 0, 40)
    assert cache.get("a", "k", 0, 0, 40) is a and packed == [("a", 0)]  # kept: simulated once
    cache.get("b", "k", 0, 1, 40)
    cache.get("a", "k", 0, 0, 40)  # a is now the most recently used
    cache.get("c", "k", 0, 2, 20)  # 40 + 40 + 20 = 100: exactly full, all kept
    assert cache._bytes == 100 and len(packed) == 3
    cache.get("d", "k", 0, 3, 30)  # 130 > 100: b (least recently used) goes, a and c stay
    assert cache._bytes == 90
    cache.get("a", "k", 0, 0, 40), cache.get("c", "k", 0, 2, 20)
    assert len(packed) == 4
    cache.get("b", "k", 0, 1, 40)  # b again: simulated again, and d (now the oldest) goes for it
    assert len(packed) == 5 and cache._bytes == 100
    cache.get("x", "k", 0, 9, 101)  # larger than the whole cache: never kept, nothing dropped for it
    cache.get("x", "k", 0, 9, 101)
    assert len(packed) == 7 and cache._bytes == 100
    cache.clear()
    assert cache._bytes == 0
    cache.get("y", "k", 0, 5, 100)  # a chunk of exactly the cache's size fits an empty cache
    cache.get("y", "k", 0, 5, 100)
    assert len(packed) == 8 and cache._bytes == 100


def test_deals_with_different_programs_valued_together_are_each_valued_on_their_own():
    # value_paths_many groups deals by program: a deal with a longer phase 2 and a fee on a random price index
    # is valued on its own program and index draws, as if alone
    from dealmodel.engine import value_paths, value_paths_many
    from dealmodel.program import BLOCK

    data = base_deal(candidates=[candidate("A")], terms=[
        {"kind": "service_fees", "markup": 0.2, "escalation": {"dist": "uniform", "low": 0.0, "high": 0.1}}])
    slow = {**data, "candidates": [candidate("A")]}
    slow["candidates"][0]["phases"]["phase2"]["duration_years"] = 5.0
    deals = [dm.parse_deal(data), dm.parse_deal(slow)]
    for engine in ("numpy", "numba"):
        together = value_paths_many(deals, seed=3, first_path=BLOCK, n=500, engine=engine)
        for deal, out in zip(deals, together, strict=True):
            alone = value_paths(deal, seed=3, first_path=BLOCK, n=500, engine="numpy")
            np.testing.assert_allclose(out["npv"]["partner"], alone["npv"]["partner"], rtol=1e-9)
    full = dm.simulate(deals[1], paths=BLOCK + 500, seed=3, keep_flows=False, engine="numpy")
    np.testing.assert_allclose(together[1]["npv"]["partner"], full.npv["partner"][BLOCK:], rtol=1e-9)


def test_simulate_by_default_and_its_progress_and_yearly_sample():
    deal = dm.parse_deal(base_deal())
    result = dm.simulate(deal, keep_flows=False)
    assert (result.paths, result.seed) == (10_000, 0)  # the documented defaults
    seen = []
    result = dm.simulate(deal, paths=20_000, seed=1, chunk_size=8_192, progress=seen.append, keep_flows=False,
                         yearly_sample=100)
    assert seen == [8_192, 16_384, 20_000]  # paths done after each chunk, in order
    assert result.sample_paths == 100


def test_the_default_engine_is_the_kernel_unless_dealmodel_engine_names_another(monkeypatch):
    from dealmodel import kernel
    from dealmodel.engine import resolve_engine

    monkeypatch.delenv("DEALMODEL_ENGINE", raising=False)
    assert kernel.AVAILABLE and resolve_engine(None) == "numba"
    monkeypatch.setenv("DEALMODEL_ENGINE", "numpy")
    assert resolve_engine(None) == "numpy"
    assert resolve_engine("numba") == "numba"  # a caller's choice wins over the environment
    monkeypatch.setenv("DEALMODEL_ENGINE", "cuda")
    with pytest.raises(ValueError, match="engine must be one of numba, numpy \\(got 'cuda'\\)"):
        resolve_engine(None)
    # where numba cannot be imported: the reference by default, and a clear message if the kernel is asked for
    monkeypatch.delenv("DEALMODEL_ENGINE")
    monkeypatch.setattr(kernel, "AVAILABLE", False)
    assert resolve_engine(None) == "numpy" and resolve_engine("numpy") == "numpy"
    with pytest.raises(ValueError, match=r"^engine 'numba' needs the numba package \(pip install numba\); "
                                        r"engine='numpy' works without it$"):
        resolve_engine("numba")
