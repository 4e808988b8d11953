"""Resource limits: what a deal file, a run and a batch may ask of the machine.

Each limit protects a shared machine (an app server, a CI runner, a laptop) from a small input
that asks for a lot: a YAML alias bomb, a deal with thousands of candidates, a run whose results
alone would not fit in memory. Every refusal names the limit and says how to raise it where it
can be raised. docs/deal-files.md lists them for users.
"""

from __future__ import annotations

import os

MAX_FILE_BYTES = 2_000_000
"""Largest deal or grid file read (bytes); refused before parsing, without reading it whole."""

MAX_ALIASES = 100
"""YAML aliases (``*name``) allowed in one file: enough for shared blocks, not for an alias bomb."""

MAX_NODES = 200_000
"""Values a YAML document may hold once its aliases are expanded (a deal has a few thousand)."""

MAX_DEPTH = 40
"""Deepest nesting of mappings and lists in a file (a deal needs about eight)."""

MAX_CANDIDATES = 50
MAX_TERMS = 100
MAX_TIERS = 20
MAX_CURVE_YEARS = 60
MAX_TEXT = 500
"""Longest name, label or description (characters)."""

MAX_MONEY = 1_000_000.0
"""Largest money amount in millions (a trillion of the deal currency)."""

MIN_RATE, MAX_RATE = -0.5, 1.0
"""Discount rates from -50% to +100% a year."""


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def memory_budget_bytes() -> float:
    """Largest result a run may keep in memory: ``DEALMODEL_MEMORY_MB`` (default 2,048 MB)."""
    return _env_number("DEALMODEL_MEMORY_MB", 2048.0) * 2**20


def work_budget() -> float:
    """Largest paths x candidates x horizon x structures of one run: ``DEALMODEL_WORK`` (default 4e10)."""
    return _env_number("DEALMODEL_WORK", 4e10)


class LimitError(ValueError):
    """A run or an input beyond one of the limits above; the message says which and how to raise it."""


def check_run(paths: int, candidates: int, horizon: int, terms: int, structures: int = 1,
              keep_flows: bool = False) -> None:
    """Refuse, before any allocation, a run beyond the work or memory budget."""
    work = float(paths) * candidates * horizon * structures
    if work > work_budget():
        raise LimitError(
            f"this run is {paths:,} paths x {candidates} candidates x {horizon} years x {structures} structure(s) "
            f"= {work:.3g} path-candidate-years, above the work budget of {work_budget():.3g}; use fewer paths, "
            f"or raise the budget with the environment variable DEALMODEL_WORK"
        )
    per_path = 8.0 * 3 + (8.0 * terms + 16.0 * horizon if keep_flows else 0.0)
    sample = 0.0 if keep_flows else 16.0 * horizon * min(paths, 20_000)  # the yearly subsample (engine.YEARLY_SAMPLE)
    need = (per_path * paths + sample) * structures
    if need > memory_budget_bytes():
        raise LimitError(
            f"the results of this run would take {need / 2**20:,.0f} MB ({structures} structure(s) x {paths:,} paths x "
            f"{per_path:.0f} bytes{' with per-path cash flows' if keep_flows else ''}), above the memory budget of "
            f"{memory_budget_bytes() / 2**20:,.0f} MB; use fewer paths"
            f"{', keep_flows=False' if keep_flows else ''}, or raise DEALMODEL_MEMORY_MB"
        )
