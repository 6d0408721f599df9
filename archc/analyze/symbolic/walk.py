"""The walk on symbolic sizes: `analyse_symbolic`, every node's shapes and costs as expressions, the guards
its rules record at the hint (the solver's step 1), and the graph's fingerprint; `solved`, the solver's
results kept by it.

A rule run is a pure function of the node's op, arguments and input shapes (as expressions) and of the hint
that answers its comparisons, so every run is kept process-wide in the node memo's symbolic table
(blocks/rule_memo.py `symbolic_table`) with the guards it recorded or relied on, in order (`Guards.log`):
a run that relied on none under ``(op, args, input shapes)`` (it holds at every hint), any other under that
key and the hint. A hit replays the guards (`Guards.replay`: each recorded where it is new, relied on by this
node), which is what the run itself would do at that hint. Within one walk a node whose key an earlier node
had takes that node's results without its guards, as the walk always did (the first node of a key is the
one that relies on them). A run that raised (an error, or no exact form) is not kept.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from math import prod
from typing import Any

from archc import blocks as library
from archc.analyze.shapes import (
    Analysis,
    NodeInfo,
    _limit,
    _report_missing,
    _skip_hint,
    finish,
)
from archc.analyze.symbolic.result import SymbolicResult
from archc.blocks import rule_memo as node_memo
from archc.errors import ArchcError, ShapeError
from archc.ir import Graph, Node
from archc.ir.algebra import Guards, NotSymbolic, shape_key, value_at
from archc.resolve import Limits

__all__ = ["analyse_symbolic", "keep_hint", "kept_hint", "solved"]

# within one walk: (op, args, input shape keys) -> the node's slot (`_rules`)
Memo = dict[tuple[Any, ...], list[Any]]
_NEW, _SET = object.__new__, object.__setattr__


def analyse_symbolic(graph: Graph, limits: Limits, guards: Guards) -> tuple[Analysis, tuple[Any, ...] | None]:
    """`analyze` of a graph whose input sizes may be symbolic, its comparisons answered and recorded by
    ``guards`` (the active `guarding` context), limits checked at the hint; receptive fields left out. Also
    the graph's fingerprint: what the analysis depends on, node by node (None when a node was not walked)."""
    result = Analysis(graph)
    result.shapes.update(dict(graph.inputs))
    keys: list[Any] = []
    if not _walk(graph, limits, result, guards, keys):  # a limit stopped the walk: that error alone
        return result, None
    finish(graph, result)
    return result, tuple(keys) if len(keys) == len(graph.nodes) else None


