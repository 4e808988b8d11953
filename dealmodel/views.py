"""Pre-aggregated tables for charts: small frames built from results, never raw path arrays.

The app, notebooks and exports draw from these; :mod:`dealmodel.charts` turns them into
Altair charts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dealmodel.compare import Comparison, exceedance
from dealmodel.result import SimulationResult

FIXED_KINDS = ("service_fees", "upfront", "milestone", "capacity_reservation")
"""Term kinds counted in the total contract value: the bridge's "risk and timing" step is theirs."""
_KIND_LABELS = {
    "royalty": "Royalties",
    "supply": "Supply margin revenue",
    "cost_share": "Cost / profit share",
    "cancellation_fee": "Wind-down fees",
    "success_rebate": "Success rebates",
    "option": "Option fees and royalty",
}


def bridge_frame(result: SimulationResult) -> pd.DataFrame:
    """From the partner's total contract value to its risk-adjusted NPV, step by step.

    Total contract value (upfront, milestones, fees at list price if everything succeeds) -> less
    risk and timing (what those fixed payments are expected to be worth today) -> plus sales-linked
    payments (royalties, supply, profit share, each at its expected PV) -> less the partner's own costs -> the partner's
    expected NPV. Columns: ``order``, ``label``, ``start``, ``end``, ``amount``, ``kind``
    (``total``, ``up`` or ``down``).
    """
    by_kind = result.payments_by_kind()
    fixed = sum(v for k, v in by_kind.items() if k in FIXED_KINDS)
    tcv = result.total_contract_value
    steps: list[tuple[str, float, str]] = [("Total contract value", tcv, "total")]
    steps.append(("Risk and timing", fixed - tcv, "change"))
    for kind, label in _KIND_LABELS.items():
        if kind in by_kind:
            steps.append((label, by_kind[kind], "change"))
    partner_npv = float(result.npv["partner"].mean())
    own_costs = partner_npv - sum(by_kind.values())
    steps.append(("Partner's own costs", own_costs, "change"))
    rows, level = [], 0.0
    for i, (label, amount, kind) in enumerate(steps):
        if kind == "total":
            rows.append((i, label, 0.0, amount, amount, "total"))
            level = amount
        else:
            rows.append((i, label, level, level + amount, amount, "up" if amount >= 0 else "down"))
            level += amount
    rows.append((len(steps), "Partner eNPV", 0.0, partner_npv, partner_npv, "total"))
    return pd.DataFrame(rows, columns=["order", "label", "start", "end", "amount", "kind"])


def distribution_frame(comparison: Comparison, party: str, bins: int = 60) -> pd.DataFrame:
    """Long table variant / npv_mid / share: each variant's NPV histogram on common bins."""
    hist = comparison.npv_histogram(party, bins=bins)
    return hist.melt(id_vars=["npv_low", "npv_high", "npv_mid"], var_name="variant", value_name="share")


def exceedance_frame(comparison: Comparison, party: str, points: int = 80) -> pd.DataFrame:
    """Long table variant / npv / prob_above: P(NPV > x) on a common grid."""
    values = {name: r.npv[party] for name, r in comparison.results.items()}
    lo = min(float(np.quantile(v, 0.005)) for v in values.values())
    hi = max(float(np.quantile(v, 0.995)) for v in values.values())
    grid = np.linspace(lo, hi if hi > lo else lo + 1.0, points)
    frames = [pd.DataFrame({"variant": name, "npv": grid, "prob_above": exceedance(v, grid)})
              for name, v in values.items()]
    return pd.concat(frames, ignore_index=True)


def markers_frame(comparison: Comparison, party: str) -> pd.DataFrame:
    """P5, mean and P95 of each variant's NPV for one party (for rules on distribution charts)."""
    rows = []
    for name in comparison.results:
        row = comparison.table.loc[name]
        for stat, column in (("P5", "p5"), ("mean", "expected_npv"), ("P95", "p95")):
            rows.append({"variant": name, "stat": stat, "value": float(row[f"{party}_{column}"])})
    return pd.DataFrame(rows)


def risk_return_frame(comparison: Comparison) -> pd.DataFrame:
    """Expected NPV against downside (P5, expected shortfall) per variant and party."""
    rows = []
    for name, row in comparison.table.iterrows():
        for party in ("sponsor", "partner"):
            rows.append({
                "variant": name,
                "party": party,
                "expected_npv": float(row[f"{party}_expected_npv"]),
                "p5": float(row[f"{party}_p5"]),
                "expected_shortfall_5": float(row[f"{party}_expected_shortfall_5"]),
                "prob_loss": float(row[f"{party}_prob_loss"]),
            })
    return pd.DataFrame(rows)


