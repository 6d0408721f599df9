"""Lints of the spec as written (W008-W011: definitions nothing uses, constant `when:`) and the silences
(`lint: {ignore: {CODE: reason}}`); lint.py runs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from archc.analyze.lint_codes import LintWarning
from archc.errors import ArchcError, Loc
from archc.expr import is_expr, parse
from archc.ir import Graph
from archc.load import LocDict, LocList

if TYPE_CHECKING:
    from archc.resolve.spec import SpecSource

__all__ = ["SpecScan", "names_read", "silences", "spec_scan", "unsilenced"]


# -- W008-W010: definitions nothing uses -------------------------------------------------------
def _walk(value: Any) -> Iterator[Any]:
    """Every scalar and mapping inside a loaded value (mappings first, then their values)."""
    stack = [value]
    while stack:
        v = stack.pop()
        yield v
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


@dataclass
class SpecScan:
    """What the lints read of a loaded spec, from one walk (``spec_scan``) instead of one per lint."""

    exprs: list[str] = field(default_factory=list)  # the strings holding a ``${...}``
    strings: set[str] = field(default_factory=set)  # the plain strings
    whens: list[LocDict] = field(default_factory=list)  # the mappings with a `when:`, in ``_walk``'s order
    silencing: list[LocDict] = field(default_factory=list)  # the mappings with a `lint:`


def spec_scan(data: Any) -> SpecScan:
    """Walk a loaded value once, in ``_walk``'s order (W011 is reported in it)."""
    scan = SpecScan()
    stack = [data]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if "${" in v:  # is_expr
                scan.exprs.append(v)
            else:
                scan.strings.add(v)
        elif isinstance(v, dict):
            if isinstance(v, LocDict):
                if "when" in v:
                    scan.whens.append(v)
                if "lint" in v:
                    scan.silencing.append(v)
            stack += v.values()
        elif isinstance(v, list):
            stack += v
    return scan


