"""Graphviz DOT and Mermaid text for a layout. Every user string is cleaned and escaped: no
HTML-like labels, no URLs, no control characters."""

from __future__ import annotations

import json
import re
from typing import Any

from archc.analyze.summary import fmt_count
from archc.render.defs import Definition
from archc.render.layout import Layout, Unit

__all__ = ["to_dot", "to_mermaid", "COLOURS"]

COLOURS = {
    "conv": "#cfe2ff", "norm": "#d1e7dd", "act": "#fff3cd", "pool": "#ffe5d0", "linear": "#e2d9f3",
    "merge": "#e9ecef", "attn": "#f8d7da", "embed": "#f8d7da", "scale": "#d1e7dd", "block": "#dbe4f0",
    "reg": "#f1f3f5", "layout": "#f8f9fa", "resize": "#ffe5d0", "other": "#ffffff", "input": "#ffffff",
}
_NAMES = {"conv": "convolution", "norm": "normalisation", "act": "activation", "pool": "pooling",
          "linear": "linear", "merge": "add / concat", "attn": "attention", "embed": "token / position",
          "scale": "layer scale", "block": "block (folded)", "reg": "dropout", "layout": "reshape",
          "resize": "resize", "other": "other", "input": "input"}


def clean(text: Any, limit: int = 120) -> str:
    """Printable text only, bounded, with DOT's backslash escapes neutralised."""
    s = "".join(c if c.isprintable() else "?" for c in str(text))[:limit]
    return s.replace("\\", "\\\\").replace('"', "'")


def _shape(shape: tuple[int, ...] | None) -> str:
    return "x".join(map(str, shape)) if shape else ""


def _label(u: Unit) -> str:
    title = re.sub(r" x(\d+)$", r" ×\1", u.label)
    kind = f"{title} {u.detail}".strip()
    lines = [clean(u.path)] + ([clean(kind)] if kind != u.path.rsplit(".", 1)[-1] else [])
    if u.params:
        lines.append(f"{u.params:,} params")
    lines += [clean(n) for n in u.notes]
    if u.error:
        lines.append(clean(f"error: {u.error}", 90))
    return "\\n".join(lines)


def _parent(path: str, cluster_paths: list[str]) -> str:
    best = ""
    for c in cluster_paths:
        if path.startswith(c + ".") and len(c) > len(best):
            best = c
    return best


def _tree(layout: Layout) -> dict[str, list[str]]:
    """Parent cluster ('' for the top) of each cluster and unit id, as children lists."""
    cluster_paths = [g.path for g in layout.clusters]
    children: dict[str, list[str]] = {"": []}
    for c in cluster_paths:
        children.setdefault(c, [])
    for c in cluster_paths:
        children[_parent(c, cluster_paths)].append("cluster:" + c)
    for name, _ in layout.inputs:
        children[""].insert(0, name)
    for key, u in layout.units.items():
        children[_parent(u.path, cluster_paths)].append(key)
    for name, _ in layout.outputs:
        children[""].append(name)
    return children


def _depth(layout: Layout) -> int:
    """Ranks a layout takes: the longest path through its edges (edges go forward in unit order)."""
    level: dict[str, int] = {}
    for a, b, _, _ in layout.edges:
        level[b] = max(level.get(b, 0), level.get(a, 0) + 1)
    return max(level.values(), default=0) + 1


STATUS = {"added": ("#b7e4c7", "#2d6a4f", "solid"), "removed": ("#f5c2c7", "#b02a37", "dashed"),
          "changed": ("#ffe69c", "#9a6a00", "solid")}
UNCHANGED = "#f1f3f5"


def _style(u: Unit, diff: bool) -> dict[str, str]:
    if u.error:
        return {"color": "#cc0000", "penwidth": "2", "fillcolor": "#ffb3b3"}
    if u.status in STATUS:
        fill, line, style = STATUS[u.status]
        return {"fillcolor": fill, "color": line, "penwidth": "2", "style": f"rounded,filled,{style}"}
    return {"fillcolor": UNCHANGED if diff else COLOURS.get(u.category, "#ffffff")}


