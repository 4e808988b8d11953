"""Cash flows in continuous time, for many paths at once: lumps and constant-rate spans.

Every amount the engine produces is one of two things on one path:

* a **lump**: ``amount`` paid at time ``when`` (a milestone, an upfront, a deferred fee);
* a **span**: money paid at a constant ``rate`` per year over ``[start, end)`` (a phase's cost
  spread over the phase, one launch year's sales, a royalty between two tier crossings).

A :class:`Ledger` keeps them as flat arrays with the path (``row``) each belongs to. Its value
under a :class:`~dealmodel.timing.Discount` is exact for the convention: a lump contributes
``amount x lump(when)``, a span ``rate x (integral(end) - integral(start))``; one
``np.bincount`` per kind adds them up per path. Nothing is binned before it is valued.

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


class Ledger:
    """Cash flows of one kind on the ``n`` paths of a chunk."""

    def __init__(self, n: int):
        self.n = n
        self._lumps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._spans: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._flat: tuple | None = None

    def _rows(self, shape: tuple[int, ...], rows: np.ndarray | None) -> np.ndarray:
        rows = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(shape) == 2:
            rows = rows[:, None]
        return np.broadcast_to(rows, shape)

    def lump(self, when, amount, rows: np.ndarray | None = None) -> None:
        """``amount`` paid at time ``when`` on each of ``rows`` (default every path; inf = never).

        ``when`` is ``(m,)``, or ``(m, K)`` for K payments per path; ``amount`` broadcasts to it.
        """
        when = np.asarray(when, dtype=float)
        amount = np.broadcast_to(np.asarray(amount, dtype=float), when.shape)
        keep = np.isfinite(when) & (amount != 0.0)
        self._lumps.append((self._rows(when.shape, rows)[keep], when[keep], amount[keep]))
        self._flat = None

    def span(self, start, end, rate, rows: np.ndarray | None = None) -> None:
        """A constant ``rate`` (money per year) over ``[start, end)`` on each of ``rows``."""
        start = np.asarray(start, dtype=float)
        end = np.broadcast_to(np.asarray(end, dtype=float), start.shape)
        rate = np.broadcast_to(np.asarray(rate, dtype=float), start.shape)
        keep = (end > start) & (rate != 0.0) & np.isfinite(start)
        self._spans.append((self._rows(start.shape, rows)[keep], start[keep], np.minimum(end[keep], 1e300),
                            rate[keep]))
        self._flat = None

    def spread(self, start, end, amount, rows: np.ndarray | None = None) -> None:
        """``amount`` spread evenly over ``[start, end)``; paid at ``start`` where the interval is empty."""
        start = np.asarray(start, dtype=float)
        end = np.broadcast_to(np.asarray(end, dtype=float), start.shape)
        amount = np.broadcast_to(np.asarray(amount, dtype=float), start.shape)
        duration = end - start
        instant = duration <= 0.0
        self.span(start, end, np.where(instant, 0.0, amount / np.where(instant, 1.0, duration)), rows)
        if instant.any():
            self.lump(np.where(instant, start, np.inf), amount, rows)

    def _arrays(self) -> tuple:
        if self._flat is None:
            def cat(parts, i):
                return np.concatenate([p[i] for p in parts]) if parts else np.empty(0)

            self._flat = (
                cat(self._lumps, 0).astype(np.int64), cat(self._lumps, 1), cat(self._lumps, 2),
                cat(self._spans, 0).astype(np.int64), cat(self._spans, 1), cat(self._spans, 2), cat(self._spans, 3),
            )
        return self._flat

    def pv(self, discount: Discount) -> np.ndarray:
        """Present value of each path's flows under ``discount`` ``(n,)``."""
        lr, lw, la, sr, ss, se, sq = self._arrays()
        out = np.zeros(self.n)
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
        out = np.zeros(self.n * width)
        if sr.size:
            idx, weights = [], []
            for b, q in ((ss, sq), (se, -sq)):
                b = np.clip(b, 0.0, horizon)
                year = np.floor(b)
                first = (year + 1.0 - b) * q
                base = sr * width + year.astype(np.int64)
                idx += [base, base + 1]
                weights += [first, q - first]
            out += np.bincount(np.concatenate(idx), weights=np.concatenate(weights), minlength=out.size)
        table = np.cumsum(out.reshape(self.n, width), axis=1)
        inside = (lw >= 0.0) & (lw < horizon)
        if inside.any():
            at = lr[inside] * width + np.floor(lw[inside]).astype(np.int64)
            table += np.bincount(at, weights=la[inside], minlength=table.size).reshape(table.shape)
        return table[:, :horizon]

    @classmethod
    def combine(cls, ledgers: list[Ledger], n: int) -> Ledger:
        """One ledger holding every flow of ``ledgers`` (for the annual table of several terms)."""
        out = cls(n)
        for ledger in ledgers:
            out._lumps += ledger._lumps
            out._spans += ledger._spans
        return out
