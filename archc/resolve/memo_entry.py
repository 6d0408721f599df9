"""A memo entry (memo.py): what one fresh expansion of a block instance added to the Expander, recorded
with paths and scopes relative to the instance (`_Recorder`), and replayed under a new path (`_replay`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

from archc.errors import ArchcError, Loc
from archc.load import LocDict, LocList

Ref = tuple[int, str, Loc | None]


class _Uncacheable(Exception):
    """The recorded expansion touched something a replay cannot reproduce."""


@dataclass
class _Entry:
    reads: list[tuple[int, tuple[int, ...]]]  # input index, shape read (before any read inside)
    states: tuple[Any, ...] | None  # every input's state at the first read inside (None: no such read)
    inferred: list[tuple[str, Any, Any, int | None]]  # shapes inferred inside: suffix, shape, symbolic, outputs
    done: int  # nodes inside whose shapes the recording inferred
    scopes: list[tuple[str, str]]  # (prefix suffix, first input name)
    bind: list[tuple[tuple[int, str], tuple[str, Any]]]
    outer: tuple[str, Any]  # what the instance's name is bound to
    pending: list[tuple[Any, bool]]  # (node with its path relative to the instance, no list or dict argument)
    groups: list[Any]
    checks: list[Ref]
    shares: list[Any]
    units: list[tuple[tuple[int, str], list[Ref]]]
    generated: list[tuple[int, str]]
    originals: list[tuple[tuple[int, str], str]]
    spent: int
    steps: int  # steps the expansion needs room for, beyond those used when it starts
    nodes: int  # nodes it needs room for, beyond the pending ones when it starts
    depth: int  # block nesting below the instance's own depth, its own level included
    reads_n: int
    shapes: dict[Any, Any] = field(default_factory=dict)  # input shapes -> the shapes of its nodes (shapes_so_far)
    outer_units: list[Ref] | None = None  # a repeat's units, bound to its own name (for `in: ["NAME.*"]`)
    size_read: tuple[str, Loc | None] | None = None  # the first read of a symbolic size inside: (node suffix, where)


class _Recorder:
    """What one fresh expansion of an instance adds to the Expander, and the shapes it reads."""

    def __init__(self, ex: Any, path: str, refs: list[Ref]) -> None:
        self.ex, self.path, self.refs = ex, path, refs
        self.prefix = path + "."
        self.n0, self.s0, self.p0 = len(ex.bind), len(ex.scopes), len(ex.pending)
        self.g0, self.c0, self.h0 = len(ex.groups), len(ex.checks), len(ex.shares)
        self.u0, self.d0, self.r0 = ex.budget.used, ex.depth, ex.shapes.reads
        self.saved = (ex.demand, ex.step_demand, ex.deepest)
        ex.demand, ex.step_demand, ex.deepest = 0, 0, 0
        self.reads: list[tuple[int, tuple[int, ...]]] = []
        self.inner = False
        self.ok = True
        self.followed: list[str | None] | None = None
        self.size_read: tuple[str, Loc | None] | None = None
        ex.shapes.watchers.append(self.on_read)
        ex.shapes.size_watchers.append(self.on_size_read)

    def stop(self) -> None:
        ex = self.ex
        ex.shapes.watchers.remove(self.on_read)
        ex.shapes.size_watchers.remove(self.on_size_read)
        self.peaks = (ex.demand, ex.step_demand, ex.deepest)
        ex.demand, ex.step_demand, ex.deepest = (max(a, b) for a, b in zip(self.saved, self.peaks))

    def on_read(self, path: str, shape: Any) -> None:
        if self.inner or not self.ok:
            return
        if self.followed is None:
            self.followed = [_follow(self.ex, r) for r in self.refs]
        if path in self.followed:
            self.reads.append((self.followed.index(path), tuple(shape)))
        elif path.startswith(self.prefix):
            self.inner = True
        else:
            self.ok = False

    def on_size_read(self, node: str, loc: Loc | None) -> None:
        if self.size_read is None:
            self.size_read = (node, loc)

    def entry(self, sid: int, name: str, use: Loc) -> _Entry:
        ex = self.ex
        if not self.ok or (not self.inner and ex.shapes.done > self.p0):
            raise _Uncacheable
        scopes = [(self._suffix(ex.scopes[s]), ex.first[s]) for s in range(self.s0, len(ex.scopes))]
        bind = list(islice(ex.bind.items(), self.n0, None))
        if not bind or bind[-1][0] != (sid, name) or any(k[0] < self.s0 for k, _ in bind[:-1]):
            raise _Uncacheable
        outer = self._target(bind[-1][1], use)
        pending = [(type(p)(self._suffix(p.path), p.op, _copy(p.args), [self._ref(r) for r in p.refs], p.loc),
                    not any(isinstance(v, (list, dict)) for v in p.args.values())) for p in ex.pending[self.p0:]]
        groups = [_moved(g, self._suffix(g.path), g.loc) for g in ex.groups[self.g0:]]
        nodes, steps, deepest = self.peaks
        own_units = ex.units.get((sid, name))
        return _Entry(
            self.reads, self._states() if self.inner else None, self._inferred() if self.inner else [],
            max(ex.shapes.done - self.p0, 0) if self.inner else 0,
            scopes, [((s - self.s0, n), self._target(t, None)) for (s, n), t in bind[:-1]], outer, pending, groups,
            [self._ref(r) for r in ex.checks[self.c0:]],
            [replace(h, path=self._suffix(h.path)) for h in ex.shares[self.h0:]],
            [((k[0] - self.s0, k[1]), [self._ref(r) for r in v]) for k, v in ex.units.items() if k[0] >= self.s0],
            [(s - self.s0, n) for s, n in ex.generated if s >= self.s0],
            [((k[0] - self.s0, k[1]), v) for k, v in ex.originals.items() if k[0] >= self.s0],
            ex.budget.used - self.u0, max(steps - self.u0, ex.budget.used - self.u0), max(nodes - self.p0, 0),
            deepest - self.d0, ex.shapes.reads - self.r0,
            outer_units=None if own_units is None else [self._ref(r) for r in own_units],
            size_read=None if self.size_read is None else (self._suffix(self.size_read[0]),
                                                           _USE if self.size_read[1] == use else self.size_read[1]))

    def _states(self) -> tuple[Any, ...]:
        return tuple(_state(self.ex, r) for r in self.refs)

    def _inferred(self) -> list[tuple[str, Any, Any, int | None]]:
        sh, out = self.ex.shapes, []
        for p in self.ex.pending[self.p0:sh.done]:
            if p.path in sh.failed:
                raise _Uncacheable
            suffix = self._suffix(p.path)
            if p.path in sh.multi:
                n = sh.multi[p.path]
                out.append((suffix, None, None, n))
                out.extend((f"{suffix}[{k}]", sh.known[f"{p.path}[{k}]"], sh.symbolic.get(f"{p.path}[{k}]"), None)
                           for k in range(n))
            elif p.path in sh.known:
                out.append((suffix, sh.known[p.path], sh.symbolic.get(p.path), None))
            else:
                raise _Uncacheable
        return out

    def _suffix(self, path: str) -> str:
        if path != self.path and not path.startswith(self.prefix):
            raise _Uncacheable
        return path[len(self.path):]

    def _ref(self, ref: Ref, use: Loc | None = None) -> Ref:
        sid, n, loc = ref
        if sid >= self.s0:
            return (sid - self.s0, n, _USE if use is not None and loc == use else loc)
        for i, r in enumerate(self.refs):
            if r == ref:
                return (-1 - i, "", None)
        raise _Uncacheable

    def _target(self, target: tuple[str, Any], use: Loc | None) -> tuple[str, Any]:
        kind, v = target
        if kind == "node":
            return kind, self._suffix(v)
        if kind in ("ref", "failed"):
            return kind, self._ref(v, use)
        if kind == "skip":
            return kind, (self._ref(v[0]), self._suffix(v[1]), v[2])
        if kind == "multi":
            return kind, [self._ref(r) for r in v]
        raise _Uncacheable


_USE = Loc("<use>", 0, 0)  # stands for the location of the block's use


def _follow(ex: Any, ref: Ref) -> str | None:
    try:
        return str(ex.follow(ref))
    except ArchcError:
        return None


def _state(ex: Any, ref: Ref) -> Any:
    path = _follow(ex, ref)
    sh = ex.shapes
    if path is None:
        return ("unbound",)
    if path in sh.known:
        return ("shape", sh.identity(path))
    return ("failed",) if path in sh.failed else ("multi", sh.multi[path]) if path in sh.multi else ("none",)


def _copy(v: Any) -> Any:
    """A fresh copy of an argument value's containers (replays never share mutable arguments)."""
    if isinstance(v, dict):
        out = type(v).__new__(type(v)) if isinstance(v, LocDict) else {}
        if isinstance(v, LocDict):
            out.__dict__.update(loc=v.loc, key_locs=dict(v.key_locs), val_locs=dict(v.val_locs))
        out.update((k, _copy(x)) for k, x in v.items())
        return out
    if isinstance(v, list):
        if isinstance(v, LocList):
            lst = LocList(v.loc)
            lst.locs = list(v.locs)
            lst.extend(_copy(x) for x in v)
            return lst
        return [_copy(x) for x in v]
    return v


