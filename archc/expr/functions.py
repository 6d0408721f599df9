"""The built-in functions an expression may call (:data:`FUNCTIONS`), each bounded before computing."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from archc.expr.limits import MAX_FLOAT, MAX_NDIGITS, MAX_SEQ

__all__ = ["FUNCTIONS", "make_divisible"]


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of ``divisor``, never dropping more than 10% (MobileNet rule)."""
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
        raise ValueError(f"divisor must be a positive integer, got {divisor!r}")
    floor_ = divisor if min_value is None else min_value
    out = max(floor_, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


def _round(x: float, ndigits: int | None = None) -> float:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_NDIGITS:  # round(8, -10 ** 9) would never return
        raise ValueError(f"digits {ndigits} outside -{MAX_NDIGITS}..{MAX_NDIGITS}")
    return round(x, ndigits)


def _sqrt(x: float) -> float:
    if isinstance(x, (int, float)) and x < 0:
        raise ValueError(f"square root of a negative number ({x})")
    return math.sqrt(x)


def _range(*args: int) -> list[int]:
    r = range(*args)
    try:
        n: int | None = len(r)
    except OverflowError:  # more items than a C ssize_t holds
        n = None
    if n is None or n > MAX_SEQ:
        raise ValueError(f"range of {'more than 2**63' if n is None else n} items is over the limit of {MAX_SEQ}")
    return list(r)


def _log(x: float, base: float | None = None) -> float:
    """Natural logarithm, or to ``base``: x > 0, base > 0 and not 1 (results are then finite)."""
    if isinstance(x, (int, float)) and x <= 0:
        raise ValueError(f"logarithm of a number that is not positive ({x})")
    if base is None:
        return math.log(x)
    if isinstance(base, (int, float)) and (base <= 0 or base == 1):
        raise ValueError(f"base {base} must be positive and not 1")
    return math.log(x, base)


_EXP_MAX = math.log(MAX_FLOAT)


def _exp(x: float) -> float:
    if isinstance(x, (int, float)) and x > _EXP_MAX:  # refused before computing (exp(1e18) overflows)
        raise ValueError(f"exp({x}) is larger than {MAX_FLOAT:g}")
    return math.exp(x)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min, "max": max, "abs": abs, "round": _round, "int": int, "float": float,
    "ceil": math.ceil, "floor": math.floor, "sqrt": _sqrt, "len": len, "sum": sum,
    "range": _range, "make_divisible": make_divisible, "str": str, "bool": bool, "log": _log, "exp": _exp,
}