def _emit(graph: Any, layout: Layout, prefix: str, used: set[str], diff: bool = False) -> None:
    """The boxes, ovals and clusters of one layout, node ids prefixed; its edges."""
    from graphviz import nohtml

    children = _tree(layout)
    labels = {c.path: c.label for c in layout.clusters}
    inputs, outputs = dict(layout.inputs), dict(layout.outputs)

    def emit(sub_graph: Any, key: str) -> None:
        for item in children.get(key, []):
            if item.startswith("cluster:"):
                path = item[len("cluster:"):]
                with sub_graph.subgraph(name=f"cluster_{prefix}{path}") as sub:
                    sub.attr(label=nohtml(clean(f"{path} ({labels[path]})")), style="rounded,dashed",
                             color="#8899aa", fontname="Helvetica", fontsize="10")
                    emit(sub, path)
            elif item in layout.units:
                u = layout.units[item]
                used.add(u.category)
                sub_graph.node(nohtml(clean(prefix + item)), nohtml(_label(u)), **_style(u, diff))
            else:
                shape = inputs.get(item, outputs.get(item))
                text = clean(item) + (f"\\n{_shape(shape)}" if shape else "")
                sub_graph.node(nohtml(clean(prefix + item)), nohtml(text), shape="oval", fillcolor="#ffffff")

    emit(graph, "")
    for a, b, shape, tag in layout.edges:
        graph.edge(nohtml(clean(prefix + a)), nohtml(clean(prefix + b)),
                   label=nohtml(clean(f"{tag} {_shape(shape)}".strip())))
    for a, b in layout.shared:  # `share:`: b calls a's modules
        graph.edge(nohtml(clean(prefix + a)), nohtml(clean(prefix + b)), label="shares weights", style="dashed",
                   color="#7048e8", fontcolor="#7048e8", arrowhead="none", constraint="false")


def _definition_title(d: Definition) -> str:
    counts = list(dict.fromkeys(d.params))
    each = (" / ".join(f"{p:,}" for p in counts) if len(counts) <= 4 else
            f"{min(counts):,} ... {max(counts):,}")
    n = len(d.instances)
    lines = [f"{d.name}({d.signature})" if d.signature else d.name,
             f"{n} instance{'s' if n != 1 else ''}; params per instance: {each}",
             f"shapes and params of {d.drawn}"]
    return "\\n".join(clean(x, 160) for x in lines)


def _definitions(g: Any, defs: list[Definition], height: int, used: set[str]) -> None:
    """The definitions area: one cluster per block, stacked in columns about as tall as the main graph."""
    from graphviz import nohtml

    with g.subgraph(name="cluster_definitions") as area:
        area.attr(label="definitions", style="rounded", color="#bbbbbb", fontname="Helvetica", fontsize="12")
        prev, column = "", 0
        for i, d in enumerate(defs):
            prefix = f"def{i}/"
            with area.subgraph(name=f"cluster_{prefix}") as sub:
                sub.attr(label=nohtml(_definition_title(d)), style="rounded", color="#5577aa",
                         fontname="Helvetica", fontsize="10", bgcolor="#fbfcfe")
                _emit(sub, d.layout, prefix, used)
            depth = _depth(d.layout) + 2  # the title's lines
            first = d.layout.inputs[0][0] if d.layout.inputs else next(iter(d.layout.units), "")
            if prev and column + depth <= height and first:
                area.edge(nohtml(clean(prev)), nohtml(clean(prefix + first)), style="invis")
                column += depth
            else:
                column = depth
            last = d.layout.outputs[0][0] if d.layout.outputs else next(reversed(d.layout.units), "")
            prev = prefix + last if last else ""


