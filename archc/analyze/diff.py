"""`archc diff`: what changed between two specs or two parameter settings.

Nodes are paired by structure, not by index: children of a `seq` are aligned as sequences of ops
(or block names), so a batchnorm inserted after each conv shifts no later node; everywhere else
(named nodes, block instances, repeat copies) children are paired by name. The diagram
(render.diffview) and the text use the same pairing.

The work is bounded: the tree is built in one pass (node paths x depth); a seq's children are
paired as many as can be (a longest common subsequence of their kinds: the common first and last
children in one pass, the middle by a shortest edit script, Myers: O((N + M) D) steps for D
differences); where difflib's longest-matching-blocks alignment pairs as many, it is preferred (its
steps counted from above). Both spend the aligner's budget (PAIR_BUDGET, shared by all seqs); a seq
beyond it is paired by position where the kinds agree, and the aligner names it in ``approximate``.
``Aligner.work`` counts the steps taken (tests bound it by the node count)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from difflib import SequenceMatcher
from typing import Any

from archc.analyze.shapes import Analysis
from archc.analyze.summary import rows
from archc.ir import Graph

__all__ = ["Aligner", "change_text", "diff", "diff_text", "match_nodes", "node_status", "show_value", "value_changes"]


def _children(graph: Graph) -> tuple[dict[str, list[str]], int]:
    """Direct children (full paths) of the root '' and of every group, in execution order; and the
    steps taken (one per node per path level: linear in the spec's size)."""
    groups = {g.path for g in graph.groups}
    out: dict[str, dict[str, None]] = {"": {}}  # dicts as ordered sets: membership in O(1)
    steps = 0
    for node in graph.nodes:
        parts = node.path.split(".")
        parent, path = "", ""
        for i, part in enumerate(parts, 1):
            steps += 1
            path = f"{path}.{part}" if path else part
            if i < len(parts) and path not in groups:
                continue  # a dotted name that is no group: part of the node's own name
            out.setdefault(parent, {})[path] = None
            if i < len(parts):
                out.setdefault(path, {})
            parent = path
    return {k: list(v) for k, v in out.items()}, steps


class _Tree:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.groups = {g.path: g for g in graph.groups}
        self.children, self.steps = _children(graph)

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


PAIR_BUDGET = 1_000_000  # steps one Aligner may spend aligning the differing middles of seqs


class Aligner:
    """Pairs nodes of A with nodes of B (possibly the same graph: instances of one block)."""

    def __init__(self, ga: Graph, gb: Graph, budget: int = PAIR_BUDGET) -> None:
        self.ta = _Tree(ga)
        self.tb = self.ta if gb is ga else _Tree(gb)
        self.budget = budget  # left for quadratic alignment
        self.work = self.ta.steps + (self.tb.steps if self.tb is not self.ta else 0)
        self.approximate: list[str] = []  # seqs (B's paths) whose middle was paired by position

    def match(self, root_a: str = "", root_b: str = "") -> dict[str, str]:
        """Node path in A -> node path in B for the nodes that correspond, under root_a / root_b."""
        ta, tb = self.ta, self.tb
        out: dict[str, str] = {}
        todo = [(root_a, root_b)]
        while todo:
            pa, pb = todo.pop()
            for x, y in self._pairs(pa, pb):
                if x in ta.children and y in tb.children:
                    todo.append((x, y))
                elif x not in ta.children and y not in tb.children:
                    out[x] = y
        return out

    def _pairs(self, pa: str, pb: str) -> list[tuple[str, str]]:
        """Children of pa paired with children of pb: aligned for seqs, by name otherwise."""
        ta, tb = self.ta, self.tb
        ca, cb = ta.children.get(pa, []), tb.children.get(pb, [])
        ka, kb = [ta.key(c) for c in ca], [tb.key(c) for c in cb]
        self.work += len(ca) + len(cb)
        if not (_seq_like(ta, pa, ca) or _seq_like(tb, pb, cb)):
            by_name = {tb.name(pb, c): (c, k) for c, k in zip(cb, kb)}
            out = []
            for c, k in zip(ca, ka):
                other = by_name.get(ta.name(pa, c))
                if other is not None and k.startswith("op:") == other[1].startswith("op:"):
                    out.append((c, other[0]))  # same name, both ops or both groups
            return out
        return [(ca[i], cb[j]) for i, j in self._align(ka, kb, pb)]

    def _align(self, ka: list[str], kb: list[str], where: str) -> list[tuple[int, int]]:
        """Index pairs of equal kinds, as many as can be (a longest common subsequence): the common ends
        in one pass and the middle by a shortest edit script (Myers); among such alignments, difflib's
        (longest matching blocks first: an optional first node of a block is the one missing) when it
        pairs as many. Beyond the budget, by position where the kinds agree (the seq noted as approximate)."""
        exact = _ends_and_middle(ka, kb, self.budget)
        if exact is None:
            self.approximate.append(where)
            n = min(len(ka), len(kb))
            exact = [(i, i) for i in range(n) if ka[i] == kb[i]], n
        self._spend(exact[1])
        blocks = _matching_blocks(ka, kb, self.budget) if where not in self.approximate else None
        if blocks is not None:
            self._spend(blocks[1])
            if len(blocks[0]) == len(exact[0]):
                return blocks[0]
        return exact[0]

    def _spend(self, steps: int) -> None:
        self.budget -= min(steps, self.budget)
        self.work += steps


class _OverBudget(Exception):
    pass


class _CountedMatcher(SequenceMatcher[str]):
    """difflib's matcher, counting (an upper bound of) the steps of its inner loop; over the budget it stops."""

    def __init__(self, a: list[str], b: list[str], budget: int) -> None:
        self.sizes = len(a), len(b)
        self.spent, self.budget = len(a) + len(b), budget
        super().__init__(None, a, b, autojunk=False)

    def find_longest_match(self, alo: int = 0, ahi: int | None = None, blo: int = 0, bhi: int | None = None
                           ) -> Any:
        ahi = self.sizes[0] if ahi is None else ahi
        bhi = self.sizes[1] if bhi is None else bhi
        self.spent += (ahi - alo) * (self.sizes[1] + 1) + (bhi - blo)  # each a[i] visits at most all of b
        if self.spent > self.budget:
            raise _OverBudget
        return super().find_longest_match(alo, ahi, blo, bhi)


def _matching_blocks(a: list[str], b: list[str], budget: int) -> tuple[list[tuple[int, int]], int] | None:
    """difflib's alignment (longest matching blocks first; in a replaced stretch, by position where the
    kinds agree) and its counted steps; None when it would take more than ``budget`` steps."""
    matcher = _CountedMatcher(a, b, budget)
    try:
        codes = matcher.get_opcodes()
    except _OverBudget:
        return None
    out = [(i, j) for tag, i1, i2, j1, j2 in codes if tag in ("equal", "replace")
           for i, j in zip(range(i1, i2), range(j1, j2)) if a[i] == b[j]]
    return out, matcher.spent


def _ends_and_middle(a: list[str], b: list[str], budget: int) -> tuple[list[tuple[int, int]], int] | None:
    """The common first and last items paired in one pass, the middle by a shortest edit script."""
    n = min(len(a), len(b))
    head = 0
    while head < n and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < n - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    middle = _edit_script(a[head:len(a) - tail], b[head:len(b) - tail], budget)
    if middle is None:
        return None
    pairs, steps = middle
    return [*((i, i) for i in range(head)), *((head + i, head + j) for i, j in pairs),
            *((len(a) - tail + t, len(b) - tail + t) for t in range(tail))], steps + head + tail


def _edit_script(a: list[str], b: list[str], budget: int) -> tuple[list[tuple[int, int]], int] | None:
    """The index pairs of a longest common subsequence of ``a`` and ``b`` (Myers' O((N + M) D) greedy
    shortest edit script) and the steps it took (diagonals tried, matches followed, entries kept for the
    way back); None once it would take more than ``budget`` steps."""
    n, m = len(a), len(b)
    if not n or not m:
        return [], 1
    off = n + m + 1  # v[off + k]: the furthest x on diagonal k = x - y
    v = [0] * (2 * off + 1)
    trace: list[list[int]] = []  # before step d: v over diagonals -d - 1 .. d + 1
    steps = 0
    for d in range(n + m + 1):
        trace.append(v[off - d - 1:off + d + 2])
        steps += 2 * d + 3
        for k in range(-d, d + 1, 2):
            steps += 1
            x = v[off + k + 1] if k == -d or (k != d and v[off + k - 1] < v[off + k + 1]) else v[off + k - 1] + 1
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x, y, steps = x + 1, y + 1, steps + 1
            v[off + k] = x
            if x >= n and y >= m:
                return _backtrack(trace, n, m), steps
        if steps > budget:
            return None
    raise AssertionError("unreachable: an edit script has at most N + M steps")


def _backtrack(trace: list[list[int]], x: int, y: int) -> list[tuple[int, int]]:
    """The matched index pairs along the path the forward pass found, in order."""
    out: list[tuple[int, int]] = []
    for d in range(len(trace) - 1, -1, -1):
        v, k = trace[d], x - y  # v[d + 1 + j]: diagonal j
        if d == 0:
            prev_x = prev_y = 0
        else:
            down = k == -d or (k != d and v[d + k] < v[d + k + 2])
            prev_k = k + 1 if down else k - 1
            prev_x = v[d + 1 + prev_k]
            prev_y = prev_x - prev_k
        while x > prev_x and y > prev_y:  # the diagonal (matches) after the edit of step d
            x, y = x - 1, y - 1
            out.append((x, y))
        x, y = prev_x, prev_y
    out.reverse()
    return out


def match_nodes(ga: Graph, gb: Graph, root_a: str = "", root_b: str = "") -> dict[str, str]:
    """Node path in A -> node path in B for the nodes that correspond, under root_a / root_b."""
    return Aligner(ga, gb).match(root_a, root_b)


def _canon(v: Any) -> str:
    """One text per value: 1, 1.0 and true differ; a tuple equals the list it reads as."""
    return json.dumps(v, sort_keys=True, default=repr)


def _sig(a: Analysis, path: str) -> tuple[Any, ...]:
    i = a.info.get(path)
    node = a.graph.node(path)
    return (node.op, _canon(dict(node.args)), None if i is None else i.shape, None if i is None else i.params)


def value_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, list[Any]]:
    """name -> [value in A, value in B] for the names whose values differ (None where a side has no such name),
    A's order first, then names only B has."""
    out: dict[str, list[Any]] = {}
    for k in [*a, *(k for k in b if k not in a)]:
        if k not in a or k not in b or _canon(a[k]) != _canon(b[k]):
            out[k] = [a.get(k), b.get(k)]
    return out


