"""Uncertain inputs: a number, or a distribution over numbers.

Any program input in a deal file may be a plain number or a mapping with a ``dist`` key::

    duration_years: 2.7                                   # fixed
    duration_years: {dist: triangular, low: 2, mode: 2.7, high: 4}
    peak_sales: {dist: lognormal, median: 600, p90: 1500}
    success_probability: {dist: beta, mean: 0.488, sd: 0.05}

Every distribution is sampled by its inverse CDF from one uniform draw per path, so two deals
that share a seed see the same uniforms: moving a mode or a median moves each path's sample
smoothly instead of redrawing it (common random numbers for comparison and sensitivity).
A plain number is stored as :class:`Fixed` and written back as a plain number.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_serializer, model_validator
from scipy import special

# z such that Phi(z) = 0.9, used to turn a lognormal's (median, p90) into its sigma.
_Z90 = 1.2815515655446004


_LARGEST = 1_000_000.0
"""No program number or distribution parameter may exceed this in size (docs/deal-files.md)."""


class _Dist(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)

    @model_validator(mode="after")
    def _bounded(self):
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, float) and abs(value) > _LARGEST:
                raise ValueError(f"{name} must be within ±{_LARGEST:,.0f} (got {value:.3g})")
        return self

    def mean(self) -> float:
        raise NotImplementedError

    def support(self) -> tuple[float, float]:
        """Smallest and largest value the distribution can produce."""
        raise NotImplementedError

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF, vectorised over uniforms ``u`` in (0, 1)."""
        raise NotImplementedError

    def quantile(self, q: float) -> float:
        return float(self.ppf(np.array([q]))[0])

    @property
    def is_fixed(self) -> bool:
        return False

    def scaled(self, factor: float) -> _Dist:
        """The same shape with every location parameter multiplied by ``factor``."""
        raise NotImplementedError


class Fixed(_Dist):
    """A known number. Written in a deal file as the bare number."""

    dist: Literal["fixed"] = "fixed"
    value: float

    @model_serializer
    def _as_number(self) -> float:
        return self.value

    def mean(self) -> float:
        return self.value

    def support(self) -> tuple[float, float]:
        return (self.value, self.value)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return np.full(np.shape(u), self.value, dtype=float)

    @property
    def is_fixed(self) -> bool:
        return True

    def scaled(self, factor: float) -> Fixed:
        return Fixed(value=self.value * factor)


def _check_low_mode_high(low: float, mode: float, high: float) -> None:
    if not low <= mode <= high:
        raise ValueError(f"needs low <= mode <= high (got low={low}, mode={mode}, high={high})")
    if low == high:
        raise ValueError(f"low and high are equal ({low}); write the plain number instead")


class _LowModeHigh(_Dist):
    """A distribution on [low, high] shaped by a most likely value ``mode``."""

    low: float
    mode: float
    high: float

    @model_validator(mode="after")
    def _ordered(self):
        _check_low_mode_high(self.low, self.mode, self.high)
        return self

    def support(self) -> tuple[float, float]:
        return (self.low, self.high)

    def scaled(self, factor: float):
        lo, mo, hi = sorted((self.low * factor, self.mode * factor, self.high * factor))
        return type(self)(dist=self.dist, low=lo, mode=mo, high=hi)


class Triangular(_LowModeHigh):
    """Triangular distribution on [low, high] with its peak at ``mode``."""

    dist: Literal["triangular"]

    def mean(self) -> float:
        return (self.low + self.mode + self.high) / 3.0

    def ppf(self, u: np.ndarray) -> np.ndarray:
        a, c, b = self.low, self.mode, self.high
        split = (c - a) / (b - a)
        left = a + np.sqrt(u * (b - a) * (c - a))
        right = b - np.sqrt((1.0 - u) * (b - a) * (b - c))
        return np.where(u < split, left, right)