def _replay(ex: Any, e: _Entry, sid: int, name: str, path: str, refs: list[Ref], use: Loc,
            define: bool = True) -> tuple[str, Any] | None:
    """Apply a recorded expansion under ``path`` and bind its name (unless not ``define``); what the name
    stands for, or None (the Expander unchanged but for the shape inference a fresh expansion does first)
    when a shape read differs or a limit would break."""
    sh = ex.shapes
    for k, shape in e.reads:
        read = _follow(ex, refs[k])
        if read is None or sh.settled(ex, refs[k]) is None or sh.identity(read) != shape:
            return None
        _notify(sh, read, shape)
    if e.states is not None:
        sh.infer_to(ex, len(ex.pending))
        if tuple(_state(ex, r) for r in refs) != e.states:
            return None
        _notify(sh, path + ".", ())
    lim = ex.limits
    if (len(ex.pending) + e.nodes > lim.max_nodes or ex.budget.used + e.steps > ex.budget.limit
            or ex.depth + e.depth > lim.max_block_depth):
        return None
    p0 = len(ex.pending)
    _apply(ex, e, sid, name, path, refs, use)
    span(ex, e, p0, refs)
    target = _target(e.outer, len(ex.scopes) - len(e.scopes), path, refs, use)
    if define:
        ex.define(sid, name, target, use)
    return target


