"""dealmodel: what a sponsor / CRO-CDMO partnership deal is worth to each side, and how risky it is.

The public API, for notebooks, the CLI and the app alike::

    import dealmodel as dm
    deal = dm.load_deal("sample_deals/reference_hybrid.yaml")
    result = dm.simulate(deal, paths=100_000, seed=1)
    result.summary()

Money is in millions of the deal currency throughout.
"""

from dealmodel.engine import simulate
from dealmodel.io import (
    DealError,
    deal_json_schema,
    dump_deal,
    load_deal,
    parse_deal,
    parse_deal_text,
    save_deal,
)
from dealmodel.result import SimulationResult
from dealmodel.schema import Deal
from dealmodel.terms import headline_value

__version__ = "0.1.0"

__all__ = [
    "Deal",
    "DealError",
    "SimulationResult",
    "__version__",
    "deal_json_schema",
    "dump_deal",
    "headline_value",
    "load_deal",
    "parse_deal",
    "parse_deal_text",
    "save_deal",
    "simulate",
]
