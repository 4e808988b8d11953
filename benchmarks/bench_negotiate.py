"""Speed of dm.negotiate on the reference deals. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_negotiate.py

Targets (issue 13, 2-core machine): a one-parameter zone and its three splits at 20,000 paths
under 2 s; two parameters on a 25 x 25 grid under 10 s. The kernel is loaded first (not timed).
"""

from __future__ import annotations

import time
from pathlib import Path

import dealmodel as dm

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ffs = dm.load_deal(ROOT / "sample_deals" / "reference_fee_for_service.yaml")
    share = dm.load_deal(ROOT / "sample_deals" / "reference_revenue_share.yaml")
    hybrid = dm.load_deal(ROOT / "sample_deals" / "reference_hybrid.yaml")
    dm.simulate(share, paths=1000)
    for label, run in (
        ("one parameter (revenue share's first tier, 0-30%), 20,000 paths", lambda: dm.negotiate(
            share, "terms[1].tiers[0].rate", ffs, ranges=[(0.0, 0.3)], paths=20_000)),
        ("two parameters (hybrid's markup x approval milestone), 25 x 25, 20,000 paths", lambda: dm.negotiate(
            hybrid, ["terms[0].markup", "terms[4].amount"], ffs, ranges=[(-0.5, 0.1), (0.0, 300.0)],
            paths=20_000)),
    ):
        t = time.perf_counter()
        result = run()
        print(f"{label}: {time.perf_counter() - t:.2f} s, {result.evaluations} structures valued; zone "
              f"{result.zone if isinstance(result.zone, list) else f'{result.zone:.0%} of the grid'}")


if __name__ == "__main__":
    main()
