"""Deal files: samples, round trip, the shipped JSON Schema, and the reference calibration."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

import dealmodel as dm
from dealmodel.distributions import Fixed, LogNormal, Triangular
from tests.conftest import REFERENCE, ROOT, SAMPLES, SINGLE, base_deal, candidate

ALL_SAMPLES = sorted(SAMPLES.glob("*.yaml"))


def test_there_are_five_samples():
    assert {p.name for p in ALL_SAMPLES} == {
        "reference_fee_for_service.yaml",
        "reference_milestone.yaml",
        "reference_revenue_share.yaml",
        "reference_hybrid.yaml",
        "reference_cdmo_risk_share.yaml",
        "single_candidate.yaml",
    }


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: p.stem)
def test_sample_loads_and_round_trips(path, tmp_path):
    deal = dm.load_deal(path)
    for suffix in (".yaml", ".json"):
        out = tmp_path / f"copy{suffix}"
        dm.save_deal(deal, out)
        again = dm.load_deal(out)
        assert again == deal
        # and a second save writes the same text: the dump is stable
        out2 = tmp_path / f"copy2{suffix}"
        dm.save_deal(again, out2)
        assert out2.read_text() == out.read_text()
    # libyaml's emitter (used where PyYAML has it, for speed) writes what the pure-Python emitter writes
    plain = yaml.safe_dump(dm.io.deal_to_dict(deal), sort_keys=False, allow_unicode=True, width=100)
    assert dm.dump_deal(deal) == plain
    assert (dm.io._DUMPER is yaml.CSafeDumper) == yaml.__with_libyaml__


def test_fixed_numbers_stay_plain_numbers_when_saved():
    deal = dm.load_deal(SINGLE)
    data = yaml.safe_load(dm.dump_deal(deal))
    phase2 = data["candidates"][0]["phases"]["phase2"]
    assert phase2["success_probability"] == 0.246
    assert data["candidates"][0]["commercial"]["peak_sales"] == {"dist": "lognormal", "median": 800.0, "p90": 2000.0}


def test_reference_program_is_five_mixed_stage_candidates():
    deal = dm.load_deal(REFERENCE["hybrid"])
    stages = sorted(c.start_phase for c in deal.candidates)
    assert stages == ["phase1", "phase1", "phase2", "preclinical", "preclinical"]
    assert len({c.modality for c in deal.candidates}) >= 4
    # BIO/Informa/QLS 2021 oncology phase transition rates (oncology_defaults.md, section 1a)
    c = deal.candidates[2]
    assert c.phases.phase1.success_probability == Fixed(value=0.488)
    assert c.phases.phase2.success_probability == Fixed(value=0.246)
    assert c.phases.phase3.success_probability == Fixed(value=0.477)
    assert c.phases.filing.success_probability == Fixed(value=0.92)
    # discount rates: sponsor 15% (ASPE 2014), partner 10% (Cockburn & Lerner 2009)
    assert deal.parties.sponsor.discount_rate == 0.15
    assert deal.parties.partner.discount_rate == 0.10
    assert deal.candidates[0].commercial.exclusivity_years == Fixed(value=12.6)  # Grabowski et al. 2014
    assert isinstance(deal.candidates[0].commercial.peak_sales, LogNormal)
    assert isinstance(c.phases.phase3.cost, Triangular)
    assert (c.phases.phase3.cost.low, c.phases.phase3.cost.mode, c.phases.phase3.cost.high) == (17.0, 31.7, 60.4)


def test_the_reference_structures_share_one_program():
    deals = {k: dm.load_deal(p) for k, p in REFERENCE.items()}
    programs = {k: d.model_dump(exclude={"name", "description", "terms"}) for k, d in deals.items()}
    first = programs["hybrid"]
    assert all(p == first for p in programs.values())
    assert len({tuple(t.kind for t in d.terms) for d in deals.values()}) == len(REFERENCE) == 5


@pytest.mark.parametrize("structure", ["milestone", "hybrid"])
def test_total_contract_value_matches_the_articles_2_1_billion(structure):
    # The article: "a $2.1 billion multi-year agreement ... five personalized oncology candidates",
    # announced as CDMO agreements are: total contract value, fees included.
    headline = dm.headline(dm.load_deal(REFERENCE[structure]))
    assert headline.total_contract_value == pytest.approx(2100.0, rel=0.02)
    assert headline.biobucks < headline.total_contract_value


def test_headline_figures_by_hand_for_the_single_candidate_deal():
    # Fees at list price: (30 + 60 + 10) x 1.10 = 110 (failed batches are the partner's: nominal cost),
    # the 25% at-risk part with its 50% premium: 110 x (0.75 + 0.25 x 1.5) = 123.75; plus the approval
    # milestone 40. Biobucks: the milestone only. Royalties count in neither.
    headline = dm.headline(dm.load_deal(SINGLE))
    assert headline.biobucks == pytest.approx(40.0, abs=1e-9)
    assert headline.total_contract_value == pytest.approx(123.75 + 40.0, abs=1e-9)


def test_headline_figures_by_hand_for_the_milestone_reference():
    # Milestones: phase 1 start 1 x 2 (the two preclinical candidates), phase 2 start 2 x 4, phase 3 start
    # 5 x 5, filing 35 x 5, approval 157 x 5, sales 30 x 5 and 40 x 5, upfront 25.
    biobucks = 1 * 2 + 2 * 4 + 5 * 5 + 35 * 5 + 157 * 5 + 30 * 5 + 40 * 5 + 25
    # Fees at a 10% discount on the partner's nominal costs (sum of every remaining phase's partner_cost).
    costs = (3.1 + 30 + 60 + 110 + 25) + (3.1 + 25 + 50 + 95 + 20) + (20 + 40 + 80 + 15) + (18 + 35 + 75 + 15) + (
        35 + 75 + 15)
    headline = dm.headline(dm.load_deal(REFERENCE["milestone"]))
    assert headline.biobucks == pytest.approx(biobucks, abs=1e-9)
    assert headline.total_contract_value == pytest.approx(biobucks + 0.9 * costs, abs=1e-9)


def test_every_sample_default_cites_a_source_or_says_assumption():
    text = (ROOT / "tools" / "sample_parts" / "program.yaml").read_text()
    for source in ("BIO/Informa/QLS 2021", "Martin et al. 2017", "Hsiue", "Robey & David", "Grabowski",
                   "Cockburn & Lerner", "ASPE", "Paul et al. 2010"):
        assert source in text
    assert "assumption" in text


def test_shipped_json_schema_is_current_and_valid():
    shipped = json.loads((ROOT / "dealmodel" / "deal.schema.json").read_text())
    assert shipped == dm.deal_json_schema()
    jsonschema.Draft202012Validator.check_schema(shipped)


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: p.stem)
def test_samples_validate_against_the_json_schema(path):
    validator = jsonschema.Draft202012Validator(dm.deal_json_schema())
    assert [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))] == []


def test_json_schema_rejects_an_unknown_key():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(base_deal(colour="red"), dm.deal_json_schema())


def test_models_are_frozen():
    deal = dm.parse_deal(base_deal())
    with pytest.raises(Exception, match="frozen"):
        deal.name = "other"


def test_the_negotiated_references_lie_in_the_zone_against_fee_for_service():
    """Each of them is a deal both parties would sign over fee-for-service (tools/calibrate_references.py)."""
    names = ["fee_for_service", "milestone", "revenue_share", "hybrid"]
    table = dm.compare([dm.load_deal(REFERENCE[n]) for n in names], paths=20_000, seed=0, keep_flows=False).table
    for row in table.iloc[1:].itertuples():
        assert row.sponsor_diff > 3 * row.sponsor_diff_se, row.Index
        assert row.partner_diff > 3 * row.partner_diff_se, row.Index


def test_headline_milestones_count_each_event_a_candidate_can_still_reach_and_fees_their_remakes():
    # A: from phase 2 (phases 2, 3, filing); B: at filing only. Partner costs 20 + 50 + 5 for A, 5 for B.
    a = candidate("A")
    a["batch_failure_rate"] = 0.2
    b = candidate("B", start_phase="filing")
    milestones = [("phase3_start", 2.0), ("filing", 4.0), ("approval", 8.0),
                  ("first_sale", 16.0), ("annual_sales", 32.0), ("cumulative_sales", 64.0)]
    terms = [{"kind": "milestone", "event": e, "amount": x, **({"threshold": 100.0} if "sales" in e else {})}
             for e, x in milestones]
    terms += [{"kind": "milestone", "event": "approval_count", "count": 2, "amount": 128.0},
              {"kind": "milestone", "event": "approval_count", "count": 3, "amount": 256.0},
              {"kind": "service_fees", "markup": 0.1, "failed_batches_paid_by": "sponsor", "candidates": ["A"]},
              # paid to the sponsor: counts in neither figure
              {"kind": "milestone", "event": "approval", "amount": 512.0, "payer": "partner", "payee": "sponsor"},
              # reserved for each of the two candidates: 3 a year for 4 years, twice, in the contract value
              {"kind": "capacity_reservation", "fee_per_year": 3.0, "start_years": 1.0, "end_years": 5.0}]
    data = base_deal(candidates=[a, b], terms=terms, levers={"qbd": {"enabled": True, "batch_failure_reduction": 0.5}})
    headline = dm.headline(dm.parse_deal(data))
    # phase-3 start and filing: A (B is at filing already); approval and the sales events: both;
    # the second approval: once (two candidates); the third: never (only two)
    biobucks = 2 + 4 + 2 * (8 + 16 + 32 + 64) + 128
    assert headline.biobucks == pytest.approx(biobucks, abs=1e-9)
    # fees: the sponsor pays failed batches, at 20% halved by QbD: remade 1 / (1 - 0.1) times, marked up 10%
    fees = (20 + 50 + 5) / 0.9 * 1.1
    assert headline.total_contract_value == pytest.approx(biobucks + fees + 2 * 3.0 * 4.0, rel=1e-12)
