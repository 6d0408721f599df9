"""Expand a spec's nodes, blocks, repeats and `each` loops into a flat list of primitive nodes.

Names are looked up lazily: every input is a reference (scope, name) that is followed to a
concrete node path once the whole spec is expanded, so a node may name a later node and cycles
are found (and reported) by the graph stage rather than forbidden by ordering.

The parts are mixins, one module per concern: expand_base.py (state, scopes, values), expand_refs.py
(`in:`, following references), expand_after.py (`after:`), expand_when.py (`when:`/`else:`),
expand_groups.py (repeats, groups, `each:`), expand_blocks.py (block instances, primitive ops);
share.py links `share:` after the expansion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from archc.errors import ArchcError, LimitError, Loc, ResolveError
from archc.load import LocDict
from archc.resolve.expand_after import AfterMixin
from archc.resolve.expand_base import (
    GROUP_STEPS,
    RESERVED,
    STEPS_HINT,
    UNITS,
    Consequence,
    Entry,
    Limits,
    Ref,
    ShareRequest,
    Skip,
)
from archc.resolve.expand_blocks import BlocksMixin, instance_note
from archc.resolve.expand_groups import GroupsMixin
from archc.resolve.expand_refs import RefsMixin
from archc.resolve.expand_when import WhenMixin
from archc.resolve.memo import expand_unit
from archc.resolve.names import written_name

__all__ = ["Expander", "Limits", "RESERVED", "STEPS_HINT", "GROUP_STEPS"]
__all__ += ["Consequence", "Entry", "Ref", "ShareRequest", "Skip", "UNITS", "instance_note"]  # moved to expand_*.py


class Expander(RefsMixin, AfterMixin, WhenMixin, GroupsMixin, BlocksMixin):
    # -- expansion -----------------------------------------------------------
    def entries(self, sid: int, items: Sequence[Entry], prefix: str, charged: bool = False,
                ordered: bool = True, after: Ref | None = None) -> str:
        """Expand a scope's entries in order; each defaults to the previous one's output (the first, to the
        scope's first input, or to ``after``: the entries already there). Each costs a step of the budget
        unless ``charged`` (seq items are charged when flattened)."""
        prev: Ref = after or (sid, self.first[sid], None)
        last = prev[1]
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
            n = self.repeat_count(name, spec, env, path, refs)
            return expand_unit(self, "repeat", sid, name, spec, env, path, refs, n,
                               lambda resume=None: self.repeat(sid, name, spec, env, path, refs, n, resume))
        if "seq" in spec or "nodes" in spec:
            body = spec["seq"] if "seq" in spec else spec["nodes"]
            label = "seq" if "seq" in spec else "group"
            return expand_unit(self, label, sid, name, spec, env, path, refs, None,
                               lambda: self.group(sid, name, spec, body, spec.get("inputs"), env, path, refs, label))
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
