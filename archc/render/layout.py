"""Fold the graph into what a diagram shows: repeated blocks as one box with a count, groups as
clusters, `depth` levels open. Pure data: no Graphviz here."""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.analyze import Analysis
from archc.blocks import get as get_block
from archc.ir import Group
from archc.ir.refs import output_ref

__all__ = ["Unit", "Layout", "units"]


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


@dataclass
class Layout:
    units: dict[str, Unit]
    unit_of: dict[str, str]  # primitive node path (or graph input) -> unit path
    clusters: list[Group]  # open groups that contain units, outermost first
    # unit -> unit, with the tensor shape and, for output K of a multi-output node, "[K]"
    edges: list[tuple[str, str, tuple[int, ...] | None, str]]
    inputs: list[tuple[str, tuple[int, ...]]]


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
    errors = errors or {}
    out: dict[str, Unit] = {}
    unit_of: dict[str, str] = {name: name for name, _ in graph.inputs}
    for node in graph.nodes:
        upath = _unit_path(node.path, groups, depth, expand)
        unit_of[node.path] = upath
        info = analysis.info.get(node.path)
        if upath not in out:
            g = groups.get(upath)
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
    edges: dict[tuple[str, str, str], tuple[int, ...] | None] = {}
    for node in graph.nodes:
        for src in node.inputs:
            base, k = output_ref(src)
            a, b, tag = unit_of[base], unit_of[node.path], "" if k is None else f"[{k}]"
            if a != b and (a, b, tag) not in edges:
                edges[(a, b, tag)] = analysis.shapes.get(src)
    open_groups = [g for g in graph.groups if g.path not in out and any(u.startswith(g.path + ".") for u in out)]
    order = {g.path: i for i, g in enumerate(graph.groups)}
    open_groups.sort(key=lambda g: (g.path.count("."), order[g.path]))
    return Layout(out, unit_of, open_groups, [(a, b, s, t) for (a, b, t), s in edges.items()], list(graph.inputs))
