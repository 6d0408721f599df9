"""`after: X`: a node placed right after its sibling X, which every reader of X then reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from archc.errors import ArchcError, Loc, ResolveError, get_close_matches
from archc.load import LocDict
from archc.resolve.expand_base import (
    Entry,
    ExpanderBase,
    Ref,
)
from archc.resolve.names import written_name


class AfterMixin(ExpanderBase):
    def placed(self, sid: int, items: Sequence[Entry]) -> list[Entry]:
        """A `nodes:` mapping's entries in order, each one with `after: X` moved right after its sibling X
        (after the ones placed there before it: they chain in file order)."""
        out = [e for e in items if not (isinstance(e[1], LocDict) and "after" in e[1])]
        for entry in items:
            spec = entry[1]
            if not (isinstance(spec, LocDict) and "after" in spec):
                continue
            target = written_name(spec["after"])
            names = [e[0] for e in out]
            if target not in names:
                close = get_close_matches(str(target), names, 1)
                raise ResolveError(f"'{entry[0]}' is placed after '{target}', which is no sibling here "
                                   f"(in '{self.scopes[sid] or 'the model'}')", spec.val_locs.get("after"),
                                   node=self.scopes[sid] + entry[0],
                                   hint=f"did you mean '{close[0]}'?" if close else
                                   f"`after:` names a node of the same `nodes:` mapping: {', '.join(names[:12])}")
            at = names.index(target)
            while at + 1 < len(out) and out[at + 1][0] in self._after_chain(items, target):
                at += 1
            out.insert(at + 1, entry)
        return out

    @staticmethod
    def _after_chain(items: Sequence[Entry], target: str) -> set[str]:
        return {e[0] for e in items if isinstance(e[1], LocDict) and written_name(e[1].get("after")) == target}

    def insert_after(self, sid: int, name: str, spec: LocDict, loc: Loc | None, env: Mapping[str, Any],
                     prefix: str) -> Ref:
        """Expand a node with `after: X`: it reads X, and from then on the name X stands for this node, so
        every reader of X (before or after it) reads it instead. Inside a node placed this way, `in: X`
        reads what X stood for just before it (the chain so far), and a name another `after:` took over
        reads that name's own node."""
        target = written_name(spec["after"])
        bound = self.bind.get((sid, target))
        if bound is not None and bound[0] == "multi":
            raise ResolveError(f"'{name}' is placed after '{target}', which has several outputs",
                               spec.val_locs["after"], node=prefix + name,
                               hint=f"insert after a node with one output (e.g. after a reader of '{target}[0]')")
        own = f"{target}\x00{name}"  # X's binding before this node: no written name can be this
        self.bind[(sid, own)] = bound or ("failed", (sid, self.first[sid], loc))
        self.originals.setdefault((sid, target), own)
        self.renamed = {**{k: v for k, v in self.originals.items() if k[0] == sid}, (sid, target): own}
        try:
            self.node(sid, name, spec, loc, env, prefix, (sid, own, spec.val_locs.get("after")))
        except ArchcError:
            self.bind.setdefault((sid, name), ("failed", (sid, own, loc)))  # readers go on from X
            raise
        finally:
            self.renamed = {}
            self.bind[(sid, target)] = ("ref", (sid, name, loc))
        return (sid, name, loc)
