"""Cash flows in continuous time, for many paths at once: lumps and constant-rate spans.

Every amount the engine produces is one of two things on one path:

* a **lump**: ``amount`` paid at time ``when`` (a milestone, an upfront, a deferred fee);
* a **span**: money paid at a constant ``rate`` per year over ``[start, end)`` (a phase's cost
  spread over the phase, one launch year's sales, a royalty between two tier crossings).

A :class:`Ledger` keeps them as flat arrays with the path (``row``) each belongs to. Its value
under a :class:`~dealmodel.timing.Discount` is exact for the convention: a lump contributes
``amount x lump(when)``, a span ``rate x (integral(end) - integral(start))``; one
``np.bincount`` per kind adds them up per path. Nothing is binned before it is valued.

Spans that follow one another on a path (a candidate's phases, its launch years) are kept as a
**chain**: boundaries ``(m, K + 1)`` and rates ``(m, K)``, so each boundary's discount integral
is computed once, and shared by every ledger that books a chain on the same boundary array
(``memo`` in :meth:`Ledger.pv`).

The annual table (calendar year i = [i, i + 1), i = 0 .. H-1) is a report of the same flows:
a lump falls in year ``floor(when)``; a span is a rate switched on at ``start`` and off at
``end``, and a switch of q at time b adds ``(i + 1 - b) q`` to year ``i = floor(b)`` and
``(b - i) q`` to the next one as first differences, so one bincount and one cumulative sum
build every path's table with no loop over paths or years. Flows at or after the horizon H
are dropped in both.
"""

from __future__ import annotations

import numpy as np

from dealmodel.timing import Discount

_YEARS = 101.0
"""Past every horizon (at most 100 years): where a price index stops being applied."""


