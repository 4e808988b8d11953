"""The compiled kernel against the NumPy reference engine on the same work. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_kernel.py [--quick] [--compile] [--breakdown]

Each measurement runs in a fresh process, so its peak memory (max RSS) is its own and the
kernel's load from the on-disk cache is counted where it says "cold". ``--compile`` also times a
compile from scratch (an empty numba cache). ``--quick`` skips the 1M-path NumPy runs and 20M.
Targets are those of issue 12 on the 2-core reference machine. ``--breakdown`` prints instead
where one thread's time goes per path: drawing the random numbers, packing the program, the
kernel's program part, and each structure's terms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOUR = [ROOT / "sample_deals" / f"reference_{s}.yaml" for s in ("fee_for_service", "milestone", "revenue_share",
                                                                  "hybrid")]
ALL = sorted((ROOT / "sample_deals").glob("reference_*.yaml"))

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import dealmodel as dm
what, engine, paths, repeats, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
deals = [dm.load_deal(f) for f in files]
dm.simulate(deals[0], paths=1000, seed=0, engine=engine, keep_flows=False)   # load (or compile) the kernel
cold = time.perf_counter() - t0
times = []
for r in range(repeats):
    t = time.perf_counter()
    if what == "compare":
        dm.compare(deals, paths=paths, seed=1 + r, keep_flows=False, engine=engine)
    elif what == "slider":   # a program slider: every structure revalued, none cached (as the app: NPVs +
        dm.simulate_many(deals, paths=paths, seed=1 + r, engine=engine, keep_flows=False)  # yearly subsample)
    else:
        dm.simulate(deals[0], paths=paths, seed=1 + r, keep_flows=False, engine=engine)
    times.append(time.perf_counter() - t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"best": min(times), "peak_mb": peak, "cold": cold}))
"""


BREAKDOWN = r"""
import sys, time
import numpy as np
import dealmodel as dm
from dealmodel import kernel
from dealmodel.program import BLOCK, draw_blocks
files = sys.argv[1:]
deals = [dm.load_deal(f) for f in files]
bare = dm.Deal.model_validate({**deals[0].model_dump(), "terms": []})  # the program's own flows only
blocks = 4
n = blocks * BLOCK

def best(f, repeats=9):
    f()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times) / n * 1e6

program = kernel.pack_program(deals[0], 1, 0, n)

def valuing(group):
    plan = kernel.Plan(group)
    S, T = len(group), group[0].horizon_years
    out = (np.empty((S, 3, n)), np.empty((int(plan.offsets[-1]), 0)), np.empty((S, 2, 0, T)))
    return lambda: kernel.run_chunk(group, plan, program, 1, 0, False, *out)

draws = best(lambda: draw_blocks(deals[0], 1, 0, blocks))
pack = best(lambda: kernel.pack_program(deals[0], 1, 0, n))
own = best(valuing([bare]))
print(f"one thread, {n:,} paths of {deals[0].name!r}, microseconds a path (best of 9):")
print(f"  packing the program            {pack:6.2f}   (of which the random numbers {draws:.2f})")
print(f"  kernel: the program's flows    {own:6.2f}")
each = []
for deal in deals:
    each.append(best(valuing([deal])) - own)
    print(f"  kernel: + {deal.name[:40]:<40} {each[-1]:6.2f}   ({len(deal.terms)} terms)")
together = best(valuing(deals))
print(f"  kernel: all {len(deals)} together            {together:6.2f}   (alone, summed: {own + sum(each):.2f})")
print(f"on two cores at 1,000,000 paths, if threads scaled perfectly: one structure (the last) "
      f"{(pack + own + each[-1]) / 2:.2f} s; all {len(deals)} {(pack + together) / 2:.2f} s")
"""


def run(what: str, engine: str, paths: int, files: list[Path], repeats: int = 3, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, what, engine, str(paths), str(repeats), *map(str, files)],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def row(label: str, target: str, kernel: dict, reference: dict | None) -> None:
    ratio = f"{reference['best'] / kernel['best']:6.1f}x" if reference else "      -"
    ref = f"{reference['best']:8.2f}" if reference else "       -"
    print(f"{label:<34} {kernel['best']:8.3f} {ref} {ratio} {kernel['peak_mb']:8.0f} {target:>12}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip the 1M-path reference runs and the 20M run")
    parser.add_argument("--compile", action="store_true", help="also time a compile from an empty numba cache")
    parser.add_argument("--breakdown", action="store_true", help="where one thread's time goes, per path")
    args = parser.parse_args()
    if args.breakdown:
        subprocess.run([sys.executable, "-c", BREAKDOWN, *map(str, FOUR)], check=True)
        return
    print(f"machine: {os.cpu_count()} cores; seconds are the best of 3 runs; peak MB is the process's max RSS")
    print(f"{'work':<34} {'kernel s':>8} {'numpy s':>8} {'ratio':>7} {'peak MB':>8} {'target s':>12}")
    for paths, target in ((100_000, "<= 0.2"), (1_000_000, "<= 1.5")):
        kernel = run("compare", "numba", paths, FOUR)
        reference = None if args.quick and paths > 100_000 else run("compare", "numpy", paths, FOUR)
        row(f"compare 4 structures x {paths:,}", target, kernel, reference)
    kernel = run("simulate", "numba", 1_000_000, FOUR[3:])
    reference = None if args.quick else run("simulate", "numpy", 1_000_000, FOUR[3:])
    row("simulate hybrid x 1,000,000", "<= 0.5", kernel, reference)
    for paths, target in ((20_000, "<= 0.5"), (100_000, "<= 1")):
        kernel = run("slider", "numba", paths, ALL)
        reference = run("slider", "numpy", paths, ALL)
        row(f"app program slider, 5 x {paths:,}", target, kernel, reference)
    if not args.quick:
        big = run("simulate", "numba", 20_000_000, FOUR[3:], repeats=1)
        print(f"simulate hybrid x 20,000,000 (NPVs only): {big['best']:.1f} s, peak {big['peak_mb']:.0f} MB "
              f"(target <= 1 GB)")
    cold = run("simulate", "numba", 1000, FOUR[3:], repeats=1)
    print(f"cold start, kernel loaded from the on-disk cache: {cold['cold']:.2f} s (import + first 1,000 paths)")
    if args.compile:
        with tempfile.TemporaryDirectory() as cache:
            fresh = run("simulate", "numba", 1000, FOUR[3:], repeats=1, env={**os.environ, "NUMBA_CACHE_DIR": cache})
        print(f"cold start, kernel compiled from scratch: {fresh['cold']:.1f} s (once per install)")


if __name__ == "__main__":
    main()
