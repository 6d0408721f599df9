"""Memoised block instances (issue 28): a spec block used again with the same values expands once.

An instance's expansion depends on the spec's blocks, the values of the names its body reads, and the
shapes it reads through `in_shape`/`in_shapes`. The key holds the first two as plain values:

- the table: fingerprints (contents and locations) of the block and of every block it may use, transitively
  (a nested instance may use them; locations end up in nodes, groups and messages), so an edit of a block
  or of an extended file that moves or changes it is a different table, and a block of a base file has
  the same table in every spec that extends or imports it (the zoo's ResNets share `bottleneck`);
- its number of inputs, and the value (type-tagged: ``1``, ``1.0`` and ``True`` differ)
  of every name of the environment that some `${...}` in those blocks mentions (a superset of the reads).

A key is recorded the second time it is met (the first expansion is plain): most instances of a spec checked
once are one-offs, whose recording would be wasted work (a cold `archc check maxvit_t` 25% faster), while
a repeat's units, and every instance of a spec the language server analyses again, are met again.

An entry is one successful expansion recorded as what it added to the Expander (scopes, bindings,
pending nodes, groups, `else:` checks, `share:` requests, repeat units, steps), with paths relative to
the instance and scope ids relative to its first scope, replayed under a new path. The shapes it read
are replayed in the order it read them: each read of an input infers what the fresh read infers and
must give the recorded shape; the first read of a node inside the instance infers every node before it
(as the fresh read does), then every input's state must be the recorded one, and the shapes the
recording inferred inside are copied. A replay that would break a limit (nodes, steps, block depth)
falls back to a fresh expansion, which raises where it would. An instance that read no shape inside leaves
its nodes uninferred; the entry keeps a table (input shapes -> its nodes' shapes) that a later read copies
(shapes_so_far `_next`). Failing instances are never recorded. With symbolic input sizes a shape read is
compared by its identity (`ShapesSoFar.identity`: the shape with its expressions and stand-in), a name whose
value is a symbolic `in_shape` makes the instance uncacheable, and an entry replays the first read of a
symbolic size inside it (`size_read`: the graph's `sized_by_stand_in`).

Units (``expand_unit``): a node written with `seq:`/`nodes:` or `repeat:` is memoised the same way, as a whole:
its table holds the node as written (contents and locations) and the tables of the blocks it may use; its key
the count of a repeat and the values of the names those mention (a repeat's variable excepted: bound inside).
`in:`, `when:`, `else:`, `share:` and the count are evaluated before, outside the recording. In the language
server a value edit then replays every top-level stage it does not touch in one step (EfficientNet-B7's
`features`, 800 nodes), and a depth edit of one ResNet stage replays the three others whole.

``ARCHC_MEMO=0`` (or ``ENABLED = False``) turns it off (``ARCHC_MEMO_UNITS=0``: units only); ``STATS``
counts hits, misses and recordings (``unit_*`` for units).
"""

from __future__ import annotations

import os
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from archc.errors import Loc
from archc.load import LocDict, LocList
from archc.resolve.memo_entry import Ref, _Entry, _Recorder, _replay, _Uncacheable, span

__all__ = ["ENABLED", "STATS", "disabled", "expand_instance", "expand_unit", "clear"]

ENABLED = os.environ.get("ARCHC_MEMO", "1") != "0"
UNITS = os.environ.get("ARCHC_MEMO_UNITS", "1") != "0"  # also seq/nodes/repeat nodes (expand_unit)
STATS: Counter[str] = Counter()  # hit, miss, record, uncacheable
TABLES = 4096  # tables kept (a block and those it may use, by contents and locations)
PER_KEY = 16  # entries kept per key (instances that read different shapes)
KEYS = 4096  # keys kept per table (a long editing session types many values): the oldest go first
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOCK = threading.Lock()