@lru_cache(maxsize=4096)
def _expr_names(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """(names read, string constants) of every ``${...}`` in a spec string; ({}, {}) if it does not parse.
    Kept per text: a spec's expressions are the same from one edit to the next."""
    names: set[str] = set()
    consts: set[str] = set()
    for body in text.split("${")[1:]:
        try:
            tree = parse(body.split("}", 1)[0])
        except ArchcError:
            continue
        stack: list[Any] = [tree]
        while stack:
            t = stack.pop()
            if isinstance(t, tuple) and len(t) == 2 and t[0] in ("name", "const") and isinstance(t[1], str):
                (names if t[0] == "name" else consts).add(t[1])
            elif isinstance(t, tuple):
                stack.extend(t)
    return frozenset(names), frozenset(consts)


def names_read(value: Any, scan: SpecScan | None = None) -> tuple[set[str], set[str]]:
    """(names read by expressions, plain strings and string constants) anywhere inside a value (``scan``: its
    ``spec_scan``, when already made)."""
    scan = scan if scan is not None else spec_scan(value)
    names: set[str] = set()
    strings = set(scan.strings)
    for text in set(scan.exprs):
        n, c = _expr_names(text)
        names |= n
        strings |= c
    return names, strings


def _unused(source: SpecSource, scan: SpecScan) -> list[LintWarning]:
    """W008-W010 for what this file defines (not a base or an import: their own check reports them);
    ``scan``: the spec's ``spec_scan``."""
    data = source.data
    top = source.top if source.top is not None else data  # written here (a param set here that nothing reads too)
    here = top.loc.file
    names, strings = names_read(data, scan)
    names |= {v for v in data.get("input") or [] if isinstance(v, str)}  # input: [3, H, W] reads params H, W
    out = []
    params = top.get("params")
    merged = data.get("params")
    if isinstance(params, LocDict):  # `p: null` under `extends:` deletes an inherited param: nothing to read
        out += [LintWarning("W008", f"param '{p}' is never read", loc, hint=f"delete it, or read it as ${{{p}}}")
                for p, loc in params.key_locs.items() if loc.file == here and p not in names
                and not (params[p] is None and isinstance(merged, LocDict) and p not in merged)]
    blocks = top.get("blocks")
    every = data.get("blocks")
    if isinstance(blocks, LocDict):
        for b, bdef in blocks.items():
            if blocks.key_locs[b].file != here:
                continue
            if b not in strings:
                out.append(LintWarning("W009", f"block '{b}' is never used", blocks.key_locs[b],
                                       hint=f"use it as `op: {b}`, or delete it"))
            if isinstance(bdef, LocDict):  # read in the merged block: under `extends:` its body may be inherited
                whole = every.get(b) if isinstance(every, LocDict) else None
                out += _unused_args(b, bdef, whole if isinstance(whole, LocDict) else bdef)
    return out


def _unused_args(name: str, bdef: LocDict, whole: LocDict) -> list[LintWarning]:
    """W010 for the arguments ``bdef`` (as written in this file) declares, read anywhere in ``whole``
    (the block after `extends:` merging)."""
    args = bdef.get("args")
    if not isinstance(args, LocDict):
        return []
    read, _ = names_read({k: v for k, v in whole.items() if k != "args"})
    every = whole.get("args")
    for decl in (every if isinstance(every, LocDict) else args).values():  # another argument's default may read it
        if isinstance(decl, LocDict):
            read |= names_read(decl.get("default"))[0]
    return [LintWarning("W010", f"argument '{a}' of block '{name}' is never read in its body", args.key_locs.get(a),
                        hint=f"read it as ${{{a}}} in the block, or delete it") for a in args if a not in read]


# -- W011: constant `when:` ----------------------------------------------------------------
def _constant_whens(graph: Graph, data: LocDict, scan: SpecScan | None = None) -> list[LintWarning]:
    """W011: a `when:` written `true` or with no names, or one value in every instance (>= 2) of its
    block while reading no spec param (a param-driven switch is a configuration, not a mistake). ``scan``:
    the spec's ``spec_scan``, when already made."""
    out = []
    for holder in (scan if scan is not None else spec_scan(data)).whens:
        when, loc = holder["when"], holder.val_locs.get("when")
        if when is True or (is_expr(when) and not _expr_names(when)[0]):
            out.append(LintWarning("W011", f"`when: {when}` is the same for every instance", loc,
                                   hint="delete the `when:` (always true) or the node (always false)"))
    blocks = data.get("blocks")
    if isinstance(blocks, LocDict):
        groups: set[str] | None = None  # every group's path, made when needed
        for b, bdef in blocks.items():
            body = bdef.get("nodes") if isinstance(bdef, LocDict) else None
            whens = _free_whens(graph, body) if isinstance(body, LocDict) else []
            if whens:
                groups = groups if groups is not None else {g.path for g in graph.groups}
                out += _constant_in_instances(graph, b, whens, groups)
    return out


def _free_whens(graph: Graph, body: LocDict) -> list[tuple[str, LocDict]]:
    """The nodes of a block body whose `when:` is an expression that reads no spec param."""
    out = []
    for name, spec in body.items():
        when = spec.get("when") if isinstance(spec, LocDict) else None
        if isinstance(when, str) and is_expr(when) and not _expr_names(when)[0] & set(graph.params):
            out.append((name, spec))
    return out


def _constant_in_instances(graph: Graph, block: str, whens: list[tuple[str, LocDict]],
                           groups: set[str]) -> list[LintWarning]:
    """W011 for the param-free `when:`s of one block's body (``groups``: every group's path)."""
    instances = [g.path for g in graph.groups if g.kind == "block" and g.label == block]
    if len(instances) < 2:
        return []
    nodes = graph._index()
    out = []
    for name, spec in whens:
        built = len([p for p in instances if (made := f"{p}.{name}") in nodes or made in groups])
        if built in (0, len(instances)):
            value = "true" if built else "false"
            out.append(LintWarning("W011", f"`when:` of '{name}' is {value} in all {len(instances)} instances of "
                                   f"block '{block}'", spec.val_locs.get("when"), node=f"{instances[0]}.{name}",
                                   hint="delete the `when:` (always true) or the node (always false), or pass "
                                        "the condition as a block argument"))
    return out


# -- silences ---------------------------------------------------------------------------------
def _locs(value: Any) -> Iterator[Loc]:
    for v in _walk(value):
        if isinstance(v, LocDict):
            yield v.loc
            yield from v.key_locs.values()
            yield from v.val_locs.values()
        elif isinstance(v, LocList):
            yield from v.locs


def silences(data: LocDict, scan: SpecScan | None = None) -> tuple[set[str], dict[str, set[Loc]]]:
    """(codes silenced for the whole spec, code -> the locations inside a node or block that silences it);
    ``scan``: the spec's ``spec_scan``, when already made."""
    whole: set[str] = set()
    inside: dict[str, set[Loc]] = {}
    blocks = data.get("blocks")
    block_keys = {id(v): blocks.key_locs[k] for k, v in blocks.items()} if isinstance(blocks, LocDict) else {}
    for holder in (scan if scan is not None else spec_scan(data)).silencing:
        lint_ = holder["lint"]
        ignore = lint_.get("ignore") if isinstance(lint_, dict) else None
        if not isinstance(ignore, dict):
            continue
        if holder is data:
            whole |= set(ignore)
            continue
        where = {*_locs(holder), *([block_keys[id(holder)]] if id(holder) in block_keys else [])}
        for code in ignore:
            inside.setdefault(code, set()).update(where)
    return whole, inside


def unsilenced(found: list[LintWarning], graph: Graph, data: LocDict,
               scan: SpecScan | None = None) -> list[LintWarning]:
    """The warnings that no `lint: {ignore: ...}` covers: by code for the spec, by location inside a
    silencing node or block, or inside a group or block instance made from a silencing node (``scan``: the
    spec's ``spec_scan``, when already made)."""
    if not found:
        return []
    whole, inside = silences(data, scan)
    groups: dict[str, set[str]] = {code: {g.path for g in graph.groups if g.loc in locs}
                                   for code, locs in inside.items()}
    out = []
    for w in found:
        if w.code in whole or w.loc in inside.get(w.code, ()):
            continue
        parts = (w.node or "").split(".")
        if any(".".join(parts[:k]) in groups.get(w.code, ()) for k in range(1, len(parts) + 1)):
            continue
        out.append(w)
    return out
