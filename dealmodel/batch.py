"""Batch valuation: many deals, or a grid of terms, locally in processes or on a Dask cluster.

Work is split into tasks of one item (a deal or a grid point) by one fixed-size run of paths.
Each task draws its random numbers from the same ``SeedSequence`` blocks :func:`simulate` uses
(see :mod:`dealmodel.program`), so every row is identical whatever ``n_jobs``, task size or
backend, and equal to what ``compare`` gives for the same deals, paths and seed.
"""

from __future__ import annotations

import itertools
import math
import os
import reprlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dealmodel.compare import comparison_row
from dealmodel.edit import ParameterError, set_value
from dealmodel.engine import MAX_PATHS, paths_key, program_key, value_paths_many
from dealmodel.io import DealError, load_deal, parse_text, read_text_file
from dealmodel.metrics import summarize
from dealmodel.program import BLOCK
from dealmodel.schema import Deal
from dealmodel.terms import headline

TASK_PATHS = 8 * BLOCK
"""Paths per task (whole random-number blocks); results do not depend on it."""

BACKENDS = ("joblib", "dask")


@dataclass(frozen=True)
class Item:
    """One row to value: a deal (or why there is none), where it came from, its grid point."""

    label: str
    deal: Deal | None
    source: str = ""
    point: dict[str, float] = field(default_factory=dict)
    error: str | None = None


# --------------------------------------------------------------------------- items


def deal_items(deals: Iterable[Deal | str | os.PathLike[str]]) -> list[Item]:
    """Items from deals and deal files; a file that cannot be read becomes an item with its error."""
    items: list[Item] = []
    taken: set[str] = set()
    for entry in deals:
        if isinstance(entry, Deal):
            deal, source, error = entry, "", None
        else:
            source = str(entry)
            try:
                deal, error = load_deal(entry), None
            except DealError as exc:
                deal, error = None, "; ".join(exc.problems)
        label = deal.name if deal is not None else Path(source).name
        unique, k = label, 2
        while unique in taken:
            unique, k = f"{label} ({k})", k + 1
        taken.add(unique)
        items.append(Item(unique, deal, source, {}, error))
    return items


def grid_items(deal: Deal, grid: Mapping[str, Sequence[float]], source: str = "") -> list[Item]:
    """One item per point of the grid (the cartesian product, in the order given)."""
    if not grid:
        raise ValueError("the grid is empty: give at least one parameter with values")
    for parameter, values in grid.items():
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"grid parameter {parameter!r} needs a non-empty list of values")
    names = list(grid)
    items = []
    for combo in itertools.product(*(grid[n] for n in names)):
        point = {n: float(v) for n, v in zip(names, combo, strict=True)}
        label = deal.name + " | " + ", ".join(f"{n}={v:g}" for n, v in point.items())
        try:
            moved = deal
            for n, v in point.items():
                moved = set_value(moved, n, v)
            items.append(Item(label, moved, source, point))
        except ParameterError as exc:
            items.append(Item(label, None, source, point, str(exc)))
    return items


MAX_GRID_POINTS = 10_000


def _short(value: Any) -> str:
    text = reprlib.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_grid(path: str | os.PathLike[str]) -> dict[str, list[float]]:
    """A grid file: YAML or JSON mapping parameter path -> list of values (read as strictly as a deal)."""
    source = str(path)
    text = read_text_file(path, what="grid file")
    data = parse_text(text, source, "json" if source.lower().endswith(".json") else "yaml")
    if not isinstance(data, dict) or not data:
        raise DealError(source, ["a grid is a mapping of parameter path -> list of values"])
    problems = []
    points = 1
    for key, values in data.items():
        if not isinstance(values, list) or not values or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            problems.append(f"{str(key)[:80]}: needs a non-empty list of finite numbers (got {_short(values)})")
        else:
            points *= len(values)
    if points > MAX_GRID_POINTS:
        problems.append(f"the grid has {points:,} points; at most {MAX_GRID_POINTS:,} in one run")
    if problems:
        raise DealError(source, problems)
    return {str(k): [float(v) for v in vs] for k, vs in data.items()}


