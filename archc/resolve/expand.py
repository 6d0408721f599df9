"""Expand a spec's nodes, blocks, repeats and `each` loops into a flat list of primitive nodes.

Names are looked up lazily: every input is a reference (scope, name) that is followed to a
concrete node path once the whole spec is expanded, so a node may name a later node and cycles
are found (and reported) by the graph stage rather than forbidden by ordering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

from archc import blocks as library
from archc.errors import ArchcError, LimitError, Loc, ResolveError
from archc.expr import Budget, deep_interpolate, describe, division_hint, fits
from archc.expr.lazy import Lazy
from archc.ir import Group, Node
from archc.ir.refs import output_ref
from archc.load import LocDict, LocList
from archc.resolve.memo import expand_instance
from archc.resolve.names import UnknownName, check_name, written_name
from archc.resolve.shapes_so_far import ShapesSoFar
from archc.schema import RESERVED_KEYS

__all__ = ["Expander", "Limits", "RESERVED", "STEPS_HINT", "GROUP_STEPS"]

RESERVED = RESERVED_KEYS - {"input"}  # the schema's reserved keys; `input` only names a block's input


@dataclass(frozen=True)
class Limits:
    """Caps checked before anything is allocated; configurable from the API and CLI."""

    max_nodes: int = 50_000
    max_params: int = 20_000_000_000
    max_activation: int = 250_000_000  # elements of one sample's largest tensor (1 GB in fp32), input included
    max_block_depth: int = 32
    max_steps: int = 100_000  # expansion work: nodes, groups, `each` items and expression evaluations


# keys that would give an input width, which archc always infers from the shape flowing in
INFERRED_WIDTHS = frozenset({"in_channels", "in_features", "num_features"})
WIDTH_HINT = ("input widths are inferred from the shape flowing in: delete '{key}' (archc takes no in_channels, "
              "in_features or num_features; a block reads the width as ${{in_shape[0]}})")

STEPS_HINT = ("nested repeat and each multiply: check their counts, or raise the limit with --max-steps "
              "(Limits.max_steps) if this is intended")
GROUP_STEPS = 8  # a group, block instance or repeat costs the time of several nodes


class Consequence(ResolveError):
    """An error that follows from one already reported (an output picked from a node that failed)."""


Ref = tuple[int, str, Loc | None]  # (scope id, name, where it was named)
Skip = tuple[Ref, str, Loc | None]  # a `when: false` node: (what it stands for, its path, where its `when:` is)
Entry = tuple[str, Any, Loc | None, Mapping[str, Any]]  # (name, node spec, location, variables)
UNITS = ".*"  # `in: ["m.*"]`: every unit of the repeat m, in order (a fan-in)


@dataclass(frozen=True)
class ShareRequest:
    """`share: TARGET` on the node or group at ``path``: TARGET is a path relative to its scope."""

    path: str
    target: str
    loc: Loc | None


@dataclass
class _Pending:
    path: str
    op: str
    args: dict[str, Any]
    refs: list[Ref]
    loc: Loc | None


class Expander:
    def __init__(self, blocks: LocDict | None, limits: Limits, budget: Budget | None = None,
                 inputs: Sequence[tuple[str, tuple[int, ...]]] = (), symbols: Mapping[int, str] | None = None) -> None:
        self.blocks = blocks or LocDict(Loc("<spec>", 1, 1))
        self.limits = limits
        self.budget = budget or Budget(limits.max_steps, STEPS_HINT)
        # ("node", path) | ("ref", Ref) | ("skip", Skip) | ("multi", [Ref]) | ("input", name) | ("failed", Ref)
        self.bind: dict[tuple[int, str], tuple[str, Any]] = {}
        self.scopes: list[str] = []  # scope id -> path prefix, for messages
        self.first: list[str] = []  # scope id -> name of its first input (default input of entry 0)
        self.pending: list[_Pending] = []
        self.groups: list[Group] = []
        self.depth = 0
        self.shapes = ShapesSoFar(inputs, symbols)
        self.generated: set[tuple[int, str]] = set()  # (scope, name) made by a repeat's `name:` template
        self.ops: dict[str, str] = {}  # node path -> op, to refuse NAME[K] on a single-output node
        self.checks: list[Ref] = []  # `else:` names of nodes that are not skipped: followed at the end, for typos
        self.skipped: dict[str, tuple[tuple[int, str, Loc | None], ...]] = {}  # path -> (input, skipped, `when:`)
        self.units: dict[tuple[int, str], list[Ref]] = {}  # a repeat's units, for `in: ["NAME.*"]`
        self.renamed: dict[tuple[int, str], str] = {}  # while a node with `after: X` expands: what its names read
        self.originals: dict[tuple[int, str], str] = {}  # a name some `after:` took over -> its own node's binding
        self.shares: list[ShareRequest] = []
        self.demand = self.step_demand = self.deepest = 0  # peaks of count() and depth: what a memo replay needs

    # -- scopes and names -------------------------------------------------
    def new_scope(self, prefix: str, inputs: Mapping[str, tuple[str, Any]]) -> int:
        sid = len(self.scopes)
        self.scopes.append(prefix)
        self.first.append(next(iter(inputs), "input"))
        for name, target in inputs.items():
            self.bind[(sid, name)] = target
        return sid

    def define(self, sid: int, name: str, target: tuple[str, Any], loc: Loc | None) -> None:
        if (sid, name) not in self.generated:  # a repeat's `name:` template was checked already
            check_name(name, loc)
        if (sid, name) in self.bind:
            raise ResolveError(f"name '{name}' is defined twice in '{self.scopes[sid] or 'the model'}'", loc,
                               hint="`input` and declared block inputs are reserved names")
        self.bind[(sid, name)] = target

    def follow(self, ref: Ref, via: list[tuple[str, Loc | None]] | None = None) -> str:
        """The concrete producer of a reference: a node path or graph input name, with `[K]` when
        it reads output K of a multi-output node or block. ``via`` collects the skipped (`when:`
        false) nodes passed on the way: (path, location of the `when:`)."""
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

    # -- values ------------------------------------------------------------
    def value(self, v: Any, env: Mapping[str, Any], loc: Loc | None) -> Any:
        return deep_interpolate(v, env, loc, self.budget)

    def field(self, spec: LocDict, key: str, env: Mapping[str, Any], default: Any = None) -> Any:
        return self.value(spec[key], env, spec.val_locs.get(key)) if key in spec else default

    def count(self, n: int, loc: Loc | None, what: str) -> None:
        self.demand = max(self.demand, len(self.pending) + n)
        self.step_demand = max(self.step_demand, self.budget.used + n)  # a budget.room(n) follows each count(n)
        if len(self.pending) + n > self.limits.max_nodes:
            raise LimitError(f"{what} would make the model larger than {self.limits.max_nodes} nodes", loc,
                             hint="raise the limit with --max-nodes if this is intended")

    # -- expansion -----------------------------------------------------------
    def entries(self, sid: int, items: Sequence[Entry], prefix: str, charged: bool = False,
                ordered: bool = True) -> str:
        """Expand a scope's entries in order; each defaults to the previous one's output.
        Each costs a step of the budget unless ``charged`` (seq items are charged when flattened)."""
        prev: Ref = (sid, self.first[sid], None)
        last = self.first[sid]
        errors: list[ArchcError] = []
        dropped: Consequence | None = None
        if ordered and not charged:  # a `nodes:` mapping (a seq's and a repeat's children carry no `after:`)
            items = self.placed(sid, items)
        for name, spec, loc, env in items:
            if not charged:
                self.budget.spend(1, loc)
            try:
                if isinstance(spec, LocDict) and "after" in spec:
                    self.insert_after(sid, name, spec, loc, env, prefix)
                else:
                    self.node(sid, name, spec, loc, env, prefix, prev, seq=charged)
            except LimitError:
                raise
            except Consequence as e:  # of an error already recorded (here or in a scope around)
                dropped = dropped or e
                self.bind.setdefault((sid, name), ("failed", prev))
            except ArchcError as e:
                if all(e is not f for f in errors):  # one error object once: never in its own `others`
                    errors.append(e)
                self.bind.setdefault((sid, name), ("failed", prev))  # later readers go on from its input
            prev, last = (sid, name, loc), name
        if dropped is not None and not errors:
            raise dropped
        if errors:
            errors[0].others.extend(f for f in errors[1:] if all(f is not g for g in errors[0].others))
            raise errors[0]
        return last

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

    def node(self, sid: int, name: str, spec: Any, loc: Loc | None, env: Mapping[str, Any],
             prefix: str, prev: Ref, seq: bool = False) -> None:
        if isinstance(spec, str):
            op = self.value(spec, env, loc)
            spec = LocDict(loc or Loc("<spec>", 1, 1))
            spec["op"], spec.val_locs["op"] = op, loc
        if not isinstance(spec, LocDict):
            raise ResolveError(f"node '{name}' must be an op name or a mapping", loc)
        refs = self.inputs(sid, spec, env, prev)
        path = prefix + name
        if not refs:  # `in: ["m.*"]` of a skipped repeat, or of `repeat: 0`, and nothing else
            raise ResolveError(f"'{name}' reads no inputs: its `in:` names only the units of repeats that have none",
                               spec.val_locs.get("in", loc), node=path,
                               hint="add another input beside NAME.*, or keep the repeat at least once")
        env = self.shape_env(env, refs, spec.loc, path)
        stands_for = self.stands_for(sid, name, spec, env, refs, seq, path)
        if not self.field(spec, "when", env, True):
            self.define(sid, name, ("skip", (stands_for, path, spec.val_locs.get("when", loc))), loc)
            return
        if "else" in spec:
            self.checks.append(stands_for)
        if "share" in spec:
            if seq:
                raise ResolveError("`share:` on a seq item", spec.key_locs["share"], node=path,
                                   hint="name the children with `nodes:` so that the shared one has a path to name")
            self.shares.append(ShareRequest(path, str(written_name(spec["share"])), spec.val_locs["share"]))
        if "repeat" in spec:
            return self.repeat(sid, name, spec, env, path, refs)
        if "seq" in spec or "nodes" in spec:
            body = spec["seq"] if "seq" in spec else spec["nodes"]
            return self.group(sid, name, spec, body, spec.get("inputs"), env, path, refs, "seq" if "seq" in spec
                              else "group")
        if "op" not in spec:
            raise ResolveError(f"node '{name}' needs an `op` (or `seq`/`nodes`)", spec.loc,
                               hint="an `each:` loop is an item of a `seq:` list, with `items:`" if "each" in spec
                               else None)
        op = self.field(spec, "op", env)
        if not isinstance(op, str):
            raise ResolveError(f"op must be a name, got {op!r}", spec.val_locs.get("op"))
        if op in self.blocks:
            return self.instance(sid, name, op, spec, env, path, refs)
        self.primitive(sid, name, op, spec, env, path, refs)

    def stands_for(self, sid: int, name: str, spec: LocDict, env: Mapping[str, Any], refs: list[Ref],
                   seq: bool, path: str) -> Ref:
        """What a node's name stands for when its `when:` is false: its input, or with several inputs
        the one its `else:` names (required: a skipped `add: {in: [a, b]}` is neither a nor b by nature).
        A `seq:` item is dropped instead (the next item reads the one before), so it takes no `else:`."""
        eloc = spec.key_locs.get("else")
        if "else" in spec and "when" not in spec:
            raise ResolveError(f"'{name}' has `else:` but no `when:`", eloc, node=path,
                               hint="`else:` names the input a node stands for when its `when:` is false")
        if "else" in spec and seq:
            raise _seq_else(spec)
        if "else" not in spec:
            if "when" in spec and len(refs) > 1 and not seq:
                names = ", ".join(f"'{r[1]}'" for r in refs)
                raise ResolveError(f"'{name}' reads {len(refs)} inputs ({names}) and may be skipped: say which one "
                                   "it stands for when its `when:` is false", spec.val_locs.get("when", spec.loc),
                                   node=path,
                                   hint=f"add `else: {refs[0][1]}` (or another of its inputs); a skipped node's name "
                                        "stands for its input")
            return refs[0]
        wanted = written_name(self.value(spec["else"], env, spec.val_locs.get("else")))
        for ref in refs:
            if ref[1] == wanted:
                return (sid, ref[1], spec.val_locs.get("else"))
        names = ", ".join(f"'{r[1]}'" for r in refs)
        raise ResolveError(f"`else: {wanted}` is not an input of '{name}' (it reads {names})",
                           spec.val_locs.get("else"), node=path,
                           hint="`else:` names the input the node stands for when skipped")

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

    def repeat(self, sid: int, name: str, spec: LocDict, env: Mapping[str, Any], path: str,
               refs: list[Ref]) -> None:
        n = self.field(spec, "repeat", env)
        loc = spec.val_locs.get("repeat")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ResolveError(f"repeat must be a non-negative integer, got {n!r}", loc)
        if len(refs) > 1:  # copy 0 would read the first alone, and `repeat: 0` would stand for it
            raise ResolveError(f"'{name}' repeats {n} times but reads {len(refs)} inputs: each copy reads the one "
                               "before, so a repeated node takes one input", spec.val_locs.get("in", loc), node=path,
                               hint="combine the inputs in a node before it (add, concat) and repeat what follows")
        self.count(n, loc, f"repeat: {n}")
        self.budget.room(n, loc, f"repeat: {n}")
        self.budget.spend(GROUP_STEPS, loc)
        var = spec.get("as", "i")
        inner = LocDict(spec.loc)
        for k, v in spec.items():
            if k not in ("repeat", "as", "name", "in", "when", "else", "share", "after"):
                inner[k], inner.key_locs[k], inner.val_locs[k] = v, spec.key_locs[k], spec.val_locs[k]
        child = self.new_scope(path + ".", {"input": ("ref", refs[0])})
        op = self.field(inner, "op", {**env, var: 0}, "group") if n else "group"
        self.groups.append(Group(path, f"{op} x{n}", spec.loc, "repeat"))
        items = []
        nloc = spec.val_locs.get("name", spec.loc)
        for i in range(n):
            ienv = {**env, var: i}
            cname = self.field(spec, "name", ienv, str(i))
            if isinstance(cname, int) and not isinstance(cname, bool):
                cname = str(cname)  # name: "${i + 1}" gives an index
            check_name(cname, nloc, "repeat name ", generated=True)
            self.generated.add((child, cname))  # a generated name obeys the written-name rule
            items.append((cname, inner, spec.loc, ienv))
        last = self.entries(child, items, path + ".", charged=False, ordered=False)
        self.units[(sid, name)] = [(child, cname, spec.loc) for cname, *_ in items]
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

    def instance(self, sid: int, name: str, op: str, spec: LocDict, env: Mapping[str, Any], path: str,
                 refs: list[Ref]) -> None:
        bdef = self.blocks[op]
        declared = bdef.get("args") or LocDict(bdef.loc)
        benv = dict(env)
        for key in spec:
            if key not in RESERVED and key not in declared:
                close = get_close_matches(key, list(declared), 1)
                raise ResolveError(f"block '{op}' has no argument '{key}'", spec.key_locs.get(key),
                                   hint=WIDTH_HINT.format(key=key) if key in INFERRED_WIDTHS else
                                   f"did you mean '{close[0]}'?" if close else
                                   f"arguments: {', '.join(declared) or 'none'}")
        for arg, decl in declared.items():
            default = decl.get("default", _MISSING) if isinstance(decl, LocDict) else _MISSING
            if arg in spec:
                benv[arg] = self.field(spec, arg, env)
            elif default is not _MISSING:
                benv[arg] = self.value(default, benv, decl.val_locs.get("default"))
            else:
                raise ResolveError(f"block '{op}' needs argument '{arg}'", spec.loc)
            kind = decl.get("type", "any") if isinstance(decl, LocDict) else decl
            if not fits(kind, benv[arg]):
                raise ResolveError(f"argument '{arg}' of block '{op}' should be {describe(kind)}, got "
                                   f"{benv[arg]!r}", spec.val_locs.get(arg, spec.loc),
                                   hint=division_hint(describe(kind), benv[arg]))
        body = bdef["seq"] if "seq" in bdef else bdef["nodes"]
        bspec = LocDict(spec.loc)
        for key in ("out", "outputs"):
            if key in bdef:
                bspec[key], bspec.val_locs[key] = bdef[key], bdef.val_locs[key]
        try:
            expand_instance(self, op, sid, name, bspec, body, bdef.get("inputs"), benv, path, refs)  # memo.py
        except ArchcError as e:
            note = instance_note(op, path, spec)
            for err in (e, *e.others):
                err.notes.append(note)
            raise

    def primitive(self, sid: int, name: str, op: str, spec: LocDict, env: Mapping[str, Any], path: str,
                  refs: list[Ref]) -> None:
        try:
            block = library.get(op)
        except ArchcError as e:  # unknown op: suggest this spec's own blocks too
            local = get_close_matches(op, list(self.blocks), 1)
            raise ResolveError(e.message, spec.val_locs.get("op", spec.loc), node=path,
                               hint=f"did you mean '{local[0]}'?" if local else e.hint) from None
        lo, hi = block.arity
        if len(refs) < lo or (hi is not None and len(refs) > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
            raise ResolveError(f"{op} takes {want} input(s), got {len(refs)}", spec.val_locs.get("in", spec.loc),
                               node=path, hint="name them with `in: [a, b]`" if lo > 1 else None)
        args: dict[str, Any] = {}
        for key in spec:
            if key in RESERVED:
                continue
            if key not in block.params:
                close = get_close_matches(key, list(block.params), 1)
                raise ResolveError(f"{op} has no argument '{key}'", spec.key_locs.get(key), node=path,
                                   hint=WIDTH_HINT.format(key=key) if key in INFERRED_WIDTHS else
                                   f"did you mean '{close[0]}'?" if close else
                                   f"arguments: {', '.join(block.params) or 'none'}")
        for key, param in block.params.items():
            if key in spec:
                value = self.field(spec, key, env)
                expected = param.check(value)
                if expected:
                    yaml11 = isinstance(value, str) and value.lower() in _YAML11_BOOLS
                    raise ResolveError(f"{op}: {key} should be {expected}, got {value!r}",
                                       spec.val_locs.get(key), node=path,
                                       hint="archc reads YAML 1.2: only true/false are booleans" if yaml11
                                       else division_hint(expected, value))
                args[key] = value
            elif param.default is library.REQUIRED:
                raise ResolveError(f"{op} needs argument '{key}'", spec.loc, node=path)
            else:
                args[key] = param.default
        self.count(1, spec.loc, f"node '{path}'")
        self.pending.append(_Pending(path, op, args, refs, spec.val_locs.get("op", spec.loc)))
        self.ops[path] = op
        self.define(sid, name, ("node", path), spec.loc)

    def finish(self) -> list[Node]:
        """Follow every reference to its producer and freeze the nodes."""
        nodes, errors = [], []
        for p in self.pending:
            try:
                nodes.append(Node(p.path, p.op, p.args, tuple(self._follow_input(p, k) for k in range(len(p.refs))),
                                  p.loc))
            except ArchcError as e:
                errors.append(e.located(p.loc, p.path))
        for ref in self.checks:  # an `else:` of a node that runs: its name is checked all the same
            try:
                self.follow(ref)
            except ArchcError as e:
                errors.append(e)
        if errors:
            errors[0].others.extend(errors[1:])
            raise errors[0]
        return nodes

    def _follow_input(self, p: _Pending, k: int) -> str:
        """Input ``k`` of a pending node, remembering a skipped node on the way (for shape hints)."""
        via: list[tuple[str, Loc | None]] = []
        path = self.follow(p.refs[k], via)
        if via:
            self.skipped[p.path] = (*self.skipped.get(p.path, ()), (k, *via[0]))
        return path


def _seq_else(item: LocDict) -> ResolveError:
    return ResolveError("`else:` on a seq item: a seq item whose `when:` is false is dropped (the next item reads "
                        "the one before it)", item.key_locs.get("else"),
                        hint="delete `else:`, or name the children with `nodes:` to skip one in place")


def instance_note(op: str, path: str, spec: LocDict) -> str:
    """'in block X (path) used at LOC with a=1 (at LOC)': where the arguments of a failing block came from."""
    args = [f"{k}={v!r} (at {spec.val_locs[k]})" for k, v in spec.items()
            if k not in RESERVED and k in spec.val_locs and not isinstance(v, (list, dict))][:4]
    return f"in block '{op}' ({path}) used at {spec.loc}" + (f" with {', '.join(args)}" if args else "")


_MISSING = object()
_YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n"}
