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
from archc.analyze.inplace import check_inplace
from archc.analyze.shapes import (
    Analysis,
    NodeInfo,
    _block_notes,
    _limit,
    _missing_input,
    _report_missing,
    _skip_hint,
    node_info,
)
from archc.analyze.symbolic.result import SymbolicResult
from archc.blocks import rule_memo as node_memo
from archc.errors import ArchcError, ShapeError
from archc.ir import Graph, Node
from archc.ir.algebra import Guards, NotSymbolic, shape_key, value_at
from archc.ir.refs import output_ref
from archc.resolve import Limits

__all__ = ["analyse_symbolic", "solved"]

Memo = dict[tuple[Any, ...], tuple[Any, ...]]  # (op, args, input shapes) -> outputs and costs, within one walk


def analyse_symbolic(graph: Graph, limits: Limits, guards: Guards) -> tuple[Analysis, tuple[Any, ...] | None]:
    """`analyze` of a graph whose input sizes may be symbolic, its comparisons answered and recorded by
    ``guards`` (the active `guarding` context), limits checked at the hint; receptive fields left out. Also
    the graph's fingerprint: what the analysis depends on, node by node (None when a node was not walked)."""
    result = Analysis(graph)
    result.shapes.update(dict(graph.inputs))
    keys: list[Any] = []
    if not _walk(graph, limits, result, guards, keys):  # a limit stopped the walk: that error alone
        return result, None
    for out in (*graph.outputs, *graph.train_outputs):
        absent = _missing_input(result, out) if out not in result.shapes else None
        if absent is not None:
            base = output_ref(out)[0]
            result.errors.append(absent.located(graph.node(base).loc, base))
    if not result.errors and any(o not in result.shapes for o in (*graph.outputs, *graph.train_outputs)):
        raise AssertionError("an output has no shape and no error says why")
    check_inplace(graph, result.errors)
    for err in result.errors:
        if err.node and not err.notes:
            err.notes.extend(_block_notes(graph, err.node))
    return result, tuple(keys) if len(keys) == len(graph.nodes) else None


def _walk(graph: Graph, limits: Limits, result: Analysis, guards: Guards, keys: list[Any]) -> bool:
    """The nodes in order (shapes.py's concrete walk, on expressions); False when a limit stopped it."""
    total = 0
    memo: Memo = {}
    hint, at_hint = guards.hint, dict[str, int]()  # the atoms' values at the hint, shared by the walk
    hint_key = tuple(sorted(hint.items()))
    seen: dict[int, tuple[Any, Any]] = {}  # id(params or shape) -> (it, its value at the hint): memo hits share them

    def at(x: Any, value: Any) -> Any:
        got = seen.get(id(x))
        if got is None or got[0] is not x:
            got = seen[id(x)] = (x, value(x))
        return got[1]

    def elements(shape: tuple[Any, ...]) -> Any:
        return prod([value_at(d, hint, at_hint) for d in shape])

    walked = {name for name, _ in graph.inputs}
    for node in graph.nodes:
        walked.add(node.path)
        if any(src not in result.shapes for src in node.inputs):
            _report_missing(result, node, walked.__contains__)
            continue
        ins = tuple(result.shapes[s] for s in node.inputs)
        guards.node = node.path
        key = (node.op, repr(sorted(node.args.items())), tuple(shape_key(s) for s in ins))
        keys.append((node.path, key, node.inputs, node.loc, node.shares))
        try:
            info = _info(node, ins, guards, memo, key, hint_key)
        except ArchcError as e:
            result.errors.append(_skip_hint(graph, node, e.located(node.loc, node.path)))
            continue
        params = info.params
        total += params if type(params) is int else at(params, lambda x: value_at(x, hint, at_hint))
        size = at(info.shape, elements)
        if total > limits.max_params or size > limits.max_activation:
            result.errors.append(_limit(node, total, info.shape, size, limits))
            return False
        if any(d < 1 for d in info.shape):
            result.errors.append(ShapeError(f"output shape {info.shape} is empty", node.loc, node=node.path,
                                            hint="the input is too small for this many downsamplings"))
            continue
        result.info[node.path] = info
        if info.outputs:
            result.shapes.update({f"{node.path}[{k}]": shape for k, shape in enumerate(info.outputs)})
        else:
            result.shapes[node.path] = info.shape
    return True


def _info(node: Node, ins: tuple[Any, ...], guards: Guards, memo: Memo, key: tuple[Any, ...],
          hint_key: tuple[Any, ...]) -> NodeInfo:
    """node_info on symbolic sizes, from the walk's memo, the kept runs (their guards replayed), or a run
    that is kept with the guards it logs."""
    kept = node_memo.symbolic_table()
    if kept is None or key in memo:
        return _run(node, ins, guards, memo, key)
    block = library.get(node.op)
    entry = kept.get(key)
    if entry is not None and entry[0] is block:  # a run that relied on no guard: it holds at every hint
        node_memo.STATS["symbolic_hit"] += 1
        memo[key] = entry[1]
        return _run(node, ins, guards, memo, key)
    entry = kept.get((*key, hint_key))
    if entry is not None and entry[0] is block:  # a guarded run at this hint: its guards are this node's too
        node_memo.STATS["symbolic_hint_hit"] += 1
        memo[key] = entry[1]
        guards.replay(entry[2])
        return _run(node, ins, guards, memo, key)
    log, guards.log = guards.log, []
    try:
        info = node_info(node, ins, None, memo, key)
    except NotSymbolic as e:  # a rule with no exact form on symbolic sizes: the caller's fallback, not kept
        guards.log = log
        if guards.fallback is None:
            raise
        return guards.fallback(node, ins, e)  # type: ignore[no-any-return]
    except BaseException:
        guards.log = log
        raise
    logged, guards.log = guards.log, log
    if log is not None:
        log.extend(logged)
    if logged:
        node_memo.store((*key, hint_key), (block, memo[key], guards.events(logged)), kept)
    else:
        node_memo.store(key, (block, memo[key]), kept)
    return info


def _run(node: Node, ins: tuple[Any, ...], guards: Guards, memo: Memo, key: tuple[Any, ...]) -> NodeInfo:
    try:
        return node_info(node, ins, None, memo, key)
    except NotSymbolic as e:
        if guards.fallback is None:
            raise
        return guards.fallback(node, ins, e)  # type: ignore[no-any-return]


# ---- the solver's results, kept by the walk's nodes ----

_SOLVED: deque[Any] = deque()  # the keys of the results kept in the node memo's symbolic table, oldest first
_LOCK = threading.Lock()
KEPT = 64  # results kept


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
