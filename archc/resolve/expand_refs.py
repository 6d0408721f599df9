"""Inputs and references: `in:` (and `NAME.*` fan-in), following a name to its producer, `NAME[K]`, `in_shape`,
and freezing the nodes at the end."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archc import blocks as library
from archc.errors import ArchcError, Loc, ResolveError, get_close_matches, raise_together
from archc.expr.lazy import Lazy
from archc.ir import Node
from archc.ir.refs import output_ref
from archc.load import LocDict, LocList
from archc.resolve.expand_base import (
    UNITS,
    Consequence,
    ExpanderBase,
    Ref,
    _Pending,
)
from archc.resolve.names import UnknownName, written_name

_PLAIN = ("node", "input")  # bindings that are a producer themselves (follow's short way)


class RefsMixin(ExpanderBase):
    def follow(self, ref: Ref, via: list[tuple[str, Loc | None]] | None = None) -> str:
        """The concrete producer of a reference: a node path or graph input name, with `[K]` when
        it reads output K of a multi-output node or block. ``via`` collects the skipped (`when:`
        false) nodes passed on the way: (path, location of the `when:`)."""
        if "]" not in ref[1]:  # the common case: a name bound to a node or a graph input
            target = self.bind.get(ref[:2])
            if target is not None and target[0] in _PLAIN:
                return str(target[1])
        seen: list[Ref] = []
        skips: list[tuple[str, Loc | None]] = [] if via is None else via
        index: int | None = None
        first = ref
        failed = False
        while True:
            sid, written, loc = ref
            name, k = output_ref(written)
            if k is not None:
                if index is not None:
                    raise ResolveError(f"'{written}' picks an output of an output", loc)
                index = k
            target = self.bind.get((sid, name))
            if target is None:
                names = [n for (s, n) in self.bind if s == sid and "\x00" not in n]
                close = get_close_matches(name, names, 1)
                raise UnknownName(f"unknown node '{name}'", loc,
                                   hint=f"did you mean '{close[0]}'?" if close else
                                   f"known here: {', '.join(sorted(names)[:12])}")
            kind, value = target
            if kind == "multi":
                ref, index = self._pick(name, value, index, loc), None
                continue
            if kind == "skip":
                value, skipped, wloc = value
                skips.append((skipped, wloc))
            elif kind == "failed":
                failed = True
            elif kind != "ref":
                if index is not None and failed:
                    raise Consequence(f"'{first[1]}' reads a node that failed", first[2])
                if index is not None:
                    self._single(str(value), index, first, skips)
                return str(value) if index is None else f"{value}[{index}]"
            if any(r[:2] == value[:2] for r in seen):
                raise ResolveError(f"'{name}' is skipped (when: false) and refers back to itself", loc)
            seen.append(ref)
            ref = value

    def _single(self, producer: str, index: int, first: Ref, skips: list[tuple[str, Loc | None]]) -> None:
        """Refuse `NAME[K]` when the producer (a graph input, or a node whose op has one output) has a
        single output; saying so when a skipped node led there."""
        op = self.ops.get(producer)
        if op is not None and library.get(op).outputs is not None:
            return  # the number of outputs is checked with the shapes
        what = f"the input '{producer}'" if op is None else f"'{producer}' ({op})"
        written = first[1]
        if skips:
            skipped, wloc = skips[0]
            raise ResolveError(f"'{written}' reads output {index} of '{skipped}', which is skipped here (its `when:` "
                               f"is false) and stands for {what}: it has a single output", first[2],
                               hint=f"its `when:` is at {wloc}; read '{output_ref(written)[0]}' whole, or make the "
                                    "`when:` true wherever an output is read")
        raise ResolveError(f"{what} has a single output: there is no '{written}'", first[2],
                           hint=f"read it as '{output_ref(written)[0]}' (NAME[K] picks an output of split, chunk or "
                                "a block with `outputs:`)")

    @staticmethod
    def _pick(name: str, outputs: list[Ref], index: int | None, loc: Loc | None) -> Ref:
        """Output `index` of a block that declares several `outputs:`."""
        n = len(outputs)
        if index is None:
            raise ResolveError(f"'{name}' has {n} outputs; read one of them", loc,
                               hint=f"name it as '{name}[0]' … '{name}[{n - 1}]' (quoted in a flow list: "
                                    f'in: ["{name}[0]"])')
        if index >= n:
            raise ResolveError(f"'{name}' has {n} outputs: there is no '{name}[{index}]'", loc,
                               hint=f"its outputs are '{name}[0]' … '{name}[{n - 1}]'")
        return outputs[index]

    # -- shapes flowing in (`in_shape`) ------------------------------------------
    def shape_env(self, env: Mapping[str, Any], refs: list[Ref], loc: Loc | None, node: str = "") -> dict[str, Any]:
        """The node's variables plus `in_shape` (its first input's shape, batch left out) and
        `in_shapes` (all inputs'), computed only if an expression reads them."""
        return {**env, "in_shape": Lazy(lambda: self.shapes.of(self, refs[0], loc, node)),
                "in_shapes": Lazy(lambda: [self.shapes.of(self, r, loc, node) for r in refs])}

    def inputs(self, sid: int, spec: LocDict, env: Mapping[str, Any], prev: Ref) -> list[Ref]:
        if "in" not in spec:
            return [prev]
        raw = spec["in"]
        loc = spec.val_locs.get("in")
        items = raw if isinstance(raw, list) else [raw]
        locs = raw.locs if isinstance(raw, LocList) else [loc] * len(items)
        refs: list[Ref] = []
        for item, iloc in zip(items, locs):
            name = written_name(self.value(item, env, iloc))
            if not isinstance(name, str):
                raise ResolveError(f"`in` must name nodes, got {name!r}", iloc)
            if name.endswith(UNITS):
                refs.extend(self.units_of(sid, name, iloc))
                continue
            own = self.renamed.get((sid, name))
            refs.append((sid, name, iloc) if own is None else (sid, own, iloc))
        return refs

    def units_of(self, sid: int, written: str, loc: Loc | None) -> list[Ref]:
        """`NAME.*`: the output of every unit of the repeat NAME, in order (none when it is skipped or
        repeats 0 times). The repeat must come before its reader: how many inputs a node has is known
        when it is expanded."""
        base = written[:-len(UNITS)]
        if (sid, base) in self.units:
            return [(s, n, loc) for s, n, _ in self.units[(sid, base)]]
        target = self.bind.get((sid, base))
        if target is not None and target[0] == "failed":  # its error is reported there, once
            raise Consequence(f"'{written}' reads the units of '{base}', which failed", loc)
        if target is not None and target[0] == "skip":
            return []
        names = [n for (s, n) in self.bind if s == sid and "\x00" not in n]
        if target is None:
            close = get_close_matches(base, names, 1)
            raise ResolveError(f"'{written}' reads the units of '{base}', which is not defined before this node", loc,
                               hint=f"did you mean '{close[0]}.*'?" if close else
                               "NAME.* reads every unit of a repeat written earlier in the same `nodes:`")
        raise ResolveError(f"'{written}' reads the units of '{base}', which is not a repeat", loc,
                           hint=f"NAME.* is for a node with `repeat:`; read '{base}' itself with in: {base}")

    def finish(self) -> list[Node]:
        """Follow every reference to its producer and freeze the nodes."""
        nodes, errors, bind = [], [], self.bind
        for p in self.pending:
            try:
                ins = []
                for k, r in enumerate(p.refs):
                    target = bind.get(r[:2]) if "]" not in r[1] else None  # follow's short way, inlined
                    ins.append(str(target[1]) if target is not None and target[0] in _PLAIN
                               else self._follow_input(p, k))
                nodes.append(Node(p.path, p.op, p.args, tuple(ins), p.loc))
            except ArchcError as e:
                errors.append(e.located(p.loc, p.path))
        for ref in self.checks:  # an `else:` of a node that runs: its name is checked all the same
            try:
                self.follow(ref)
            except ArchcError as e:
                errors.append(e)
        raise_together(errors)
        return nodes

    def _follow_input(self, p: _Pending, k: int) -> str:
        """Input ``k`` of a pending node, remembering a skipped node on the way (for shape hints)."""
        via: list[tuple[str, Loc | None]] = []
        path = self.follow(p.refs[k], via)
        if via:
            self.skipped[p.path] = (*self.skipped.get(p.path, ()), (k, *via[0]))
        return path
