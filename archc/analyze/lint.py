"""Lint: likely mistakes that are not errors, located like errors (``file:line:col: warning: ...``).

``lint(analysis)`` reads the resolved graph and the analysed shapes only (no torch, no source
text). A line inside a block used N times gives one warning (its first instance named), not N.

| code | what |
|---|---|
| W001 | a node nothing reads that is not an output (the tip of a dead branch) |
| W002 | a same-rank broadcast that spreads a channel-sized vector along H or W |
| W003 | `repeat: 0` (the node stands for its input) |
| W004 | a convolution or pooling whose stride is larger than its kernel (pixels skipped); 1x1 projections exempt |
"""

from __future__ import annotations

from collections.abc import Iterable
from math import prod

from archc.analyze.shapes import Analysis
from archc.errors import ArchcError, Loc
from archc.ir import Graph
from archc.ir.refs import output_ref

__all__ = ["LintWarning", "lint", "CODES"]

CODES = {
    "W001": "dead branch: a node that nothing reads and that is not an output",
    "W002": "a channel-sized vector broadcast along a spatial axis",
    "W003": "repeat: 0",
    "W004": "stride larger than the kernel",
}

BROADCAST_OPS = frozenset({"add", "mul", "sub", "div"})
WINDOW_OPS = frozenset({"conv2d", "max_pool2d", "avg_pool2d"})


class LintWarning(ArchcError):
    """A located warning; ``code`` is one of :data:`CODES`. Never raised, only returned."""

    kind = "warning"

    def __init__(self, code: str, message: str, loc: Loc | None, *, node: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, loc, node=node, hint=hint)
        self.code = code


def lint(analysis: Analysis) -> list[LintWarning]:
    """Every warning for an analysed spec, in execution order, one per (code, location)."""
    graph, shapes = analysis.graph, analysis.shapes
    found = [*_dead(graph), *_broadcasts(graph, shapes), *_empty_repeats(graph), *_strides(graph)]
    return _once_per_line(found)


def _once_per_line(found: Iterable[LintWarning]) -> list[LintWarning]:
    """Merge the instances of one block line: the first is kept and counts the others."""
    first: dict[tuple[str, Loc | None], LintWarning] = {}
    count: dict[tuple[str, Loc | None], int] = {}
    for w in found:
        key = (w.code, w.loc)
        first.setdefault(key, w)
        count[key] = count.get(key, 0) + 1
    out = []
    for key, w in first.items():
        if count[key] > 1:
            w.notes.append(f"and {count[key] - 1} more instance(s) of the same line")
        out.append(w)
    return out


def _dead(graph: Graph) -> list[LintWarning]:
    """W001: nodes whose value reaches no output; reported at each tip (a node nothing reads)."""
    readers: dict[str, int] = {}
    producers: dict[str, list[str]] = {}
    for n in graph.nodes:
        producers[n.path] = [output_ref(s)[0] for s in n.inputs]
        for src in n.inputs:
            base = output_ref(src)[0]
            readers[base] = readers.get(base, 0) + 1
    live: set[str] = set()
    stack = [output_ref(o)[0] for o in graph.outputs]
    while stack:
        p = stack.pop()
        if p not in live:
            live.add(p)
            stack.extend(producers.get(p, ()))
    out = []
    for n in graph.nodes:
        if n.path in live or readers.get(n.path):
            continue
        size = len(_dead_ancestors(n.path, producers, live))
        branch = f" (a dead branch of {size} nodes)" if size > 1 else ""
        out.append(LintWarning("W001", f"nothing reads '{n.path}' and it is not an output{branch}", n.loc,
                               node=n.path, hint="read it with `in:`, list it in `outputs:`, or delete it"))
    return out


def _dead_ancestors(tip: str, producers: dict[str, list[str]], live: set[str]) -> set[str]:
    seen: set[str] = set()
    stack = [tip]
    while stack:
        p = stack.pop()
        if p not in seen and p in producers and p not in live:
            seen.add(p)
            stack.extend(producers[p])
    return seen


def _broadcasts(graph: Graph, shapes: dict[str, tuple[int, ...]]) -> list[LintWarning]:
    """W002: in a rank-3 element-wise op, an operand whose one non-1 axis is H or W and has as
    many entries as there are channels: most likely a per-channel vector laid along the wrong axis
    (different ranks are already an error; (C, 1, W) gates such as coordinate attention are fine)."""
    out = []
    for n in graph.nodes:
        ins = [shapes.get(s) for s in n.inputs]
        if n.op not in BROADCAST_OPS or any(s is None or len(s) != 3 for s in ins):
            continue
        channels = max(s[0] for s in ins if s is not None)
        for src, s in zip(n.inputs, ins):
            assert s is not None
            axes = [k for k, d in enumerate(s) if d != 1]
            if channels > 1 and len(axes) == 1 and axes[0] > 0 and s[axes[0]] == channels and prod(s) == channels:
                axis = "HW"[axes[0] - 1]
                out.append(LintWarning("W002", f"'{src}' {s} is spread along {axis}, and has as many entries as "
                                       f"there are channels ({channels})", n.loc, node=n.path,
                                       hint=f"a per-channel vector broadcasts as ({channels}, 1, 1)"))
    return out


def _empty_repeats(graph: Graph) -> list[LintWarning]:
    """W003: a repeat of zero copies: the node is an alias of its input."""
    return [LintWarning("W003", f"'{g.path}' repeats 0 times: it stands for its input", g.loc, node=g.path,
                        hint="delete the node, or use `when: false` to skip it on purpose")
            for g in graph.groups if g.kind == "repeat" and g.label.endswith(" x0")]


def _pair(v: object) -> tuple[int, int] | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v, v
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, int) for x in v):
        return int(v[0]), int(v[1])
    return None


def _strides(graph: Graph) -> list[LintWarning]:
    """W004: a window that jumps further than it sees leaves input pixels unread."""
    out = []
    for n in graph.nodes:
        if n.op not in WINDOW_OPS:
            continue
        kernel, stride = _pair(n.args.get("kernel_size")), _pair(n.args.get("stride"))
        dilation = _pair(n.args.get("dilation", 1)) or (1, 1)
        if kernel is None or stride is None or kernel == (1, 1):  # a 1x1 projection (ResNet's downsample)
            continue
        span = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
        if any(s > k for s, k in zip(stride, span)):
            out.append(LintWarning("W004", f"stride {n.args['stride']} is larger than the kernel "
                                   f"{n.args['kernel_size']}: some input pixels are never read", n.loc,
                                   node=n.path, hint="use a stride no larger than the kernel, or pool first"))
    return out
