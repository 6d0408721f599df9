"""Stage 3 helper: the whitelisted `${...}` expression language (no eval, no compile)."""

from archc.expr.evaluator import deep_interpolate, evaluate, interpolate, is_expr
from archc.expr.functions import FUNCTIONS
from archc.expr.kinds import describe, division_hint, fits
from archc.expr.limits import Budget, number_problem
from archc.expr.parser import parse

__all__ = ["FUNCTIONS", "Budget", "deep_interpolate", "describe", "division_hint", "evaluate", "fits",
           "interpolate", "is_expr", "number_problem", "parse"]
