"""`archc diff`: what changed between two specs or two parameter settings.

Nodes are paired by structure, not by index: children of a `seq` are aligned as sequences of ops
(or block names), so a batchnorm inserted after each conv shifts no later node; everywhere else
(named nodes, block instances, repeat copies) children are paired by name. The diagram
(render.diffview) and the text use the same pairing."""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import Any

from archc.analyze.shapes import Analysis
from archc.analyze.summary import rows
from archc.ir import Graph

__all__ = ["Aligner", "diff", "diff_text", "match_nodes", "node_status"]


def _children(graph: Graph) -> dict[str, list[str]]:
    """Direct children (full paths) of the root '' and of every group, in execution order."""
    groups = {g.path for g in graph.groups}
    out: dict[str, list[str]] = {"": []}
    for node in graph.nodes:
        parts = node.path.split(".")
        parent = ""
        for i in range(1, len(parts) + 1):
            path = ".".join(parts[:i])
            if i < len(parts) and path not in groups:
                continue  # a dotted name that is no group: part of the node's own name
            kids = out.setdefault(parent, [])
            if path not in kids:
                kids.append(path)
            if i < len(parts):
                out.setdefault(path, [])
            parent = path
    return out


class _Tree:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.groups = {g.path: g for g in graph.groups}
        self.children = _children(graph)

    def key(self, path: str) -> str:
        """What a child is: its op, or its group's kind and block name ('bottleneck x6' -> 'bottleneck')."""
        g = self.groups.get(path)
        if g is None:
            return "op:" + self.graph.node(path).op
        return f"{g.kind}:{g.label.rsplit(' x', 1)[0] if g.kind == 'repeat' else g.label}"

    def name(self, parent: str, path: str) -> str:
        return path[len(parent) + 1:] if parent else path


def _seq_like(t: _Tree, path: str, kids: list[str]) -> bool:
    """Children numbered by position: a `seq`, or a block whose body is a `seq:` (not a repeat)."""
    g = t.groups.get(path)
    if g is None or g.kind not in ("seq", "block"):
        return False
    return g.kind == "seq" or bool(kids) and all(t.name(path, c).isdigit() for c in kids)


def _pairs(ta: _Tree, tb: _Tree, pa: str, pb: str) -> list[tuple[str, str]]:
    """Children of pa paired with children of pb: aligned for seqs, by name otherwise."""
    ca, cb = ta.children.get(pa, []), tb.children.get(pb, [])
    ka, kb = [ta.key(c) for c in ca], [tb.key(c) for c in cb]
    seq = _seq_like(ta, pa, ca) or _seq_like(tb, pb, cb)
    if not seq:
        by_name = {tb.name(pb, c): (c, k) for c, k in zip(cb, kb)}
        out = []
        for c, k in zip(ca, ka):
            other = by_name.get(ta.name(pa, c))
            if other is not None and k.startswith("op:") == other[1].startswith("op:"):
                out.append((c, other[0]))  # same name, both ops or both groups
        return out
    out = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, ka, kb, autojunk=False).get_opcodes():
        if tag == "equal":
            out += list(zip(ca[i1:i2], cb[j1:j2]))
        elif tag == "replace":  # positionally, where the kinds agree
            out += [(x, y) for x, y, kx, ky in zip(ca[i1:i2], cb[j1:j2], ka[i1:i2], kb[j1:j2]) if kx == ky]
    return out


class Aligner:
    """Pairs nodes of A with nodes of B (possibly the same graph: instances of one block)."""

    def __init__(self, ga: Graph, gb: Graph) -> None:
        self.ta = _Tree(ga)
        self.tb = self.ta if gb is ga else _Tree(gb)

    def match(self, root_a: str = "", root_b: str = "") -> dict[str, str]:
        """Node path in A -> node path in B for the nodes that correspond, under root_a / root_b."""
        ta, tb = self.ta, self.tb
        out: dict[str, str] = {}
        todo = [(root_a, root_b)]
        while todo:
            pa, pb = todo.pop()
            for x, y in _pairs(ta, tb, pa, pb):
                if x in ta.children and y in tb.children:
                    todo.append((x, y))
                elif x not in ta.children and y not in tb.children:
                    out[x] = y
        return out


def match_nodes(ga: Graph, gb: Graph, root_a: str = "", root_b: str = "") -> dict[str, str]:
    """Node path in A -> node path in B for the nodes that correspond, under root_a / root_b."""
    return Aligner(ga, gb).match(root_a, root_b)


def _sig(a: Analysis, path: str) -> tuple[Any, ...]:
    i = a.info.get(path)
    node = a.graph.node(path)
    return (node.op, repr(dict(node.args)), None if i is None else i.shape, None if i is None else i.params)


