"""Speed and memory of `dealmodel.simulate` on the reference deal. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_simulate.py [--quick]

Each measurement runs in a fresh process so peak memory (max RSS) is its own. Targets on the
2-core reference machine: 100k paths < 0.5 s, 1M paths < 5 s, peak memory < 1 GB at 1M paths.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "sample_deals" / "reference_hybrid.yaml"
STRUCTURES = sorted((ROOT / "sample_deals").glob("reference_*.yaml"))

CHILD = r"""
import json, resource, sys, time
import dealmodel as dm
paths, repeats, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
deals = [dm.load_deal(f) for f in files]
dm.simulate(deals[0], paths=1000, seed=0)            # warm up imports and caches
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(repeats):
    t = time.perf_counter()
    for deal in deals:
        result = dm.simulate(deal, paths=paths, seed=1)
        result.summary()
        del result                                   # one result alive at a time, as in real use
    times.append(time.perf_counter() - t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"best": min(times), "median": sorted(times)[len(times) // 2], "peak_mb": peak / 1024,
                  "base_mb": base / 1024}))
"""


def measure(paths: int, repeats: int, files: list[Path]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(paths), str(repeats), *map(str, files)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the 1M-path runs")
    args = parser.parse_args()
    print(f"reference deal: {REFERENCE.name}")
    print(f"{'paths':>10} {'best s':>8} {'median s':>9} {'paths/s':>12} {'peak MB':>9}")
    sizes = [10_000, 100_000] + ([] if args.quick else [1_000_000])
    for paths in sizes:
        m = measure(paths, 5 if paths <= 100_000 else 3, [REFERENCE])
        print(f"{paths:>10,} {m['best']:>8.3f} {m['median']:>9.3f} {paths / m['best']:>12,.0f} {m['peak_mb']:>9.0f}")
    print("\nall four reference structures on common paths (same seed):")
    for paths in [100_000] + ([] if args.quick else [1_000_000]):
        m = measure(paths, 3, STRUCTURES)
        print(f"{paths:>10,} paths x 4 structures: best {m['best']:.3f} s, median {m['median']:.3f} s, "
              f"peak {m['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
