"""A yes/no check of a loaded spec against ``archc.schema.json``, compiled once per process into closures.

Almost every spec a command reads is valid, and jsonschema (its import, then its validation) was the
largest fixed cost of `archc check`/`summary`. ``is_valid`` answers for the keywords archc's schema
uses, with jsonschema's Draft 2020-12 semantics; ``validate`` (validate.py) asks it first and runs
jsonschema only on a "no", for the located errors. Only a "yes" must be exact: a "no" merely costs the
slow path, so anything this module does not model (an unknown keyword, a non-string key, a value type
YAML does not produce) is a "no". tests/test_schema_fast.py compares both on every spec in the repository
and on mutated ones. No disk cache: compiling the 17 KB schema takes a few ms, less than reading a cache.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["Unsupported", "compile_schema", "is_valid", "schema_doc"]

Check = Callable[[Any], bool]

# Keywords that never change whether an instance is valid (jsonschema asserts no `format` by default).
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "default", "examples", "format",
                          "markdownDescription", "deprecated", "readOnly", "writeOnly"})


class Unsupported(ValueError):
    """The schema uses a keyword this module does not model (validate.py then always runs jsonschema)."""


def _search(pattern: str) -> Callable[[str], Any]:
    """``re.compile(pattern).search``, compiled on first use: most of the schema's 15 patterns check keys a
    spec seldom has (compiling them all was a tenth of a spec's load)."""
    found: list[Callable[[str], Any]] = []

    def search(text: str) -> Any:
        if not found:
            found.append(re.compile(pattern).search)
        return found[0](text)
    return search


# A conjunction or disjunction of checks (each returns a bool) without a generator for the common short ones:
# the check runs on every value of every spec a command loads.
def _every(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda x: a(x) and b(x)
    if len(checks) == 3:
        a, b, c = checks
        return lambda x: a(x) and b(x) and c(x)
    return lambda x: all(c(x) for c in checks)


def _some(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda x: a(x) or b(x)
    return lambda x: any(c(x) for c in checks)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_TYPES: dict[str, Check] = {
    "null": lambda x: x is None,
    "boolean": lambda x: isinstance(x, bool),
    "integer": lambda x: (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer()),
    "number": _is_number,
    "string": lambda x: isinstance(x, str),
    "array": lambda x: isinstance(x, list),
    "object": lambda x: isinstance(x, dict),
}
_KNOWN = (type(None), bool, int, float, str, list, dict)


def _equal(a: Any, b: Any) -> bool:
    """jsonschema's equality: booleans are not numbers, containers compare item by item."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


class _Compiler:
    """Turns (sub)schemas into checks; `$ref`s are compiled once each, lazily (they may recurse)."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def ref(self, pointer: str) -> Check:
        if not pointer.startswith("#/"):
            raise Unsupported(f"$ref {pointer}")
        if pointer not in self.refs:
            target: Any = self.root
            for part in pointer[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            cell: list[Check] = []
            self.refs[pointer] = lambda x: cell[0](x)  # a recursive $ref reaches this before it is compiled
            cell.append(self.compile(target))
            self.refs[pointer] = cell[0]
        return self.refs[pointer]

    def compile(self, schema: Any) -> Check:
        if schema is True or schema == {}:
            return lambda x: True
        if schema is False:
            return lambda x: False
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r}")
        checks: list[Check] = []
        for key, value in schema.items():
            if key in _ANNOTATIONS or key == "$defs":
                continue
            make = getattr(self, "_" + key.lstrip("$"), None)
            if make is None:
                raise Unsupported(key)
            checks.append(make(value, schema))
        return _every(checks)

    # -- keywords (each gets its value and the whole schema) -----------------------------------------
    def _ref(self, value: str, schema: dict[str, Any]) -> Check:
        return self.ref(value)

    def _type(self, value: str | list[str], schema: dict[str, Any]) -> Check:
        names = [value] if isinstance(value, str) else list(value)
        tests = [_TYPES[n] for n in names]
        return _some(tests)

    def _enum(self, value: list[Any], schema: dict[str, Any]) -> Check:
        if value and all(type(v) is str for v in value):  # _equal to a str: a str equal to it
            names = frozenset(value)
            return lambda x: type(x) is str and x in names
        return lambda x: any(_equal(x, v) for v in value)

    def _const(self, value: Any, schema: dict[str, Any]) -> Check:
        return lambda x: _equal(x, value)

    def _anyOf(self, value: list[Any], schema: dict[str, Any]) -> Check:  # noqa: N802
        return _some([self.compile(s) for s in value])

    def _allOf(self, value: list[Any], schema: dict[str, Any]) -> Check:  # noqa: N802
        return _every([self.compile(s) for s in value])

    def _oneOf(self, value: list[Any], schema: dict[str, Any]) -> Check:  # noqa: N802
        subs = [self.compile(s) for s in value]
        return lambda x: sum(1 for s in subs if s(x)) == 1

    def _not(self, value: Any, schema: dict[str, Any]) -> Check:
        sub = self.compile(value)
        return lambda x: not sub(x)

    def _pattern(self, value: str, schema: dict[str, Any]) -> Check:
        found: list[Callable[[str], Any]] = []  # compiled on first use, as _search, with no call more per value

        def check(x: Any) -> bool:
            if not isinstance(x, str):
                return True
            if not found:
                found.append(re.compile(value).search)
            return found[0](x) is not None
        return check

    def _minLength(self, value: int, schema: dict[str, Any]) -> Check:  # noqa: N802
        return lambda x: not isinstance(x, str) or len(x) >= value

    def _maxLength(self, value: int, schema: dict[str, Any]) -> Check:  # noqa: N802
        return lambda x: not isinstance(x, str) or len(x) <= value

    def _minimum(self, value: float, schema: dict[str, Any]) -> Check:
        return lambda x: not _is_number(x) or x >= value

    def _maximum(self, value: float, schema: dict[str, Any]) -> Check:
        return lambda x: not _is_number(x) or x <= value

    def _exclusiveMinimum(self, value: float, schema: dict[str, Any]) -> Check:  # noqa: N802
        return lambda x: not _is_number(x) or x > value

    def _exclusiveMaximum(self, value: float, schema: dict[str, Any]) -> Check:  # noqa: N802
        return lambda x: not _is_number(x) or x < value

    def _items(self, value: Any, schema: dict[str, Any]) -> Check:
        if "prefixItems" in schema or not isinstance(value, (dict, bool)):
            raise Unsupported("items with prefixItems")
        sub = self.compile(value)
        return lambda x: not isinstance(x, list) or all(sub(i) for i in x)

    def _minItems(self, value: int, schema: dict[str, Any]) -> Check:  # noqa: N802
        return lambda x: not isinstance(x, list) or len(x) >= value

    def _maxItems(self, value: int, schema: dict[str, Any]) -> Check:  # noqa: N802
        return lambda x: not isinstance(x, list) or len(x) <= value

    def _required(self, value: list[str], schema: dict[str, Any]) -> Check:
        return lambda x: not isinstance(x, dict) or all(k in x for k in value)

    def _minProperties(self, value: int, schema: dict[str, Any]) -> Check:  # noqa: N802
        return lambda x: not isinstance(x, dict) or len(x) >= value

    def _maxProperties(self, value: int, schema: dict[str, Any]) -> Check:  # noqa: N802
        return lambda x: not isinstance(x, dict) or len(x) <= value

    def _propertyNames(self, value: Any, schema: dict[str, Any]) -> Check:  # noqa: N802
        sub = self.compile(value)
        return lambda x: not isinstance(x, dict) or all(sub(k) for k in x)

    def _properties(self, value: dict[str, Any], schema: dict[str, Any]) -> Check:
        subs = {k: self.compile(s) for k, s in value.items()}  # a spec's mapping has a few of them: walk its keys
        return lambda x: not isinstance(x, dict) or all(subs[k](v) for k, v in x.items() if k in subs)

    def _patternProperties(self, value: dict[str, Any], schema: dict[str, Any]) -> Check:  # noqa: N802
        subs = [(_search(p), self.compile(s)) for p, s in value.items()]
        return lambda x: not isinstance(x, dict) or all(s(v) for k, v in x.items() for m, s in subs if m(k))

    def _additionalProperties(self, value: Any, schema: dict[str, Any]) -> Check:  # noqa: N802
        sub = self.compile(value)
        known = frozenset(schema.get("properties", {}))
        patterns = [_search(p) for p in schema.get("patternProperties", {})]

        def check(x: Any) -> bool:
            if not isinstance(x, dict):
                return True
            return all(sub(v) for k, v in x.items() if k not in known and not any(m(k) for m in patterns))
        return check


def _plain(x: Any) -> bool:
    """Whether a loaded value holds only JSON types with string keys (else: not modelled, answer no)."""
    stack = [x]
    while stack:
        v = stack.pop()
        if not isinstance(v, _KNOWN) or (isinstance(v, float) and v != v):
            return False
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                return False
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return True


def compile_schema(schema: dict[str, Any]) -> Check:
    """A check for ``schema`` (raises :class:`Unsupported` for keywords it does not model)."""
    return _Compiler(schema).compile(schema)


@lru_cache(maxsize=1)
def schema_doc() -> dict[str, Any]:
    """``archc.schema.json``, read and parsed once per process (shared: never change what it returns)."""
    doc: dict[str, Any] = json.loads(Path(__file__).with_name("archc.schema.json").read_text(encoding="utf-8"))
    return doc


@lru_cache(maxsize=1)
def _check() -> Check | None:
    try:
        return compile_schema(schema_doc())
    except Unsupported:
        return None  # the schema grew a keyword modelled nowhere here: jsonschema decides every time


def is_valid(data: Any) -> bool:
    """True only when ``data`` satisfies archc's schema (False: not valid, or not sure)."""
    check = _check()
    return check is not None and _plain(data) and check(data)
