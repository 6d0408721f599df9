"""A strict YAML reader built on the parser's event stream.

It composes the document itself instead of trusting PyYAML's composer, so that it can refuse
what PyYAML accepts silently: tags, anchors and aliases, duplicate keys, YAML 1.1 surprises
(`no`, `on`, `010`, `1:30`, dates), NaN/inf, numbers out of the expression language's bounds
(`1e999`, 5,000-digit integers), deep nesting and huge files. Values keep their source positions
for error messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from archc.errors import Loc, YamlError
from archc.expr import number_problem

# PyYAML's pure-Python Reader, which archc never runs (the C parser reads the text), compiles this negated
# Unicode class when yaml is imported: a third of the import (~4 ms of every command's start). Written as the
# few ranges it leaves out, the same class compiles in a tenth of that, so that Pattern is put in `re`'s cache
# under PyYAML's text before the import (tests/test_yaml_import.py: both match the same code points). Where
# `re` keeps its cache otherwise, nothing is put there and PyYAML compiles its own.
_YAML_NON_PRINTABLE = "[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010ffff]"
_NON_PRINTABLE = "[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x84\x86-\x9F\uD800-\uDFFF\uFFFE\uFFFF]"


def _seed_non_printable() -> None:
    cache = getattr(re, "_cache", None)
    key = (str, _YAML_NON_PRINTABLE, 0)  # re._compile's key: (type, pattern, flags)
    if isinstance(cache, dict) and key not in cache:
        cache[key] = re.compile(_NON_PRINTABLE)


_seed_non_printable()

import yaml  # noqa: E402  (after the seed)

__all__ = ["LocDict", "LocList", "load_text", "load_file", "loc_of", "MAX_BYTES", "MAX_DEPTH"]

MAX_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_EVENTS = 500_000

_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)")
_HEX = re.compile(r"0x[0-9a-fA-F]+|0o[0-7]+")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+\.[0-9]*|[0-9]+)([eE][-+]?[0-9]+)?")
_NONFINITE = re.compile(r"[-+]?\.(nan|NaN|NAN|inf|Inf|INF)")
_NULL = {"", "~", "null", "Null", "NULL"}
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


class LocDict(dict):  # type: ignore[type-arg]
    """A mapping that remembers the position of itself, of each key and of each value."""

    loc: Loc
    key_locs: dict[str, Loc]
    val_locs: dict[str, Loc]

    def __init__(self, loc: Loc) -> None:
        super().__init__()
        self.loc = loc
        self.key_locs = {}
        self.val_locs = {}


class LocList(list):  # type: ignore[type-arg]
    """A sequence that remembers the position of itself and of each item."""

    loc: Loc
    locs: list[Loc]

    def __init__(self, loc: Loc) -> None:
        super().__init__()
        self.loc = loc
        self.locs = []


def loc_of(container: Any, key: Any, fallback: Loc | None = None) -> Loc | None:
    """Position of ``container[key]``'s value, or the best known fallback."""
    if isinstance(container, LocDict):
        return container.val_locs.get(key, container.loc)
    if isinstance(container, LocList) and isinstance(key, int) and 0 <= key < len(container.locs):
        return container.locs[key]
    return getattr(container, "loc", fallback)


def _scalar(value: str, plain: bool, loc: Loc) -> Any:
    if not plain:
        return value
    if value in _NULL:
        return None
    if value in _BOOL:
        return _BOOL[value]
    if _NONFINITE.fullmatch(value):
        raise YamlError(f"'{value}' is not a finite number", loc, hint="NaN and infinity are not allowed in specs")
    if _LEADING_ZERO.fullmatch(value):
        raise YamlError(f"ambiguous number '{value}' (octal in YAML 1.1, decimal in 1.2)", loc,
                        hint="drop the leading zero, or quote it if you meant a string")
    if _INT.fullmatch(value) or _HEX.fullmatch(value) or _FLOAT.fullmatch(value):
        return _number(value, loc)
    return value


def _number(text: str, loc: Loc) -> int | float:
    """A numeric scalar, bounded like every expression value (digits counted before converting)."""
    digits = text.replace("_", "")
    if _FLOAT.fullmatch(text) and not _INT.fullmatch(text):
        value: int | float = float(digits)
    elif len(digits.lstrip("+-0xo")) > 24:  # longer than any 64-bit integer, in any base
        value = 2 ** 65
    else:
        value = int(digits, 0) if _HEX.fullmatch(text) else int(digits)
    problem = number_problem(value)
    if problem:
        shown = text if len(text) <= 30 else f"{text[:24]}... ({len(text)} characters)"
        raise YamlError(f"number '{shown}' is out of range ({problem})", loc,
                        hint="numbers in a spec are finite, at most 1e18 in size, and integers at most 64 bits")
    return value


