"""Reading and changing one input of a deal by its path, e.g. ``terms[2].tiers[0].rate``.

Deals are frozen: :func:`set_value` returns a new, re-validated deal. Besides field paths, two
kinds of pseudo-parameter move several numbers at once:

* ``scale(KIND)`` multiplies every term of that kind: milestone and upfront amounts, royalty
  rates, service-fee and supply markups, cost-share fractions (1.0 = as written);
* ``all(FIELD)`` sets or scales a program input on every candidate that has it, e.g.
  ``all(phases.phase2.success_probability)``; :func:`scale_all` scales such a field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from dealmodel.distributions import Fixed, Quantity, _Dist
from dealmodel.io import DealError, parse_deal
from dealmodel.schema import Deal, Term

_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
_SCALE = re.compile(r"^scale\((\w+)\)$")
_ALL = re.compile(r"^all\(([\w.\[\]]+)\)$")


class ParameterError(ValueError):
    """A parameter path that does not name a number in the deal."""


def parse_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    pos = 0
    text = path.strip()
    while pos < len(text):
        if text[pos] == ".":
            pos += 1
        m = _TOKEN.match(text, pos)
        if not m:
            raise ParameterError(f"cannot read parameter path {path!r} at {text[pos:]!r}")
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not parts:
        raise ParameterError("empty parameter path")
    return parts


def _data(deal: Deal) -> dict[str, Any]:
    return deal.model_dump(mode="python", by_alias=True, exclude_none=True)


def _walk(data: Any, parts: list[str | int], path: str) -> tuple[Any, str | int]:
    node = data
    for i, key in enumerate(parts[:-1]):
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts[: i + 1]).lstrip(".")
            raise ParameterError(f"{path}: the deal has no {where}") from None
    last = parts[-1]
    try:
        node[last]
    except (KeyError, IndexError, TypeError):
        raise ParameterError(f"{path}: the deal has no such field") from None
    return node, last


def get_value(deal: Deal, path: str) -> Any:
    """The value at ``path``: a float for a plain number, a dict for a distribution."""
    if _SCALE.match(path):
        return 1.0
    m = _ALL.match(path)
    if m:
        values = [get_value(deal, p) for p in _all_paths(deal, m.group(1))]
        return values[0] if values else None
    node, last = _walk(_data(deal), parse_path(path), path)
    return node[last]


def _all_paths(deal: Deal, field: str) -> list[str]:
    out = []
    for i in range(len(deal.candidates)):
        p = f"candidates[{i}].{field}"
        try:
            _walk(_data(deal), parse_path(p), p)
        except ParameterError:
            continue
        out.append(p)
    if not out:
        raise ParameterError(f"all({field}): no candidate has {field}")
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, _Dist):
        return value.model_dump(by_alias=True) if not isinstance(value, Fixed) else value.value
    return value


_TERM = TypeAdapter(Term)


def _set_in_terms(deal: Deal, changes: dict[str, Any]) -> Deal | None:
    """:func:`set_values` where every path is inside an existing term: only the changed terms are
    validated again, then the deal's cross checks run. A solver or a negotiation grid edits terms
    hundreds of times; revalidating the whole program each time was most of their Python time.
    None where this does not apply or anything is wrong (the full path then says what)."""
    edited: dict[int, dict[str, Any]] = {}
    try:
        for path, value in changes.items():
            parts = parse_path(path)
            if len(parts) < 3 or parts[0] != "terms" or not isinstance(parts[1], int) \
                    or not 0 <= parts[1] < len(deal.terms):
                return None
            data = edited.setdefault(parts[1], deal.terms[parts[1]].model_dump(mode="python", by_alias=True,
                                                                                  exclude_none=True))
            node, last = _walk(data, parts[2:], path)
            node[last] = _plain(value)
        terms = list(deal.terms)
        for i, data in edited.items():
            terms[i] = _TERM.validate_python(data)
        return Deal._cross_checks(deal.model_copy(update={"terms": terms}))
    except (ValueError, ParameterError):
        return None


def set_values(deal: Deal, changes: dict[str, Any]) -> Deal:
    """A new deal with each path set to its value (numbers, or distributions as dicts)."""
    fast = _set_in_terms(deal, changes)
    if fast is not None:
        return fast
    data = _data(deal)
    for path, value in changes.items():
        node, last = _walk(data, parse_path(path), path)
        node[last] = _plain(value)
    try:
        return parse_deal(data, source=deal.name)
    except DealError as exc:
        changed = ", ".join(f"{p} = {v}" for p, v in changes.items())
        raise ParameterError(f"setting {changed} makes the deal invalid: " + "; ".join(exc.problems)) from None


def _scaled_number(value: Any, factor: float) -> Any:
    if isinstance(value, dict) and "dist" in value:
        return _QUANTITY.validate_python(value).scaled(factor).model_dump(by_alias=True)
    return value * factor


_QUANTITY = TypeAdapter(Quantity)  # built once: building a validator costs more than validating


def set_value(deal: Deal, parameter: str, x: float) -> Deal:
    """A new deal with ``parameter`` set to ``x`` (for ``scale(KIND)``, scaled by ``x``)."""
    m = _SCALE.match(parameter)
    if m:
        return _scale_kind(deal, m.group(1), x)
    m = _ALL.match(parameter)
    if m:
        return set_values(deal, {p: x for p in _all_paths(deal, m.group(1))})
    return set_values(deal, {parameter: x})


_SCALED_FIELDS = {
    "milestone": ("amount",),
    "upfront": ("amount",),
    "service_fees": ("markup",),
    "supply": ("markup",),
    "cost_share": ("cost_fraction", "profit_fraction"),
}


def _scale_kind(deal: Deal, kind: str, factor: float) -> Deal:
    changes: dict[str, Any] = {}
    found = False
    for t, term in enumerate(deal.terms):
        if term.kind != kind:
            continue
        found = True
        if kind == "royalty":
            for i, tier in enumerate(term.tiers):
                changes[f"terms[{t}].tiers[{i}].rate"] = tier.rate * factor
        else:
            for field in _SCALED_FIELDS.get(kind, ()):
                changes[f"terms[{t}].{field}"] = getattr(term, field) * factor
    if not found:
        raise ParameterError(f"scale({kind}): the deal has no {kind} term")
    return set_values(deal, changes)


def scale_all(deal: Deal, field: str, factor: float, upper: float | None = None) -> Deal:
    """Scale a program input on every candidate that has it, keeping values at most ``upper``.

    ``field`` is relative to a candidate (``commercial.peak_sales``, ``phases.phase3.success_probability``);
    a distribution has every location parameter scaled (then clipped at ``upper``).
    """
    data = _data(deal)
    changes = {}
    for p in _all_paths(deal, field):
        node, last = _walk(data, parse_path(p), p)
        value = _scaled_number(node[last], factor)
        if upper is not None:
            value = _clip(value, upper)
        changes[p] = value
    return set_values(deal, changes)


def _clip(value: Any, upper: float) -> Any:
    if not isinstance(value, dict):
        return min(value, upper)
    out = dict(value)
    for key in ("low", "mode", "high", "median"):
        if key in out:
            out[key] = min(out[key], upper)
    if out.get("dist") in ("triangular", "pert", "uniform") and out["low"] >= out["high"]:
        return out["high"]  # collapsed onto the bound: a fixed number
    return out


@dataclass(frozen=True)
class Parameter:
    """A negotiable number of a deal's terms, with a sensible range for a slider."""

    path: str
    label: str
    value: float
    low: float
    high: float
    step: float
    percent: bool