def _walk(graph: Graph, limits: Limits, result: Analysis, guards: Guards, keys: list[Any]) -> bool:
    """The nodes in order (shapes.py's concrete walk, on expressions); False when a limit stopped it."""
    total = 0
    memo: Memo = {}
    kept = node_memo.symbolic_table()
    hint, at_hint = guards.hint, dict[str, int]()  # the atoms' values at the hint, shared by the walk
    hint_key = tuple(sorted(hint.items()))
    seen: dict[int, tuple[Any, Any]] = {}  # id(params or shape) -> (it, its value at the hint): memo hits share them
    blocks: dict[str, library.Block] = {}
    shape_keys = {name: shape_key(shape) for name, shape in graph.inputs}  # every producer's, as in `key`

    def at(x: Any, value: Any) -> Any:
        got = seen.get(id(x))
        if got is None or got[0] is not x:
            got = seen[id(x)] = (x, value(x))
        return got[1]

    def elements(shape: tuple[Any, ...]) -> Any:
        return prod([value_at(d, hint, at_hint) for d in shape])

    walked = {name for name, _ in graph.inputs}
    shapes = result.shapes
    for node in graph.nodes:
        path, inputs, loc = node.path, node.inputs, node.loc
        walked.add(path)
        try:
            ins = tuple([shapes[s] for s in inputs])
        except KeyError:
            _report_missing(result, node, walked.__contains__)
            continue
        guards.node = path
        key = (node.op, repr(node.args), tuple([shape_keys[s] for s in inputs]))
        keys.append((path, key, inputs, loc and (loc.file, loc.line, loc.col), node.shares))
        slot: list[Any] | None = None
        try:
            block = blocks.get(node.op) or blocks.setdefault(node.op, library.get(node.op))
            try:
                slot = memo.get(key)
                if slot is None:
                    slot = memo[key] = _rules(node, block, ins, guards, kept, key, hint_key)
            except NotSymbolic as e:  # a rule with no exact form on symbolic sizes: the caller's fallback
                if guards.fallback is None:
                    raise
                info = guards.fallback(node, ins, e)
                out_keys = tuple(shape_key(s) for s in info.outputs or (info.shape,))
            else:
                outs, params, macs, other, out_keys = slot[0]
                info = _NEW(NodeInfo)  # NodeInfo(...) without the frozen dataclass's field-by-field __init__
                _SET(info, "__dict__", {"node": node, "in_shapes": ins, "shape": outs[0],
                                        "params": 0 if node.shares else params, "macs": macs, "other_ops": other,
                                        "rf": None, "outputs": outs if block.outputs is not None else ()})
        except ArchcError as e:
            result.errors.append(_skip_hint(graph, node, e.located(loc, path)))
            continue
        params = info.params
        total += params if type(params) is int else at(params, lambda x: value_at(x, hint, at_hint))
        facts = None if slot is None else slot[2]  # the output's (elements, empty, guards) at the hint
        size = at(info.shape, elements) if facts is None else facts[0]
        if total > limits.max_params or size > limits.max_activation:
            result.errors.append(_limit(node, total, info.shape, size, limits))
            return False
        if facts is not None:
            guards.replay(facts[2])
        else:
            facts = (size, *_empty(info.shape, guards))
            if slot is not None:
                slot[2] = facts
        if facts[1]:
            result.errors.append(ShapeError(f"output shape {info.shape} is empty", loc, node=path,
                                            hint="the input is too small for this many downsamplings"))
            continue
        result.info[path] = info
        if info.outputs:
            for k, shape in enumerate(info.outputs):
                shapes[f"{path}[{k}]"] = shape
                shape_keys[f"{path}[{k}]"] = out_keys[k]
        else:
            shapes[path] = info.shape
            shape_keys[path] = out_keys[0]
    return True


def _rules(node: Node, block: library.Block, ins: tuple[Any, ...], guards: Guards,
           kept: dict[tuple[Any, ...], Any] | None, key: tuple[Any, ...], hint_key: tuple[Any, ...]) -> list[Any]:
    """The node's slot at this hint: [(outputs, params, MACs, other ops, output shape keys), the guards the run
    relies on, the output's facts (None until the walk finds them)], from the kept runs (the guards replayed)
    or from its rules, kept with the guards they logged. Raises what the rules raise.

    The table's entry is [block, the outputs etc. of a run that relied on no guard (None: it relied on some),
    hint -> slot]: a guard-free run holds at every hint, a guarded one at its own (all its runs are guarded)."""
    entry = kept.get(key) if kept is not None else None
    if entry is not None and entry[0] is block:
        slot = entry[2].get(hint_key)
        if entry[1] is not None:  # a run that relied on no guard: it holds at every hint
            node_memo.STATS["symbolic_hit"] += 1
            return slot if slot is not None else entry[2].setdefault(hint_key, [entry[1], (), None])  # type: ignore
        if slot is not None:  # a guarded run at this hint: its guards are this node's too
            node_memo.STATS["symbolic_hint_hit"] += 1
            guards.replay(slot[1])
            return slot  # type: ignore[no-any-return]
    log, guards.log = guards.log, []
    try:
        args = node.args
        outs = block.out_shapes(args, ins)
        hit = (outs, block.count_params(args, ins), block.macs(args, ins, outs[0]), block.other_ops(args, ins, outs[0]),
               tuple(shape_key(s) for s in outs))
    finally:
        logged, guards.log = guards.log, log
    if log is not None:
        log.extend(logged)
    slot = [hit, guards.events(logged), None]
    if kept is not None:
        if entry is None or entry[0] is not block:
            entry = [block, None, {}]
            node_memo.store(key, entry, kept)
        if not logged:
            entry[1] = hit
        entry[2][hint_key] = slot
    return slot


