"""Binning continuous-time cash flows onto the annual grid, for many paths at once.

The grid has periods 0..H: period 0 is the valuation date itself (an upfront paid at signing),
period t >= 1 holds everything in the year (t - 1, t]. A lump at time tau falls in period
ceil(tau); an amount spread evenly over [start, end) is split across periods by overlap.
Anything after the horizon H is dropped.

A channel is kept as first differences: a spread is a rate switched on at ``start`` and off
at ``end``, and a switch at time b adds ``(ceil(b) - b) r`` to period ceil(b) and the rest of
``r`` to the period after; a lump adds ``a`` to its period and ``-a`` to the next. One
``np.bincount`` and one cumulative sum then give every path's flows, with no loop over paths
or periods. Because the PV of a first difference ``w`` at period j is ``w`` times the tail sum
of discount factors from j on, a channel can also report each path's PV without being built.
"""

from __future__ import annotations

import numpy as np


def discount_factors(rate: float, horizon: int) -> np.ndarray:
    """``(1 + rate)^-t`` for periods t = 0..H (period t's flows are valued at its end, time t)."""
    return (1.0 + rate) ** -np.arange(horizon + 1, dtype=float)


def present_value(flows: np.ndarray, df: np.ndarray) -> np.ndarray:
    """PV of each row of ``flows`` ``(..., T)`` at discount factors ``df``.

    A row-wise product and sum rather than a BLAS matrix-vector product: BLAS sums in an order
    that depends on how many rows it is given, and results must not depend on the chunk size.
    """
    return np.sum(flows * df, axis=-1)


class Grid:
    """The annual grid of one chunk of ``n`` paths: where first differences go."""

    def __init__(self, n: int, horizon: int):
        self.n = n
        self.horizon = horizon
        self.width = horizon + 3  # periods 0..H, an overflow period, and its successor
        self.paths = np.arange(n, dtype=np.int64)

    def period(self, t: np.ndarray) -> np.ndarray:
        """Period of time ``t`` (ceil), with everything beyond H in the overflow period."""
        return np.minimum(np.ceil(np.maximum(t, 0.0)), self.horizon + 1).astype(np.int64)

    def tail(self, df: np.ndarray) -> np.ndarray:
        """PV of a first difference of 1 at each column: sum of df[t] for t >= column."""
        out = np.zeros(self.width)
        out[: self.horizon + 1] = np.cumsum(df[::-1])[::-1]
        return out


class Phased:
    """Where one candidate's back-to-back phases fall on the grid, shared by every spread over them.

    Phase k runs over [b_k, b_k+1) with boundaries ``b`` = (0, end_0, ..., end_K-1). A set of
    per-phase rates r_k is a change of rate r_k - r_k-1 at each boundary, two first differences
    each: ``(ceil(b) - b)`` of it in period ceil(b), the rest in the next period.
    """

    def __init__(self, grid: Grid, start: np.ndarray, end: np.ndarray):
        duration = end - start
        self.grid = grid
        self.start = start
        self.instant = duration <= 0
        self.inv_duration = np.where(self.instant, 0.0, 1.0 / np.where(self.instant, 1.0, duration))
        bounds = np.concatenate([start[:, :1], end], axis=1)  # (n, K + 1)
        self.cols = grid.period(bounds)
        self.frac = self.cols - np.maximum(bounds, 0.0)
        self.index = grid.paths[None, :, None] * grid.width + np.stack([self.cols, self.cols + 1])
        self._pv_weights: dict[int, np.ndarray] = {}

    def steps(self, rate: np.ndarray) -> np.ndarray:
        """Change of rate at each boundary, ``(n, K + 1)``."""
        return np.diff(rate, axis=1, prepend=0.0, append=0.0)

    def pv_weights(self, tail: np.ndarray) -> np.ndarray:
        """PV of a unit change of rate at each boundary (for discount tail sums ``tail``)."""
        key = id(tail)
        if key not in self._pv_weights:
            self._pv_weights[key] = self.frac * tail[self.cols] + (1.0 - self.frac) * tail[self.cols + 1]
        return self._pv_weights[key]