def show_value(v: Any) -> str:
    """A value as a spec writes it: [48, 96], true, 0.5, bottleneck."""
    if isinstance(v, bool) or v is None:
        return {True: "true", False: "false", None: "null"}[v]
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(show_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {show_value(x)}" for k, x in v.items()) + "}"
    return str(v)


def change_text(entry: Mapping[str, Any]) -> str:
    """'out_channels 32 -> 48, stride 1 -> 2' (with 'op conv2d -> linear' first when the op changed) for one
    changed node of ``diff``; '' when only its shape or parameter count changed (its inputs did)."""
    op_a, op_b = entry["a"][0], entry["b"][0]
    parts = [f"op {op_a} -> {op_b}"] if op_a != op_b else []
    for k, (va, vb) in entry.get("args", {}).items():
        if op_a == op_b or (va is not None and vb is not None):  # another op's own arguments: the op says it
            parts.append(f"{k} {show_value(va)} -> {show_value(vb)}")
    return ", ".join(parts)


Status = tuple[dict[str, str], list[str], list[str], list[str]]


def node_status(a: Analysis, b: Analysis, aligner: Aligner | None = None) -> Status:
    """(pairs A -> B, added B paths, removed A paths, changed B paths), in execution order.
    Changed: the op, arguments, output shape or parameter count differ."""
    pairs = (aligner or Aligner(a.graph, b.graph)).match()
    back = {y: x for x, y in pairs.items()}
    added = [n.path for n in b.graph.nodes if n.path not in back]
    removed = [n.path for n in a.graph.nodes if n.path not in pairs]
    changed = [n.path for n in b.graph.nodes if n.path in back and _sig(a, back[n.path]) != _sig(b, n.path)]
    return pairs, added, removed, changed


