"""Batch speed: 1 vs 2 workers on a 40-point grid, and 1M paths x 4 structures on Dask vs one process.

    .venv/bin/python benchmarks/bench_batch.py [--quick]

Prints figures; asserts nothing. Each task is single-threaded, so workers are the only parallelism.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import dealmodel as dm

ROOT = Path(__file__).resolve().parents[1]
REV = ROOT / "sample_deals" / "reference_revenue_share.yaml"
STRUCTURES = sorted((ROOT / "sample_deals").glob("reference_*.yaml"))
GRID = {  # 8 x 5 = 40 points
    "terms[1].tiers[0].rate": [0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09],
    "terms[0].at_risk_fraction": [0.0, 0.25, 0.5, 0.75, 1.0],
}


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10k paths per grid point, 100k per structure")
    args = parser.parse_args()
    grid_paths = 10_000 if args.quick else 100_000
    big_paths = 100_000 if args.quick else 1_000_000
    deal = dm.load_deal(REV)

    t1, a = timed(lambda: dm.sweep(deal, GRID, paths=grid_paths, seed=1, n_jobs=1))
    t2, b = timed(lambda: dm.sweep(deal, GRID, paths=grid_paths, seed=1, n_jobs=2))
    print(f"40-point grid x {grid_paths:,} paths: 1 worker {t1:.1f} s, 2 workers (joblib processes) {t2:.1f} s, "
          f"speed-up {t1 / t2:.2f}x; identical tables: {a.equals(b)}")

    s1, c = timed(lambda: dm.value_many(STRUCTURES, paths=big_paths, seed=1, n_jobs=1))
    s2, d = timed(lambda: dm.value_many(STRUCTURES, paths=big_paths, seed=1, n_jobs=2, backend="dask"))
    print(f"{big_paths:,} paths x 4 structures: single process {s1:.1f} s, Dask LocalCluster of 2 workers "
          f"{s2:.1f} s (cluster start included), speed-up {s1 / s2:.2f}x; identical tables: {c.equals(d)}")


if __name__ == "__main__":
    main()