def node_status(a: Analysis, b: Analysis) -> tuple[dict[str, str], list[str], list[str], list[str]]:
    """(pairs A -> B, added B paths, removed A paths, changed B paths), in execution order.
    Changed: the op, arguments, output shape or parameter count differ."""
    pairs = match_nodes(a.graph, b.graph)
    back = {y: x for x, y in pairs.items()}
    added = [n.path for n in b.graph.nodes if n.path not in back]
    removed = [n.path for n in a.graph.nodes if n.path not in pairs]
    changed = [n.path for n in b.graph.nodes if n.path in back and _sig(a, back[n.path]) != _sig(b, n.path)]
    return pairs, added, removed, changed


def diff(a: Analysis, b: Analysis, labels: tuple[str, str] | None = None) -> dict[str, Any]:
    """Nodes added/removed/changed, per-stage and total parameters and MACs of A and B."""
    pairs, added, removed, changed = node_status(a, b)
    back = {y: x for x, y in pairs.items()}
    ops = {n.path: n.op for n in (*a.graph.nodes, *b.graph.nodes)}
    stages_a = {r.path: r for r in rows(a, depth=1)}
    stages_b = {r.path: r for r in rows(b, depth=1)}
    order = list(stages_a) + [p for p in stages_b if p not in stages_a]
    stages = [{"stage": p,
               "params": [stages_a[p].params if p in stages_a else 0, stages_b[p].params if p in stages_b else 0],
               "macs": [stages_a[p].macs if p in stages_a else 0, stages_b[p].macs if p in stages_b else 0]}
              for p in order]

    def entry(p: str) -> dict[str, Any]:
        ia, ib = a.info.get(back[p]), b.info.get(p)
        return {"path": p, "a_path": back[p],
                "a": [ops[back[p]], list(ia.shape) if ia else None], "b": [ops[p], list(ib.shape) if ib else None]}

    return {
        "a": a.graph.name, "b": b.graph.name,
        "labels": list(labels or (a.graph.name, b.graph.name)),
        "added": added,
        "removed": removed,
        "changed": [entry(p) for p in changed],
        "added_ops": _count(ops[p] for p in added),
        "removed_ops": _count(ops[p] for p in removed),
        "stages": [s for s in stages if s["params"][0] != s["params"][1] or s["macs"][0] != s["macs"][1]],
        "params": [a.params, b.params],
        "macs": [a.macs, b.macs],
        "output_shape": [[list(s) for s in a.output_shapes], [list(s) for s in b.output_shapes]],
    }


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


def _delta(x: int, y: int) -> str:
    return f"{y - x:+,}" if x == 0 else f"{y - x:+,} ({(y - x) / x:+.1%})"


def _listing(title: str, paths: list[str], ops: dict[str, int] | None = None, limit: int = 12) -> list[str]:
    if not paths:
        return []
    more = f" ... and {len(paths) - limit} more" if len(paths) > limit else ""
    kinds = f": {', '.join(f'{n} {op}' for op, n in ops.items())}" if ops else ""
    return [f"{title} ({len(paths)}{kinds}): {', '.join(paths[:limit])}{more}"]


def diff_text(d: dict[str, Any]) -> str:
    la, lb = d.get("labels") or (d["a"], d["b"])
    out = [f"--- A: {la}", f"+++ B: {lb}"]
    out += _listing("added nodes", d["added"], d.get("added_ops"))
    out += _listing("removed nodes", d["removed"], d.get("removed_ops"))
    out += _listing("changed nodes", [c["path"] for c in d["changed"]])
    if d["stages"]:
        out += ["", f"{'stage':<16} {'params A':>14} {'params B':>14} {'delta':>22} {'MACs A':>16} {'MACs B':>16}"]
        for s in d["stages"]:
            (pa, pb), (ma, mb) = s["params"], s["macs"]
            out.append(f"{s['stage']:<16} {pa:>14,} {pb:>14,} {_delta(pa, pb):>22} {ma:>16,} {mb:>16,}")
    (pa, pb), (ma, mb) = d["params"], d["macs"]
    out += ["", f"parameters: {pa:,} -> {pb:,} ({_delta(pa, pb)})", f"MACs: {ma:,} -> {mb:,} ({_delta(ma, mb)})"]
    if d["output_shape"][0] != d["output_shape"][1]:
        out.append(f"output: {d['output_shape'][0]} -> {d['output_shape'][1]}")
    if not (d["added"] or d["removed"] or d["changed"]):
        out.append("no structural differences")
    return "\n".join(out)
