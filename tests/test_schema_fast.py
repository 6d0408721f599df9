"""The compiled schema check (archc/schema/fast.py) against jsonschema: a "valid" must always be right."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from archc.errors import ArchcError
from archc.load import LocDict, LocList, load_file
from archc.schema import schema_text
from archc.schema.fast import Unsupported, compile_schema, is_valid

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(p for folder in ("specs", "tests") for p in (ROOT / folder).rglob("*.yaml"))
SCHEMA = json.loads(schema_text())
REFERENCE = Draft202012Validator(SCHEMA)
STAND_INS: list[Any] = [None, True, False, 0, 1, -1, 2.5, "x", "${a}", "relu", "3x", [], [1], {}, {"op": "relu"}]


def _loaded() -> list[tuple[str, Any]]:
    out = []
    for p in FILES:
        try:
            out.append((str(p.relative_to(ROOT)), load_file(p)))
        except (ArchcError, RecursionError):
            continue  # not YAML archc loads: the schema never sees it
    return out


LOADED = _loaded()


def _agree(data: Any) -> tuple[bool, bool]:
    return is_valid(data), REFERENCE.is_valid(data)


def test_the_shipped_schema_compiles():
    compile_schema(SCHEMA)  # an Unsupported here would send every spec down the slow path


def test_every_spec_in_the_repository_gets_jsonschemas_answer():
    assert len(LOADED) > 150
    wrong = [name for name, data in LOADED if _agree(data)[0] != _agree(data)[1]]
    assert wrong == []
    assert sum(REFERENCE.is_valid(d) for _, d in LOADED) > 100  # most are valid: the fast path is taken


def _positions(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _positions(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _positions(v, (*path, i))
    return out


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = LocDict(value.loc)
        for k, v in value.items():
            out[k] = _replaced(v, rest, new) if k == head else v
        return out
    copy = LocList(value)
    copy[head] = _replaced(value[head], rest, new)
    return copy


@pytest.mark.parametrize("seed", range(4))
def test_mutated_specs_never_pass_when_jsonschema_refuses(seed):
    """Values replaced by others of every type, keys added: the fast check says valid only when jsonschema does."""
    rng = random.Random(seed)
    valid = [(n, d) for n, d in LOADED if REFERENCE.is_valid(d)]
    checked = refused = 0
    for name, data in rng.sample(valid, 40):
        for path in rng.sample(_positions(data), min(25, len(_positions(data)))):
            new = rng.choice(STAND_INS)
            if path and isinstance(path[-1], str) and rng.random() < 0.3:  # a new key beside this one
                path = (*path[:-1], rng.choice(["nodes", "op", "in", "repeat", "zz", "args", "when", "out"]))
            try:
                mutated = _replaced(data, path, new) if path[-1:] == () or _has(data, path) else _added(data, path, new)
            except (KeyError, IndexError, TypeError, AttributeError):
                continue
            fast, slow = _agree(mutated)
            assert not fast or slow, f"{name} at {path} = {new!r}: fast says valid, jsonschema does not"
            assert fast == slow, f"{name} at {path} = {new!r}: jsonschema accepts, fast refuses"
            checked += 1
            refused += not slow
    assert checked > 300 and refused > 60, (checked, refused)


def _has(data: Any, path: tuple[Any, ...]) -> bool:
    for key in path:
        if isinstance(data, dict) and key in data or isinstance(data, list) and isinstance(key, int):
            data = data[key]
        else:
            return False
    return True


def _added(data: Any, path: tuple[Any, ...], new: Any) -> Any:
    parent_path, key = path[:-1], path[-1]
    parent = data
    for k in parent_path:
        parent = parent[k]
    if not isinstance(parent, dict):
        raise TypeError
    grown = LocDict(parent.loc)
    grown.update(parent)
    grown[key] = new
    return _replaced(data, parent_path, grown)


def test_what_it_does_not_model_is_a_no():
    with pytest.raises(Unsupported):
        compile_schema({"if": {"type": "string"}, "then": {"minLength": 2}})
    check = compile_schema({"type": "object", "properties": {"a": {"type": "integer"}}})
    assert check({"a": 1}) and check({"a": 2.0}) and not check({"a": True}) and not check({"a": "1"})
    assert not is_valid(LocDict(None)) or REFERENCE.is_valid(LocDict(None))
    data = next(d for _, d in LOADED if REFERENCE.is_valid(d))
    with_int_key = _added(data, ("params", 1), 2) if "params" in data else _added(data, (1,), 2)
    assert not is_valid(with_int_key)  # a non-string key: not modelled, jsonschema decides