@dataclass
class _Table:
    names: tuple[str, ...]  # the names the block's expansion may read, sorted
    entries: dict[Any, list[_Entry]] = field(default_factory=dict)
    seen: set[Any] = field(default_factory=set)  # keys met once, not recorded yet


_TABLES: OrderedDict[Any, _Table] = OrderedDict()


def clear() -> None:
    with _LOCK:
        _TABLES.clear()


@contextmanager
def disabled() -> Iterator[None]:
    """Expand without the memo (the tests' reference)."""
    global ENABLED
    was, ENABLED = ENABLED, False
    try:
        yield
    finally:
        ENABLED = was


# -- keys ----------------------------------------------------------------------
def _fp(v: Any) -> Any:
    """A hashable picture of a loaded value, with its locations (as plain tuples: a table key is hashed
    and compared in C, not through Loc's generated __hash__/__eq__)."""
    if isinstance(v, LocDict):
        kl, vl = v.key_locs, v.val_locs
        return ("D", _at(v.loc), tuple((k, _at(kl.get(k)), _at(vl.get(k)), _fp(x)) for k, x in v.items()))
    if isinstance(v, LocList):
        return ("L", _at(v.loc), tuple(map(_at, v.locs)), tuple(map(_fp, v)))
    return _freeze(v)


def _at(loc: Loc | None) -> tuple[str, int, int] | None:
    return None if loc is None else (loc.file, loc.line, loc.col)


def _freeze(v: Any) -> Any:
    """A value as a key: type-tagged, containers as tuples; raises _Uncacheable for anything else."""
    if isinstance(v, float):
        return ("float", repr(v))  # -0.0 and 0.0 print differently; nan equals itself
    if v is None or isinstance(v, (bool, int, str)):
        return (type(v).__name__, v)
    if isinstance(v, (list, tuple)) and not getattr(v, "tracks_reads", False):  # not in_shape on symbolic sizes
        return (type(v).__name__, tuple(_freeze(x) for x in v))
    if isinstance(v, dict):
        return (type(v).__name__, tuple((_freeze(k), _freeze(x)) for k, x in v.items()))
    raise _Uncacheable


def _names(v: Any, out: set[str], uses: set[str], op: bool = False) -> None:
    """The identifiers in the `${...}` strings of a loaded value, and the names it may use as ops (any
    string; ``"*"`` when an op is itself an expression)."""
    if isinstance(v, str):
        if "${" in v:
            out.update(_NAME.findall(v))
            if op:
                uses.add("*")
        else:
            uses.add(v)
    elif isinstance(v, dict):
        for k, x in v.items():
            _names(x, out, uses, k == "op")
    elif isinstance(v, list):
        for x in v:
            _names(x, out, uses, True)  # a seq item may be an op name


def _tables(blocks: LocDict) -> dict[str, Any]:
    """For each block, its table key and the names its expansion may read: the key holds the fingerprints
    (contents and locations) of the block and of every block it may use, transitively, so a block defined
    in a base file has the same key in every spec that extends or imports it, unchanged."""
    own: dict[str, set[str]] = {}
    uses: dict[str, set[str]] = {}
    for name, bdef in blocks.items():
        own[name], uses[name] = set(), set()
        _names(bdef, own[name], uses[name])
    fps = {name: _fp(bdef) for name, bdef in blocks.items()}
    out = {}
    for name in blocks:
        seen, todo, names = {name}, [name], set()
        while todo:
            b = todo.pop()
            names |= own[b]
            more = set(blocks) if "*" in uses[b] else uses[b] & set(blocks)
            todo.extend(more - seen)
            seen |= more
        key = (name, tuple((b, fps[b]) for b in sorted(seen)))
        out[name] = (key, tuple(sorted(names - {"in_shape", "in_shapes"})))
    return out


def _table(ex: Any, op: str) -> _Table:
    got: dict[str, _Table] | None = getattr(ex, "memo_tables", None)
    if got is None:
        got = ex.memo_tables = {}
    table = got.get(op)
    if table is not None:
        return table
    key, names = _block_keys(ex)[op]
    table = got[op] = _stored(key, names)
    return table


