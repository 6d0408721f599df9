"""Where the algebra has no exact form: a node's output sizes sampled and fitted (`_sampler`), and the
whole spec swept over sizes and fitted (`sweep`, the last resort)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from typing import Any

from archc import blocks as library
from archc.analyze.shapes import Analysis, NodeInfo, analyze
from archc.analyze.symbolic.paths import _at
from archc.analyze.symbolic.result import SymbolicResult
from archc.errors import ShapeError
from archc.ir import Graph, Node
from archc.ir.algebra import Guards, NotSymbolic, symbol

__all__ = ["sweep"]

_SAMPLE = 512  # sizes a rule with no exact form is sampled at

def _sampler(guards: Guards) -> Callable[[Node, tuple[Any, ...], NotSymbolic], NodeInfo]:
    """For a node whose rule has no exact form: each output size fitted to ``m * ((S + a) // d)``
    over S = 1.._SAMPLE (the other sizes at the hint), valid from the smallest size that works."""
    def fallback(node: Node, ins: tuple[Any, ...], why: NotSymbolic) -> NodeInfo:
        block = library.get(node.op)
        fits: dict[tuple[int, int], Any] = {}
        for s in guards.hint:
            pts = _samples(block, node, ins, {**guards.hint}, s)
            if not pts or [v for v, _ in pts] != list(range(pts[0][0], _SAMPLE + 1)):
                raise why  # not valid on one stretch of sizes: leave it to the sweep
            if pts[0][0] > 1:
                _ = symbol(s) >= pts[0][0]  # records the guard, at this node
            for k, outs in enumerate(pts[0][1]):
                for i in range(len(outs)):
                    series = [(v, o[k][i]) for v, o in pts]
                    if len({x for _, x in series}) > 1:
                        if (k, i) in fits:
                            raise why  # depends on two sizes
                        fits[(k, i)] = _fit(series, s)
        if any(f is None for f in fits.values()):
            raise why
        first = block.out_shapes(node.args, _at(ins, guards.hint))
        outs = tuple(tuple(fits.get((k, i), d) for i, d in enumerate(o)) for k, o in enumerate(first))
        guards.notes.append(f"[{node.path}] {why}: its sizes are fitted to 1..{_SAMPLE} (exact there)")
        return NodeInfo(node, ins, outs[0], block.count_params(node.args, ins), block.macs(node.args, ins, outs[0]),
                        block.other_ops(node.args, ins, outs[0]), None, outs if block.outputs is not None else ())
    return fallback



def _samples(block: Any, node: Node, ins: tuple[Any, ...], env: dict[str, int], s: str) -> list[tuple[int, Any]]:
    out = []
    for v in range(1, _SAMPLE + 1):
        env[s] = v
        with suppress(ShapeError):  # a size this rule refuses
            out.append((v, block.out_shapes(node.args, _at(ins, env))))
    return out



# ---- the fallback: a sweep of sizes, fitted ----

_DIVISORS = (1, 2, 3, 4, 8, 14, 16, 28, 32, 64)
_MULTIPLIERS = (1, 2, 4, 8, 16, 32)
def _fit(points: list[tuple[int, int]], name: str) -> Any:
    """``m * ((name + a) // d)`` (an Expr, or an int when constant) reproducing every point, or None."""
    values = {v for _, v in points}
    if len(values) == 1:
        return values.pop()
    x = symbol(name)
    for m in _MULTIPLIERS:
        for d in _DIVISORS:
            for a in range(-2 * d - 8, 2 * d + 8):
                if all(m * ((s + a) // d) == v for s, v in points):
                    return m * ((x + a) // d)
    return None


def _constraint(valid: list[int], lo: int, hi: int, names: str) -> str:
    if not valid:
        return f"no {names} in {lo}..{hi} works"
    if len(valid) == 1:
        return f"{names} must be exactly {valid[0]}"
    first = valid[0]
    for p in range(2, 65):
        if valid == [s for s in range(first, hi + 1) if (s - first) % p == 0]:
            return f"{names} >= {first} and {names} % {p} == {first % p}"
    if valid == list(range(first, hi + 1)):
        return f"{names} >= {first}"
    if valid == list(range(first, valid[-1] + 1)):
        return f"{first} <= {names} <= {valid[-1]}"
    return f"{names} in {valid[:8]}{' ...' if len(valid) > 8 else ''}"


def sweep(graph: Graph, symbols: dict[int, str], lo: int = 1, hi: int = 512) -> SymbolicResult:
    """Analyse ``graph`` with every symbolic axis of its (single) input set to lo..hi together."""
    name, shape = graph.inputs[0]
    results: dict[int, Analysis] = {}
    for s in range(lo, hi + 1):
        concrete = tuple(s if i in symbols else d for i, d in enumerate(shape))
        a = analyze(replace(graph, inputs=((name, concrete),)))
        if not a.errors:
            results[s] = a
    valid = sorted(results)
    label = "/".join(dict.fromkeys(symbols.values()))
    breaks = ""
    if valid and valid[0] > lo:
        below = analyze(replace(graph, inputs=((name, tuple(valid[0] - 1 if i in symbols else d
                                                            for i, d in enumerate(shape))),)))
        if below.errors:
            err = below.errors[0]
            breaks = f"at {label} = {valid[0] - 1}: [{err.node}] {err.message}"
    shapes: dict[str, tuple[str, ...]] = {}
    first = next(iter(symbols.values()), "H")
    for node in graph.nodes:
        if not valid or node.path not in results[valid[0]].info:
            continue
        rank = len(results[valid[0]].info[node.path].shape)
        dims = []
        for axis in range(rank):
            pts = [(s, results[s].info[node.path].shape[axis]) for s in valid]
            # (C, H, W) maps keep the input's axis names; other layouts use the first symbol
            fit = _fit(pts, symbols.get(axis, first) if rank == len(shape) else first)
            dims.append("?" if fit is None else str(fit))
        shapes[node.path] = tuple(dims)
    hint = {x: valid[0] if valid else lo for x in symbols.values()}
    return SymbolicResult(symbols, hint, shapes, _constraint(valid, lo, hi, label), breaks, method="sweep",
                          sampled=tuple(valid))


