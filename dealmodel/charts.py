"""Vega-Lite charts of the frames in :mod:`dealmodel.views` (and of a tornado table), built with Altair.

Each function takes small DataFrames and returns a Vega-Lite spec (a dict) whose data are named
datasets holding those DataFrames, for ``st.vega_lite_chart(spec=...)``; nothing here simulates.

Why not an ``alt.Chart`` per call: building Altair objects and validating them against the schema
took a third of an app rerun (0.16 s for the two charts every rerun draws). A chart's *shape* --
marks, encodings, titles, sort orders -- depends on a few small arguments, not on the numbers, so
each shape is built and validated once (:func:`_shape`, cached) and every rerun only attaches its
data.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable

import altair as alt
import numpy as np
import pandas as pd

MONEY = ",.0f"
_PALETTE = ["#1f4e79", "#c55a11", "#548235", "#7f3f98", "#bf9000", "#2e75b6", "#a50021"]


_THEME = threading.Lock()  # Altair's theme is a process-wide setting: one conversion at a time


@functools.lru_cache(maxsize=512)
def _shape_text(build: Callable[..., alt.TopLevelMixin], *args) -> str:
    with _THEME, alt.theme.enable("none"):  # no default width/height: Streamlit sizes the chart
        return json.dumps(build(*args).to_dict())  # validated here, once per shape


def _shape(build: Callable[..., alt.TopLevelMixin], args: tuple, **data: pd.DataFrame) -> dict:
    """The spec ``build(*args)`` makes (cached by ``args``, which must be hashable), with ``data`` as its
    named datasets (a builder refers to each by name: ``alt.Data(name=...)``)."""
    spec = json.loads(_shape_text(build, *args))
    spec["datasets"] = dict(data)
    return spec


def _named(name: str) -> alt.Data:
    return alt.Data(name=name)


def _variant_color(domain: tuple[str, ...] | None = None) -> alt.Color:
    """One colour per structure, the legend above the chart. ``domain``: every structure's name in a
    fixed order, so a structure keeps its colour when others are added or hidden."""
    scale = alt.Scale(range=_PALETTE) if domain is None else alt.Scale(
        domain=list(domain), range=[_PALETTE[i % len(_PALETTE)] for i in range(len(domain))])
    return alt.Color("variant:N", scale=scale, legend=alt.Legend(orient="top", columns=2, title=None,
                                                                 labelLimit=400))


def _money_axis(title: str) -> alt.Axis:
    return alt.Axis(title=title, format=MONEY)


def bridge_chart(frame: pd.DataFrame, currency: str = "USD") -> dict:
    """Waterfall from the total contract value to the partner's expected NPV."""
    order = tuple(frame.sort_values("order")["label"])
    return _shape(_bridge, (order, currency), bridge=frame)


def _bridge(order: tuple[str, ...], currency: str) -> alt.LayerChart:
    base = alt.Chart(_named("bridge")).encode(x=alt.X("label:N", sort=list(order), title=None,
                                                      axis=alt.Axis(labelAngle=0, labelLimit=140)))
    bars = base.mark_bar(size=46).encode(
        y=alt.Y("start:Q", axis=_money_axis(f"{currency} millions")),
        y2="end:Q",
        color=alt.Color("kind:N", scale=alt.Scale(domain=["total", "up", "down"],
                                                  range=["#1f4e79", "#548235", "#c00000"]), legend=None),
        tooltip=["label:N", alt.Tooltip("amount:Q", format=",.1f")],
    )
    text = base.mark_text(dy=-8, fontWeight="bold").encode(
        y=alt.Y("max_end:Q"), text=alt.Text("amount:Q", format=",.0f"),
    ).transform_calculate(max_end="max(datum.start, datum.end)")
    return (bars + text).properties(height=340, title="Partner: total contract value to risk-adjusted NPV")


def _domain(domain: list[str] | None) -> tuple[str, ...] | None:
    return None if domain is None else tuple(domain)


def distribution_chart(dist: pd.DataFrame, markers: pd.DataFrame, party: str,
                       domain: list[str] | None = None) -> dict:
    """Each variant's NPV histogram (share of paths), overlaid, with P5 / mean / P95 rules."""
    return _shape(_distribution, (party, _domain(domain)), dist=dist, markers=markers)


