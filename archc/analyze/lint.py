"""Lint: likely mistakes that are not errors, located like errors (``file:line:col: warning: ...``).

``lint(analysis, source)`` reads the resolved graph, the analysed shapes and the loaded spec (for
unused definitions and for silences; loaded from ``graph.file`` when not given). A line inside a
block used N times gives one warning (its first instance named), not N.

| code | what |
|---|---|
| W001 | a node nothing reads that is not an output (the tip of a dead branch) |
| W002 | a same-rank broadcast that spreads a channel-sized vector along H or W |
| W003 | `repeat: 0` (the node stands for its input) |
| W004 | a convolution or pooling whose stride is larger than its kernel (pixels skipped); 1x1 projections exempt |
| W005 | an input that looks channels-last (printed by ``archc check``, see ``archc.cli``) |
| W006 | a linear layer applied to a (C, H, W) map: it mixes the W axis only |
| W007 | a biased convolution read only by batchnorms (the bias is subtracted again); `share:`d weights: the owner's |
| W008 | a param of this file that no expression reads (`p: null` deleting an inherited one is not one) |
| W009 | a block of this file that nothing names |
| W010 | a block argument that the block's body never reads (inherited nodes included, under `extends:`) |
| W011 | a `when:` that is the same in every instance (name-free, or one value across all instances of its block) |

Silences: ``lint: {ignore: {W007: "reason"}}`` at the top of a spec (every warning of the code), on a
node (what it contains and, for a block use or group, everything inside its instances) or on a block
definition. The schema refuses a silence without a reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archc import blocks as library
from archc.analyze.inplace import tags_of
from archc.analyze.lint_codes import CODES, LintWarning
from archc.analyze.lint_spec import _constant_whens, _unused, spec_scan, unsilenced
from archc.analyze.shapes import Analysis
from archc.errors import ArchcError, Loc
from archc.ir import Graph, Node
from archc.ir.refs import output_ref

if TYPE_CHECKING:
    from archc.resolve.spec import SpecSource

__all__ = ["LintWarning", "lint", "CODES"]

# What each op is comes from its block's tags (blocks/README.md, "Facts"): `broadcast` (W002), `strided`
# (W004), `map` (its output is a (C, H, W) map; W006 also traces through `elementwise` and `pass_through` ops,
# see _keeps_layout), `projects` with a `mixes` rule (W006), `biased` and `norm` (W007).


def lint(analysis: Analysis, source: SpecSource | None = None,
         extra: Iterable[LintWarning] = ()) -> list[LintWarning]:
    """Every unsilenced warning for an analysed spec, one per (code, location). ``source`` is the
    loaded spec (``load_spec``); without it the spec is loaded again from ``graph.file``. ``extra``:
    warnings found elsewhere (the CLI's channels-last input, W005), silenced by the same rules."""
    graph, shapes = analysis.graph, analysis.shapes
    tags = {op: tags_of(op) for op in {n.op for n in graph.nodes}}  # the block facts, once per op
    tagged = _tagged(graph, tags)
    read = {s for n in graph.nodes for s in n.inputs}  # every value read, as written (`NAME[K]` too)
    found = [*extra, *_dead(graph, read), *_broadcasts(tagged["broadcast"], shapes), *_empty_repeats(graph),
             *_strides(tagged["strided"]), *_linear_on_maps(graph, tagged["projects"], shapes),
             *_bias_before_norm(graph, tagged["biased"], tags)]
    source = source if source is not None else _load(graph)
    if source is not None:
        scan = spec_scan(source.data)
        found += [*_unused(source, scan), *_constant_whens(graph, source.data, scan)]
        found = unsilenced(found, graph, source.data, scan)
    return _once_per_line(found)


def _load(graph: Graph) -> SpecSource | None:
    from archc.resolve.spec import load_spec

    path = Path(graph.file)
    try:
        return load_spec(path) if graph.file and path.is_file() else None
    except ArchcError:
        return None


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


def _dead(graph: Graph, read: set[str]) -> list[LintWarning]:
    """W001: nodes whose value reaches no output (train-only outputs included); reported at each tip
    (a node nothing reads). A tip is a node that nothing reads and that is not an output itself (what the
    outputs reach is read or an output): set differences find them, the walk from the outputs runs
    only when there is one (for the size of its dead branch). ``read``: every value the nodes read, as written."""
    outputs = {output_ref(o)[0] for o in (*graph.outputs, *graph.train_outputs)}
    paths = graph._index().keys()
    if "]" in "".join(read):  # a value read as NAME[K]: NAME is read
        read = {output_ref(s)[0] if s.endswith("]") else s for s in read}
    unread = paths - read
    if not unread - outputs:
        return []
    tips = [n for n in graph.nodes if n.path in unread and n.path not in outputs]
    producers = {n.path: [output_ref(s)[0] if s.endswith("]") else s for s in n.inputs] for n in graph.nodes}
    live: set[str] = set()
    stack = list(outputs)
    while stack:
        p = stack.pop()
        if p not in live:
            live.add(p)
            stack.extend(producers.get(p, ()))
    out = []
    for n in tips:
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


def _broadcasts(nodes: Sequence[Node], shapes: dict[str, tuple[int, ...]]) -> list[LintWarning]:
    """W002: in a rank-3 element-wise op (``nodes``: the `broadcast` ones), an operand whose one non-1 axis is
    H or W and has as many entries as there are channels: most likely a per-channel vector laid along the wrong
    axis (different ranks are already an error; (C, 1, W) gates such as coordinate attention are fine). Such an
    operand has one channel: only the nodes that read a one-channel value are looked at."""
    out: list[LintWarning] = []
    for n in nodes:
        for src in n.inputs:
            if src in shapes and shapes[src][:1] == (1,):
                out += _spread(n, shapes)
                break
    return out


def _spread(n: Node, shapes: dict[str, tuple[int, ...]]) -> list[LintWarning]:
    """W002 at one node."""
    out = []
    ins = [shapes.get(s) for s in n.inputs]
    if any(s is None or len(s) != 3 for s in ins):
        return []
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


_RULE_TAGS = ("broadcast", "strided", "projects", "biased")  # the nodes the graph rules look at


def _tagged(graph: Graph, tags: dict[str, frozenset[str]]) -> dict[str, Sequence[Node]]:
    """For each of ``_RULE_TAGS``, the nodes whose block has it, in order (``tags``: each op's): one pass over
    the graph's nodes, then over those that have any."""
    ops = {tag: {op for op, t in tags.items() if tag in t} for tag in _RULE_TAGS}
    ruled_ops = set().union(*ops.values())
    ruled = [n for n in graph.nodes if n.op in ruled_ops] if ruled_ops else []
    return {tag: [n for n in ruled if n.op in ops[tag]] if ops[tag] else [] for tag in _RULE_TAGS}


def _pair(v: object) -> tuple[int, int] | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v, v
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, int) for x in v):
        return int(v[0]), int(v[1])
    return None