class Ledger:
    """Cash flows of one kind on the ``n`` paths of a chunk."""

    def __init__(self, n: int):
        self.n = n
        self._lumps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._spans: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._chains: list[tuple[np.ndarray | None, np.ndarray, np.ndarray]] = []
        self._flat: tuple | None = None

    def _rows(self, shape: tuple[int, ...], rows: np.ndarray | None) -> np.ndarray:
        rows = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(shape) == 2:
            rows = rows[:, None]
        return np.broadcast_to(rows, shape)

    def lump(self, when, amount, rows: np.ndarray | None = None, index: float = 0.0) -> None:
        """``amount`` paid at time ``when`` on each of ``rows`` (default every path; inf = never).

        ``when`` is ``(m,)``, or ``(m, K)`` for K payments per path; ``amount`` broadcasts to it.
        ``index``: a yearly price index; the amount is x (1 + index)^i in calendar year i.
        """
        when = np.asarray(when, dtype=float)
        amount = np.broadcast_to(np.asarray(amount, dtype=float), when.shape)
        if np.any(index):
            rate = self._per_row(index, when.shape, rows)
            amount = amount * (1.0 + rate) ** np.floor(np.clip(np.nan_to_num(when, posinf=0.0), 0.0, _YEARS))
        keep = np.isfinite(when) & (amount != 0.0)
        self._lumps.append((self._rows(when.shape, rows)[keep], when[keep], amount[keep]))
        self._flat = None

    def span(self, start, end, rate, rows: np.ndarray | None = None, index: float = 0.0) -> None:
        """A constant ``rate`` (money per year) over ``[start, end)`` on each of ``rows``.

        ``index``: a yearly price index; the rate is x (1 + index)^i in calendar year i, so the
        span is split at each 1 January it crosses.
        """
        start = np.asarray(start, dtype=float)
        end = np.broadcast_to(np.asarray(end, dtype=float), start.shape)
        rate = np.broadcast_to(np.asarray(rate, dtype=float), start.shape)
        if np.any(index):
            growth = 1.0 + self._per_row(index, start.shape, rows)
            finite = np.isfinite(start)
            first = int(np.floor(np.clip(np.min(start[finite], initial=_YEARS), 0.0, _YEARS)))
            last = int(np.ceil(np.clip(np.max(end[finite], initial=0.0), 0.0, _YEARS)))
            for year in range(first, last):
                self.span(np.clip(start, year, year + 1), np.clip(end, year, year + 1), rate * growth**year, rows)
            return
        keep = (end > start) & (rate != 0.0) & np.isfinite(start)
        self._spans.append((self._rows(start.shape, rows)[keep], start[keep], np.minimum(end[keep], 1e300),
                            rate[keep]))
        self._flat = None

    def chain(self, bounds: np.ndarray, rates: np.ndarray, rows: np.ndarray | None = None,
              index: float = 0.0) -> None:
        """Consecutive spans: ``rates[:, k]`` a year over ``[bounds[:, k], bounds[:, k + 1])``.

        ``bounds`` is ``(m, K + 1)`` and non-decreasing along each row; pass the same array
        object for chains on the same boundaries so their discount integrals are shared.
        """
        if np.any(index):
            if not np.isfinite(bounds).all():
                self.span(bounds[:, :-1], bounds[:, 1:], rates, rows, index)
                return
            bounds, rates = self._split_at_new_year(bounds, rates, rows, index)
        self._chains.append((None if rows is None else np.asarray(rows, dtype=np.int64), bounds, rates))
        self._flat = None

    def spread_chain(self, bounds: np.ndarray, amount: np.ndarray, rows: np.ndarray | None = None,
                     index: float = 0.0) -> None:
        """Per-interval ``amount`` ``(m, K)`` spread evenly over each of a chain's intervals.

        An empty interval (a phase that takes no time) pays its amount at its start.
        """
        duration = np.diff(bounds, axis=1)
        instant = duration <= 0.0
        self.chain(bounds, np.where(instant, 0.0, amount / np.where(instant, 1.0, duration)), rows, index)
        if instant.any():
            self.lump(np.where(instant, bounds[:, :-1], np.inf), amount, rows, index)

    def _split_at_new_year(self, bounds: np.ndarray, rates: np.ndarray, rows: np.ndarray | None, index):
        """A chain cut at every 1 January it crosses, each piece at its calendar year's price index."""
        growth = 1.0 + self._per_row(index, (bounds.shape[0],), rows)
        first = int(np.floor(np.clip(bounds.min(), 0.0, _YEARS)))
        last = int(np.ceil(np.clip(bounds.max(), 0.0, _YEARS)))
        years = np.arange(first + 1, last, dtype=float)
        cuts = np.clip(years[None, :], bounds[:, :1], bounds[:, -1:])  # outside a row's chain: empty pieces
        merged = np.sort(np.concatenate([bounds, cuts], axis=1), axis=1)
        mid = 0.5 * (merged[:, :-1] + merged[:, 1:])
        piece = (mid[:, :, None] >= bounds[:, None, 1:-1]).sum(axis=2)  # which interval of the chain
        year = np.floor(np.clip(mid, 0.0, _YEARS))
        return merged, np.take_along_axis(rates, piece, axis=1) * growth[:, None] ** year

    def _per_row(self, index, shape: tuple[int, ...], rows: np.ndarray | None) -> np.ndarray:
        """A price index given per path ``(n,)`` (or one number), laid out like a booking of ``shape``."""
        index = np.asarray(index, dtype=float)
        if index.ndim == 0:
            return np.broadcast_to(index, shape)
        at = index if rows is None else index[np.asarray(rows, dtype=np.int64)]
        return np.broadcast_to(at[:, None] if len(shape) == 2 else at, shape)

    def _arrays(self) -> tuple:
        if self._flat is None:
            def cat(parts, i):
                return np.concatenate([p[i] for p in parts]) if parts else np.empty(0)

            self._flat = (
                cat(self._lumps, 0).astype(np.int64), cat(self._lumps, 1), cat(self._lumps, 2),
                cat(self._spans, 0).astype(np.int64), cat(self._spans, 1), cat(self._spans, 2), cat(self._spans, 3),
            )
        return self._flat

    def pv(self, discount: Discount, memo: dict | None = None) -> np.ndarray:
        """Present value of each path's flows under ``discount`` ``(n,)``.

        ``memo`` (a dict kept for one chunk and one discount) shares chain boundaries' integrals.
        """
        lr, lw, la, sr, ss, se, sq = self._arrays()
        out = np.zeros(self.n)
        for rows, bounds, rates in self._chains:
            key = id(bounds)
            if memo is not None and key in memo:
                integral = memo[key]
            else:
                integral = discount.integral(bounds)
                if memo is not None:
                    memo[key] = integral
            value = np.sum(rates * np.diff(integral, axis=1), axis=1)
            if rows is None:
                out += value
            else:
                out += np.bincount(rows, weights=value, minlength=self.n)
        if lr.size:
            out += np.bincount(lr, weights=la * discount.lump(lw), minlength=self.n)
        if sr.size:
            out += np.bincount(sr, weights=sq * (discount.integral(se) - discount.integral(ss)), minlength=self.n)
        return out

    def total(self, horizon: float) -> np.ndarray:
        """Undiscounted sum of each path's flows inside [0, horizon)."""
        return self.pv(Discount(0.0, int(horizon), "exact"))

    def annual(self, horizon: int) -> np.ndarray:
        """Flows per calendar year ``(n, horizon)``: year i holds [i, i + 1)."""
        lr, lw, la, sr, ss, se, sq = self._arrays()
        width = horizon + 2
        switches = [(sr, ss, sq), (sr, se, -sq)]
        for rows, bounds, rates in self._chains:  # a chain switches by r_k - r_k-1 at each boundary
            at = np.arange(self.n) if rows is None else rows
            steps = np.diff(rates, axis=1, prepend=0.0, append=0.0)
            switches.append((np.broadcast_to(at[:, None], steps.shape).ravel(), bounds.ravel(), steps.ravel()))
        idx, weights = [], []
        for r, b, q in switches:
            if r.size == 0:
                continue
            b = np.clip(b, 0.0, horizon)
            year = np.floor(b)
            first = (year + 1.0 - b) * q
            base = r * width + year.astype(np.int64)
            idx += [base, base + 1]
            weights += [first, q - first]
        out = np.zeros(self.n * width)
        if idx:
            out += np.bincount(np.concatenate(idx), weights=np.concatenate(weights), minlength=out.size)
        table = np.cumsum(out.reshape(self.n, width), axis=1)
        inside = (lw >= 0.0) & (lw < horizon)
        if inside.any():
            at = lr[inside] * width + np.floor(lw[inside]).astype(np.int64)
            table += np.bincount(at, weights=la[inside], minlength=table.size).reshape(table.shape)
        return table[:, :horizon]

    def clipped(self, lo: np.ndarray, hi: np.ndarray, scale: float = 1.0, mask: np.ndarray | None = None) -> Ledger:
        """The flows that fall in ``[lo, hi)`` of each path (per-path arrays), times ``scale``.

        Spans are cut at the window's ends; lumps are kept where ``lo <= when < hi``. With ``mask``
        (``(n,)`` bool) only those paths' flows are kept.
        """
        lr, lw, la, sr, ss, se, sq = self._arrays()
        for rows, bounds, rates in self._chains:
            at = np.broadcast_to((np.arange(self.n) if rows is None else rows)[:, None], rates.shape)
            sr, ss = np.concatenate([sr, at.ravel()]), np.concatenate([ss, bounds[:, :-1].ravel()])
            se, sq = np.concatenate([se, bounds[:, 1:].ravel()]), np.concatenate([sq, rates.ravel()])
        out = Ledger(self.n)
        keep = (lw >= lo[lr]) & (lw < hi[lr])
        if mask is not None:
            keep &= mask[lr]
        out._lumps.append((lr[keep], lw[keep], scale * la[keep]))
        start, end = np.maximum(ss, lo[sr]), np.minimum(se, hi[sr])
        keep = end > start
        if mask is not None:
            keep &= mask[sr]
        out._spans.append((sr[keep], start[keep], end[keep], scale * sq[keep]))
        return out

    def absorb(self, other: Ledger) -> None:
        """Add every flow of ``other`` (same paths) to this ledger."""
        self._lumps += other._lumps
        self._spans += other._spans
        self._chains += other._chains
        self._flat = None

    @classmethod
    def combine(cls, ledgers: list[Ledger], n: int) -> Ledger:
        """One ledger holding every flow of ``ledgers`` (for the annual table of several terms)."""
        out = cls(n)
        for ledger in ledgers:
            out._lumps += ledger._lumps
            out._spans += ledger._spans
            out._chains += ledger._chains
        return out
