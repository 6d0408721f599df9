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

__all__ = ["FUNCTIONS", "Budget", "deep_interpolate", "evaluate", "interpolate", "is_expr", "number_problem", "parse"]
