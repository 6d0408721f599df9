"""Block definitions drawn beside a folded diagram: each distinct block folded in the view, once.

A definition draws one instance (the one with the most nodes, so optional parts such as a
projection skip show; the first of those): its inside folded one level (nested blocks are boxes
with definitions of their own), its input and output, shapes and parameters of that instance.
Parts missing from some instances (`when:`) say "in k of n instances"; the pairing of parts
across instances is the structural one of `archc diff`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archc.analyze import Analysis
from archc.analyze.diff import Aligner
from archc.errors import ArchcError
from archc.ir import Graph, Group
from archc.ir.refs import output_ref
from archc.render.layout import Layout, build, edges_of

__all__ = ["Definition", "definitions", "block_of"]

MAX_DEFINITIONS = 24


@dataclass
class Definition:
    name: str  # the block's name
    layout: Layout  # paths inside the drawn instance
    drawn: str  # the instance whose shapes and parameters are shown
    instances: list[str]
    params: list[int]  # per instance, in graph order
    signature: str  # "planes: int, stride: int = 1", from the spec's `blocks:`


def block_of(groups: dict[str, Group], path: str) -> str | None:
    """The block a folded unit shows: a block instance, or a repeat of block instances."""
    g = groups.get(path)
    if g is None:
        return None
    if g.kind == "block":
        return g.label
    if g.kind == "repeat":
        first = groups.get(path + ".0")  # repeats name their copies 0, 1, ... unless `name:` says otherwise
        inner = first or next((x for p, x in groups.items() if p.startswith(path + ".") and
                               p.count(".") == path.count(".") + 1), None)
        return inner.label if inner is not None and inner.kind == "block" else None
    return None


def _fold_inside(groups: dict[str, Group], root: str) -> Any:
    """Node path -> its unit inside block instance ``root``: nested blocks and repeats fold."""
    def unit_path(path: str) -> str:
        parts = path[len(root) + 1:].split(".")
        for i in range(1, len(parts)):
            prefix = root + "." + ".".join(parts[:i])
            g = groups.get(prefix)
            if g is not None and g.kind in ("block", "repeat"):
                return prefix
        return path
    return unit_path


def _instance_layout(analysis: Analysis, root: str, groups: dict[str, Group], errors: dict[str, str]) -> Layout:
    graph = analysis.graph
    strip = root + "."
    nodes = [n for n in graph.nodes if n.path.startswith(strip)]
    layout = build(analysis, nodes, _fold_inside(groups, root), errors, strip)
    outside: list[str] = []  # producers outside the instance, first read first
    for n in nodes:
        for src in n.inputs:
            base, _ = output_ref(src)
            if not base.startswith(strip) and base not in outside:
                outside.append(base)
    names = {b: "input" if len(outside) == 1 else f"input {i}" for i, b in enumerate(outside)}
    unit_of = {**layout.unit_of, **names}
    layout.edges = edges_of(analysis, nodes, unit_of)
    layout.inputs = [(names[b], analysis.shapes.get(b, ())) for b in outside]
    layout.unit_of = unit_of
    outputs = list(graph.outputs)
    for src, readers in graph.consumers().items():
        if any(not r.startswith(strip) for r in readers):
            outputs.append(src)
    for src in outputs:
        base, k = output_ref(src)
        edge = (unit_of.get(base, ""), "output", analysis.shapes.get(src), "" if k is None else f"[{k}]")
        if base.startswith(strip) and edge not in layout.edges:
            layout.edges.append(edge)
    if any(dst == "output" for _, dst, _, _ in layout.edges):
        layout.outputs = [("output", ())]
    return layout


def _signatures(graph: Graph) -> dict[str, str]:
    """'planes: int, stride: int = 1' for each block of the spec (empty when the file cannot be read)."""
    from archc.resolve.spec import load_spec

    try:
        blocks = load_spec(Path(graph.file)).data.get("blocks") or {}
    except (ArchcError, OSError, ValueError):
        return {}
    out = {}
    for name, bdef in blocks.items():
        args = (bdef.get("args") or {}) if isinstance(bdef, dict) else {}
        parts = []
        for arg, decl in args.items():
            kind = decl.get("type", "any") if isinstance(decl, dict) else decl
            text = f"{arg}: {kind}"
            if isinstance(decl, dict) and "default" in decl:
                default = decl["default"]
                text += f" = {str(default).lower() if isinstance(default, bool) else default}"
            parts.append(text)
        if isinstance(bdef, dict) and bdef.get("inputs"):
            parts.insert(0, "inputs " + ", ".join(map(str, bdef["inputs"])))
        out[str(name)] = ", ".join(parts)
    return out


def _presence(aligner: Aligner, layout: Layout, drawn: str, instances: list[str]) -> None:
    """Note on each unit missing from some instances: 'in k of n instances'."""
    counts = {key: 0 for key in layout.units}
    for inst in instances:
        present = set() if inst == drawn else set(aligner.match(drawn, inst))
        for key, u in layout.units.items():
            if inst == drawn or any(m in present for m in u.members):
                counts[key] += 1
    for key, u in layout.units.items():
        if counts[key] < len(instances):
            u.notes.append(f"in {counts[key]} of {len(instances)} instances")


def definitions(analysis: Analysis, folded: Layout, errors: dict[str, str] | None = None) -> list[Definition]:
    """The definitions of the blocks folded in ``folded`` and, in turn, of those folded inside them."""
    graph = analysis.graph
    groups = {g.path: g for g in graph.groups}
    instances: dict[str, list[str]] = {}
    for g in graph.groups:
        if g.kind == "block":
            instances.setdefault(g.label, []).append(g.path)
    sizes: dict[str, int] = {}
    params: dict[str, int] = {}
    for path, info in analysis.info.items():
        for i in range(1, path.count(".") + 1):
            prefix = path.rsplit(".", i)[0]
            if prefix in groups:
                sizes[prefix] = sizes.get(prefix, 0) + 1
                params[prefix] = params.get(prefix, 0) + info.params
    signatures = _signatures(graph)
    aligner = Aligner(graph, graph)
    todo = [b for b in (block_of(groups, u) for u in folded.units) if b]
    out: list[Definition] = []
    done: set[str] = set()
    while todo and len(out) < MAX_DEFINITIONS:
        name = todo.pop(0)
        if name in done or name not in instances:
            continue
        done.add(name)
        insts = instances[name]
        drawn = max(insts, key=lambda p: (sizes.get(p, 0), -insts.index(p)))
        layout = _instance_layout(analysis, drawn, groups, errors or {})
        _presence(aligner, layout, drawn, insts)
        out.append(Definition(name, layout, drawn, insts, [params.get(p, 0) for p in insts],
                              signatures.get(name, "")))
        todo += [b for b in (block_of(groups, drawn + "." + u) for u in layout.units) if b and b not in done]
    return out