# --------------------------------------------------------------------------- running tasks


GROUP = 8
"""Items sharing a program valued in one task (one program simulation for all of them)."""


def _task(indices: tuple[int, ...], first: int, deals: tuple[Deal, ...], seed: int, n: int,
          ) -> tuple[tuple[int, ...], int, list[dict[str, np.ndarray]]]:
    """One unit of work (module level so that processes and Dask workers can import it)."""
    outs = value_paths_many(list(deals), seed, first, n)
    return indices, first, [{**out["npv"], "payments": out["term_pv"].sum(axis=0)} for out in outs]


def _serial(tasks: list[tuple]) -> Iterator[tuple]:
    for t in tasks:
        yield _task(*t)


def _joblib(tasks: list[tuple], n_jobs: int) -> Iterator[tuple]:
    from joblib import Parallel, delayed
    from joblib.externals.loky import get_reusable_executor

    try:
        yield from Parallel(n_jobs=n_jobs, return_as="generator_unordered")(delayed(_task)(*t) for t in tasks)
    finally:
        # the worker processes end with the run (also on Ctrl-C or SIGTERM), not minutes later
        get_reusable_executor().shutdown(wait=False, kill_workers=True)


def _dask(tasks: list[tuple], n_jobs: int, scheduler: str | None) -> Iterator[tuple]:
    import dask
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        # Dask's workers default to MALLOC_TRIM_THRESHOLD_=64 KiB, which hands every large NumPy
        # temporary back to the OS and makes the kernels here about 2-3x slower; not for ours.
        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = [client.submit(_task, *t, pure=False) for t in tasks]
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _run(tasks: list[tuple], n_jobs: int, backend: str | None, scheduler: str | None) -> Iterator[tuple]:
    if backend is None:
        backend = "dask" if scheduler else ("joblib" if n_jobs > 1 else None)
    if backend is None:
        return _serial(tasks)
    if backend == "joblib":
        return _joblib(tasks, n_jobs)
    if backend == "dask":
        return _dask(tasks, n_jobs, scheduler)
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)} (got {backend!r})")


# --------------------------------------------------------------------------- valuing items