class _Composer:
    def __init__(self, events: Iterator[Any], file: str) -> None:
        self.events = events
        self.file = file
        self.count = 0

    def loc(self, event: Any) -> Loc:
        return Loc(self.file, event.start_mark.line + 1, event.start_mark.column + 1)

    def next(self) -> Any:
        self.count += 1
        if self.count > MAX_EVENTS:
            raise YamlError(f"document too large (over {MAX_EVENTS} YAML events)", None)
        return next(self.events)

    def check(self, event: Any, depth: int) -> None:
        """Refuse aliases, anchors, tags and deep nesting (the event's Loc is made only for the error)."""
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise YamlError("YAML anchors and aliases are not allowed", self.loc(event),
                            hint="define a reusable block under `blocks:` instead")
        tag = getattr(event, "tag", None)
        implicit = getattr(event, "implicit", True)
        if tag is not None and not (implicit is True or (isinstance(implicit, tuple) and implicit[0])):
            raise YamlError(f"YAML tags are not allowed ('{tag}')", self.loc(event), hint="remove the tag")
        if depth > MAX_DEPTH:
            raise YamlError(f"nesting deeper than {MAX_DEPTH} levels", self.loc(event))

    def node(self, event: Any, depth: int, loc: Loc | None = None) -> Any:
        """The value that starts with ``event`` (``loc``: its position, when the caller has made it)."""
        self.check(event, depth)
        if loc is None:
            loc = self.loc(event)
        if isinstance(event, yaml.ScalarEvent):
            return _scalar(event.value, not event.style and event.implicit[0], loc)
        if isinstance(event, yaml.SequenceStartEvent):
            seq = LocList(loc)
            while not isinstance(ev := self.next(), yaml.SequenceEndEvent):
                item = self.loc(ev)
                seq.locs.append(item)
                seq.append(self.node(ev, depth + 1, item))
            return seq
        if isinstance(event, yaml.MappingStartEvent):
            return self.mapping(loc, depth)
        raise YamlError(f"unexpected YAML element {type(event).__name__}", loc)

    def mapping(self, loc: Loc, depth: int) -> LocDict:
        out = LocDict(loc)
        while not isinstance(ev := self.next(), yaml.MappingEndEvent):
            self.check(ev, depth + 1)
            kloc = self.loc(ev)
            if not isinstance(ev, yaml.ScalarEvent):
                raise YamlError("mapping keys must be plain names", kloc)
            key = ev.value
            if key in out:
                first = out.key_locs[key]
                raise YamlError(f"duplicate key '{key}' (first defined at line {first.line})", kloc,
                                hint="YAML would silently keep the last one; remove or rename one of them")
            val_ev = self.next()
            out.key_locs[key] = kloc
            out.val_locs[key] = vloc = self.loc(val_ev)
            out[key] = self.node(val_ev, depth + 1, vloc)
        return out

    def document(self) -> Any:
        ev = self.next()  # StreamStart
        ev = self.next()
        if isinstance(ev, yaml.StreamEndEvent):
            return None
        data = self.node(self.next(), 1)
        self.next()  # DocumentEnd
        ev = self.next()
        if not isinstance(ev, yaml.StreamEndEvent):
            raise YamlError("a spec file holds exactly one YAML document", self.loc(ev))
        return data


def _indent_tab(text: str, line: int) -> tuple[int, int] | None:
    """(line, column), 0-based, of a tab in the indentation of line ``line`` (where YAML failed), if any."""
    lines = text.splitlines()
    if line >= len(lines):
        return None
    indent = lines[line][:len(lines[line]) - len(lines[line].lstrip(" \t"))]
    return (line, indent.index("\t")) if "\t" in indent else None


def load_text(text: str, file: str = "<string>") -> Any:
    """Parse one YAML document strictly; raise :class:`YamlError` with a location on any problem.

    A text parsed lately under the same name is not parsed again: the result is a fresh copy of
    the one kept (callers may change what they get), so it is the same as parsing it."""
    if len(text) > MAX_CACHED:
        return _parse(text, file)
    return _copy(_parse_cached(text, file))


MAX_CACHED = 100_000  # characters of a text kept parsed (a spec is a few thousand)


@lru_cache(maxsize=256)  # every built-in spec and base (~230 files): a pass over the zoo parses each once
def _parse_cached(text: str, file: str) -> Any:
    return _parse(text, file)


def _copy(value: Any) -> Any:
    """A copy of a loaded value: new mappings and lists (with their positions); scalars are shared."""
    if isinstance(value, LocDict):
        out = LocDict(value.loc)
        out.key_locs, out.val_locs = dict(value.key_locs), dict(value.val_locs)
        for k, v in value.items():
            out[k] = _copy(v)
        return out
    if isinstance(value, LocList):
        seq = LocList(value.loc)
        seq.locs = list(value.locs)
        seq.extend(_copy(v) for v in value)
        return seq
    return value


def _parse(text: str, file: str) -> Any:
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise YamlError(f"file larger than {MAX_BYTES} bytes", Loc(file, 1, 1))
    try:
        return _Composer(yaml.parse(text, Loader=_Parser), file).document()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        loc = Loc(file, mark.line + 1, mark.column + 1) if mark else Loc(file, 1, 1)
        tab = _indent_tab(text, mark.line if mark else 0)
        if tab is not None:
            raise YamlError("tabs are not allowed in YAML indentation", Loc(file, tab[0] + 1, tab[1] + 1),
                            hint="indent with spaces (the tab shows as '?' above)") from None
        raise YamlError(f"invalid YAML: {e.problem or e.context}", loc) from None
    except yaml.YAMLError as e:
        raise YamlError(f"invalid YAML: {e}", Loc(file, 1, 1)) from None


def load_file(path: str | Path, display: str | None = None) -> Any:
    """Read and parse a spec file; ``display`` is the name used in error messages."""
    p = Path(path)
    name = display or str(p)
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise YamlError(f"file larger than {MAX_BYTES} bytes ({size})", Loc(name, 1, 1))
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise YamlError("file is not valid UTF-8", Loc(name, 1, 1)) from None
    except OSError as e:
        raise YamlError(f"cannot read spec: {e.strerror}", None, hint=f"path: {name}") from None
    return load_text(text, name)
