"""Reading and writing deal files, and turning validation failures into readable messages.

Every way a deal file can be wrong ends in one :class:`DealError` whose ``problems`` are lines
of the form ``candidates[2].phases.phase2.success_probability: must be between 0 and 1 (got 1.4)``.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dealmodel.distributions import DIST_KINDS
from dealmodel.schema import TERM_KINDS, Deal

_UNION_TAGS = set(DIST_KINDS) | set(TERM_KINDS)


class DealError(ValueError):
    """A deal could not be read or is not valid. ``problems`` lists each problem on its own."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))


# --------------------------------------------------------------------------- messages


def _all_field_names(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(field.alias or name)
        for sub in _nested_models(field.annotation):
            names |= _all_field_names(sub, seen)
    return names


def _nested_models(annotation: Any) -> Iterable[type[BaseModel]]:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _nested_models(arg)


_FIELD_NAMES: set[str] | None = None


def _field_names() -> list[str]:
    global _FIELD_NAMES
    if _FIELD_NAMES is None:
        _FIELD_NAMES = _all_field_names(Deal)
    return sorted(_FIELD_NAMES)


def _loc_to_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _UNION_TAGS or "[" in str(part):
            continue  # tagged-union branch names are not part of the user's path
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(value: Any) -> str:
    text = repr(value) if not isinstance(value, dict | list) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(err: dict[str, Any]) -> tuple[str, str]:
    """The user's path and a plain message for one pydantic error."""
    path = _loc_to_path(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = err.get("input")
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        close = difflib.get_close_matches(key, _field_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return path, f"unknown field{hint}"
    if kind == "missing":
        return path, "required field is missing"
    if kind == "value_error":
        return path, str(ctx.get("error", err["msg"]))
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bounds = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}
        limit = next(iter(ctx.values()))
        return path, f"must be {bounds[kind]} {limit} (got {_describe(got)})"
    if kind == "literal_error":
        return path, f"must be one of {ctx.get('expected')} (got {_describe(got)})"
    if kind == "union_tag_invalid":
        return path, f"unknown kind {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return path, f"needs a '{ctx.get('discriminator', 'kind').strip(chr(39))}' key"
    if kind in ("float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"):
        return path, f"must be a number (got {_describe(got)})"
    if kind in ("string_type",):
        return path, f"must be text (got {_describe(got)})"
    if kind in ("bool_type", "bool_parsing"):
        return path, f"must be true or false (got {_describe(got)})"
    if kind in ("list_type",):
        return path, f"must be a list (got {_describe(got)})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return path, f"must be a mapping of fields (got {_describe(got)})"
    if kind == "too_short":
        return path, f"must not be empty (got {_describe(got)})"
    if kind == "string_pattern_mismatch" and path == "currency":
        return path, f"must be a three-letter ISO code such as USD (got {_describe(got)})"
    return path, f"{err['msg'][:1].lower()}{err['msg'][1:]} (got {_describe(got)})"


def format_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem: ``path: message``. Cross-field problems are split into their own lines."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        path, message = _message(err)
        for part in message.split("\n"):
            # Cross-field validators prefix each problem with the field it concerns.
            head, sep, tail = part.partition(": ")
            if sep and head and " " not in head and (head[0].isalpha()):
                joined = f"{path}.{head}" if path else head
                line = f"{joined}: {tail}"
            else:
                line = f"{path}: {part}" if path else part
            if line not in lines:
                lines.append(line)
    return lines


# --------------------------------------------------------------------------- load / save


def parse_deal(data: Any, source: str = "<deal>") -> Deal:
    """Validate already-parsed data (a dict) into a :class:`Deal`, or raise :class:`DealError`."""
    if data is None:
        raise DealError(source, ["the file is empty: expected a deal (a mapping with name, parties, candidates, ...)"])
    if not isinstance(data, dict):
        raise DealError(
            source, [f"the top level must be a mapping of deal fields, not a {type(data).__name__}"]
        )
    try:
        return Deal.model_validate(data)
    except ValidationError as exc:
        raise DealError(source, format_validation_error(exc)) from None


def parse_deal_text(text: str, source: str = "<deal>", *, fmt: str | None = None) -> Deal:
    """Parse YAML or JSON text (``fmt`` 'yaml' or 'json'; guessed from ``source`` when None)."""
    if fmt is None:
        fmt = "json" if source.lower().endswith(".json") else "yaml"
    try:
        data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise DealError(source, [f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DealError(source, [f"invalid YAML{where}: {problem}"]) from None
    return parse_deal(data, source)


def load_deal(path: str | os.PathLike[str]) -> Deal:
    """Read and validate a deal file (YAML with ``yaml.safe_load``, or JSON by the ``.json`` suffix)."""
    p = Path(path)
    source = str(path)
    if not p.exists():
        raise DealError(source, ["file not found"])
    if p.is_dir():
        raise DealError(source, ["is a directory, not a deal file"])
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DealError(source, [f"cannot read the file: {exc.strerror}"]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DealError(source, ["not a text file (expected UTF-8 YAML or JSON)"]) from None
    if not text.strip():
        raise DealError(source, ["the file is empty: expected a deal (a mapping with name, parties, candidates, ...)"])
    return parse_deal_text(text, source, fmt="json" if p.suffix.lower() == ".json" else "yaml")


DEAL_SUFFIXES = (".yaml", ".yml", ".json")


def expand_files(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Deal files named directly, and every .yaml/.yml/.json file of a named directory (sorted)."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out += sorted(str(f) for f in path.iterdir() if f.is_file() and f.suffix.lower() in DEAL_SUFFIXES)
        else:
            out.append(str(path))
    return out


def deal_to_dict(deal: Deal) -> dict[str, Any]:
    """Plain data for a deal (fixed numbers as numbers, defaults left out where unchanged)."""
    return deal.model_dump(mode="json", by_alias=True, exclude_none=True)


def dump_deal(deal: Deal, fmt: str = "yaml") -> str:
    data = deal_to_dict(deal)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it over: no half-written file, ever."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_deal(deal: Deal, path: str | os.PathLike[str]) -> None:
    """Write a deal as YAML (or JSON by the ``.json`` suffix), atomically."""
    fmt = "json" if Path(path).suffix.lower() == ".json" else "yaml"
    atomic_write(path, dump_deal(deal, fmt))


def deal_json_schema() -> dict[str, Any]:
    """JSON Schema for deal files (numbers allowed wherever a distribution is)."""
    schema = Deal.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "dealmodel deal file"

    def visit(node: Any) -> Any:
        if isinstance(node, dict):
            disc = node.get("discriminator")
            if isinstance(disc, dict) and disc.get("propertyName") == "dist":
                return {"anyOf": [{"type": "number"}, node]}
            return {k: visit(v) for k, v in node.items()}
        if isinstance(node, list):
            return [visit(v) for v in node]
        return node

    return visit(schema)
