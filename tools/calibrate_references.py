"""How the reference structures' negotiated terms were set: each at the equal-gain point against fee-for-service.

    .venv/bin/python tools/calibrate_references.py

For each structure, one lever (the price of the partner's work, or the revenue share) is set where
both parties gain the same over fee-for-service (dm.negotiate, expected NPVs, 20,000 paths,
seed 0), and a sales milestone is set so that the total contract value stays at the article's
$2.1 billion. Both moves change each other's result, so the two are repeated until they settle.
Prints the values to write into tools/sample_parts/ (then run tools/build_samples.py) and both
parties' gains at the rounded values. Nothing is written.
"""

from __future__ import annotations

from pathlib import Path

from scipy import optimize

import dealmodel as dm

ROOT = Path(__file__).resolve().parents[1]
TCV = 2100.0
PATHS, SEED = 20_000, 0

def _shift_to_approval(deal: dm.Deal, s: float) -> dm.Deal:
    """Move a share s of the development-start milestones (phase 1, 2, 3 starts) into the approval one."""
    moved = 0.0
    for i in (2, 3, 4):
        amount = deal.terms[i].amount
        deal = dm.set_value(deal, f"terms[{i}].amount", round(amount * (1 - s), 1))
        moved += amount - round(amount * (1 - s), 1)
    return dm.set_value(deal, "terms[6].amount", deal.terms[6].amount + moved)


def _hold_tcv(deal: dm.Deal, path: str) -> dm.Deal:
    """The milestone amount that brings the total contract value to TCV (it is linear in the amount)."""
    a = float(dm.get_value(deal, path))
    t0 = dm.headline(deal).total_contract_value
    t1 = dm.headline(dm.set_value(deal, path, a + 1.0)).total_contract_value
    return dm.set_value(deal, path, round(max(0.0, a + (TCV - t0) / (t1 - t0))))


def _markup_holding_tcv(deal: dm.Deal, markup: float) -> dm.Deal:
    """The hybrid's fee markup, with the approval milestone (terms[4]) keeping the contract value."""
    return _hold_tcv(dm.set_value(deal, "terms[0].markup", round(markup, 3)), "terms[4].amount")


def _revenue_share(deal: dm.Deal, factor: float) -> dm.Deal:
    """A quarter of the fees at risk (not half), and the royalty tiers scaled by ``factor``."""
    deal = dm.set_value(deal, "terms[0].at_risk_fraction", 0.25)
    for i, tier in enumerate(deal.terms[1].tiers):
        deal = dm.set_value(deal, f"terms[1].tiers[{i}].rate", round(tier.rate * factor, 3))
    return deal


# structure: how its lever moves, and the lever's range
LEVERS = {
    "milestone": (_shift_to_approval, (0.0, 1.0)),
    "hybrid": (_markup_holding_tcv, (-0.6, 0.15)),
    "revenue_share": (_revenue_share, (1.0, 3.0)),
}


def calibrate(name: str, ffs: dm.Deal) -> dm.Deal:
    """The lever's value where both parties gain the same over fee-for-service (Brent's method)."""
    move, (lo, hi) = LEVERS[name]
    base = dm.load_deal(ROOT / "sample_deals" / f"reference_{name}.yaml")

    def balance(x: float) -> float:
        row = dm.compare([ffs, move(base, x)], paths=PATHS, seed=SEED, keep_flows=False).table.iloc[1]
        return float(row["sponsor_diff"] - row["partner_diff"])

    x = optimize.brentq(balance, lo, hi, xtol=1e-4)
    return move(base, x)


def main() -> None:
    ffs = dm.load_deal(ROOT / "sample_deals" / "reference_fee_for_service.yaml")
    for name in LEVERS:
        deal = calibrate(name, ffs)
        table = dm.compare([ffs, deal], paths=PATHS, seed=SEED, keep_flows=False).table.iloc[1]
        print(f"{name}:")
        for i, term in enumerate(deal.terms):
            fields = {k: v for k, v in term.model_dump(exclude_defaults=True).items() if k not in ("kind", "label")}
            print(f"  terms[{i}] {term.kind}: {fields}")
        print(f"  gains over fee-for-service: sponsor {table['sponsor_diff']:.1f} ± {table['sponsor_diff_se']:.1f}, "
              f"partner {table['partner_diff']:.1f} ± {table['partner_diff_se']:.1f}; total contract value "
              f"{table['total_contract_value']:,.1f}")


if __name__ == "__main__":
    main()