def _strides(nodes: Sequence[Node]) -> list[LintWarning]:
    """W004: a window that jumps further than it sees leaves input pixels unread (``nodes``: the `strided`
    ones)."""
    out = []
    for n in nodes:
        args = n.args
        if "kernel_size" not in args or "stride" not in args:
            continue
        kernel, stride = args["kernel_size"], args["stride"]
        dilation = args["dilation"] if "dilation" in args else 1  # noqa: SIM401 - no call per node
        if type(kernel) is int and type(stride) is int and type(dilation) is int:  # the common case, no calls
            wide = kernel != 1 and stride > (kernel - 1) * dilation + 1
        else:
            wide = _wide(kernel, stride, dilation)
        if wide:
            out.append(LintWarning("W004", f"stride {args['stride']} is larger than the kernel "
                                   f"{args['kernel_size']}: some input pixels are never read", n.loc,
                                   node=n.path, hint="use a stride no larger than the kernel, or pool first"))
    return out


def _wide(kernel_arg: object, stride_arg: object, dilation_arg: object) -> bool:
    """Whether a stride jumps over a kernel's span on some axis (ints or pairs; anything else: no)."""
    kernel, stride = _pair(kernel_arg), _pair(stride_arg)
    dilation = _pair(dilation_arg) or (1, 1)
    if kernel is None or stride is None or kernel == (1, 1):  # a 1x1 projection (ResNet's downsample)
        return False
    span = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    return any(s > k for s, k in zip(stride, span))


