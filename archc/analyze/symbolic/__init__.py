"""Symbolic input sizes (`--input 3xHxW`): every node's shape, and the model's parameters, MACs,
activations and memory, as exact expressions in H and W, with exactly the sizes for which they hold.

1. One analysis runs on symbolic sizes (`archc.ir.algebra`) at a hint size (224 unless that fails):
   the unchanged shape rules compute expressions, and every comparison they make that depends on
   the size is recorded as a *guard*. Wherever every guard holds, the rules take the branches they
   took at the hint, so the formulas are exact there. Such a set of guards, with what the graph
   does under them (formulas, or an error), is a *path*.
2. A guard in one symbol is quasi-affine (``a·H + something periodic in H``): past a size computed
   from its bounds its truth is constant or repeats with a computed period. Its truth over that
   stretch is computed piece by piece (floor divisions are constant on a piece, so a piece is
   affine and the guard holds on an interval of it), never size by size. The guards of a symbol
   split its axis into *classes*: sizes on which every guard has the same truth.
3. Every combination of classes (one per symbol) must be covered by a known path; a size of one
   that is not is explored: the node whose guard fails there is re-run on its symbolic inputs at
   that size (a path that ends in an error), or, where that node takes another branch (a
   ceil-mode window, broadcasting), the whole graph is analysed there, symbolically and
   concretely (a path with the same or other formulas). Only a literal 1 broadcasts in the rules,
   so input sizes equal to 1 there are made literal, and the path records which sizes are 1; a
   path that still disagrees with the concrete analysis pins the symbol (``H == 1``). New paths'
   guards refine the classes, until every combination is covered.
4. Guards that tie two symbols (a ViT's token count) are decided per combination by interval
   bounds where possible; each truth combination left is covered by a path found at a size
   among the first few of each class.

So the valid set is exact: the formulas' region, plus the sizes valid with other formulas. The
work is counted (pieces, classes, nodes analysed) against ``STEPS_PER_LIMIT_STEP`` times
``Limits.max_steps``: past it the formulas are claimed at the hint only, or, when only the search
of other sizes ran out, where they are known to hold, with a note saying so.

A rule with no exact integer form (a float scale that is not a small fraction) is sampled at that
node only: its output sizes are fitted to ``m * ((H + a) // d)`` over sizes 1..512 and the
analysis goes on with the fits (the note names the node). Only when that fails too (a size
depending on both H and W) does the whole spec fall back to a sweep of sizes.

The entry is `analyse(graph, limits)`: what `archc.check` gives for such an input (the concrete
analysis at the hint sizes, the formulas and valid sizes in ``Analysis.symbolic``). `solve` gives the
`SymbolicResult` alone, and `at_sizes` reads an analysis at other valid sizes from it. These names are
imported on first use: the analysis walk (analyze/shapes.py) runs on the algebra (archc/ir/algebra/), and
the solver runs the walk. The files, by concern:

- the algebra, in archc/ir/algebra/ (below resolve, which reads it; it imports nothing else of archc; import
  it as `archc.ir.algebra`): `sizes.py`, `Expr`, exact integer expressions in the size symbols, and its comparisons;
  `guards.py`, the guards recorded where a comparison depends on the size; `forms.py`, reading sizes
  (at a point, as keys, ``max``, partial substitution, bounds over a box, affine pieces).
- the valid sets: `runs.py`, sets of sizes on one axis (`AxisSet`); `axes.py`, one axis's guards, their
  truth piece by piece and the classes they make.
- the walk: `walk.py`, the analysis on symbolic sizes at a hint (step 1), every rule run kept with the guards
  it recorded (replayed on a hit: a warm check runs no rule), and the solver's results kept by the graph.
- the solver: `paths.py`, guards with what the graph does under them; `solver.py`, `solve` (steps 1-4);
  `sampling.py`, a rule with no exact form sampled at its node, and the whole-spec `sweep`.
- the result and the entry: `result.py`, `SymbolicResult` and `at_sizes`; `entry.py`, `analyse`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archc.analyze.symbolic.entry import analyse
    from archc.analyze.symbolic.result import SymbolicResult, at_sizes
    from archc.analyze.symbolic.runs import AxisSet
    from archc.analyze.symbolic.sampling import sweep
    from archc.analyze.symbolic.solver import STEPS_PER_LIMIT_STEP, solve

__all__ = ["STEPS_PER_LIMIT_STEP", "AxisSet", "SymbolicResult", "analyse", "at_sizes", "solve", "sweep"]

_LAZY = {"analyse": "entry", "STEPS_PER_LIMIT_STEP": "solver", "AxisSet": "runs", "SymbolicResult": "result",
         "at_sizes": "result", "solve": "solver", "sweep": "sampling"}


def __getattr__(name: str) -> Any:
    """A public name of the solver, imported when first read (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value
