"""Symbolic input sizes (`--input 3xHxW`): the shapes of every node as expressions of H and W, and
the sizes for which the model is valid.

archc's shape rules are exact integer functions, so instead of a computer-algebra system it
evaluates them over a sweep of sizes and fits each output length to `m * floor((H + a) / d)`;
a fit is accepted only when it reproduces every sampled size. Validity is read off the same
sweep: the smallest size that works (and the node that breaks below it), a required
divisibility, or a single fixed size (a ViT's position table).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from archc.analyze.shapes import Analysis, analyze
from archc.ir import Graph

__all__ = ["SymbolicResult", "sweep"]

_DIVISORS = (1, 2, 3, 4, 8, 14, 16, 28, 32, 64)
_MULTIPLIERS = (1, 2, 4, 8, 16, 32)


@dataclass
class SymbolicResult:
    symbols: dict[int, str]  # input axis -> symbol
    valid: list[int]
    shapes: dict[str, tuple[str, ...]]  # node -> output shape with expressions
    constraint: str
    breaks: str  # what fails just below the smallest valid size


def _fit(points: list[tuple[int, int]], name: str) -> str | None:
    values = {v for _, v in points}
    if len(values) == 1:
        return str(values.pop())
    for m in _MULTIPLIERS:
        for d in _DIVISORS:
            for a in range(-2 * d - 8, 2 * d + 8):
                if all(m * ((s + a) // d) == v for s, v in points):
                    inner = name if a == 0 else f"{name} {'+' if a > 0 else '-'} {abs(a)}"
                    if d == 1:
                        return inner if m == 1 else f"{m} * ({inner})" if a else f"{m} * {name}"
                    core = f"({inner}) // {d}" if a else f"{name} // {d}"
                    return core if m == 1 else f"{m} * ({core})"
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
            dims.append(_fit(pts, symbols.get(axis, first) if rank == len(shape) else first) or "?")
        shapes[node.path] = tuple(dims)
    return SymbolicResult(symbols, valid, shapes, _constraint(valid, lo, hi, label), breaks)


def describe(result: SymbolicResult, outputs: Any) -> str:
    out = [f"valid inputs: {result.constraint}"]
    if result.breaks:
        out.append(f"smallest input breaks {result.breaks}")
    for o in outputs:
        if o in result.shapes:
            out.append(f"output {o}: ({', '.join(result.shapes[o])})")
    return "\n".join(out)
