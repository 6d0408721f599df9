"""Repeats, groups (`seq:`/`nodes:`, block bodies) and `each:` loops."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archc.errors import LimitError, Loc, ResolveError
from archc.ir import Group
from archc.load import LocDict, LocList
from archc.resolve.expand_base import (
    GROUP_STEPS,
    Entry,
    ExpanderBase,
    Ref,
    _seq_else,
)
from archc.resolve.names import check_name, written_name


class GroupsMixin(ExpanderBase):
    def repeat_count(self, name: str, spec: LocDict, env: Mapping[str, Any], path: str, refs: list[Ref]) -> int:
        """How many times a `repeat:` node repeats (checked before its expansion, which memo.py may replay)."""
        n = self.field(spec, "repeat", env)
        loc = spec.val_locs.get("repeat")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ResolveError(f"repeat must be a non-negative integer, got {n!r}", loc)
        if len(refs) > 1:  # copy 0 would read the first alone, and `repeat: 0` would stand for it
            raise ResolveError(f"'{name}' repeats {n} times but reads {len(refs)} inputs: each copy reads the one "
                               "before, so a repeated node takes one input", spec.val_locs.get("in", loc), node=path,
                               hint="combine the inputs in a node before it (add, concat) and repeat what follows")
        return n

    def repeat_room(self, spec: LocDict, n: int) -> None:
        """Room for `repeat: n`'s units (nodes, steps): what an expansion of it checks first."""
        loc = spec.val_locs.get("repeat")
        self.count(n, loc, f"repeat: {n}")
        self.budget.room(n, loc, f"repeat: {n}")

    def repeat(self, sid: int, name: str, spec: LocDict, env: Mapping[str, Any], path: str,
               refs: list[Ref], n: int, resume: tuple[int, int] | None = None) -> None:
        """Expand `repeat: n`. With ``resume`` (child scope, m), memo.py has just replayed a recording of the
        first m units (a shorter repeat of the same node and values): the units m..n-1 follow them."""
        loc = spec.val_locs.get("repeat")
        var = spec.get("as", "i")
        inner = LocDict(spec.loc)
        for k, v in spec.items():
            if k not in ("repeat", "as", "name", "in", "when", "else", "share", "after"):
                inner[k], inner.key_locs[k], inner.val_locs[k] = v, spec.key_locs[k], spec.val_locs[k]
        if resume is None:
            self.repeat_room(spec, n)
            self.budget.spend(GROUP_STEPS, loc)
            child, start = self.new_scope(path + ".", {"input": ("ref", refs[0])}), 0
            op = self.field(inner, "op", {**env, var: 0}, "group") if n else "group"
            self.groups.append(Group(path, f"{op} x{n}", spec.loc, "repeat"))
        else:
            child, start = resume
        items = []
        nloc = spec.val_locs.get("name", spec.loc)
        for i in range(start, n):
            ienv = {**env, var: i}
            cname = self.field(spec, "name", ienv, str(i))
            if isinstance(cname, int) and not isinstance(cname, bool):
                cname = str(cname)  # name: "${i + 1}" gives an index
            check_name(cname, nloc, "repeat name ", generated=True)
            self.generated.add((child, cname))  # a generated name obeys the written-name rule
            items.append((cname, inner, spec.loc, ienv))
        last = self.entries(child, items, path + ".", charged=False, ordered=False,
                            after=(child, str(start - 1), spec.loc) if start else None)
        before = self.units[(sid, name)] if start else []
        self.units[(sid, name)] = [*before, *((child, cname, spec.loc) for cname, *_ in items)]
        self.define(sid, name, ("ref", (child, last, spec.loc)), spec.loc)

    def group(self, sid: int, name: str, spec: LocDict, body: Any, declared: Any, env: Mapping[str, Any],
              path: str, refs: list[Ref], label: str) -> None:
        in_names = list(declared) if declared else ["input"]
        if len(in_names) != len(refs):
            raise ResolveError(f"'{name}' takes {len(in_names)} input(s) ({', '.join(in_names)}) "
                               f"but gets {len(refs)}", spec.val_locs.get("in", spec.loc))
        if self.depth >= self.limits.max_block_depth:
            raise LimitError(f"blocks nested deeper than {self.limits.max_block_depth} (recursive block?)", spec.loc)
        self.budget.spend(GROUP_STEPS, spec.loc)
        gid = self.new_scope(path + ".", {n: ("ref", r) for n, r in zip(in_names, refs)})
        self.groups.append(Group(path, label, spec.loc, label if label in ("seq", "group") else "block"))
        self.depth += 1
        self.deepest = max(self.deepest, self.depth)
        try:  # a failing instance must not leave the depth raised (40 typos are not "recursion")
            items = self.seq_items(body, env) if isinstance(body, list) else [
                (k, v, body.val_locs.get(k), env) for k, v in body.items()]
            last = self.entries(gid, items, path + ".", charged=isinstance(body, list))
        finally:
            self.depth -= 1
        if "outputs" in spec:  # several outputs, read as NAME[K]
            locs = getattr(spec["outputs"], "locs", [spec.val_locs.get("outputs", spec.loc)] * len(spec["outputs"]))
            outs = [(gid, str(written_name(self.value(o, env, oloc))), oloc) for o, oloc in zip(spec["outputs"], locs)]
            self.define(sid, name, ("multi", outs), spec.loc)
            return
        out = written_name(spec.get("out", last))
        self.define(sid, name, ("ref", (gid, out, spec.val_locs.get("out", spec.loc))), spec.loc)

    def seq_items(self, body: Any, env: Mapping[str, Any]) -> list[Entry]:
        """Flatten `each` loops and drop `when: false` items, numbering the rest 0, 1, ..."""
        flat: list[tuple[Any, Loc | None, Mapping[str, Any]]] = []
        self._flatten(body, env, flat)
        return [(str(i), spec, loc, e) for i, (spec, loc, e) in enumerate(flat)]

    def _flatten(self, body: Any, env: Mapping[str, Any], out: list[tuple[Any, Loc | None, Any]]) -> None:
        for idx, item in enumerate(body):
            loc = body.locs[idx] if isinstance(body, LocList) else None
            self.budget.spend(1, loc)
            if isinstance(item, LocDict) and "else" in item:
                raise _seq_else(item)
            if isinstance(item, LocDict) and "after" in item:
                raise ResolveError("`after:` on a seq item: a seq runs in its written order", item.key_locs["after"],
                                   hint="write the item where it runs, or name the children with `nodes:`")
            if isinstance(item, LocDict) and not self.field(item, "when", env, True):
                continue
            if not (isinstance(item, LocDict) and "each" in item):
                out.append((item, loc, env))
                continue
            if not isinstance(item.get("items"), list):
                raise ResolveError("an `each:` loop needs `items:` (the nodes made for every value)",
                                   item.key_locs.get("items", item.key_locs.get("each")),
                                   hint='e.g. - {each: "${cfg}", as: v, items: [{op: conv2d, out_channels: '
                                        '"${v}", kernel_size: 3}]}')
            values = self.field(item, "each", env)
            if not isinstance(values, list):
                raise ResolveError(f"`each` needs a list, got {values!r}", item.val_locs.get("each"))
            self.count(len(values), item.val_locs.get("each"), f"each over {len(values)} items")
            self.budget.room(len(values), item.val_locs.get("each"), f"each over {len(values)} items")
            names = item.get("as", "v")
            counter = {item["index"]: 0} if "index" in item else {}
            for k, v in enumerate(values):
                counter = {name: k for name in counter}
                self._flatten(item["items"], {**env, **counter, **self.unpack(names, v, item.val_locs.get("as", loc))},
                              out)

    @staticmethod
    def unpack(names: Any, value: Any, loc: Loc | None) -> dict[str, Any]:
        if isinstance(names, str):
            return {names: value}
        if not isinstance(value, list) or len(value) != len(names):
            raise ResolveError(f"cannot unpack {value!r} into {list(names)}", loc)
        return dict(zip(names, value))
