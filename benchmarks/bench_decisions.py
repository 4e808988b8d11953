"""Speed of gate decisions on the reference hybrid. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_decisions.py

Target (issue 15, 2-core machine): ``decisions: optimal`` at 100,000 paths within 3x the time of
``none``. The optimal rule is fitted afresh each repeat (its cache cleared), so the fit is timed.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import dealmodel as dm
from dealmodel.decisions import POLICIES

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3


def main() -> None:
    plain = dm.load_deal(ROOT / "sample_deals" / "reference_hybrid.yaml")
    data = plain.model_dump(mode="json", by_alias=True, exclude_none=True)
    decided = {rule: dm.parse_deal(data | {"decisions": rule}) for rule in ("optimal",)}
    decided["threshold"] = dm.parse_deal(data | {"decisions": {"rule": "threshold", "threshold": 300.0}})
    dm.simulate(plain, paths=1_000)  # load the kernel
    times: dict[str, list[float]] = {"none": [], "optimal": [], "threshold": []}
    for _ in range(REPEATS):
        for label, deal in (("none", plain), *decided.items()):
            POLICIES._items.clear()
            t = time.perf_counter()
            dm.simulate(deal, paths=100_000, seed=1, keep_flows=False)
            times[label].append(time.perf_counter() - t)
    base = statistics.median(times["none"])
    for label, values in times.items():
        median = statistics.median(values)
        print(f"reference hybrid, 100,000 paths, decisions {label:9}: median {median:.2f} s of {REPEATS} "
              f"({median / base:.1f}x none)")
    t = time.perf_counter()
    dm.decision_report(plain, paths=20_000, seed=1)
    print(f"decision_report (three valuations, two fitted rules), 20,000 paths: {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
