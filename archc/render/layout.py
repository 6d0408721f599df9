"""Fold the graph into what a diagram shows: repeated blocks as one box with a count, groups as
clusters, `depth` levels open. Pure data: no Graphviz here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from archc.analyze import Analysis
from archc.blocks import get as get_block
from archc.ir import Group, Node
from archc.ir.refs import output_ref

__all__ = ["Unit", "Layout", "units", "build", "edges_of"]


@dataclass
class Unit:
    """One box: a primitive node, or a folded group of nodes."""

    path: str
    label: str  # op or block name, "bottleneck x6" for folded repeats
    category: str
    params: int = 0
    macs: int = 0
    shape: tuple[int, ...] = ()
    detail: str = ""
    error: str = ""
    members: list[str] = field(default_factory=list)
    status: str = ""  # diffs: added | removed | changed
    notes: list[str] = field(default_factory=list)  # extra label lines ("in 4 of 16 instances")


@dataclass
class Layout:
    units: dict[str, Unit]  # by id; the id is the unit's path except in diffs (removed units)
    unit_of: dict[str, str]  # primitive node path (or graph input) -> unit id
    clusters: list[Group]  # open groups that contain units, outermost first
    # unit -> unit, with the tensor shape and, for output K of a multi-output node, "[K]"
    edges: list[tuple[str, str, tuple[int, ...] | None, str]]
    inputs: list[tuple[str, tuple[int, ...]]]
    outputs: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # definitions: the "output" oval
    shared: list[tuple[str, str]] = field(default_factory=list)  # (owner unit, unit using its weights): `share:`


def _detail(op: str, args: dict) -> str:
    """Key parameters in a few characters: conv 3x3/2 64, pool 3x3/2, linear 1000."""
    k, s = args.get("kernel_size"), args.get("stride")
    k = f"{k}x{k}" if isinstance(k, int) else "x".join(map(str, k)) if isinstance(k, list) else None
    if op in ("conv2d", "conv_transpose2d"):
        g = args.get("groups", 1)
        return f"{k}/{s} {args['out_channels']}" + (f" g{g}" if g != 1 else "")
    if op.endswith("pool2d") and k:
        return f"{k}/{s if s is not None else args['kernel_size']}"
    if op == "linear":
        return str(args["out_features"])
    if op == "self_attention":
        return f"{args['num_heads']} heads"
    if op in ("dropout", "stochastic_depth"):
        return f"p={args['p']:g}"
    return ""


def _unit_path(path: str, groups: dict[str, Group], depth: int | None, expand: bool) -> str:
    parts = path.split(".")
    for i in range(1, len(parts)):
        prefix = ".".join(parts[:i])
        g = groups.get(prefix)
        foldable = g is not None and g.kind in ("repeat", "block")
        if g is not None and ((foldable and not expand and depth is None) or (depth is not None and i >= depth)):
            return prefix
    return path


def units(analysis: Analysis, depth: int | None = None, expand: bool = False,
          errors: dict[str, str] | None = None) -> Layout:
    graph = analysis.graph
    groups = {g.path: g for g in graph.groups}
    layout = build(analysis, graph.nodes, lambda p: _unit_path(p, groups, depth, expand), errors or {})
    layout.unit_of.update({name: name for name, _ in graph.inputs})
    layout.edges = edges_of(analysis, graph.nodes, layout.unit_of)
    layout.inputs = list(graph.inputs)
    layout.shared = shared_of(analysis, graph.nodes, layout.unit_of)
    for owner, user in layout.shared:
        layout.units[user].notes.append(f"weights of {owner}")
    return layout


def shared_of(analysis: Analysis, nodes: Iterable[Node], unit_of: dict[str, str]) -> list[tuple[str, str]]:
    """(owner unit, user unit) for the nodes that call another node's module with parameters (`share:`),
    first seen first; nothing inside one unit (a folded group sharing with itself shows no edge)."""
    pairs: dict[tuple[str, str], None] = {}
    for node in nodes:
        owner = analysis.info.get(node.shares) if node.shares is not None else None
        if owner is not None and owner.params and node.shares in unit_of and node.path in unit_of:
            a, b = unit_of[node.shares], unit_of[node.path]
            if a != b:
                pairs[(a, b)] = None
    return list(pairs)


def build(analysis: Analysis, nodes: Iterable[Node], unit_path: Callable[[str], str], errors: dict[str, str],
          strip: str = "") -> Layout:
    """Units of ``nodes`` (unit_path folds a node path to its unit path); ``strip`` is cut off the
    front of every unit path and group path (a definition shows paths inside its block)."""
    groups = {g.path: g for g in analysis.graph.groups}
    out: dict[str, Unit] = {}
    unit_of: dict[str, str] = {}
    for node in nodes:
        full = unit_path(node.path)
        upath = full[len(strip):]
        unit_of[node.path] = upath
        info = analysis.info.get(node.path)
        if upath not in out:
            g = groups.get(full)
            label = g.label if g else node.op
            category = "block" if g else get_block(node.op).category
            out[upath] = Unit(upath, label, category, detail="" if g else _detail(node.op, dict(node.args)))
        u = out[upath]
        u.members.append(node.path)
        if info is not None:
            u.params += info.params
            u.macs += info.macs
            u.shape = info.shape
        if node.path in errors:
            u.error = errors[node.path]
    inside = [g for g in analysis.graph.groups if g.path.startswith(strip) and g.path != strip.rstrip(".")]
    open_groups = [replace(g, path=g.path[len(strip):]) for g in inside if g.path[len(strip):] not in out
                   and any(u.startswith(g.path[len(strip):] + ".") for u in out)]
    order = {g.path: i for i, g in enumerate(open_groups)}
    open_groups.sort(key=lambda g: (g.path.count("."), order[g.path]))
    return Layout(out, unit_of, open_groups, [], [])


def edges_of(analysis: Analysis, nodes: Iterable[Node], unit_of: dict[str, str]
             ) -> list[tuple[str, str, tuple[int, ...] | None, str]]:
    """Unit -> unit edges between ``nodes`` (sources missing from unit_of are skipped), first seen first."""
    edges: dict[tuple[str, str, str], tuple[int, ...] | None] = {}
    for node in nodes:
        for src in node.inputs:
            base, k = output_ref(src)
            if base not in unit_of:
                continue
            a, b, tag = unit_of[base], unit_of[node.path], "" if k is None else f"[{k}]"
            if a != b and (a, b, tag) not in edges:
                edges[(a, b, tag)] = analysis.shapes.get(src)
    return [(a, b, s, t) for (a, b, t), s in edges.items()]