class Channel:
    """Cash flows of one kind on the paths of a :class:`Grid`; see :func:`build`.

    ``Channel(grid, df=..., into=other)`` adds everything to ``other`` as well and keeps each
    path's PV at discount factors ``df``: one term's PV while all terms share one channel.
    """

    def __init__(self, grid: Grid, df: np.ndarray | None = None, into: Channel | None = None):
        self.grid = grid
        self.rates: dict[int, list] = into.rates if into is not None else {}
        self.lumps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = into.lumps if into is not None else []
        self.dense_parts: list[tuple[np.ndarray, np.ndarray]] = into.dense_parts if into is not None else []
        self._df = df
        self._tail = grid.tail(df) if df is not None else None
        self.pv = np.zeros(grid.n) if df is not None else None

    def spread(self, phased: Phased, amount: np.ndarray) -> None:
        """Per-phase ``amount`` ``(n, K)`` spread evenly over each phase (a lump if it takes no time)."""
        rate = amount * phased.inv_duration
        entry = self.rates.get(id(phased))
        if entry is None:
            self.rates[id(phased)] = [phased, rate]
        else:
            entry[1] = entry[1] + rate
        if self.pv is not None:
            self.pv += np.sum(phased.steps(rate) * phased.pv_weights(self._tail), axis=1)
        if phased.instant.any():
            self.lump(np.where(phased.instant, phased.start, np.inf), np.where(phased.instant, amount, 0.0))

    def lump(self, when: np.ndarray, amount: np.ndarray | float) -> None:
        """A one-off payment of ``amount`` at time ``when`` on each path (inf: never paid).

        ``when`` and ``amount`` are ``(n,)``, or ``(n, K)`` for K payments per path.
        """
        when = np.asarray(when, dtype=float)
        amount = np.broadcast_to(np.asarray(amount, dtype=float), when.shape)
        if when.ndim == 2:
            for k in range(when.shape[1]):
                self.lump(when[:, k], amount[:, k])
            return
        rows = np.flatnonzero(when <= self.grid.horizon)
        self.lump_at_period(self.grid.period(when[rows]), amount[rows], rows)

    def lump_at_period(self, col: np.ndarray, amount: np.ndarray | float, rows: np.ndarray) -> None:
        """``amount`` in period ``col`` of paths ``rows`` (unique rows; columns beyond H dropped)."""
        col = np.asarray(col, dtype=np.int64)
        amount = np.broadcast_to(np.asarray(amount, dtype=float), col.shape)
        keep = col <= self.grid.horizon
        rows, col, amount = rows[keep], col[keep], amount[keep]
        self.lumps.append((rows, col, amount))
        if self.pv is not None:
            self.pv[rows] += amount * self._df[col]

    def dense(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Add per-period values ``(m, H + 1)`` to paths ``rows`` (unique within a call)."""
        self.dense_parts.append((rows, values))
        if self.pv is not None:
            self.pv[rows] += present_value(values, self._df)


def build(grid: Grid, *parts: tuple[Channel, float]) -> np.ndarray:
    """Flows ``(n, H + 1)`` of a signed sum of channels, e.g. ``build(g, (own, 1), (paid, -1))``."""
    rates: dict[int, list] = {}
    for channel, sign in parts:
        for key, (phased, rate) in channel.rates.items():
            if key in rates:
                rates[key][1] = rates[key][1] + sign * rate
            else:
                rates[key] = [phased, sign * rate]
    if rates:
        idx, weights = [], []
        for phased, rate in rates.values():
            step = phased.steps(rate)
            idx.append(phased.index.ravel())
            weights.append(np.stack([phased.frac * step, (1.0 - phased.frac) * step]).ravel())
        diff = np.bincount(np.concatenate(idx), weights=np.concatenate(weights), minlength=grid.width * grid.n)
        flows = np.cumsum(diff.reshape(grid.n, grid.width), axis=1)[:, : grid.horizon + 1]
    else:
        flows = np.zeros((grid.n, grid.horizon + 1))
    for channel, sign in parts:
        for rows, col, amount in channel.lumps:
            flows[rows, col] += sign * amount
        for rows, values in channel.dense_parts:
            flows[rows] += sign * values
    return flows