_OUTSIDE = frozenset(("in", "when", "else", "share", "after", "repeat"))  # evaluated before a unit expands


def _unit_table(ex: Any, kind: str, spec: LocDict) -> _Table:
    """The table of a unit (expand_unit), kept per Expander by the node's loaded mapping."""
    got: dict[tuple[int, str], tuple[LocDict, _Table]] | None = getattr(ex, "memo_units", None)
    if got is None:
        got = ex.memo_units = {}
    held = got.get((id(spec), kind))
    if held is not None:
        return held[1]
    names: set[str] = set()
    uses: set[str] = set()
    for k, v in spec.items():
        if k not in _OUTSIDE:
            _names(v, names, uses, k == "op")
    keys = _block_keys(ex)
    used = sorted(keys if "*" in uses else uses & set(keys))
    for b in used:
        names.update(keys[b][1])
    var = spec.get("as", "i") if kind == "repeat" else None
    names -= {"in_shape", "in_shapes", var}
    table = _stored((kind, _fp(spec), tuple(keys[b][0] for b in used)), tuple(sorted(names)))
    got[(id(spec), kind)] = (spec, table)
    return table


def _block_keys(ex: Any) -> dict[str, Any]:
    keys = getattr(ex, "memo_keys", None)
    if keys is None:
        keys = ex.memo_keys = _tables(ex.blocks)
    return keys


def _stored(key: Any, names: tuple[str, ...]) -> _Table:
    """The process-wide table of ``key`` (made when new; the least recently used go first)."""
    with _LOCK:
        table = _TABLES.get(key)
        if table is None:
            table = _TABLES[key] = _Table(names)
            while len(_TABLES) > TABLES:
                _TABLES.popitem(last=False)
        _TABLES.move_to_end(key)
    return table


def _key(table: _Table, env: Mapping[str, Any], n_inputs: int) -> Any:
    return (n_inputs, tuple((n, _freeze(env[n])) for n in table.names if n in env))


# -- expansion -----------------------------------------------------------------
def expand_instance(ex: Any, op: str, sid: int, name: str, bspec: LocDict, body: Any, declared: Any,
                    benv: dict[str, Any], path: str, refs: list[Ref]) -> None:
    """``ex.group(...)`` for a block instance, replayed from a recorded expansion when one fits."""
    def fresh() -> None:
        ex.group(sid, name, bspec, body, declared, benv, path, refs, op)

    if not ENABLED:
        return fresh()
    try:
        table = _table(ex, op)
        key = _key(table, benv, len(refs))
    except _Uncacheable:
        return fresh()
    _expand(ex, table, key, sid, name, path, refs, bspec.loc, fresh, "")


def expand_unit(ex: Any, kind: str, sid: int, name: str, spec: LocDict, env: Mapping[str, Any], path: str,
                refs: list[Ref], count: int | None, fresh: Callable[..., None]) -> None:
    """``fresh()``, the expansion of a node written with `seq:`/`nodes:` (kind 'seq'/'group') or `repeat:`
    (kind 'repeat', ``count`` times), replayed from a recorded expansion when one fits. A unit is keyed
    like an instance: its table holds the fingerprint (contents and locations) of the node as written and
    the tables of the blocks it may use; its key the values of the names these mention (but for a repeat's
    variable, bound inside) and its count. What is evaluated before (`in:`, `when:`, `else:`, `share:`, the
    count) stays outside: an edit that changes one stage's depth replays the other stages whole.

    A repeat met with more units than one recorded (and no `name:` template) replays that recording and
    expands only the units after it (``fresh(resume)``, ``_extend``): deepening a stage of 90 units by one
    replays the 90 as one. The first time a repeat's values are met with a second count, it is recorded."""
    if not (ENABLED and UNITS):
        return fresh()
    try:
        table = _unit_table(ex, kind, spec)
        key = (count, _key(table, env, len(refs)))
    except _Uncacheable:
        return fresh()
    if kind != "repeat" or "name" in spec:
        return _expand(ex, table, key, sid, name, path, refs, spec.loc, fresh, "unit_")

    def extend_or_fresh() -> None:
        if not _extend(ex, table, key, sid, name, path, refs, spec, fresh):
            fresh()

    _expand(ex, table, key, sid, name, path, refs, spec.loc, extend_or_fresh, "unit_", key[1])


