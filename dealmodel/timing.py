"""Valuation conventions: what a payment at time t, or a flow spread over [s, e), is worth today.

Time is continuous, in years from the valuation date (1 January of ``valuation_year``); the
horizon H closes the window ``[0, H)`` and nothing at or after H is valued. Calendar year i
(i = 0 .. H-1) is the interval ``[i, i + 1)``.

Four conventions (the deal's ``timing``), each written as two functions of time for a rate r
and v = 1 / (1 + r):

* ``exact`` (default): a lump at t is worth ``v^t``; a constant rate q over [s, e) is worth
  ``q (v^s - v^e) / ln(1 + r)`` (the integral of q v^t dt). This is the continuous-time
  valuation of Brealey, Myers & Allen, *Principles of Corporate Finance*, ch. 2 (continuous
  compounding with r_c = ln(1 + r)).
* ``end_of_year``, ``mid_year``, ``start_of_year``: a spreadsheet's periods. Everything that
  falls in calendar year i is valued at ``i + 1``, ``i + 0.5`` or ``i``. ``end_of_year`` is what
  Excel's ``NPV()`` does to a row of yearly totals (the first value discounted one period, an
  upfront at signing included); ``start_of_year`` is ``first value + NPV(rest)``.

Both functions come as one object, :class:`Discount`, so every cash flow of the engine is
valued through ``lump(t)`` (the factor for a payment at t) and ``integral(t)`` (the discounted
length of [0, t)): a constant rate q over [s, e) is worth ``q (integral(e) - integral(s))``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

Timing = Literal["exact", "end_of_year", "mid_year", "start_of_year"]
TIMINGS: tuple[str, ...] = ("exact", "end_of_year", "mid_year", "start_of_year")
_OFFSET = {"end_of_year": 1.0, "mid_year": 0.5, "start_of_year": 0.0}


class Discount:
    """Discount factors of one rate under one convention, over the window [0, horizon)."""

    def __init__(self, rate: float, horizon: int, timing: str = "exact"):
        if timing not in TIMINGS:
            raise ValueError(f"timing must be one of {', '.join(TIMINGS)} (got {timing!r})")
        self.rate = float(rate)
        self.horizon = int(horizon)
        self.timing = timing
        self.log_growth = math.log1p(self.rate)
        if timing != "exact":
            offset = _OFFSET[timing]
            # factor of calendar year i, and the discounted length of years 0 .. i-1
            self.year_factor = (1.0 + self.rate) ** -(np.arange(self.horizon + 1, dtype=float) + offset)
            self.year_factor[self.horizon] = 0.0
            self.cumulative = np.concatenate([[0.0], np.cumsum(self.year_factor[: self.horizon])])

    def lump(self, t: np.ndarray) -> np.ndarray:
        """Factor for a payment at time ``t`` (0 at or after the horizon, or for t = inf)."""
        t = np.asarray(t, dtype=float)
        inside = (t >= 0.0) & (t < self.horizon)
        if self.timing == "exact":
            return np.where(inside, np.exp(-self.log_growth * np.where(inside, t, 0.0)), 0.0)
        year = np.floor(np.clip(t, 0.0, self.horizon)).astype(np.int64)
        return np.where(inside, self.year_factor[year], 0.0)

    def integral(self, t: np.ndarray) -> np.ndarray:
        """Discounted length of [0, min(t, horizon)): a rate of 1 a year paid over it is worth this."""
        t = np.clip(np.asarray(t, dtype=float), 0.0, self.horizon)
        if self.timing == "exact":
            if self.log_growth == 0.0:
                return t
            return -np.expm1(-self.log_growth * t) / self.log_growth
        year = np.minimum(np.floor(t), self.horizon).astype(np.int64)
        return self.cumulative[year] + (t - year) * self.year_factor[year]
