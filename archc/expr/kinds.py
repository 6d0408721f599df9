"""The value types a block argument may declare (`args: {k: int2}`), checked on resolved values.

Base kinds: int, float, bool, str, list, any, none, int2 (an int or a list of 2 ints), float2 (a
number or a list of 2 numbers), ints (a list of ints), floats (a list of numbers); a kind may join
several with `|` (`float|none`). The names are the ones the block library's primitives use; the
schema's `arg_type` pattern accepts exactly these. bool is never an int or a float here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["KINDS", "describe", "division_hint", "fits"]


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _pair(item: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: item(v) or (isinstance(v, list) and len(v) == 2 and all(map(item, v)))


def _many(item: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(map(item, v))


KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (_int, "an integer"),
    "float": (_num, "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "any": (lambda v: True, "any value"),
    "none": (lambda v: v is None, "null"),
    "int2": (_pair(_int), "an integer or a list of 2 integers"),
    "float2": (_pair(_num), "a number or a list of 2 numbers"),
    "ints": (_many(_int), "a list of integers"),
    "floats": (_many(_num), "a list of numbers"),
}


def _parts(kind: str) -> list[str]:
    parts = kind.split("|")
    unknown = [p for p in parts if p not in KINDS]
    if unknown:
        raise ValueError(f"unknown argument type '{unknown[0]}' in '{kind}' (known: {', '.join(KINDS)})")
    return parts


def fits(kind: str, value: Any) -> bool:
    """Whether ``value`` has type ``kind`` (e.g. ``int2``, ``float|none``); an unknown kind is a ValueError."""
    return any(KINDS[p][0](value) for p in _parts(kind))


def describe(kind: str) -> str:
    """What ``kind`` expects, in words: ``int2|none`` -> 'an integer or a list of 2 integers, or null'."""
    return ", or ".join(KINDS[p][1] for p in _parts(kind))


def division_hint(expected: str, value: Any) -> str | None:
    """A hint when an integer was expected and got a whole float (4.0): `/` always gives a float."""
    items = value if isinstance(value, list) else [value]
    whole = any(isinstance(v, float) and v.is_integer() for v in items)
    if "integer" not in expected or not whole:
        return None
    return "`/` always gives a float (32 / 8 == 4.0): use `//` where a whole number is meant"
