"""dealmodel in the browser (placeholder page until the app issue lands).

    streamlit run app.py -- sample_deals/reference_hybrid.yaml

It only turns a deal file into the API's tables; no model logic lives here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

import dealmodel as dm

DEFAULT_DEAL = Path(__file__).parent / "sample_deals" / "reference_hybrid.yaml"


@st.cache_data(show_spinner="Simulating…", max_entries=32)
def _value(deal_json: str, paths: int, seed: int):
    deal = dm.Deal.model_validate_json(deal_json)
    result = dm.simulate(deal, paths=paths, seed=seed)
    return result.summary(), result.payments_by_kind(), result.headline_value


def main() -> None:
    st.set_page_config(page_title="dealmodel", layout="wide")
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DEAL
    st.title("dealmodel")
    try:
        deal = dm.load_deal(path)
    except dm.DealError as exc:
        st.error("\n\n".join([f"Cannot read {exc.source}:", *exc.problems]))
        return
    st.subheader(deal.name)
    st.caption(f"Money in {deal.currency} millions · {len(deal.candidates)} candidates · {len(deal.terms)} terms")
    summary, payments, headline = _value(deal.model_dump_json(by_alias=True), 20_000, 0)
    st.metric("Headline deal value to the partner", f"{headline:,.0f}")
    st.dataframe(summary.style.format("{:,.3f}"), use_container_width=True)
    st.write("Expected PV of payments to the partner, by term kind")
    st.dataframe(payments, use_container_width=True)


main()