def value_items(
    items: Sequence[Item],
    paths: int = 100_000,
    seed: int = 0,
    n_jobs: int = 1,
    backend: str | None = None,
    scheduler: str | None = None,
    task_paths: int = TASK_PATHS,
    progress: Callable[[int, int], None] | bool | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    done: Mapping[int, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """Value every item; one row each, in item order. ``on_row`` receives rows as they finish.

    ``done`` holds rows already valued by an earlier, interrupted run (item index -> row): those
    items are not valued again (the baseline's paths are, when other items still need them) and
    their rows are not passed to ``on_row``.

    ``progress`` is a callback ``(tasks done, tasks)``, or True for a progress bar (tqdm).

    The first item that has a deal is the baseline of the paired differences. Items that failed
    to load (or whose grid point is invalid) give a row with their ``error`` and no numbers.
    """
    if not 1 <= paths <= MAX_PATHS:
        raise ValueError(f"paths must be between 1 and {MAX_PATHS:,} (got {paths})")
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be at least 1 (got {n_jobs})")
    most = 2 * (os.cpu_count() or 1)
    if n_jobs > most and scheduler is None:
        raise ValueError(f"n_jobs {n_jobs} is more than this machine can use: it has {os.cpu_count()} cores; "
                         f"use at most {most} (each process holds its own copy of the work)")
    task_paths = max(BLOCK, math.ceil(task_paths / BLOCK) * BLOCK)
    valid = [i for i, item in enumerate(items) if item.deal is not None]
    baseline = valid[0] if valid else None
    base_key = paths_key(items[baseline].deal) if valid else ""
    resumed = dict(done or {})
    to_value = [i for i in valid if i not in resumed]
    if baseline is not None and baseline in resumed and to_value:
        to_value.insert(0, baseline)  # its paths are needed for the others' paired differences
    shared: dict[str, list[int]] = {}  # items on one program, valued together in groups of GROUP
    for i in to_value:
        shared.setdefault(program_key(items[i].deal), []).append(i)
    groups = [tuple(ids[k:k + GROUP]) for ids in shared.values() for k in range(0, len(ids), GROUP)]
    tasks = [(ids, first, tuple(items[i].deal for i in ids), seed, min(task_paths, paths - first))
             for ids in groups for first in range(0, paths, task_paths)]
    per_item = math.ceil(paths / task_paths)
    rows: dict[int, dict[str, Any]] = {}
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), unit="task", desc="valuing")
        progress = lambda done, total: bar.update(done - bar.n)  # noqa: E731

    def emit(i: int, row: dict[str, Any]) -> None:
        rows[i] = row
        if on_row is not None:
            on_row(row)

    for i, item in enumerate(items):
        if i in resumed:
            rows[i] = resumed[i]
        elif item.deal is None:
            emit(i, _row_base(item) | {"error": item.error})

    chunks: dict[int, dict[int, dict[str, np.ndarray]]] = {i: {} for i in to_value}
    finished: dict[int, dict[str, np.ndarray]] = {}
    base_npv: dict[str, np.ndarray] | None = None
    waiting: list[int] = []
    done = 0
    try:
        for indices, first, npvs in _run(tasks, n_jobs, backend, scheduler):
            done += 1
            if progress is not None:
                progress(done, len(tasks))
            for index, npv in zip(indices, npvs, strict=True):
                chunks[index][first] = npv
                if len(chunks[index]) < per_item:
                    continue
                parts = chunks.pop(index)
                finished[index] = {p: np.concatenate([parts[f][p] for f in sorted(parts)])
                                   for p in ("sponsor", "partner", "program", "payments")}
                if index == baseline:
                    base_npv = finished[index]
                waiting.append(index)
            if base_npv is None:
                continue  # rows need the baseline's paths for their paired differences
            for j in waiting:
                if j not in resumed:
                    emit(j, _row(items[j], finished[j], base_npv, base_key))
                if j != baseline:
                    del finished[j]
            waiting = []
    finally:
        if bar is not None:
            bar.close()
    ordered = [rows[i] for i in range(len(items))]
    table = pd.DataFrame(ordered)
    return table.set_index("item") if "item" in table else table


def _row_base(item: Item) -> dict[str, Any]:
    return {"item": item.label, "source": item.source, **{f"grid:{k}": v for k, v in item.point.items()}}


def _row(item: Item, npv: dict[str, np.ndarray], base_npv: dict[str, np.ndarray], base_key: str) -> dict[str, Any]:
    paired = paths_key(item.deal) == base_key
    row = comparison_row(item.label, summarize(npv), headline(item.deal), float(npv["payments"].mean()), npv,
                         base_npv, paired, item.deal)
    row.pop("variant")
    return _row_base(item) | row | {"error": None}


def value_many(
    deals: Iterable[Deal | str | os.PathLike[str]],
    paths: int = 100_000,
    seed: int = 0,
    n_jobs: int = 1,
    backend: str | None = None,
    scheduler: str | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """One row per deal (or deal file): the metrics of :func:`dealmodel.compare`, paired with the first.

    ``n_jobs`` > 1 runs tasks in processes (joblib); ``backend="dask"`` runs them on a Dask
    cluster at ``scheduler`` (an address), or on a loopback ``LocalCluster`` of ``n_jobs``
    workers started for the call. Results are identical whatever the backend.
    """
    return value_items(deal_items(deals), paths, seed, n_jobs, backend, scheduler, **kwargs)


def sweep(
    deal: Deal,
    grid: Mapping[str, Sequence[float]],
    paths: int = 100_000,
    seed: int = 0,
    n_jobs: int = 1,
    backend: str | None = None,
    scheduler: str | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """One row per point of ``grid`` ({parameter path: values}), all on common paths.

    Columns ``grid:PATH`` hold each point's values; the first point is the baseline.
    """
    return value_items(grid_items(deal, grid), paths, seed, n_jobs, backend, scheduler, **kwargs)
