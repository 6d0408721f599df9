"""Graphviz DOT and Mermaid text for a layout. Every user string is cleaned and escaped: no
HTML-like labels, no URLs, no control characters."""

from __future__ import annotations

import re
from typing import Any

from archc.analyze.summary import fmt_count
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
    if u.error:
        lines.append(clean(f"error: {u.error}", 90))
    return "\\n".join(lines)


def _tree(layout: Layout) -> dict[str, list[str]]:
    """Parent cluster ('' for the top) of each cluster and unit, as children lists."""
    cluster_paths = [g.path for g in layout.clusters]

    def parent(path: str) -> str:
        best = ""
        for c in cluster_paths:
            if path.startswith(c + ".") and len(c) > len(best):
                best = c
        return best

    children: dict[str, list[str]] = {"": []}
    for c in cluster_paths:
        children.setdefault(c, [])
    for c in cluster_paths:
        children[parent(c)].append("cluster:" + c)
    for name, _ in layout.inputs:
        children[""].insert(0, name)
    for u in layout.units:
        children[parent(u)].append(u)
    return children


def to_dot(layout: Layout, title: str, rankdir: str = "TB") -> str:
    """DOT source, byte-identical for the same layout."""
    from graphviz import Digraph, nohtml

    g = Digraph("archc", graph_attr={"rankdir": rankdir, "label": nohtml(clean(title, 200)), "labelloc": "t",
                                     "fontname": "Helvetica", "fontsize": "14", "nodesep": "0.2",
                                     "ranksep": "0.25", "concentrate": "true"},
                node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fontsize": "9",
                           "margin": "0.06,0.03", "height": "0.3"},
                edge_attr={"fontname": "Helvetica", "fontsize": "8", "arrowsize": "0.6", "color": "#555555"})
    children = _tree(layout)
    labels = {c.path: c.label for c in layout.clusters}
    used: set[str] = set()

    def emit(graph: Any, key: str) -> None:
        for item in children.get(key, []):
            if item.startswith("cluster:"):
                path = item[len("cluster:"):]
                with graph.subgraph(name=f"cluster_{path}") as sub:
                    sub.attr(label=nohtml(clean(f"{path} ({labels[path]})")), style="rounded,dashed",
                             color="#8899aa", fontname="Helvetica", fontsize="10")
                    emit(sub, path)
            elif item in layout.units:
                u = layout.units[item]
                used.add(u.category)
                style = {"fillcolor": COLOURS.get(u.category, "#ffffff")}
                if u.error:
                    style = {"color": "#cc0000", "penwidth": "2", "fillcolor": "#ffb3b3"}
                graph.node(nohtml(clean(u.path)), nohtml(_label(u)), **style)
            else:
                shape = dict(layout.inputs)[item]
                graph.node(nohtml(clean(item)), nohtml(f"{clean(item)}\\n{_shape(shape)}"), shape="oval",
                           fillcolor="#ffffff")

    emit(g, "")
    for a, b, shape, tag in layout.edges:
        g.edge(nohtml(clean(a)), nohtml(clean(b)), label=nohtml(f"{tag} {_shape(shape)}".strip()))
    with g.subgraph(name="cluster_legend") as leg:
        leg.attr(label="legend", style="rounded", color="#cccccc", fontname="Helvetica", fontsize="9")
        for cat in sorted(used):
            leg.node(f"legend_{cat}", _NAMES.get(cat, cat), fillcolor=COLOURS.get(cat, "#ffffff"), fontsize="8")
    return g.source


def _mm(text: str) -> str:
    s = "".join(c if c.isprintable() else "?" for c in text)
    for a, b in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("|", "#124;")):
        s = s.replace(a, b)
    return s


def to_mermaid(layout: Layout, title: str) -> str:
    ids = {name: f"n{i}" for i, name in enumerate([n for n, _ in layout.inputs] + list(layout.units))}
    cids = {g.path: f"c{i}" for i, g in enumerate(layout.clusters)}
    lines = ["---", f"title: {_mm(title)}", "---", "flowchart TB"]
    children = _tree(layout)

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
                lines.append(f'{indent}{ids[item]}(["{_mm(item)}<br/>{_shape(dict(layout.inputs)[item])}"])')

    emit("", "  ")
    for a, b, shape, tag in layout.edges:
        lines.append(f"  {ids[a]} -->|{_mm(f'{tag} {_shape(shape)}'.strip()) or ' '}| {ids[b]}")
    return "\n".join(lines) + "\n"


def title_of(name: str, params: int, macs: int) -> str:
    return f"{name}: {params:,} parameters, {fmt_count(macs)}MACs"
