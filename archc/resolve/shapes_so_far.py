"""Shapes of the nodes expanded so far, inferred on demand so expressions can read `in_shape`.

Expansion runs in spec order, so when a node (or a block's argument default) reads the shape
flowing into it, every producer before it is already a pending primitive node: its shape is
inferred here with the library's own rules, once, and kept. The full analysis runs later anyway;
this only answers `in_shape` and `in_shapes` while expanding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from archc import blocks as library
from archc.errors import ArchcError, Loc, ResolveError
from archc.resolve.names import UnknownName

if TYPE_CHECKING:
    from archc.resolve.expand import Expander, Ref

__all__ = ["ShapesSoFar"]

Shape = tuple[int, ...]


class ShapesSoFar:
    def __init__(self, inputs: Sequence[tuple[str, Shape]]) -> None:
        self.known: dict[str, Shape] = dict(inputs)
        self.failed: dict[str, ArchcError] = {}
        self.multi: dict[str, int] = {}  # multi-output node -> its number of outputs
        self.done = 0  # pending nodes already inferred
        self.reads = 0  # how many times an expression read a shape

    def of(self, ex: Expander, ref: Ref, loc: Loc | None) -> list[int]:
        """The shape (batch left out) of what ``ref`` names, as a list for expressions."""
        self.reads += 1
        try:
            path = ex.follow(ref)
        except UnknownName:
            raise ResolveError(f"in_shape is not known here: '{ref[1]}' is defined later in the spec", loc,
                               hint="in_shape reads the input of this node, which must come before it") from None
        except ArchcError as e:  # e.g. NAME[K] on a single output: at the reference, else at the expression
            raise e.located(loc) from None
        while path not in self.known and path not in self.failed and self.done < len(ex.pending):
            self._infer(ex, ex.pending[self.done])
            self.done += 1
        if path in self.known:
            return list(self.known[path])
        if path in self.multi:
            raise ResolveError(f"in_shape: '{path}' has {self.multi[path]} outputs", loc,
                               hint=f"read one with in: [\"{ref[1]}[0]\"]")
        if path in self.failed:  # a copy: the caller extends `others` and `notes` of what it raises
            raise self.failed[path].copy()
        raise ResolveError(f"in_shape is not known here: the shape of '{path}' is not inferred yet", loc,
                           hint="in_shape reads the input of this node, which must come before it")

    def _infer(self, ex: Expander, p: Any) -> None:
        try:
            ins = [self._input(ex, r) for r in p.refs]
            block = library.get(p.op)
            outs = block.out_shapes(p.args, ins)
            if block.outputs is not None:
                self.multi[p.path] = len(outs)
                self.known.update({f"{p.path}[{k}]": s for k, s in enumerate(outs)})
            else:
                self.known[p.path] = outs[0]
        except ArchcError as e:
            self.failed[p.path] = e.located(p.loc, p.path)

    def _input(self, ex: Expander, ref: Ref) -> Shape:
        path = ex.follow(ref)
        if path in self.known:
            return self.known[path]
        if path in self.failed:
            raise self.failed[path].copy()
        raise ResolveError(f"the shape of '{path}' is not known yet", ref[2])
