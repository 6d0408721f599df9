"""Validate a spec against ``archc.schema.json`` and turn every violation into a located error."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from archc.errors import ArchcError, Loc, SchemaError, get_close_matches
from archc.load import LocDict, LocList
from archc.schema.fast import is_valid, schema_doc

__all__ = ["RESERVED_KEYS", "SCHEMA_PATH", "schema_text", "validate"]

SCHEMA_PATH = Path(__file__).with_name("archc.schema.json")
MAX_ERRORS = 20
_IDENT = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"  # compiled where an error needs them (re caches them)
_NODE_NAME = r"^([A-Za-z_][A-Za-z0-9_]{0,63}|0|[1-9][0-9]{0,8})$"  # $defs.node_name: numbers too



def schema_text() -> str:
    return SCHEMA_PATH.read_text(encoding="utf-8")


def _reserved_keys() -> frozenset[str]:
    """Keys that structure nodes and cannot name a block argument: the schema's own list."""
    args = schema_doc()["$defs"]["block"]["properties"]["args"]  # the parse the fast check uses too
    return frozenset(args["propertyNames"]["not"]["enum"])


RESERVED_KEYS = _reserved_keys()  # one list: the schema, these messages and resolve's node keys


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_text()))


@lru_cache(maxsize=1)
def _described_patterns() -> tuple[dict[str, Any], ...]:
    """Patterned strings whose description says what fits (instead of the hint for names)."""
    schema = json.loads(schema_text())
    ref = schema["properties"]["reference"]["oneOf"][1]["properties"]
    ignore = schema["$defs"]["lint"]["properties"]["ignore"]
    return (schema["$defs"]["arg_type"], ref["torchvision"], ref["timm"], ignore, ignore["propertyNames"],
            schema["$defs"]["lint_reason"])


def _walk(data: Any, path: list[Any]) -> tuple[Any, Loc | None]:
    """Follow a JSON path into the loaded data: (the value, its location)."""
    loc, node = getattr(data, "loc", None), data
    for key in path:
        if isinstance(node, LocDict) and key in node:
            loc, node = node.val_locs.get(key, loc), node[key]
        elif isinstance(node, LocList) and isinstance(key, int) and key < len(node):
            loc, node = node.locs[key], node[key]
        else:
            break
    return node, loc


def _reserved(key: str, holder: Any, where: str, loc: Loc | None) -> SchemaError:
    kloc = holder.key_locs.get(key, loc) if isinstance(holder, LocDict) else loc
    return SchemaError(f"'{key}' is a reserved key and cannot name an argument in {where}", kloc,
                       hint=f"rename it, e.g. '{key}_{'ch' if key == 'out' else 'arg'}' (reserved: "
                            f"{', '.join(sorted(RESERVED_KEYS))}; they structure nodes: `out` picks a group's output)")


def _leaf(err: Any) -> Any:
    """Descend into anyOf/oneOf to the branch that fits the value's type, preferring deeper errors."""
    while err.context:
        fitting = [e for e in err.context if e.validator != "type" or len(e.absolute_path) > len(err.absolute_path)]
        if not fitting:
            break
        err = max(fitting, key=lambda e: len(e.absolute_path))
    return err


def _name_hint(err: Any, inst: Any) -> str:
    """Names are identifiers; where an expression is allowed, a bare name probably lost its `${...}`."""
    names = "names are letters, digits and _, not starting with a digit"
    schema = err.schema if isinstance(err.schema, dict) else {}
    takes_expr = schema.get("pattern") == r"\$\{" or {"$ref": "#/$defs/expr"} in (schema.get("anyOf") or [])
    if takes_expr and isinstance(inst, str) and "${" not in inst:
        return f'expressions need ${{...}}: write "${{{inst}}}"'
    return names


def _to_error(err: Any, data: Any) -> SchemaError:
    err = _leaf(err)
    path = list(err.absolute_path)
    holder, loc = _walk(data, path)
    where = ".".join(str(p) for p in path) or "the spec"
    inst = err.instance
    if err.validator == "additionalProperties" and isinstance(inst, LocDict):
        allowed = list(err.schema.get("properties", {}))
        extra = [k for k in inst if k not in allowed]
        key = extra[0] if extra else "?"
        close = get_close_matches(key, allowed, 1)
        return SchemaError(f"unknown key '{key}' in {where}", inst.key_locs.get(key, loc),
                           hint=f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}")
    if err.validator == "not" and isinstance(inst, str) and inst in RESERVED_KEYS:
        return _reserved(inst, holder, where, loc)
    if err.validator == "required":
        return SchemaError(f"{where}: {err.message}", loc)
    if err.validator == "propertyNames" and isinstance(inst, LocDict):
        nodes = err.validator_value == {"$ref": "#/$defs/node_name"}
        bad = [k for k in inst if not re.match(_NODE_NAME if nodes else _IDENT, k)]
        if not bad:
            return _reserved(next((k for k in inst if k in RESERVED_KEYS), "?"), inst, where, loc)
        return SchemaError(f"'{bad[0]}' is not a valid name in {where}", inst.key_locs.get(bad[0], loc),
                           hint="names are letters, digits and _, not starting with a digit"
                                + (", or a plain number without a leading zero (0, 12)" if nodes else ""))
    if err.validator == "pattern" and isinstance(holder, LocDict) and inst in holder.key_locs:  # a key (propertyNames)
        numbers = err.schema == json.loads(schema_text())["$defs"]["node_name"]
        return SchemaError(f"'{inst}' is not a valid name in {where}", holder.key_locs[inst],
                           hint="names are letters, digits and _ (at most 64), not starting with a digit"
                                + (", or a plain number without a leading zero (0, 12)" if numbers else ""))
    if err.validator == "pattern" and err.schema in _described_patterns():
        return SchemaError(f"'{inst}' is not valid for {where}", loc, hint=err.schema["description"])
    if err.validator == "pattern" or (err.validator == "anyOf" and isinstance(inst, str)):
        return SchemaError(f"'{inst}' is not a valid name or value for {where}", loc, hint=_name_hint(err, inst))
    if err.validator == "enum" and isinstance(inst, str):
        choices = [str(c) for c in err.validator_value]
        close = get_close_matches(inst, choices, 1)
        return SchemaError(f"'{inst}' is not valid for {where}", loc,
                           hint=(f"did you mean '{close[0]}'? " if close else "") + f"one of: {', '.join(choices)}")
    if err.validator == "type" and err.schema in _described_patterns():  # e.g. a lint silence without a reason
        return SchemaError(f"{where} should be {err.validator_value}, got {inst!r}"[:300], loc,
                           hint=err.schema["description"])
    if err.validator == "type":
        return SchemaError(f"{where} should be {err.validator_value}, got {type(inst).__name__} {inst!r}"[:300], loc)
    return SchemaError(f"{where}: {err.message}"[:300], loc)


def validate(data: Any, file: str = "<spec>") -> None:
    """Raise the first schema violations (up to MAX_ERRORS, joined) as one :class:`SchemaError`."""
    if not isinstance(data, LocDict):
        raise SchemaError("a spec must be a YAML mapping with at least `name` and `nodes`",
                          getattr(data, "loc", None) or Loc(file, 1, 1))
    if is_valid(data):  # compiled once (fast.py); jsonschema only for the errors of an invalid spec
        return
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return
    found: list[ArchcError] = [_to_error(e, data) for e in errors[:MAX_ERRORS]]
    found[0].others = found[1:]
    raise found[0]
