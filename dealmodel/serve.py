"""``python -m dealmodel.serve run app.py [options]``: Streamlit's server, with the model loaded while it starts.

Streamlit runs ``app.py`` only when someone opens the page, so the first person to open it waited
for every import (pandas, SciPy, Altair, numba) and for the compiled kernel's load from its cache:
about 3 s of a 4.5 s first render. This launcher starts Streamlit exactly as ``python -m streamlit``
does (the same arguments) and meanwhile, on a background thread, imports what the app imports and
values a small run, so the first page only simulates and draws. ``python3 tasks.py run`` and
``python3 tasks.py team`` start the app through it.
"""

from __future__ import annotations

import sys
import threading
import time
import urllib.request
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[1] / "sample_deals" / "reference_hybrid.yaml"


def warm_up() -> None:
    """Import the app's heavy modules and load the compiled kernel (from numba's on-disk cache)."""
    try:
        import altair  # noqa: F401  (the charts' builder)

        import dealmodel as dm
        from dealmodel import charts  # noqa: F401

        dm.simulate(dm.load_deal(REFERENCE), paths=1_000, seed=0, keep_flows=False)
    except Exception:  # only a head start: whatever fails here, the app meets and reports itself
        return


def answers(url: str, seconds: float) -> bool:
    """Whether the app at ``url`` answers its health check within ``seconds`` (for scripts and tests
    that start a server and wait for it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return True
        except OSError:
            time.sleep(0.3)
    return False


def main(argv: list[str] | None = None) -> int:
    threading.Thread(target=warm_up, name="dealmodel-warm-up", daemon=True).start()
    from streamlit.web import cli

    sys.argv = ["streamlit", *(sys.argv[1:] if argv is None else argv)]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
