"""Reading and writing deal files, and turning validation failures into readable messages.

Every way a deal file can be wrong ends in one :class:`DealError` whose ``problems`` are lines
of the form ``candidates[2].phases.phase2.success_probability: must be between 0 and 1 (got 1.4)``.
"""

from __future__ import annotations

import difflib
import json
import os
import reprlib
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dealmodel import limits
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


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 50, 50


def _describe(value: Any) -> str:
    """A short rendering of a value for a message: bounded whatever the value's size or depth."""
    text = _SHORT.repr(value)
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


# --------------------------------------------------------------------------- strict parsing


class _Refused(yaml.YAMLError):
    def __init__(self, message: str, mark=None):
        super().__init__(message)
        self.problem, self.problem_mark = message, mark


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that accepts only what a deal file needs.

    Plain JSON types only (an explicit tag such as ``!!float`` or ``!!python/...`` is refused, and
    dates stay text); at most :data:`limits.MAX_ALIASES` aliases, so an alias bomb is refused
    before it expands; nesting at most :data:`limits.MAX_DEPTH` deep; a key given twice in one
    mapping is an error naming the key and both lines.
    """

    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML's own class-level table, copied without timestamps
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > limits.MAX_ALIASES:
                raise _Refused(f"more than {limits.MAX_ALIASES} aliases (*name); write the values out",
                               self.peek_event().start_mark)
            return super().compose_node(parent, index)
        event = self.peek_event()
        tag = getattr(event, "tag", None)
        if tag not in (None, "!"):
            raise _Refused(f"the tag {tag[:40]!r} is not allowed: deal files hold plain numbers, text, true/false, "
                           f"lists and mappings", event.start_mark)
        self._depth += 1
        if self._depth > limits.MAX_DEPTH:
            raise _Refused(f"nested more than {limits.MAX_DEPTH} levels deep", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None and _expanded_size(node) > limits.MAX_NODES:
            raise _Refused(f"the document expands to more than {limits.MAX_NODES:,} values (aliases repeat their "
                           f"target); write a smaller deal", node.start_mark)
        return node

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
                seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:
                raise _Refused("a mapping key must be text or a number", key_node.start_mark) from None
            if first is not None:
                raise _Refused(f"duplicate key {_describe(key)} (first at line {first}); each field may appear once",
                               key_node.start_mark)
        return super().construct_mapping(node, deep)


def _expanded_size(root) -> int:
    """How many values a composed YAML document holds once its aliases are expanded (shared nodes memoised)."""
    size: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        children = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if children_done or not children:
            size[id(node)] = 1 + sum(size[id(c)] for c in children)
            if size[id(node)] > limits.MAX_NODES:
                return size[id(node)]
        else:
            stack.append((node, True))
            stack += [(c, False) for c in children if id(c) not in size]
    return size[id(root)]


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _StrictLoader.construct_yaml_map)


def _depth(data: Any) -> int:
    """Nesting depth of parsed data, without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > limits.MAX_DEPTH:
            return level
        if isinstance(node, dict):
            stack += [(v, level + 1) for v in node.values()]
        elif isinstance(node, list):
            stack += [(v, level + 1) for v in node]
    return deepest


def _json_pairs(text: str):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                needle = json.dumps(key)
                lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
                where = f" (lines {', '.join(map(str, lines[:4]))})" if lines else ""
                raise ValueError(f"duplicate key {_describe(key)}{where}; each field may appear once")
            out[key] = value
        return out

    return hook


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number a deal can hold; use a finite number")