def _empty(shape: tuple[Any, ...], guards: Guards) -> tuple[bool, tuple[Any, ...]]:
    """Whether a size of ``shape`` is below 1 at the hint, and the guards that records or relies on (kept with
    the answer by the walk, by the shape and the hint, and replayed, as for a rule run)."""
    for d in shape:  # what `d < 1` decides without a guard (Expr.__lt__'s lower bound) first, in order
        if type(d) is int:
            if d < 1:
                return True, ()
        elif (low := d.low()) is None or low < 1:
            break
    else:
        return False, ()
    log, guards.log = guards.log, []
    try:
        empty = any(d < 1 for d in shape)
    finally:
        logged, guards.log = guards.log, log
    if log is not None:
        log.extend(logged)
    return empty, guards.events(logged)


# ---- the solver's results, kept by the walk's nodes ----

_SOLVED: deque[Any] = deque()  # the keys of the results kept in the node memo's symbolic table, oldest first
_LOCK = threading.Lock()
KEPT = 16  # results kept (1-2 MB each on the largest built-in specs, with the runs they keep)


def solved(graph: Graph, symbols: dict[int, str], limits: Limits, hint: dict[str, int], nodes: tuple[Any, ...] | None,
           solve: Callable[[], SymbolicResult]) -> SymbolicResult:
    """``solve()`` (the solver's result for ``graph``, walked at ``hint`` as ``nodes``), kept in the node memo's
    symbolic table (off with it, cleared with it) by what it is a function of: the walk's nodes (path, op,
    arguments, input shapes, inputs, location, `share:`), the rest of the graph (outputs, groups, meta, name,
    file, params: the paths' analyses hold it), the symbols, the limits and the hint (whose guards the walk
    recorded). A graph that differs in any of these is solved afresh; the last `KEPT` results are kept."""
    kept = node_memo.symbolic_table()
    if kept is None or nodes is None:
        return solve()
    key = ("solved", nodes, graph.inputs, graph.outputs, graph.train_outputs, graph.groups, repr(graph.meta),
           graph.name, graph.file, repr(graph.params), tuple(sorted(symbols.items())), limits,
           tuple(sorted(hint.items())))
    got = kept.get(key)
    if got is not None and all(library.get(op) is b for op, b in got[0].items()):
        node_memo.STATS["symbolic_solved_hit"] += 1
        return got[1]  # type: ignore[no-any-return]
    blocks = {op: library.get(op) for op in {n.op for n in graph.nodes}}
    result = solve()
    with _LOCK:
        node_memo.store(key, (blocks, result), kept)
        _SOLVED.append(key)
        while len(_SOLVED) > KEPT:
            kept.pop(_SOLVED.popleft(), None)
    return result


def _structure(graph: Graph, symbols: dict[int, str], limits: Limits) -> tuple[Any, ...]:
    """What decides which hint sizes a walk fails at: the nodes, inputs, outputs, symbols and limits."""
    nodes = tuple([(n.path, n.op, repr(n.args), n.inputs, n.shares) for n in graph.nodes])
    return ("hint", nodes, graph.inputs, graph.outputs, graph.train_outputs, tuple(sorted(symbols.items())), limits)


def kept_hint(graph: Graph, symbols: dict[int, str], limits: Limits) -> int | None:
    """The hint size the solver found for this graph before, past hints at which the walk failed (None: not met).
    Only a graph of a file, name and size whose walk failed at the first hint before is looked up."""
    kept = node_memo.symbolic_table()
    if kept is None or ("failed first", graph.file, graph.name, len(graph.nodes)) not in kept:
        return None
    return kept.get(_structure(graph, symbols, limits))  # type: ignore[no-any-return]


def keep_hint(graph: Graph, symbols: dict[int, str], limits: Limits, size: int) -> None:
    """Keep the hint size the solver found past failing ones: the same graph met again walks there only."""
    kept = node_memo.symbolic_table()
    if kept is not None:
        node_memo.store(("failed first", graph.file, graph.name, len(graph.nodes)), True, kept)
        node_memo.store(_structure(graph, symbols, limits), size, kept)
