"""Stage 3: spec data -> graph IR (params, expressions, blocks, repeats, `extends`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from math import prod
from pathlib import Path
from typing import Any

from archc import blocks as library
from archc.errors import ArchcError, LimitError, Loc, ResolveError
from archc.expr import Budget, deep_interpolate
from archc.ir import Graph, Group, Node
from archc.ir.order import execution_order
from archc.ir.refs import output_ref
from archc.load import LocDict
from archc.resolve.expand import STEPS_HINT, Expander, Limits
from archc.resolve.init_rules import check_parameter_nodes, init_rules
from archc.resolve.names import written_name
from archc.resolve.share import link_shares
from archc.resolve.spec import (
    SpecSource,
    _extends_target,
    builtin_dir,
    builtin_names,
    find_spec,
    load_spec,
    settle_params,
)

__all__ = ["Limits", "Resolved", "build", "resolve", "find_spec", "builtin_dir", "builtin_names", "spec_file"]


@dataclass
class Resolved:
    graph: Graph
    source: SpecSource


SYMBOL_PLACEHOLDER = 224  # concrete stand-in for a symbolic input size while resolving


def _input_shapes(data: LocDict, env: Mapping[str, Any], override: Any, symbols: dict[int, str],
                  limits: Limits, budget: Budget, stand_in: int) -> list[tuple[str, tuple[int, ...]]]:
    raw = override if override is not None else data.get("input")
    loc = data.val_locs.get("input", data.loc)
    if raw is None:
        raise ResolveError("the spec declares no `input:` shape", data.loc,
                           hint="add e.g. `input: [3, 224, 224]` or pass --input 3x224x224")
    named = raw.items() if isinstance(raw, dict) else [("input", raw)]
    out = []
    for name, shape in named:
        dims = []
        for axis, d in enumerate(shape):
            v = deep_interpolate(d, env, loc, budget)
            if isinstance(v, str) and v in env:
                v = env[v]
            if isinstance(v, str) and v.isidentifier() and axis > 0 and not isinstance(raw, dict):
                symbols[axis] = v  # a symbolic size such as H: solved by analyze.symbolic
                v = stand_in
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ResolveError(f"input size {d!r} must be a positive integer", loc,
                                   hint="give a concrete size with --input, e.g. --input 3x224x224")
            dims.append(v)
        _check_input_size(str(name), dims, limits, loc)
        out.append((name, tuple(dims)))
    return out


def _check_input_size(name: str, dims: list[int], limits: Limits, loc: Any) -> None:
    """The input is a tensor too: hold it to the per-sample activation limit."""
    size = prod(dims)
    if size > limits.max_activation:
        raise LimitError(f"input '{name}' {'x'.join(map(str, dims))} is {size:,} elements per sample, "
                         f"over the limit of {limits.max_activation:,}", loc,
                         hint="raise the limit with --max-activation (Limits.max_activation) if this is intended")


def _frozen(data: LocDict, nodes: list[Any]) -> tuple[str, ...]:
    """`frozen:` paths, each of which must name a node or a group of nodes."""
    paths = data.get("frozen") or []
    locs = getattr(paths, "locs", [data.loc] * len(paths))
    for path, loc in zip(paths, locs):
        under = [n for n in nodes if n.path == path or n.path.startswith(path + ".")]
        if not under:
            raise ResolveError(f"frozen: no node or group '{path}'", loc,
                               hint="give a node path such as conv1, layer1 or layer1.0.conv1")
        owners = {n.shares for n in under if n.shares is not None}
        if owners and all(n.shares is not None or library.get(n.op).kind not in ("module", "parameter")
                          for n in under):
            raise ResolveError(f"frozen: '{path}' owns no weights: it shares those of "
                               f"'{sorted(owners)[0]}'{' and others' if len(owners) > 1 else ''}", loc,
                               hint="freeze the owner (shared weights are one tensor: frozen for every user)")
    return tuple(paths)


def resolve(spec: str | Path, params: Mapping[str, Any] | None = None, input_shape: Any = None,
            limits: Limits | None = None) -> Resolved:
    """Load, validate and expand a spec into a :class:`Graph` (no torch involved)."""
    source = load_spec(find_spec(spec))
    try:
        return Resolved(_build(source, dict(params or {}), input_shape, limits or Limits()), source)
    except ArchcError as e:
        source.add_chains((e, *e.others))
        raise


def build(source: SpecSource, params: Mapping[str, Any] | None = None, input_shape: Any = None,
          limits: Limits | None = None) -> Graph:
    """Expand a loaded spec (``load_spec``) into its graph; errors raise without their extends chain
    (``source.add_chains`` adds it)."""
    return _build(source, dict(params or {}), input_shape, limits or Limits())


def spec_file(value: Any, loc: Loc | None, here: Path, top: Path | None = None, key: str = "extends") -> Path:
    """The file an `extends:`/`imports:` value written in ``here`` names, under ``load_spec``'s folder
    rules for the spec ``top`` (default ``here``)."""
    return _extends_target(value, loc, here, [(top or here).resolve().parent, builtin_dir().resolve()], key)


def _build(source: SpecSource, params: dict[str, Any], input_shape: Any, limits: Limits,
           stand_in: int = SYMBOL_PLACEHOLDER) -> Graph:
    data = source.data
    if "nodes" not in data:
        raise ResolveError("the spec has no `nodes:`", data.loc, hint="declare the model's nodes, or `extends:` a spec")
    budget = Budget(limits.max_steps, STEPS_HINT)  # shared by params, input sizes and expansion
    env = settle_params(data, params, budget)
    symbols: dict[int, str] = {}
    inputs = _input_shapes(data, env, input_shape, symbols, limits, budget, stand_in)
    ex = Expander(data.get("blocks"), limits, budget, inputs, symbols)
    top = ex.new_scope("", {name: ("input", name) for name, _ in inputs})
    nodes_spec = data["nodes"]
    items = [(k, v, nodes_spec.val_locs.get(k), env) for k, v in nodes_spec.items()]
    last = ex.entries(top, items, "")
    outputs, train_outputs, dropped = _outputs(data, ex, top, last, env)
    nodes = link_shares(ex, execution_order(ex.finish(), [n for n, _ in inputs]))
    meta: dict[str, Any] = {k: data[k] for k in ("family", "reference", "description") if k in data}
    frozen = _frozen(data, nodes)
    groups = list(ex.groups)
    if dropped:  # an output whose `when:` is false takes the nodes only it reads with it
        nodes, groups, frozen = _drop_branches(nodes, groups, frozen, (*outputs, *train_outputs), dropped)
    if frozen:
        meta["frozen"] = frozen
    if ex.skipped:
        meta["skipped"] = ex.skipped  # node path -> (input index, skipped node, its `when:`): for shape hints
    if data.get("init"):
        meta["init"] = init_rules(data, env, budget)
        check_parameter_nodes(meta["init"], nodes)
    meta["input_loc"] = data.val_locs.get("input", data.loc)  # where "no size works" and run-time input errors point
    if symbols:
        meta["symbols"] = symbols
        if ex.shapes.reads:  # None: no expression read a size that depends on the symbolic ones
            meta["sized_by_stand_in"] = ex.shapes.size_read
    return Graph(str(data["name"]), tuple(inputs), tuple(nodes), outputs, tuple(groups), env, meta,
                 str(source.path), train_outputs)


def _reach(nodes: list[Node], outputs: tuple[str, ...]) -> set[str]:
    """The node paths whose values reach ``outputs``."""
    index = {n.path: n for n in nodes}
    seen: set[str] = set()
    stack = [output_ref(o)[0] for o in outputs]
    while stack:
        p = stack.pop()
        if p not in seen and p in index:
            seen.add(p)
            stack.extend(output_ref(s)[0] for s in index[p].inputs)
    return seen


def _drop_branches(nodes: list[Node], groups: list[Group], frozen: tuple[str, ...], kept: tuple[str, ...],
                   dropped: tuple[str, ...]) -> tuple[list[Node], list[Group], tuple[str, ...]]:
    """Leave out the nodes that only dropped outputs read (not built, counted or drawn), the groups left
    empty and the `frozen:` paths left without nodes. A kept node sharing a dropped node's weights takes
    them over (the first such node owns them)."""
    gone = _reach(nodes, dropped) - _reach(nodes, kept)
    owners: dict[str, str] = {}
    out = []
    for n in nodes:
        if n.path in gone:
            continue
        if n.shares in gone:
            owner = owners.setdefault(n.shares, n.path)
            n = replace(n, shares=None if owner == n.path else owner)
        out.append(n)
    left = [n.path for n in out]

    def has_nodes(path: str) -> bool:
        return any(p == path or p.startswith(path + ".") for p in left)

    was = {g.path for g in groups if any(p.startswith(g.path + ".") for p in gone)}
    groups = [g for g in groups if g.path not in was or has_nodes(g.path)]
    return out, groups, tuple(f for f in frozen if has_nodes(f))


def _outputs(data: LocDict, ex: Expander, top: int, last: str, env: Mapping[str, Any]
             ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The top-level `outputs:` (default: the last node) as producer paths: those returned in eval
    mode, those returned in training mode only, and those dropped: an entry `{node, when, train_only}`
    whose `when:` is false (its name is still checked)."""
    raw = data.get("outputs")
    if not raw:
        return (ex.follow((top, last, data.val_locs.get("nodes"))),), (), ()
    evals: list[str] = []
    trains: list[str] = []
    dropped: list[str] = []
    for item, loc in zip(raw, getattr(raw, "locs", [data.val_locs.get("outputs")] * len(raw))):
        entry = item if isinstance(item, LocDict) else None
        nloc = entry.val_locs.get("node", loc) if entry is not None else loc
        name = written_name(ex.value(entry["node"] if entry is not None else item, env, nloc))
        if not isinstance(name, str):
            raise ResolveError(f"an output must name a node, got {name!r}", nloc)
        path = ex.follow((top, name, nloc))
        if entry is not None and not _output_kept(ex, entry, env):
            dropped.append(path)
            continue
        train_only = entry is not None and entry.get("train_only") is True
        if train_only and path in evals:
            raise ResolveError(f"'{name}' is already an output in every mode", nloc,
                               hint="drop `train_only: true`, or list it once")
        (trains if train_only else evals).append(path)
    if not evals:
        raise ResolveError("no output is left for eval mode" if trains else "every output is dropped by its `when:`",
                           data.val_locs.get("outputs"),
                           hint="list at least one output without `train_only: true` whose `when:` holds")
    return tuple(evals), tuple(trains), tuple(dropped)


def _output_kept(ex: Expander, entry: LocDict, env: Mapping[str, Any]) -> bool:
    """An output entry's `when:`, which must come out true or false."""
    when = ex.field(entry, "when", env, True)
    if not isinstance(when, bool):
        raise ResolveError(f"an output's `when:` should be true or false, got {when!r}", entry.val_locs.get("when"),
                           hint="compare it to something, e.g. when: \"${aux_loss}\" with a boolean param, "
                                "or \"${n > 0}\"")
    return when


