"""The Expander's state and the pieces every part of it uses (expand.py puts the parts together): limits,
references, scopes and names, values and counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from archc.errors import LimitError, Loc, ResolveError
from archc.expr import Budget, deep_interpolate
from archc.ir import Group
from archc.load import LocDict
from archc.resolve.names import check_name
from archc.resolve.shapes_so_far import ShapesSoFar
from archc.schema import RESERVED_KEYS

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


class ExpanderBase:
    """What an Expander holds; the mixins of expand_*.py read and extend it."""

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

    # -- defined in expand.py, called by the mixins -------------------------------
    def entries(self, sid: int, items: Sequence[Entry], prefix: str, charged: bool = False,
                ordered: bool = True, after: Ref | None = None) -> str:
        raise NotImplementedError

    def node(self, sid: int, name: str, spec: Any, loc: Loc | None, env: Mapping[str, Any],
             prefix: str, prev: Ref, seq: bool = False) -> None:
        raise NotImplementedError


def _seq_else(item: LocDict) -> ResolveError:
    return ResolveError("`else:` on a seq item: a seq item whose `when:` is false is dropped (the next item reads "
                        "the one before it)", item.key_locs.get("else"),
                        hint="delete `else:`, or name the children with `nodes:` to skip one in place")