def to_dot(layout: Layout, title: str, rankdir: str = "TB", defs: list[Definition] | None = None,
           diff: bool = False, notes: list[str] | None = None) -> str:
    """DOT source, byte-identical for the same layout. ``defs``: block definitions drawn beside;
    ``diff``: colour units by status (added, removed, changed) with ``notes`` under the legend."""
    from graphviz import Digraph, nohtml

    g = Digraph("archc", graph_attr={"rankdir": rankdir, "label": nohtml(clean(title, 200)), "labelloc": "t",
                                     "fontname": "Helvetica", "fontsize": "14", "nodesep": "0.2",
                                     "ranksep": "0.25", "concentrate": "true"},
                node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fontsize": "9",
                           "margin": "0.06,0.03", "height": "0.3"},
                edge_attr={"fontname": "Helvetica", "fontsize": "8", "arrowsize": "0.6", "color": "#555555"})
    used: set[str] = set()
    _emit(g, layout, "", used, diff)
    if defs:
        _definitions(g, defs, max(_depth(layout), max(_depth(d.layout) + 2 for d in defs)), used)
    with g.subgraph(name="cluster_legend") as leg:
        leg.attr(label="legend", style="rounded", color="#cccccc", fontname="Helvetica", fontsize="9")
        if diff:
            for status in ("added", "removed", "changed"):
                fill, line, style = STATUS[status]
                leg.node(f"legend_{status}", status, fillcolor=fill, color=line, penwidth="2",
                         style=f"rounded,filled,{style}", fontsize="8")
            leg.node("legend_unchanged", "unchanged", fillcolor=UNCHANGED, fontsize="8")
            if notes:
                text = "".join(clean(n, 160) + "\\l" for n in notes)
                leg.node("legend_notes", nohtml(text), shape="plaintext", style="", fontsize="8")
        else:
            for cat in sorted(used):
                leg.node(f"legend_{cat}", _NAMES.get(cat, cat), fillcolor=COLOURS.get(cat, "#ffffff"),
                         fontsize="8")
    return g.source


def _mm(text: str) -> str:
    s = "".join(c if c.isprintable() else "?" for c in text)
    for a, b in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("|", "#124;"),
                 ("[", "#91;"), ("]", "#93;")):  # brackets: an edge label "[1]" would open a node shape
        s = s.replace(a, b)
    return s


def _mm_layout(layout: Layout, prefix: str, lines: list[str], indent: str) -> None:
    names = [n for n, _ in layout.inputs] + list(layout.units) + [n for n, _ in layout.outputs]
    ids = {name: f"{prefix}n{i}" for i, name in enumerate(names)}
    cids = {g.path: f"{prefix}c{i}" for i, g in enumerate(layout.clusters)}
    children = _tree(layout)
    shapes = dict(layout.inputs + layout.outputs)

    def emit(key: str, indent: str) -> None:
        for item in children.get(key, []):
            if item.startswith("cluster:"):
                path = item[len("cluster:"):]
                lines.append(f'{indent}subgraph {cids[path]}["{_mm(path)}"]')
                emit(path, indent + "  ")
                lines.append(f"{indent}end")
            elif item in layout.units:
                u = layout.units[item]
                text = "<br/>".join(_mm(p) for p in _label(u).replace("\\\\", "\\").split("\\n"))
                lines.append(f'{indent}{ids[item]}["{text}"]')
            else:
                shape = _shape(shapes.get(item))
                lines.append(f'{indent}{ids[item]}(["{_mm(item)}' + (f"<br/>{shape}" if shape else "") + '"])')

    emit("", indent)
    for a, b, shape, tag in layout.edges:
        lines.append(f"{indent}{ids[a]} -->|{_mm(f'{tag} {_shape(shape)}'.strip()) or ' '}| {ids[b]}")
    for a, b in layout.shared:
        lines.append(f"{indent}{ids[a]} -.-|shares weights| {ids[b]}")


def to_mermaid(layout: Layout, title: str, defs: list[Definition] | None = None) -> str:
    """Mermaid flowchart; the front matter is YAML (the title a double-quoted, JSON-escaped string)."""
    lines = ["---", f"title: {json.dumps(title)}", "---", "flowchart TB"]
    _mm_layout(layout, "", lines, "  ")
    if defs:
        lines.append('  subgraph defs["definitions"]')
        for i, d in enumerate(defs):
            head = "<br/>".join(_mm(x) for x in _definition_title(d).replace("\\\\", "\\").split("\\n"))
            lines.append(f'    subgraph def{i}["{head}"]')
            _mm_layout(d.layout, f"d{i}", lines, "      ")
            lines.append("    end")
        lines.append("  end")
    return "\n".join(lines) + "\n"


def title_of(name: str, params: int, macs: int) -> str:
    return f"{name}: {params:,} parameters, {fmt_count(macs)}MACs"