def term_parameters(deal: Deal) -> list[Parameter]:
    """Every tunable number in the deal's terms: fee markups and shares, amounts, royalty rates."""
    out: list[Parameter] = []
    for t, term in enumerate(deal.terms):
        name = term.label or term.kind.replace("_", " ")
        if term.kind == "royalty":
            for i, tier in enumerate(term.tiers):
                above = f" above {tier.above:,.0f}" if tier.above else ""
                out.append(Parameter(f"terms[{t}].tiers[{i}].rate", f"{name}: rate{above}", tier.rate, 0.0,
                                     max(0.3, round(2 * tier.rate, 2)), 0.005, True))
            continue
        for field, low, high, step, percent in (
            ("markup", -0.5, 1.0, 0.01, True),
            ("at_risk_fraction", 0.0, 1.0, 0.05, True),
            ("success_premium", 0.0, 2.0, 0.05, True),
            ("amount", 0.0, None, 1.0, False),
            ("cost_fraction", 0.0, 1.0, 0.05, True),
            ("profit_fraction", 0.0, 1.0, 0.05, True),
            # CDMO and CRO terms
            ("fee_per_year", 0.0, None, 0.5, False),
            ("notice_years", 0.0, 5.0, 0.25, False),
            ("minimum_commitment", 0.0, None, 1.0, False),
            ("fraction_of_next_phase", 0.0, 1.0, 0.05, True),
            ("fraction", 0.0, 1.0, 0.05, True),
            ("option_fee", 0.0, None, 1.0, False),
            ("exercise_fee", 0.0, None, 1.0, False),
            ("royalty_rate", 0.0, 0.3, 0.005, True),
            ("escalation", 0.0, 0.1, 0.005, True),
        ):
            if field not in type(term).model_fields:
                continue
            value = getattr(term, field)
            if field == "escalation":  # offered only where the contract indexes its prices by a number
                if not value.is_fixed or value.value == 0:
                    continue
                value = value.value
            value = float(value)
            top = high if high is not None else float(max(50.0, round(3 * value, -1)))
            out.append(Parameter(f"terms[{t}].{field}", f"{name}: {field.replace('_', ' ')}", value,
                                 min(low, value), max(top, value), step, percent))
    return out


def changed_inputs(before: Deal, after: Deal) -> list[str]:
    """The inputs that differ between two versions of a deal, as ``path: old → new`` (numbers
    shortened; a changed distribution or block named by its path)."""
    out: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict) and a.get("dist") == b.get("dist"):
            for k in dict.fromkeys([*a, *b]):
                walk(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{path}[{i}]")
        elif a != b:
            if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
                out.append(f"{path}: {a:,.4g} → {b:,.4g}")
            else:
                out.append(f"{path} changed")

    walk(_data(before), _data(after), "")
    return out