class Pert(_LowModeHigh):
    """Beta-PERT on [low, high] with mode ``mode`` (shape 4, the classic PERT weighting)."""

    dist: Literal["pert"]

    def _ab(self) -> tuple[float, float]:
        span = self.high - self.low
        return (
            1.0 + 4.0 * (self.mode - self.low) / span,
            1.0 + 4.0 * (self.high - self.mode) / span,
        )

    def mean(self) -> float:
        return (self.low + 4.0 * self.mode + self.high) / 6.0

    def ppf(self, u: np.ndarray) -> np.ndarray:
        a, b = self._ab()
        return self.low + (self.high - self.low) * special.betaincinv(a, b, u)


class Uniform(_Dist):
    """Uniform on [low, high]."""

    dist: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if not self.low < self.high:
            raise ValueError(f"needs low < high (got low={self.low}, high={self.high})")
        return self

    def mean(self) -> float:
        return (self.low + self.high) / 2.0

    def support(self) -> tuple[float, float]:
        return (self.low, self.high)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return self.low + (self.high - self.low) * u

    def scaled(self, factor: float) -> Uniform:
        lo, hi = sorted((self.low * factor, self.high * factor))
        return Uniform(dist="uniform", low=lo, high=hi)


class LogNormal(_Dist):
    """Lognormal set by its median and 90th percentile (p90 > median > 0)."""

    dist: Literal["lognormal"]
    median: float
    p90: float

    @model_validator(mode="after")
    def _ordered(self) -> LogNormal:
        if not self.median > 0:
            raise ValueError(f"median must be > 0 (got {self.median})")
        if not self.p90 > self.median:
            raise ValueError(f"p90 must be above the median (got median={self.median}, p90={self.p90})")
        if self.p90 > 1000.0 * self.median:
            raise ValueError(f"p90 may be at most 1,000 times the median (got median={self.median:.3g}, "
                             f"p90={self.p90:.3g})")
        return self

    @property
    def sigma(self) -> float:
        return math.log(self.p90 / self.median) / _Z90

    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2.0)

    def support(self) -> tuple[float, float]:
        return (0.0, math.inf)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return self.median * np.exp(self.sigma * special.ndtri(u))

    def scaled(self, factor: float) -> LogNormal:
        return LogNormal(dist="lognormal", median=self.median * factor, p90=self.p90 * factor)


class Beta(_Dist):
    """Beta on [0, 1] set by mean and standard deviation: parameter uncertainty on a probability."""

    dist: Literal["beta"]
    mean_: float = Field(alias="mean")
    sd: float

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False, strict=True)

    @model_validator(mode="after")
    def _feasible(self) -> Beta:
        m, s = self.mean_, self.sd
        if not 0.0 < m < 1.0:
            raise ValueError(f"mean must be strictly between 0 and 1 (got {m})")
        if not 0.0 < s < math.sqrt(m * (1.0 - m)):
            raise ValueError(
                f"sd must be > 0 and below sqrt(mean*(1-mean)) = {math.sqrt(m * (1 - m)):.4g} (got {s})"
            )
        if s < 1e-4:
            raise ValueError(f"sd must be at least 0.0001 (got {s:.3g}); for a known probability write the number")
        return self

    def _ab(self) -> tuple[float, float]:
        m, s = self.mean_, self.sd
        k = m * (1.0 - m) / s**2 - 1.0
        return m * k, (1.0 - m) * k

    def mean(self) -> float:
        return self.mean_

    def support(self) -> tuple[float, float]:
        return (0.0, 1.0)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        a, b = self._ab()
        return special.betaincinv(a, b, u)

    def scaled(self, factor: float) -> Beta:
        m = min(self.mean_ * factor, 0.999)
        sd = min(self.sd, 0.99 * math.sqrt(m * (1.0 - m)))
        return Beta(dist="beta", mean=m, sd=sd)


