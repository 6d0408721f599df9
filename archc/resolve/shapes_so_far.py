"""Shapes of the nodes expanded so far, inferred on demand so expressions can read `in_shape`.

Expansion runs in spec order, so when a node (or a block's argument default) reads the shape
flowing into it, every producer before it is already a pending primitive node: its shape is
inferred here with the library's own rules, once, and kept. The full analysis runs later anyway;
this only answers `in_shape` and `in_shapes` while expanding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from archc import blocks as library
from archc.blocks import rule_memo
from archc.errors import ArchcError, Loc, ResolveError
from archc.resolve.names import UnknownName

__all__ = ["ShapesSoFar"]

Shape = tuple[int, ...]
Ref = tuple[int, str, Loc | None]  # archc.resolve.expand's reference: (scope id, name, where it was named)


class Expander(Protocol):
    """What this module reads of archc.resolve.expand.Expander (declared here: expand imports this module,
    and this module imports nothing of expand, so the two form no import cycle)."""

    pending: list[Any]

    def follow(self, ref: Ref) -> str: ...


class ShapesSoFar:
    def __init__(self, inputs: Sequence[tuple[str, Shape]], symbols: Mapping[int, str] | None = None) -> None:
        self.known: dict[str, Shape] = dict(inputs)
        # with symbolic input sizes (read at a stand-in): each shape as expressions (None: not known), and
        # the first node whose expressions read an entry that depends on those sizes (path, where)
        self.hint = {s: inputs[0][1][i] for i, s in (symbols or {}).items()}
        self.symbolic: dict[str, tuple[Any, ...] | None] = {}
        self.size_read: tuple[str, Loc | None] | None = None
        self.size_watchers: list[Callable[[str, Loc | None], None]] = []  # told of each such read: resolve/memo.py
        self._hint_key = tuple(sorted(self.hint.items()))
        if symbols:
            from archc.ir.algebra import symbol
            name, shape = inputs[0]
            self.symbolic[name] = tuple(symbol(symbols[i]) if i in symbols else d for i, d in enumerate(shape))
        self.failed: dict[str, ArchcError] = {}
        self.multi: dict[str, int] = {}  # multi-output node -> its number of outputs
        self.done = 0  # pending nodes already inferred
        self.reads = 0  # how many times an expression read a shape
        self.watchers: list[Callable[[str, Any], None]] = []  # told of each read (path, shape): resolve/memo.py
        # first pending index of a memoised instance -> (end, its shape table, input refs): see _next
        self.spans: dict[int, tuple[int, dict[Any, Any], list[Ref]]] = {}

    def of(self, ex: Expander, ref: Ref, loc: Loc | None, node: str = "") -> list[int]:
        """The shape (batch left out) of what ``ref`` names, as a list for expressions (with symbolic
        input sizes, one that records a read of an entry depending on them, by ``node``)."""
        self.reads += 1
        try:
            path = ex.follow(ref)
        except UnknownName:
            raise ResolveError(f"in_shape is not known here: '{ref[1]}' is defined later in the spec", loc,
                               hint="in_shape reads the input of this node, which must come before it") from None
        except ArchcError as e:  # e.g. NAME[K] on a single output: at the reference, else at the expression
            raise e.located(loc) from None
        while path not in self.known and path not in self.failed and self.done < len(ex.pending):
            self._next(ex)
        if path in self.known:
            for watch in self.watchers:
                watch(path, self.identity(path))
            if not self.hint:
                return list(self.known[path])
            sym = self.symbolic.get(path)
            depends = [True] * len(self.known[path]) if sym is None else [not isinstance(d, int) for d in sym]
            return _Sizes(self.known[path], depends, lambda: self.note_size_read(node, loc))
        if path in self.multi:
            raise ResolveError(f"in_shape: '{path}' has {self.multi[path]} outputs", loc,
                               hint=f"read one with in: [\"{ref[1]}[0]\"]")
        if path in self.failed:  # a copy: the caller extends `others` and `notes` of what it raises
            raise self.failed[path].copy()
        raise ResolveError(f"in_shape is not known here: the shape of '{path}' is not inferred yet", loc,
                           hint="in_shape reads the input of this node, which must come before it")

    def identity(self, path: str) -> Any:
        """What an expression that reads the (known) shape of ``path`` depends on: the shape; with symbolic input
        sizes also its expressions (which entries depend on them) and the stand-in sizes. A memoised instance
        (memo.py) is replayed where the shapes it reads have the identities they had when it was recorded."""
        shape = self.known[path]
        if not self.hint:
            return shape
        from archc.ir.algebra import shape_key
        sym = self.symbolic.get(path)
        return shape, None if sym is None else shape_key(sym), self._hint_key

    def settled(self, ex: Expander, ref: Ref) -> Shape | None:
        """The concrete shape of what ``ref`` names (None: it failed, or has several outputs), inferred
        without counting as an expression's read (`share:` compares the widths its nodes get)."""
        path = ex.follow(ref)
        while path not in self.known and path not in self.failed and self.done < len(ex.pending):
            self._next(ex)
        return self.known.get(path)

    def infer_to(self, ex: Expander, n: int) -> None:
        """Infer the first ``n`` pending nodes (what a read of a node after them infers first)."""
        while self.done < n:
            self._next(ex)

    def _next(self, ex: Expander) -> None:
        """Infer the next pending node; at the start of a memoised instance (memo.py) whose input shapes
        were seen before, copy the shapes of all its nodes from its entry's table instead (and fill the
        table when they are new: the nodes of an instance depend only on its inputs' shapes)."""
        span = self.spans.get(self.done)
        key = None if span is None else self._span_key(ex, span[2])
        if span is None or key is None:  # no span, or an input without a shape yet (a forward name): one node
            self._infer(ex, ex.pending[self.done])
            self.done += 1
            return
        end, table, _ = span
        start = self.done
        got = table.get(key)
        if got is not None:
            for p, (shape, outs, sym) in zip(ex.pending[start:end], got):
                self._put(p.path, shape, outs, sym)
            self.done = end
            return
        while self.done < end:
            self._infer(ex, ex.pending[self.done])
            self.done += 1
        shapes = self._span_shapes(ex.pending[start:end]) if len(table) < 16 else None
        if shapes is not None:
            table[key] = shapes

    def _span_key(self, ex: Expander, refs: list[Ref]) -> Any:
        """The instance's input shapes, as `identity` gives them (None unless each input has one already)."""
        key = []
        for r in refs:
            try:
                path = ex.follow(r)
            except ArchcError:
                return None
            if path not in self.known:
                return None
            key.append(self.identity(path))
        return tuple(key)

    def _span_shapes(self, nodes: list[Any]) -> list[tuple[Any, Any, Any]] | None:
        """Each node's (shape, None, its expressions) or (None, its outputs' shapes, their expressions)."""
        out: list[tuple[Any, Any, Any]] = []
        for p in nodes:
            if p.path in self.multi:
                names = [f"{p.path}[{k}]" for k in range(self.multi[p.path])]
                out.append((None, tuple(map(self.known.__getitem__, names)), tuple(map(self.symbolic.get, names))))
            elif p.path in self.known:
                out.append((self.known[p.path], None, self.symbolic.get(p.path)))
            else:
                return None  # a failed node: its error is the one a fresh inference raises
        return out

    def _put(self, path: str, shape: Any, outs: Any, sym: Any) -> None:
        if outs is None:
            self.known[path] = shape
            self.symbolic[path] = sym
            return
        self.multi[path] = len(outs)
        for k, s in enumerate(outs):
            self.known[f"{path}[{k}]"] = s
            self.symbolic[f"{path}[{k}]"] = sym[k]

    def _infer(self, ex: Expander, p: Any) -> None:
        try:
            ins = [self._input(ex, r) for r in p.refs]
            block = library.get(p.op)
            outs = rule_memo.out_shapes(p.op, block, p.args, ins)  # the analysis's own table of rule results
            sym = self._symbolic(ex, p, block) if self.hint else None
            if block.outputs is not None:
                self.multi[p.path] = len(outs)
                self.known.update({f"{p.path}[{k}]": s for k, s in enumerate(outs)})
                self.symbolic.update({f"{p.path}[{k}]": None if sym is None else s for k, s in enumerate(sym or outs)})
            else:
                self.known[p.path] = outs[0]
                self.symbolic[p.path] = None if sym is None else sym[0]
        except ArchcError as e:
            self.failed[p.path] = e.located(p.loc, p.path)

    def _symbolic(self, ex: Expander, p: Any, block: Any) -> list[tuple[Any, ...]] | None:
        """The node's output shapes as expressions in the symbolic input sizes (None: not known)."""
        ins = [self.symbolic.get(ex.follow(r)) for r in p.refs]
        if any(s is None for s in ins):
            return None
        got = rule_memo.symbolic_out_shapes(p.op, block, p.args, ins, self.hint)
        return None if got is None else list(got)

    def note_size_read(self, node: str, loc: Loc | None) -> None:
        """An expression of ``node`` (at ``loc``) read an entry that depends on the symbolic input sizes (a
        memoised instance that did, replayed, says so too)."""
        if self.size_read is None:
            self.size_read = (node, loc)
        for watch in self.size_watchers:
            watch(node, loc)

    def _input(self, ex: Expander, ref: Ref) -> Shape:
        path = ex.follow(ref)
        if path in self.known:
            return self.known[path]
        if path in self.failed:
            raise self.failed[path].copy()
        raise ResolveError(f"the shape of '{path}' is not known yet", ref[2])