def _distribution(party: str, domain: tuple[str, ...] | None) -> alt.LayerChart:
    color = _variant_color(domain)
    area = alt.Chart(_named("dist")).mark_area(opacity=0.25, interpolate="step").encode(
        x=alt.X("npv_mid:Q", axis=_money_axis(f"{party} NPV (millions)")),
        y=alt.Y("share:Q", stack=None, axis=alt.Axis(title="share of paths", format="%")),
        color=color,
    )
    line = alt.Chart(_named("dist")).mark_line(interpolate="step").encode(x="npv_mid:Q", y="share:Q", color=color)
    rules = alt.Chart(_named("markers")).mark_rule(strokeDash=[4, 3]).encode(
        x="value:Q", color=color, tooltip=["variant:N", "stat:N", alt.Tooltip("value:Q", format=",.1f")],
    )
    title = alt.TitleParams(f"{party.capitalize()} NPV distribution", subtitle="dashed: each structure's P5, "
                            "mean and P95 (hover for which)")
    return (area + line + rules).properties(height=400, title=title)


def exceedance_chart(frame: pd.DataFrame, party: str, domain: list[str] | None = None) -> dict:
    """P(NPV > x) for each variant."""
    return _shape(_exceedance, (party, _domain(domain)), exceedance=frame)


def _exceedance(party: str, domain: tuple[str, ...] | None) -> alt.Chart:
    return alt.Chart(_named("exceedance")).mark_line().encode(
        x=alt.X("npv:Q", axis=_money_axis(f"{party} NPV (millions)")),
        y=alt.Y("prob_above:Q", axis=alt.Axis(title="probability NPV is above", format="%")),
        color=_variant_color(domain),
        tooltip=["variant:N", alt.Tooltip("npv:Q", format=",.1f"), alt.Tooltip("prob_above:Q", format=".1%")],
    ).properties(height=400, title=f"{party.capitalize()}: probability the NPV exceeds x")


def risk_return_chart(frame: pd.DataFrame, downside: str = "p5", domain: list[str] | None = None) -> dict:
    """Expected NPV against the downside measure, per structure and party."""
    return _shape(_risk_return, (downside, _domain(domain)), risk=frame)


def _risk_return(downside: str, domain: tuple[str, ...] | None) -> alt.Chart:
    title = "P5 of NPV" if downside == "p5" else "expected shortfall (worst 5%)"
    return alt.Chart(_named("risk")).mark_point(size=160, filled=True).encode(
        x=alt.X(f"{downside}:Q", axis=_money_axis(f"downside: {title} (millions)")),
        y=alt.Y("expected_npv:Q", axis=_money_axis("expected NPV (millions)")),
        color=_variant_color(domain),
        shape=alt.Shape("party:N", legend=alt.Legend(orient="right")),
        tooltip=["variant:N", "party:N", alt.Tooltip("expected_npv:Q", format=",.1f"),
                 alt.Tooltip(f"{downside}:Q", format=",.1f"), alt.Tooltip("prob_loss:Q", format=".1%")],
    ).properties(height=420, title="Risk and return by structure")


def fan_chart(frame: pd.DataFrame, party: str) -> dict:
    """Expected cash flow per year with its P10-P90 band."""
    return _shape(_fan, (party,), fan=frame)


