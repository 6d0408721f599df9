"""The bounds of the `${...}` language (see README.md), the number rule shared with the YAML loader, and
the work `Budget` one resolve shares between expansion and expression evaluation."""

from __future__ import annotations

import math
from typing import Any

from archc.errors import LimitError, Loc

__all__ = ["Budget", "number_problem"]

MAX_LEN = 500  # characters of one expression
MAX_DEPTH = 40  # parser nesting
MAX_BITS = 64  # integers: |n| < 2 ** 64
MAX_FLOAT = 1e18  # floats: finite and |x| <= 1e18
MAX_SEQ = 10_000  # items of one list, characters of one string
MAX_WEIGHT = 100_000  # items and characters inside one list value, nested lists included
MAX_NEST = 32  # nesting of list values
MAX_NDIGITS = 30  # round(x, n): |n| <= 30
MAX_COMP = 2  # `for` clauses nested in one comprehension, those of comprehensions inside it included
MAX_WORK = 5_000  # work units of one evaluation (about 20 ms): a term visited, or ITEMS_PER_UNIT items touched
ITEMS_PER_UNIT = 32
WORK_PER_STEP = 2  # an evaluation charges a shared Budget 1 + work // WORK_PER_STEP steps


def number_problem(v: Any) -> str | None:
    """Why a number is out of bounds, or None: the one rule for literals, YAML values and results."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int) and v.bit_length() > MAX_BITS:
        return f"integer over {MAX_BITS} bits"
    if isinstance(v, float) and not math.isfinite(v):
        return "number is not finite"
    if isinstance(v, float) and abs(v) > MAX_FLOAT:
        return f"number larger than {MAX_FLOAT:g}"
    if isinstance(v, complex):
        return "complex number"
    return None


class Budget:
    """Work allowed to one resolve, in steps, shared by expansion and expression evaluation."""

    def __init__(self, limit: int, hint: str | None = None) -> None:
        self.limit, self.used, self.hint = limit, 0, hint

    def room(self, n: int, loc: Loc | None, what: str) -> None:
        """Refuse early when ``n`` more steps (e.g. a repeat count) cannot fit."""
        if self.used + n > self.limit:
            raise LimitError(f"{what} would take the expansion over {self.limit:,} steps", loc, hint=self.hint)

    def spend(self, n: int, loc: Loc | None) -> None:
        self.used += n
        if self.used > self.limit:
            raise LimitError(f"expanding the spec takes more than {self.limit:,} steps", loc, hint=self.hint)