def span(ex: Any, e: _Entry, p0: int, refs: list[Ref]) -> None:
    """Let a later shape read copy the shapes of the instance's nodes (no read inside: they depend only on
    the input shapes) from the entry's table."""
    if e.states is None and e.pending and ex.shapes.done <= p0:
        ex.shapes.spans[p0] = (p0 + len(e.pending), e.shapes, refs)


def _apply(ex: Any, e: _Entry, sid: int, name: str, path: str, refs: list[Ref], use: Loc) -> None:
    s0, p0, sh = len(ex.scopes), len(ex.pending), ex.shapes

    def ref(r: Ref) -> Ref:
        return _make_ref(r, s0, refs, use)

    for prefix, first in e.scopes:
        ex.scopes.append(path + prefix)
        ex.first.append(first)
    bind = ex.bind
    for (s, n), t in e.bind:  # inlined for bindings to a node, most of them
        bind[(s + s0, n)] = ("node", path + t[1]) if t[0] == "node" else _target(t, s0, path, refs, use)
    pending, ops = ex.pending, ex.ops
    for p, plain in e.pending:
        new = type(p)(path + p.path, p.op, dict(p.args) if plain else _copy(p.args),  # a _Pending; no __dict__
                      [refs[-1 - s] if s < 0 else (s + s0, n, use if loc is _USE else loc) for s, n, loc in p.refs],
                      p.loc)
        pending.append(new)
        ops[new.path] = p.op
    ex.groups.extend(_moved(g, path + g.path, use if g.path == "" else g.loc) for g in e.groups)
    ex.checks.extend(ref(r) for r in e.checks)
    ex.shares.extend(replace(h, path=path + h.path) for h in e.shares)
    ex.units.update(((s + s0, n), [ref(r) for r in v]) for (s, n), v in e.units)
    if e.outer_units is not None:
        ex.units[(sid, name)] = [ref(r) for r in e.outer_units]
    ex.generated.update((s + s0, n) for s, n in e.generated)
    ex.originals.update(((s + s0, n), v) for (s, n), v in e.originals)
    if e.states is not None:
        for suffix, shape, sym, outputs in e.inferred:
            if outputs is not None:
                sh.multi[path + suffix] = outputs
            else:
                sh.known[path + suffix] = shape
                sh.symbolic[path + suffix] = sym
        sh.done = p0 + e.done
    sh.reads += e.reads_n
    if e.size_read is not None:
        sh.note_size_read(path + e.size_read[0], use if e.size_read[1] is _USE else e.size_read[1])
    ex.budget.used += e.spent
    ex.demand = max(ex.demand, p0 + e.nodes)
    ex.step_demand = max(ex.step_demand, ex.budget.used - e.spent + e.steps)
    ex.deepest = max(ex.deepest, ex.depth + e.depth)


def _moved(g: Any, path: str, loc: Loc | None) -> Any:
    """``replace(g, path=path, loc=loc)`` for a recorded Group, without dataclasses.replace's field walk."""
    new = object.__new__(type(g))
    new.__dict__.update(g.__dict__, path=path, loc=loc)
    return new


def _make_ref(r: Ref, s0: int, refs: list[Ref], use: Loc) -> Ref:
    s, n, loc = r
    if s < 0:
        return refs[-1 - s]
    return (s + s0, n, use if loc is _USE else loc)


def _target(t: tuple[str, Any], s0: int, path: str, refs: list[Ref], use: Loc) -> tuple[str, Any]:
    kind, v = t
    if kind == "node":
        return kind, path + v
    if kind in ("ref", "failed"):
        return kind, _make_ref(v, s0, refs, use)
    if kind == "skip":
        return kind, (_make_ref(v[0], s0, refs, use), path + v[1], v[2])
    return kind, [_make_ref(r, s0, refs, use) for r in v]


def _notify(sh: Any, path: str, shape: Any) -> None:
    for watch in list(sh.watchers):
        watch(path, shape)


Watcher = Callable[[str, Any], None]
