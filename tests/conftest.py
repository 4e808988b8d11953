from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
from hypothesis import Phase, settings

# CI replays the same examples every run, so a red build always reproduces; locally they vary.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
# Mutation testing (python3 tasks.py mutate) wants a verdict, not a report: the same examples for every
# mutant, none carried over from another mutant, and no shrinking of a failing one (it only costs time,
# and a run that takes too long is counted as a timeout).
settings.register_profile("mutation", derandomize=True, deadline=None, database=None,
                          phases=[Phase.explicit, Phase.generate])
if os.environ.get("DEALMODEL_MUTATION"):
    settings.load_profile("mutation")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_deals"
REFERENCE = {
    "fee_for_service": SAMPLES / "reference_fee_for_service.yaml",
    "milestone": SAMPLES / "reference_milestone.yaml",
    "revenue_share": SAMPLES / "reference_revenue_share.yaml",
    "hybrid": SAMPLES / "reference_hybrid.yaml",
    "cdmo_risk_share": SAMPLES / "reference_cdmo_risk_share.yaml",
}
SINGLE = SAMPLES / "single_candidate.yaml"


def base_deal(**overrides) -> dict:
    """A small valid deal as plain data: one phase-2 candidate with fixed numbers, no terms."""
    deal = {
        "name": "test deal",
        "currency": "USD",
        "valuation_year": 2026,
        "horizon_years": 30,
        "parties": {
            "sponsor": {"name": "S", "discount_rate": 0.15},
            "partner": {"name": "P", "discount_rate": 0.10},
        },
        "candidates": [candidate()],
        "terms": [],
    }
    deal.update(copy.deepcopy(overrides))
    return deal


def candidate(name: str = "A", start_phase: str = "phase2", **overrides) -> dict:
    phases_all = {
        "preclinical": {"success_probability": 0.6, "duration_years": 1.0, "cost": 3.0, "partner_cost": 2.0},
        "phase1": {"success_probability": 0.5, "duration_years": 2.5, "cost": 4.0, "partner_cost": 10.0},
        "phase2": {"success_probability": 0.4, "duration_years": 3.25, "cost": 9.0, "partner_cost": 20.0},
        "phase3": {"success_probability": 0.5, "duration_years": 2.6, "cost": 30.0, "partner_cost": 50.0},
        "filing": {"success_probability": 0.9, "duration_years": 0.8, "cost": 2.0, "partner_cost": 5.0},
    }
    order = list(phases_all)
    phases = {p: phases_all[p] for p in order[order.index(start_phase):]}
    cand = {
        "name": name,
        "modality": "antibody",
        "start_phase": start_phase,
        "phases": phases,
        "commercial": {
            "peak_sales": 800.0,
            "launch_curve": [0.2, 0.6, 1.0],
            "exclusivity_years": 8.5,
            "erosion_after_loe": 0.4,
            "cogs_fraction": 0.1,
            "opex_fraction": 0.3,
        },
    }
    cand.update(copy.deepcopy(overrides))
    return cand


@pytest.fixture
def reference_paths():
    return REFERENCE


@pytest.fixture(autouse=True)
def _fit_and_simulate_afresh():
    """Each test fits the gate-decision rules and simulates the programs it needs (nothing carried over
    from an earlier test), so a test's outcome never depends on the order tests run in, and mutation
    testing (whose workers inherit the caches of a first clean run) runs the code it mutates."""
    from dealmodel.decisions import POLICIES
    from dealmodel.engine import PROGRAMS

    POLICIES.clear()
    PROGRAMS.clear()
    yield
