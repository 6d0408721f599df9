"""The symbolic-size algebra's old import path: it lives in ``archc.analyze.symbolic`` now (``algebra.py``).
Kept for the files that still import it (analyze/shapes.py, memory.py, inplace.py,
resolve/shapes_so_far.py, tests/test_windows.py); import ``archc.analyze.symbolic.algebra`` instead."""

from archc.analyze.symbolic.algebra import (
    Expr,
    Guard,
    Guards,
    NotSymbolic,
    bounds,
    condition,
    evaluate,
    guarding,
    piece,
    shape_key,
    smax,
    substitute,
    symbol,
    value_at,
)

__all__ = ["Expr", "Guard", "Guards", "NotSymbolic", "symbol", "smax", "evaluate", "value_at", "guarding",
           "shape_key", "substitute", "bounds", "piece", "condition"]