def parse_text(text: str, source: str, fmt: str) -> Any:
    """Parse YAML (strictly, see :class:`_StrictLoader`) or JSON text into plain data, or raise DealError."""
    if fmt == "json":
        try:
            data = json.loads(text, object_pairs_hook=_json_pairs(text), parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise DealError(source, [f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"]) from None
        except ValueError as exc:
            raise DealError(source, [f"invalid JSON: {exc}"]) from None
        except RecursionError:
            raise DealError(source, [f"invalid JSON: nested more than {limits.MAX_DEPTH} levels deep"]) from None
        if _depth(data) > limits.MAX_DEPTH:
            raise DealError(source, [f"invalid JSON: nested more than {limits.MAX_DEPTH} levels deep"])
        return data
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DealError(source, [f"invalid YAML{where}: {str(problem)[:200]}"]) from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise DealError(source, [f"invalid YAML: {str(exc)[:200]}"]) from None
    except RecursionError:
        raise DealError(source, [f"invalid YAML: nested more than {limits.MAX_DEPTH} levels deep"]) from None


def read_text_file(path: str | os.PathLike[str], what: str = "deal file") -> str:
    """A small regular UTF-8 text file's content, or DealError: never reads more than the size limit.

    Devices (/dev/zero), FIFOs and directories are refused without opening them for reading.
    """
    p = Path(path)
    source = str(path)
    try:
        info = p.stat()
    except FileNotFoundError:
        raise DealError(source, ["file not found"]) from None
    except OSError as exc:
        raise DealError(source, [f"cannot read the file: {exc.strerror}"]) from None
    if stat.S_ISDIR(info.st_mode):
        raise DealError(source, [f"is a directory, not a {what}"])
    if not stat.S_ISREG(info.st_mode):
        raise DealError(source, [f"is not a regular file (a device, pipe or socket), not a {what}"])
    if info.st_size > limits.MAX_FILE_BYTES:
        raise DealError(source, [f"the file is {info.st_size / 1e6:.1f} MB; a {what} may be at most "
                                 f"{limits.MAX_FILE_BYTES / 1e6:.0f} MB"])
    try:
        with p.open("rb") as handle:
            raw = handle.read(limits.MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise DealError(source, [f"cannot read the file: {exc.strerror}"]) from None
    if len(raw) > limits.MAX_FILE_BYTES:
        raise DealError(source, [f"the file is larger than {limits.MAX_FILE_BYTES / 1e6:.0f} MB, "
                                 f"the limit for a {what}"])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DealError(source, ["not a text file (expected UTF-8 YAML or JSON)"]) from None


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
    if len(text) > limits.MAX_FILE_BYTES:
        raise DealError(source, [f"the text is {len(text) / 1e6:.1f} MB; a deal may be at most "
                                 f"{limits.MAX_FILE_BYTES / 1e6:.0f} MB"])
    return parse_deal(parse_text(text, source, fmt), source)


def load_deal(path: str | os.PathLike[str]) -> Deal:
    """Read and validate a deal file (YAML with ``yaml.safe_load``, or JSON by the ``.json`` suffix)."""
    p = Path(path)
    source = str(path)
    text = read_text_file(p)
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


def file_stem(name: str) -> str:
    """A deal's name as a portable file name: lower-case ASCII letters, digits and hyphens."""
    import re
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return stem[:80] or "deal"


def deal_to_dict(deal: Deal) -> dict[str, Any]:
    """Plain data for a deal (fixed numbers as numbers, defaults left out where unchanged)."""
    return deal.model_dump(mode="json", by_alias=True, exclude_none=True)


# libyaml's emitter where PyYAML has it: the same text as the pure-Python one (checked on every sample deal
# by tests/test_deal_files.py), four times faster -- the app writes the edited deal on every rerun
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_deal(deal: Deal, fmt: str = "yaml") -> str:
    data = deal_to_dict(deal)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=100)


# libyaml's emitter where PyYAML has it: the same text as the pure-Python one (checked on every sample deal
# by tests/test_io.py), four times faster -- the app writes the edited deal on every rerun
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _creation_mode() -> int:
    """The mode a new file gets under the process's umask (0644 under the usual 022)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def publish(tmp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Give a finished temporary file the umask's mode and rename it over ``target`` (atomic)."""
    if Path(target).is_dir():
        raise IsADirectoryError(21, "is a directory", str(target))
    os.chmod(tmp, _creation_mode())
    os.replace(tmp, target)


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it over: no half-written file, ever."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(21, "is a directory", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        publish(tmp, target)
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
