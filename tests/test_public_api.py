"""The public API a notebook user relies on: changing it is a deliberate act."""

import dealmodel


def test_public_api_is_pinned():
    assert sorted(dealmodel.__all__) == sorted([
        "Comparison", "Deal", "DealError", "SimulationResult", "SolveError", "Solution", "__version__",
        "compare", "deal_json_schema", "dump_deal", "export", "get_value", "headline", "Headline", "iso_value",
        "load_deal", "parse_deal", "parse_deal_text", "save_deal", "set_value", "simulate", "simulate_many", "solve",
        "sweep", "tornado", "value_many", "negotiate", "frontier", "frontier_sweep", "Negotiation",
        "Scenario", "load_scenario", "load_scenarios", "save_scenario", "candidate_values",
        "DecisionReport", "decision_report",
    ])
    for name in dealmodel.__all__:
        assert hasattr(dealmodel, name), name
