"""Stage 3 helper: the whitelisted `${...}` expression language (no eval, no compile)."""

from archc.expr.evaluator import (
    FUNCTIONS,
    Budget,
    deep_interpolate,
    evaluate,
    interpolate,
    is_expr,
    number_problem,
    parse,
)
from archc.expr.kinds import describe, division_hint, fits

__all__ = ["FUNCTIONS", "Budget", "deep_interpolate", "describe", "division_hint", "evaluate", "fits",
           "interpolate", "is_expr", "number_problem", "parse"]