def diff(a: Analysis, b: Analysis, labels: tuple[str, str] | None = None, aligner: Aligner | None = None,
         status: Status | None = None) -> dict[str, Any]:
    """Nodes added/removed/changed, per-stage and total parameters and MACs of A and B (``status``:
    node_status's result from ``aligner``, when the caller has it already)."""
    aligner = aligner or Aligner(a.graph, b.graph)
    pairs, added, removed, changed = status or node_status(a, b, aligner)
    back = {y: x for x, y in pairs.items()}
    ops_a = {n.path: n.op for n in a.graph.nodes}  # apart: a path both have may name different ops
    ops_b = {n.path: n.op for n in b.graph.nodes}
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
                "a": [ops_a[back[p]], list(ia.shape) if ia else None], "b": [ops_b[p], list(ib.shape) if ib else None],
                "args": value_changes(a.graph.node(back[p]).args, b.graph.node(p).args),
                "param_count": [ia.params if ia else None, ib.params if ib else None]}

    return {
        "a": a.graph.name, "b": b.graph.name,
        "labels": list(labels or (a.graph.name, b.graph.name)),
        "param_changes": [{"name": k, "a": va, "b": vb,
                           "status": "added" if k not in a.graph.params else
                           "removed" if k not in b.graph.params else "changed"}
                          for k, (va, vb) in value_changes(a.graph.params, b.graph.params).items()],
        "added": added,
        "removed": removed,
        "changed": [entry(p) for p in changed],
        "added_ops": _count(ops_b[p] for p in added),
        "removed_ops": _count(ops_a[p] for p in removed),
        "stages": [s for s in stages if s["params"][0] != s["params"][1] or s["macs"][0] != s["macs"][1]],
        "params": [a.params, b.params],
        "macs": [a.macs, b.macs],
        "output_shape": [[list(s) for s in a.output_shapes], [list(s) for s in b.output_shapes]],
        "approximate": list(aligner.approximate),  # seqs too long to align: paired by position
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


def param_text(p: Mapping[str, Any]) -> str:
    """'widths [32, 64] -> [48, 96]'; a param only one side sets: 'depth (unset) -> 12'."""
    va = "(unset)" if p["status"] == "added" else show_value(p["a"])
    vb = "(unset)" if p["status"] == "removed" else show_value(p["b"])
    return f"{p['name']} {va} -> {vb}"


def _paths(paths: list[str], limit: int = 4) -> str:
    return ", ".join(paths[:limit]) + (f" (+{len(paths) - limit} more)" if len(paths) > limit else "")


def arg_groups(changed: list[Mapping[str, Any]]) -> tuple[dict[str, list[str]], list[str]]:
    """(change text -> the B paths of the nodes it describes, in order of first appearance; the changed nodes
    whose arguments and op are the same: shape or parameters changed because their inputs did)."""
    groups: dict[str, list[str]] = {}
    inferred: list[str] = []
    for c in changed:
        text = change_text(c)
        if text:
            groups.setdefault(text, []).append(c["path"])
        else:
            inferred.append(c["path"])
    return groups, inferred


def _changes(d: Mapping[str, Any], limit: int) -> list[str]:
    """The params, then the arguments that differ (nodes with the same change on one line), then the nodes
    changed only through their inputs."""
    out: list[str] = []
    params = d.get("param_changes", [])
    if params:
        out += [f"params changed ({len(params)}):", *(f"  {param_text(p)}" for p in params)]
    groups, inferred = arg_groups(d["changed"])
    if groups:
        n = sum(len(v) for v in groups.values())
        out.append(f"changed nodes ({n}) by their arguments:")
        out += [f"  {_paths(paths)} {text}" for text, paths in list(groups.items())[:limit]]
        if len(groups) > limit:
            out.append(f"  ... and {len(groups) - limit} more changes (--json lists every node)")
    if inferred:
        out.append(f"changed nodes ({len(inferred)}) by their inputs only (shape or parameters): "
                   f"{_paths(inferred, 12)}")
    return out


def diff_text(d: dict[str, Any], limit: int = 20) -> str:
    """The params and arguments that differ first, then the nodes added and removed, the per-stage table and
    the totals. ``limit``: lines of argument changes shown."""
    la, lb = d.get("labels") or (d["a"], d["b"])
    out = [f"--- A: {la}", f"+++ B: {lb}"]
    out += _changes(d, limit)
    out += _listing("added nodes", d["added"], d.get("added_ops"))
    out += _listing("removed nodes", d["removed"], d.get("removed_ops"))
    if d["stages"]:
        out += ["", f"{'stage':<16} {'params A':>14} {'params B':>14} {'delta':>22} {'MACs A':>16} {'MACs B':>16}"]
        for s in d["stages"]:
            (pa, pb), (ma, mb) = s["params"], s["macs"]
            out.append(f"{s['stage']:<16} {pa:>14,} {pb:>14,} {_delta(pa, pb):>22} {ma:>16,} {mb:>16,}")
    (pa, pb), (ma, mb) = d["params"], d["macs"]
    out += ["", f"parameters: {pa:,} -> {pb:,} ({_delta(pa, pb)})", f"MACs: {ma:,} -> {mb:,} ({_delta(ma, mb)})"]
    if d["output_shape"][0] != d["output_shape"][1]:
        out.append(f"output: {d['output_shape'][0]} -> {d['output_shape'][1]}")
    for seq in d.get("approximate", ()):
        out.append(f"note: {seq or 'the top level'} differs over too many children to align within "
                   f"{PAIR_BUDGET:,} steps: its middle is paired by position")
    if not (d["added"] or d["removed"] or d["changed"]):
        out.append("no structural differences")
    return "\n".join(out)
