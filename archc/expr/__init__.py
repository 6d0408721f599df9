"""Stage 3 helper: the whitelisted `${...}` expression language (no eval, no compile)."""

from archc.expr.evaluator import FUNCTIONS, deep_interpolate, evaluate, interpolate, is_expr, parse

__all__ = ["FUNCTIONS", "deep_interpolate", "evaluate", "interpolate", "is_expr", "parse"]