# -- W006, W007: what a node reads ------------------------------------------------------------
def _origin(path: str, graph: Graph, by_path: dict[str, Any]) -> str | None:
    """'map' when a value comes from a (C, H, W) producer (or the graph input) through layout-keeping
    ops; None when its layout is unknown (a permute, a layernorm: e.g. Swin's (H, W, C) maps)."""
    inputs = {name for name, _ in graph.inputs}
    for _ in range(len(by_path) + 1):
        if path in inputs:
            return "map"
        node = by_path.get(path)
        if node is None:
            return None
        if "map" in tags_of(node.op):
            return "map"
        if not _keeps_layout(node.op):
            return None
        path = output_ref(node.inputs[0])[0]
    return None


def _keeps_layout(op: str) -> bool:
    """Element-wise ops and pass-through ops (identity, dropout, ...) keep their input's layout (block tags)."""
    return bool(tags_of(op) & {"elementwise", "pass_through"})


def _projects_last(node: Any, blocks: dict[str, Any]) -> bool:
    """Whether the node projects the last axis of a (C, H, W) map into new features (tag `projects`, `mixes`:
    linear); ``blocks``: the graph's projecting ops."""
    block = blocks.get(node.op)
    return block is not None and block.mixes(node.args, 3) == (2,)


def _linear_on_maps(graph: Graph, nodes: Sequence[Node], shapes: dict[str, tuple[int, ...]]) -> list[LintWarning]:
    """W006: torch's linear (any `projects` op mixing the last axis; ``nodes``: the `projects` ones) mixes the
    last axis only: on a (C, H, W) map that is W."""
    projecting = {op: library.get(op) for op in {n.op for n in nodes} if library.get(op).mixes is not None}
    if not projecting:
        return []
    by_path = graph._index()
    out = []
    for n in nodes:
        shape = shapes.get(n.inputs[0]) if n.inputs and _projects_last(n, projecting) else None
        if shape is None or len(shape) != 3 or _origin(output_ref(n.inputs[0])[0], graph, by_path) is None:
            continue
        out.append(LintWarning("W006", f"{n.op} applied to the (C, H, W) map {shape}: it mixes the last axis "
                               f"(W = {shape[2]}) only, separately for every channel and row", n.loc, node=n.path,
                               hint="flatten first (`flatten`), or pool to a vector (`adaptive_avg_pool2d` with "
                                    "output_size 1, then `flatten`)"))
    return out


def _bias_before_norm(graph: Graph, nodes: Sequence[Node], tags: dict[str, frozenset[str]]) -> list[LintWarning]:
    """W007: a batchnorm subtracts the per-channel mean, so a bias before it is wasted parameters. Weights
    shared (`share:`) are owned once, by the owner: reported there, and only when every node calling them
    is read by batchnorms only (a sharing node owns no parameters to waste). ``nodes``: the `biased` ones;
    ``tags``: each op's. The readers are looked at only when a node has a bias, the other readers only when
    a batchnorm reads one."""
    biased = [n for n in nodes if "bias" in n.args and n.args["bias"] is True]
    norms = {op for op, t in tags.items() if "norm" in t} if biased else set()
    by_norms = {s for n in graph.nodes if n.op in norms for s in n.inputs} if norms else set()
    biased = [n for n in biased if n.path in by_norms]
    if not biased:
        return []
    candidates = {n.path for n in biased}
    into_norms = candidates - {s for n in graph.nodes if n.op not in norms for s in n.inputs if s in candidates}
    users: dict[str, list[Node]] | None = None  # owner -> the nodes calling its weights, made when needed
    out = []
    for n in biased:
        if n.shares is not None or n.path not in into_norms:
            continue
        if users is None:
            users = _users(graph)
        also = users.get(n.path, [])
        if all(u.path in into_norms for u in also):
            got = [r for r in graph.nodes if n.path in r.inputs][0]  # the first reader
            w = LintWarning("W007", f"a bias before {got.op} '{got.path}', which subtracts it again "
                            f"({n.args.get('out_channels', '?')} wasted parameters)",
                            n.loc, node=n.path, hint="set `bias: false` on the convolution")
            if also:
                w.notes.append(f"its weights are also called by {', '.join(u.path for u in also)} (`share:`), "
                               "each read by batchnorms only")
            out.append(w)
    return out


def _users(graph: Graph) -> dict[str, list[Node]]:
    """The owner of shared weights (`share:`) -> the nodes calling them."""
    users: dict[str, list[Node]] = {}
    for n in graph.nodes:
        if n.shares is not None:
            users.setdefault(n.shares, []).append(n)
    return users
