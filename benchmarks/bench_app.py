"""How long the app takes to re-render after a slider change. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_app.py

Uses Streamlit's AppTest (the whole script runs, as on a real rerun, minus the browser's drawing).
Target: a slider change at the default path count re-renders in well under a second.

AppTest compiles the script afresh on every run (a new ``ScriptCache`` each time), which a server
does once: with ``--as-server`` (the default) the runs share one cache, as a server's sessions do;
``--as-apptest`` measures AppTest as it is (about 0.15 s more per rerun for this script).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from streamlit.runtime.scriptrunner import script_cache
from streamlit.testing.v1 import AppTest, local_script_runner

ROOT = Path(__file__).resolve().parents[1]
REV = "Reference program — revenue share"


def timed(action) -> float:
    t = time.perf_counter()
    action()
    return time.perf_counter() - t


def main() -> None:
    if "--as-apptest" not in sys.argv:
        shared = script_cache.ScriptCache()
        local_script_runner.ScriptCache = lambda: shared  # one compiled script for every run, as a server keeps
    print("script compiled once, as on a server" if "--as-apptest" not in sys.argv else
          "script compiled on every run (AppTest as it is)")
    sys.argv = ["app.py", str(ROOT / "sample_deals" / "reference_revenue_share.yaml")]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    first = timed(at.run)
    print(f"first render (4 structures x 20,000 paths, cold caches): {first:.2f} s")
    slider = f"term::{REV}::terms[1].tiers[0].rate"
    term_times = [timed(lambda v=v: at.slider(key=slider).set_value(v).run()) for v in (6.5, 7.0, 7.5, 8.0, 8.5, 9.0)]
    print(f"term slider (one structure re-simulated): median {statistics.median(term_times):.2f} s, "
          f"max {max(term_times):.2f} s over {len(term_times)} moves")
    back = [timed(lambda v=v: at.slider(key=slider).set_value(v).run()) for v in (6.5, 7.0)]
    print(f"term slider back to a value already seen (cache hit): median {statistics.median(back):.2f} s")
    program_times = [timed(lambda v=v: at.slider(key="peak_scale").set_value(v).run()) for v in (1.1, 1.2, 1.3)]
    print(f"program slider (all four structures re-simulated): median {statistics.median(program_times):.2f} s")
    at.number_input(key="paths").set_value(100_000).run()
    big = [timed(lambda v=v: at.slider(key="peak_scale").set_value(v).run()) for v in (1.4, 1.5, 1.6)]
    print(f"program slider at 100,000 paths: median {statistics.median(big):.2f} s")
    big_term = [timed(lambda v=v: at.slider(key=slider).set_value(v).run()) for v in (7.25, 7.75, 8.25)]
    print(f"term slider at 100,000 paths: median {statistics.median(big_term):.2f} s")
    assert not at.exception


if __name__ == "__main__":
    main()