def _extend(ex: Any, table: _Table, key: Any, sid: int, name: str, path: str, refs: list[Ref], spec: LocDict,
            fresh: Callable[..., None]) -> bool:
    """Replay the recording of the longest shorter repeat with the same values (relabelled: `OP xN`), then
    let ``fresh`` expand the units after it; False (nothing done) when there is none or none replays. The
    budget is spent in the fresh order (the count's checks, the group, the op, then the units in turn), so
    a limit breaks where it would."""
    n, rest = key
    best: tuple[int, list[_Entry]] | None = None
    for (m, other), kept in table.entries.items():
        if other == rest and 0 < m < n and kept and (best is None or m > best[0]) and _relabels(kept[-1], m):
            best = (m, kept)
    if best is None:
        return False
    m, kept = best
    ex.repeat_room(spec, n)
    g0 = len(ex.groups)
    target = _replay(ex, kept[-1], sid, name, path, refs, spec.loc, define=False)
    if target is None:
        return False
    g = ex.groups[g0]
    ex.groups[g0] = replace(g, label=f"{g.label[:-len(f' x{m}')]} x{n}")
    STATS["unit_extend"] += 1
    fresh((target[1][0], m))
    return True


def _first_count(table: _Table, rest: Any) -> bool:
    """Whether a repeat's values were met before with another count and no count of them is recorded: then
    this one is, so that the next count can extend it (an editor typing a stage's depth)."""
    return not any(other == rest for (_, other) in table.entries) and any(k[1] == rest for k in table.seen)


def _relabels(e: _Entry, m: int) -> bool:
    """Whether a repeat's recording can be extended: its group first, labelled `OP xm`, its name bound to its
    last unit."""
    return bool(e.groups) and e.groups[0].path == "" and e.groups[0].label.endswith(f" x{m}") and \
        e.outer[0] == "ref" and e.outer_units is not None and len(e.outer_units) == m


def _expand(ex: Any, table: _Table, key: Any, sid: int, name: str, path: str, refs: list[Ref], use: Loc,
            fresh: Callable[[], None], stat: str, counted: Any = None) -> None:
    """Replay an entry of ``key``, else expand (``fresh``), recording when the key was met before, or (a
    repeat's ``counted`` values, met before with another count) when no count of them is recorded yet."""
    for entry in list(table.entries.get(key, ())):
        if _replay(ex, entry, sid, name, path, refs, use):
            STATS[stat + "hit"] += 1
            return None
    STATS[stat + "miss"] += 1
    if key not in table.seen and not (counted is not None and _first_count(table, counted)):
        if len(table.seen) >= KEYS:  # met for the first time: expanded, recorded only when met again (a one-off
            table.seen.clear()  # instance, most of a spec checked once, costs no recording)
        table.seen.add(key)
        return fresh()
    rec = _Recorder(ex, path, refs)
    try:
        fresh()
    finally:
        rec.stop()
    try:
        entry = rec.entry(sid, name, use)
    except _Uncacheable:
        STATS[stat + "uncacheable"] += 1
        return None
    STATS[stat + "record"] += 1
    span(ex, entry, rec.p0, refs)
    with _LOCK:
        kept = table.entries.setdefault(key, [])
        kept.append(entry)
        del kept[:-PER_KEY]
        while len(table.entries) > KEYS:
            del table.entries[next(iter(table.entries))]
    return None