class _Sizes(list):  # type: ignore[type-arg]
    """``in_shape`` when the input sizes are symbolic: reading an entry that depends on them (or the
    whole list: iterating, comparing, printing) calls ``on_read``; reading only the others does not."""

    tracks_reads = True  # not a plain value: a memo key made of it would read it

    def __init__(self, values: Sequence[int], depends: list[bool], on_read: Callable[[], None]) -> None:
        super().__init__(values)
        self._depends, self._on_read = depends, on_read

    def _whole(self) -> None:
        if any(self._depends):
            self._on_read()

    def __getitem__(self, i: Any) -> Any:
        picked = self._depends[i]
        if any(picked) if isinstance(i, slice) else picked:
            self._on_read()
        return super().__getitem__(i)

    def __iter__(self) -> Any:
        self._whole()
        return super().__iter__()

    def __reversed__(self) -> Any:
        self._whole()
        return super().__reversed__()

    def __eq__(self, other: object) -> bool:
        self._whole()
        return list(self) == other

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __lt__(self, other: Any) -> bool:
        self._whole()
        return list(self) < other

    def __le__(self, other: Any) -> bool:
        self._whole()
        return list(self) <= other

    def __gt__(self, other: Any) -> bool:
        self._whole()
        return list(self) > other

    def __ge__(self, other: Any) -> bool:
        self._whole()
        return list(self) >= other

    def __contains__(self, v: object) -> bool:
        self._whole()
        return super().__contains__(v)

    def __add__(self, other: Any) -> Any:
        self._whole()
        return list(self) + other

    def __radd__(self, other: Any) -> Any:
        self._whole()
        return other + list(self)

    def __mul__(self, n: Any) -> Any:
        self._whole()
        return list(self) * n

    __rmul__ = __mul__
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._whole()
        return super().__repr__()

    def copy(self) -> list[int]:
        self._whole()
        return list(self)
