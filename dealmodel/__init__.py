"""dealmodel: what a sponsor / CRO-CDMO partnership deal is worth to each side, and how risky it is.

The public API, for notebooks, the CLI and the app alike::

    import dealmodel as dm
    deal = dm.load_deal("sample_deals/reference_hybrid.yaml")
    result = dm.simulate(deal, paths=100_000, seed=1)
    result.summary()

Money is in millions of the deal currency throughout.
"""

from dealmodel._version import __version__
from dealmodel.batch import sweep, value_many
from dealmodel.breakdown import candidate_values
from dealmodel.compare import Comparison, compare
from dealmodel.decisions import DecisionReport, decision_report
from dealmodel.edit import get_value, set_value
from dealmodel.engine import simulate, simulate_many
from dealmodel.export import export
from dealmodel.io import (
    DealError,
    deal_json_schema,
    dump_deal,
    load_deal,
    parse_deal,
    parse_deal_text,
    save_deal,
)
from dealmodel.negotiate import Negotiation, frontier, frontier_sweep, negotiate
from dealmodel.result import SimulationResult
from dealmodel.scenario import Scenario, load_scenario, load_scenarios, save_scenario
from dealmodel.schema import Deal
from dealmodel.sensitivity import tornado
from dealmodel.solver import Solution, SolveError, iso_value, solve
from dealmodel.terms import Headline, headline

__all__ = [
    "Comparison",
    "Deal",
    "DealError",
    "DecisionReport",
    "Headline",
    "Negotiation",
    "Scenario",
    "SimulationResult",
    "Solution",
    "SolveError",
    "__version__",
    "candidate_values",
    "compare",
    "deal_json_schema",
    "decision_report",
    "dump_deal",
    "export",
    "frontier",
    "frontier_sweep",
    "get_value",
    "headline",
    "iso_value",
    "load_deal",
    "load_scenario",
    "load_scenarios",
    "negotiate",
    "parse_deal",
    "parse_deal_text",
    "save_deal",
    "save_scenario",
    "set_value",
    "simulate",
    "simulate_many",
    "solve",
    "sweep",
    "tornado",
    "value_many",
]