def fan_frame(result: SimulationResult, party: str) -> pd.DataFrame:
    """Expected cash flow per year with the P10-P90 band, for one party."""
    table = result.per_year()
    return table[table["party"] == party].reset_index(drop=True)


def short_names(names: list[str]) -> dict[str, str]:
    """Each structure's name without the words every name starts with, for legends.

    ``["Reference program — hybrid", "Reference program — milestone"]`` -> ``hybrid``, ``milestone``:
    the prefix is cut only at a separator (" — ", " - ", ": "), and a name it would empty stays whole.
    """
    if len(names) < 2:
        return {n: n for n in names}
    prefix = names[0]
    for n in names[1:]:
        while not n.startswith(prefix):
            prefix = prefix[:-1]
    cut = max(prefix.rfind(sep) + len(sep) if sep in prefix else 0 for sep in (" — ", " - ", ": "))
    short = {n: (n[cut:] if n[cut:].strip() else n) for n in names}
    return short if len(set(short.values())) == len(names) else {n: n for n in names}


def overview_frame(comparison: Comparison) -> pd.DataFrame:
    """Each structure's expected NPV, P5 and P95 for sponsor and partner (the first screen's chart)."""
    rows = []
    for name, row in comparison.table.iterrows():
        for party in ("sponsor", "partner"):
            rows.append({"variant": name, "party": party, "mean": float(row[f"{party}_expected_npv"]),
                         "p5": float(row[f"{party}_p5"]), "p95": float(row[f"{party}_p95"])})
    return pd.DataFrame(rows)


PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)


def percentile_table(values: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per structure: P1 ... P99 (linear interpolation between order statistics, numpy's
    default), mean, standard deviation and the Monte Carlo standard error of the mean (sd / sqrt n)."""
    rows = {}
    for name, x in values.items():
        x = np.asarray(x, dtype=float)
        sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
        rows[name] = {**{f"P{q}": float(v) for q, v in zip(PERCENTILES, np.percentile(x, PERCENTILES), strict=True)},
                      "mean": float(x.mean()), "sd": sd, "SE of mean": sd / np.sqrt(x.size)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("structure")


def exceedance_at(values: dict[str, np.ndarray], x: float) -> pd.Series:
    """Share of paths on which each structure's NPV is above ``x``."""
    return pd.Series({name: float((np.asarray(v) > x).mean()) for name, v in values.items()},
                     name=f"P(NPV > {x:,.1f})").rename_axis("structure")


def candidate_table(result: SimulationResult) -> pd.DataFrame:
    """Per candidate: where it starts, the share of paths reaching each phase after preclinical, the
    share stopped at a gate (with gate decisions), approval and the expected launch year (over the
    paths where it is approved), as plain labelled figures."""
    rows = {}
    for name, c in result.candidates.items():
        row = {"starts in": c["start_phase"].replace("_", " ")}
        for key, value in c.items():
            phase = key.removeprefix("prob_reach_")
            if key.startswith("prob_reach_") and phase != "preclinical":  # a start phase is reached on every path
                row[f"reaches {phase}"] = f"{value:.1%}"
        stops = [v for k, v in c.items() if k.startswith("prob_stopped_before_")]
        if stops:  # gate decisions: stopped for commercial reasons, at any gate
            row["stopped at a gate"] = f"{sum(stops):.1%}"
        row["approved"] = f"{c['prob_approval']:.1%}"
        launch = c["expected_launch_year"]
        row["launch (if approved)"] = "—" if launch != launch else f"{launch:.1f}"
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("candidate").fillna("—")


def contribution_table(values: pd.DataFrame) -> pd.DataFrame:
    """:func:`dealmodel.candidate_values` as read: "-15.9 ± 0.6" per party, in millions."""
    out = pd.DataFrame(index=values.index)
    for party in ("sponsor", "partner", "program"):
        out[f"{party.capitalize()}, $M"] = [f"{m:,.1f} ± {s:,.1f}" for m, s in
                                            zip(values[party], values[f"{party}_se"], strict=True)]
    return out


def stops_frame(report) -> pd.DataFrame:
    """A decision report's stopping probabilities, long: ``gate`` ("ONC-101 before phase1"), ``decided``
    (under the deal / as the program would), ``probability``; gates where neither stops on 0.05% of
    the futures are left out."""
    rows = []
    for (cand, gate), row in report.stops.iterrows():
        if row["under the deal"] < 0.0005 and row["as the program would"] < 0.0005:
            continue
        for decided in ("under the deal", "as the program would"):
            rows.append({"gate": f"{cand} before {gate}", "decided": decided, "probability": float(row[decided])})
    return pd.DataFrame(rows, columns=["gate", "decided", "probability"])
