"""The entry: `analyse`, the analysis of a graph whose input has symbolic sizes."""

from __future__ import annotations

from dataclasses import replace

from archc.analyze.shapes import Analysis, analyze
from archc.analyze.symbolic.solver import solve
from archc.errors import ShapeError
from archc.ir import Graph
from archc.resolve import Limits

__all__ = ["analyse"]


def analyse(graph: Graph, limits: Limits | None = None) -> Analysis:
    """Analyse ``graph``, whose input has the symbolic sizes ``graph.meta["symbols"]`` (input axis -> name,
    as resolve leaves them for `--input 3xHxW`): the valid sizes are solved and every figure's formula found
    (`solve`); the analysis returned is the concrete one at the hint sizes, with the formulas and the valid
    sizes in ``Analysis.symbolic`` (a `SymbolicResult`). A located ShapeError when no input size works."""
    limits = limits or Limits()
    symbols = graph.meta["symbols"]
    result = solve(graph, symbols, limits)
    if result.method == "none" or (result.method == "sweep" and not result.sampled):
        raise ShapeError(f"no input size works: {result.constraint}", graph.meta.get("input_loc"),
                         hint=result.breaks or None)
    name, shape = graph.inputs[0]
    concrete = replace(graph, inputs=((name, tuple(result.hint[symbols[i]] if i in symbols else d
                                                   for i, d in enumerate(shape))),))
    # the concrete analysis at the hint (what `at_sizes` reads from the formulas there, as the tests check): with
    # the node memo (blocks/rule_memo.py) cheaper than evaluating every formula
    analysis = analyze(concrete, limits)
    analysis.symbolic = result
    return analysis