def _fan(party: str) -> alt.LayerChart:
    band = alt.Chart(_named("fan")).mark_area(opacity=0.3, color="#2e75b6").encode(
        x=alt.X("year:O", title=None, axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("p10:Q", axis=_money_axis("cash flow (millions)")),
        y2="p90:Q",
        tooltip=["year:O", alt.Tooltip("p10:Q", format=",.1f"), alt.Tooltip("mean:Q", format=",.1f"),
                 alt.Tooltip("p90:Q", format=",.1f")],
    )
    mean = alt.Chart(_named("fan")).mark_line(color="#1f4e79", point=True).encode(x="year:O", y="mean:Q")
    return (band + mean).properties(height=300, title=f"{party.capitalize()} cash flow per year: mean and "
                                                      "P10-P90 band")


def tornado_chart(table: pd.DataFrame, party: str, top: int = 15) -> dict:
    """Bars from the base value to the value at each input's low and high, largest swing on top."""
    data = table.head(top).copy()
    long = pd.concat([
        data.assign(end=data["value_low"], side="at low"),
        data.assign(end=data["value_high"], side="at high"),
    ])
    base = float(data["base"].iloc[0]) if len(data) else float("nan")
    return _shape(_tornado, (tuple(data["label"]), party, f"{base:,.1f}"), bars=long, base=data.head(1))


def _tornado(order: tuple[str, ...], party: str, base: str) -> alt.LayerChart:
    bars = alt.Chart(_named("bars")).mark_bar().encode(
        y=alt.Y("label:N", sort=list(order), title=None, axis=alt.Axis(labelLimit=320, labelOverlap=False)),
        x=alt.X("base:Q", scale=alt.Scale(zero=False), axis=_money_axis(f"{party} expected NPV (millions)")),
        x2="end:Q",
        color=alt.Color("side:N", scale=alt.Scale(domain=["at low", "at high"], range=["#c55a11", "#1f4e79"]),
                        legend=alt.Legend(orient="bottom")),
        tooltip=["label:N", "side:N", "low:N", "high:N", alt.Tooltip("end:Q", format=",.1f")],
    )
    rule = alt.Chart(_named("base")).mark_rule(color="black").encode(
        x="base:Q", tooltip=[alt.Tooltip("base:Q", format=",.1f", title=f"{party} expected NPV, all inputs as set")])
    title = alt.TitleParams("What moves the value most", subtitle=f"black line: the {party}'s expected NPV with "
                            f"every input as set, {base} on the sensitivity's own paths")
    return (bars + rule).properties(height=max(220, 30 * len(order)), title=title)


def negotiation_chart(gains: pd.DataFrame, zone: pd.DataFrame, splits: pd.DataFrame, label: str,
                      percent: bool) -> dict:
    """Both parties' gain over walk-away against one term, the zone shaded, the fair splits marked.

    ``gains``: columns x, party, gain; ``zone``: x_from, x_to; ``splits``: x, rule, gain (the joint).
    """
    return _shape(_negotiation, (label, percent), zone=zone, zero=pd.DataFrame({"y": [0.0]}), gains=gains,
                  splits=splits)


def _negotiation(label: str, percent: bool) -> alt.LayerChart:
    fmt = ".1%" if percent else ",.1f"
    x = alt.X("x:Q", title=label, axis=alt.Axis(format=fmt))
    shade = alt.Chart(_named("zone")).mark_rect(color="#e2efda", opacity=0.8).encode(
        x=alt.X("x_from:Q", axis=alt.Axis(format=fmt)), x2="x_to:Q",
        tooltip=[alt.Tooltip("x_from:Q", format=fmt, title="zone from"), alt.Tooltip("x_to:Q", format=fmt,
                                                                                     title="to")])
    zero = alt.Chart(_named("zero")).mark_rule(color="#595959").encode(y="y:Q")
    lines = alt.Chart(_named("gains")).mark_line(strokeWidth=2.5).encode(
        x=x, y=alt.Y("gain:Q", axis=_money_axis("gain over walk-away, $M")),
        color=alt.Color("party:N", scale=alt.Scale(domain=["sponsor", "partner"], range=["#1f4e79", "#c55a11"]),
                        legend=alt.Legend(orient="top", title=None)),
        tooltip=["party:N", alt.Tooltip("x:Q", format=fmt, title=label), alt.Tooltip("gain:Q", format=",.1f")])
    marks = alt.Chart(_named("splits")).mark_rule(strokeDash=[4, 3], color="#7f3f98").encode(
        x="x:Q", tooltip=["rule:N", alt.Tooltip("x:Q", format=fmt, title=label),
                          alt.Tooltip("joint:Q", format=",.1f", title="joint gain")])
    title = alt.TitleParams("Where both parties gain", subtitle="shaded: the zone of agreement; dashed: the fair "
                            "splits (table below; hover for each)")
    return (shade + zero + lines + marks).properties(height=360, title=title)


def frontier_chart(frame: pd.DataFrame, measure_label: str = "expected NPV",
                   domain: list[str] | None = None) -> dict:
    """Sponsor value against partner value, one point per structure; dominated ones hollow.

    ``frame``: columns structure, sponsor, partner, dominated, dominated_by.
    """
    return _shape(_frontier, (measure_label, _domain(domain)), frontier=frame)


def _frontier(measure_label: str, domain: tuple[str, ...] | None) -> alt.Chart:
    base = alt.Chart(_named("frontier")).encode(
        x=alt.X("sponsor:Q", axis=_money_axis(f"sponsor {measure_label}, $M"), scale=alt.Scale(zero=False)),
        y=alt.Y("partner:Q", axis=_money_axis(f"partner {measure_label}, $M"), scale=alt.Scale(zero=False)),
        tooltip=["structure:N", alt.Tooltip("sponsor:Q", format=",.1f"), alt.Tooltip("partner:Q", format=",.1f"),
                 alt.Tooltip("dominated_by:N", title="dominated by")],
    )
    scale = alt.Scale(range=_PALETTE) if domain is None else alt.Scale(
        domain=list(domain), range=[_PALETTE[i % len(_PALETTE)] for i in range(len(domain))])
    points = base.mark_point(size=140, strokeWidth=2.5).encode(
        color=alt.Color("structure:N", scale=scale, legend=alt.Legend(orient="top", columns=3, title=None,
                                                                      labelLimit=400)),
        fill=alt.condition("datum.dominated", alt.value("white"), alt.Color("structure:N", scale=scale, legend=None)),
        shape=alt.value("circle"),
    )
    title = alt.TitleParams("Deal frontier", subtitle="up and to the right is better for both; hollow: another "
                            "structure is at least as good for both parties")
    # Streamlit fits title and legend inside the height: leave the plot room under a five-line legend
    return points.properties(height=480, title=title)


def region_chart(table: pd.DataFrame, curves: pd.DataFrame, splits: pd.DataFrame, first: tuple[str, str, bool],
                 second: tuple[str, str, bool]) -> dict:
    """The zone over two terms: each grid point by who gains there, both walk-away curves, the splits.

    ``table``: a negotiation's grid (the two parameter columns, sponsor_gain, partner_gain);
    ``curves``: its walk-away curves (first parameter, sponsor, partner); ``splits``: x, y, rule,
    joint. ``first`` / ``second``: (path, label, is a rate) of each term.
    """
    px, py = first[0], second[0]
    sponsor_ok, partner_ok = table["sponsor_gain"] >= 0, table["partner_gain"] >= 0
    who = np.select([sponsor_ok & partner_ok, sponsor_ok, partner_ok], ["both gain", "only the sponsor gains",
                                                                       "only the partner gains"], "neither gains")

    def half_step(values: pd.Series) -> float:
        v = np.unique(values.to_numpy())
        return float(np.diff(v).min()) / 2 if v.size > 1 else 0.5

    hx, hy = half_step(table[px]), half_step(table[py])
    grid = pd.DataFrame({"x": table[px], "y": table[py], "x0": table[px] - hx, "x1": table[px] + hx,
                         "y0": table[py] - hy, "y1": table[py] + hy, "who": who,
                         "sponsor": table["sponsor_gain"], "partner": table["partner_gain"]})
    long = pd.concat([pd.DataFrame({"x": curves[px], "y": curves[party], "curve": f"{party}'s walk-away"})
                      for party in ("sponsor", "partner")], ignore_index=True).dropna()
    return _shape(_region, (tuple(first), tuple(second)), grid=grid, curves=long, splits=splits)


def _region(first: tuple[str, str, bool], second: tuple[str, str, bool]) -> alt.LayerChart:
    (_, lx, rx), (_, ly, ry) = first, second
    fx, fy = (".1%" if rx else ",.1f"), (".1%" if ry else ",.1f")
    domain = ["both gain", "only the sponsor gains", "only the partner gains", "neither gains"]
    cells = alt.Chart(_named("grid")).mark_rect(opacity=0.9).encode(
        x=alt.X("x0:Q", title=lx, axis=alt.Axis(format=fx), scale=alt.Scale(nice=False)), x2="x1:Q",
        y=alt.Y("y0:Q", title=ly, axis=alt.Axis(format=fy), scale=alt.Scale(nice=False)), y2="y1:Q",
        color=alt.Color("who:N", scale=alt.Scale(domain=domain, range=["#a9d08e", "#bdd7ee", "#f8cbad", "#e7e6e6"]),
                        legend=alt.Legend(orient="top", title=None, columns=4)),
        tooltip=[alt.Tooltip("x:Q", format=fx, title=lx), alt.Tooltip("y:Q", format=fy, title=ly), "who:N",
                 alt.Tooltip("sponsor:Q", format=",.1f", title="sponsor gain"),
                 alt.Tooltip("partner:Q", format=",.1f", title="partner gain")])
    lines = alt.Chart(_named("curves")).mark_line(strokeWidth=2.5).encode(
        x="x:Q", y="y:Q", detail="curve:N",
        strokeDash=alt.StrokeDash("curve:N", legend=alt.Legend(orient="bottom", title=None)),
        color=alt.value("#262626"), tooltip=["curve:N", alt.Tooltip("x:Q", format=fx, title=lx),
                                            alt.Tooltip("y:Q", format=fy, title=ly)])
    marks = alt.Chart(_named("splits")).mark_point(shape="diamond", size=150, filled=True, color="#7f3f98").encode(
        x="x:Q", y="y:Q", tooltip=["rule:N", alt.Tooltip("x:Q", format=fx, title=lx),
                                   alt.Tooltip("y:Q", format=fy, title=ly),
                                   alt.Tooltip("joint:Q", format=",.1f", title="joint gain")])
    title = alt.TitleParams("Where both parties gain", subtitle="green: the zone; lines: each party's walk-away; "
                            "diamonds: the fair splits (table below)")
    return (cells + lines + marks).properties(height=460, title=title)


def overview_chart(frame: pd.DataFrame, order: list[str], selected: str | None = None) -> dict:
    """Each structure's value to sponsor and partner: the mean with its P5-P95 range.

    ``frame``: columns variant, party, mean, p5, p95 (see :func:`dealmodel.views.overview_frame`);
    ``order``: the structures top to bottom; ``selected`` is drawn in bold.
    """
    return _shape(_overview, (tuple(order), selected), overview=frame, zero=pd.DataFrame({"x": [0.0]}))


def _overview(order: tuple[str, ...], selected: str | None) -> alt.LayerChart:
    parties = alt.Color("party:N", scale=alt.Scale(domain=["sponsor", "partner"], range=["#1f4e79", "#c55a11"]),
                        legend=alt.Legend(orient="top", title=None))
    y = alt.Y("variant:N", sort=list(order), title=None, axis=alt.Axis(labelLimit=220, labelFontSize=12))
    tips = ["variant:N", "party:N", alt.Tooltip("mean:Q", format=",.1f", title="expected NPV"),
            alt.Tooltip("p5:Q", format=",.1f", title="P5"), alt.Tooltip("p95:Q", format=",.1f", title="P95")]
    base = alt.Chart(_named("overview")).encode(y=y, yOffset=alt.YOffset("party:N", sort=["sponsor", "partner"]),
                                                color=parties, tooltip=tips)
    ranges = base.mark_rule(strokeWidth=3, opacity=0.45).encode(
        x=alt.X("p5:Q", axis=_money_axis("NPV, $M: dot the expected value, bar P5 to P95")), x2="p95:Q")
    means = base.mark_point(filled=True, size=90, opacity=1).encode(x="mean:Q")
    zero = alt.Chart(_named("zero")).mark_rule(color="#7f7f7f").encode(x="x:Q")
    title = alt.TitleParams("Value to each side by structure", subtitle="common simulated futures; hover for "
                            "figures" + (f"; editing {selected}" if selected else ""))
    return (zero + ranges + means).properties(height=max(330, 66 * len(order)), title=title)


def stops_chart(frame: pd.DataFrame) -> dict:
    """Probability each candidate is stopped at each gate, under the deal and as the program would.

    ``frame``: :func:`dealmodel.views.stops_frame` (columns ``gate``, ``decided``, ``probability``).
    """
    return _shape(_stops, (tuple(dict.fromkeys(frame["gate"])),), stops=frame)


def _stops(order: tuple[str, ...]) -> alt.Chart:
    return alt.Chart(_named("stops")).mark_bar().encode(
        y=alt.Y("gate:N", sort=list(order), title=None, axis=alt.Axis(labelLimit=260)),
        yOffset=alt.YOffset("decided:N"),
        x=alt.X("probability:Q", axis=alt.Axis(format="%", title="share of futures stopped at the gate")),
        color=alt.Color("decided:N", scale=alt.Scale(domain=["under the deal", "as the program would"],
                                                     range=["#c55a11", "#1f4e79"]),
                        legend=alt.Legend(orient="top", title=None)),
        tooltip=["gate:N", "decided:N", alt.Tooltip("probability:Q", format=".1%")],
    ).properties(height=120 + 56 * len(order),  # the legend, axis and title are inside the height
                 title="Stopped for commercial reasons, by gate")