class Discrete(_Dist):
    """A few possible values, each with its probability: ``{dist: discrete, values: [200, 1500],
    probabilities: [0.5, 0.5]}`` (a low and a high market, say)."""

    dist: Literal["discrete"]
    values: list[float] = Field(min_length=2, max_length=50)
    probabilities: list[float] = Field(min_length=2, max_length=50)

    @model_validator(mode="after")
    def _valid(self) -> Discrete:
        if len(self.values) != len(self.probabilities):
            raise ValueError(f"values and probabilities must have the same length (got {len(self.values)} and "
                             f"{len(self.probabilities)})")
        if any(abs(v) > _LARGEST for v in self.values):
            raise ValueError(f"values must be within ±{_LARGEST:,.0f}")
        if any(not 0.0 <= p <= 1.0 for p in self.probabilities):
            raise ValueError("probabilities must each be between 0 and 1")
        if abs(sum(self.probabilities) - 1.0) > 1e-9:
            raise ValueError(f"probabilities must add up to 1 (got {sum(self.probabilities):.6g})")
        if len(set(self.values)) != len(self.values):
            raise ValueError("values must differ from each other")
        return self

    def mean(self) -> float:
        return float(sum(v * p for v, p in zip(self.values, self.probabilities, strict=True)))

    def support(self) -> tuple[float, float]:
        return (min(self.values), max(self.values))

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Value i where u falls in [P(first i values), P(first i + 1 values)), in the order written."""
        edges = np.cumsum(self.probabilities)[:-1]
        return np.asarray(self.values, dtype=float)[np.searchsorted(edges, u, side="right")]

    def scaled(self, factor: float) -> Discrete:
        return Discrete(dist="discrete", values=[v * factor for v in self.values], probabilities=self.probabilities)


DIST_KINDS = ("fixed", "triangular", "pert", "uniform", "lognormal", "beta", "discrete")

Distribution = Annotated[
    Fixed | Triangular | Pert | Uniform | LogNormal | Beta | Discrete, Field(discriminator="dist")
]


def _coerce_quantity(value: Any) -> Any:
    """Numbers become :class:`Fixed`; mappings go on to the tagged union; anything else is an error."""
    if isinstance(value, _Dist):
        return value
    if isinstance(value, bool):
        raise ValueError(f"must be a number or a distribution (got {value!r})")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number (got {value!r})")
        return {"dist": "fixed", "value": float(value)}
    if isinstance(value, dict):
        if "dist" not in value:
            raise ValueError(
                "a distribution needs a 'dist' key, one of " + ", ".join(DIST_KINDS)
            )
        if value["dist"] not in DIST_KINDS:
            raise ValueError(
                f"unknown dist {value['dist']!r}; expected one of " + ", ".join(DIST_KINDS)
            )
        return value
    raise ValueError(
        f"must be a number or a distribution such as {{dist: triangular, low: .., mode: .., "
        f"high: ..}} (got {value!r})"
    )


Quantity = Annotated[Distribution, BeforeValidator(_coerce_quantity)]
"""A number or a distribution (see module docstring)."""


def check_range(q: _Dist, lo: float, hi: float, *, what: str = "") -> None:
    """Raise ``ValueError`` unless every value ``q`` can produce lies in [lo, hi]."""
    s_lo, s_hi = q.support()
    if s_lo >= lo and s_hi <= hi:
        return
    if hi == math.inf:
        bound = f"must be >= {lo:g}"
    elif lo == -math.inf:
        bound = f"must be <= {hi:g}"
    else:
        bound = f"must be between {lo:g} and {hi:g}"
    got = f"{q.value:g}" if isinstance(q, Fixed) else f"a {q.dist} reaching {s_lo:g}..{s_hi:g}"
    raise ValueError(f"{what}{bound} (got {got})")


def in_range(lo: float, hi: float = math.inf):
    """An ``AfterValidator`` body that checks a quantity's whole support lies in [lo, hi]."""

    def _check(q: _Dist) -> _Dist:
        check_range(q, lo, hi)
        return q

    return _check
