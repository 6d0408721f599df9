"""Sets of sizes on one axis: ordered runs of sizes, and `AxisSet` (runs below a size, a periodic
pattern from it on), with the text the constraints are printed in."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["AxisSet", "Point", "Runs"]

_MAX_ITEMS = 16  # runs printed in one set of sizes

Runs = tuple[tuple[int, int], ...]  # disjoint, ordered [a, b) runs of sizes
Point = dict[str, int]


# ---- runs of sizes ----

def _merge(runs: Iterable[tuple[int, int]]) -> Runs:
    out: list[tuple[int, int]] = []
    for a, b in sorted(runs):
        if a >= b:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(b, out[-1][1]))
        else:
            out.append((a, b))
    return tuple(out)


def _in(runs: Runs, v: int) -> bool:
    i = bisect_right(runs, (v, float("inf"))) - 1
    return i >= 0 and runs[i][0] <= v < runs[i][1]


def _clip(runs: Runs, lo: int, hi: int) -> Runs:
    i = max(0, bisect_right(runs, (lo, float("inf"))) - 1)
    out = []
    for a, b in runs[i:]:
        if a >= hi:
            break
        if b > lo:
            out.append((max(a, lo), min(b, hi)))
    return tuple(out)


def _and(x: Runs, y: Runs) -> Runs:
    out, i, j = [], 0, 0
    while i < len(x) and j < len(y):
        a, b = max(x[i][0], y[j][0]), min(x[i][1], y[j][1])
        if a < b:
            out.append((a, b))
        if x[i][1] < y[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _not(x: Runs, lo: int, hi: int) -> Runs:
    out, at = [], lo
    for a, b in _clip(x, lo, hi):
        if a > at:
            out.append((at, a))
        at = b
    if at < hi:
        out.append((at, hi))
    return tuple(out)


def _shift(x: Runs, by: int) -> Runs:
    return tuple((a + by, b + by) for a, b in x)


def _rotate(x: Runs, by: int, period: int) -> Runs:
    """Runs within [0, period) shifted by ``by`` around the circle."""
    out = []
    for a, b in x:
        a, b = a + by % period, b + by % period
        out += [(a, min(b, period))] if a < period else []
        out += [(max(a, period) - period, b - period)] if b > period else []
    return _merge(out)


def _items(runs: Runs) -> list[str]:
    items = [str(a) if b - a == 1 else f"{a}..{b - 1}" for a, b in runs[:_MAX_ITEMS]]
    return items + ([f"… ({len(runs)} runs in all)"] if len(runs) > _MAX_ITEMS else [])


@dataclass(frozen=True)
class AxisSet:
    """The sizes of one axis in a set: ``runs`` below ``start``; from ``start`` on, those whose
    remainder modulo ``period`` lies in ``residues`` (runs within [0, period)). ``upto`` > 0:
    nothing is claimed from ``upto`` on (a guard that is not quasi-affine was examined below it)."""

    runs: Runs
    start: int
    period: int = 1
    residues: Runs = ()
    upto: int = 0

    def __contains__(self, v: int) -> bool:
        if v < self.start:
            return _in(self.runs, v)
        return not self.upto and _in(self.residues, v % self.period)

    def first_tail(self) -> int | None:
        if self.upto or not self.residues:
            return None
        r0 = self.start % self.period
        later = [a for a, b in self.residues if b > r0]
        return self.start + max(later[0] - r0, 0) if later else self.start + self.period - r0 + self.residues[0][0]

    def smallest(self) -> int | None:
        return self.runs[0][0] if self.runs else self.first_tail()

    def text(self, s: str) -> str:
        parts = []
        if self.runs:
            items = _items(self.runs)
            one = len(items) == 1 and ".." not in items[0]
            parts.append(f"{s} == {items[0]}" if one else f"{s} in {items[0]}" if len(items) == 1
                         else f"{s} in {{{', '.join(items)}}}")
        first = self.first_tail()
        if first is not None:
            res = _items(self.residues)
            mod = f"{s} % {self.period} " + (f"== {res[0]}" if len(res) == 1 and ".." not in res[0]
                                              else f"in {{{', '.join(res)}}}")
            parts.append(f"{s} >= {first}" + ("" if self.residues == ((0, self.period),) else f" and {mod}"))
        text = " or ".join(parts) or f"no {s} works"
        return text + (f" (checked up to {self.upto - 1})" if self.upto else "")


def _min_period(pattern: Runs, period: int) -> int:
    """The smallest period of a pattern that repeats every ``period`` sizes (runs within [0, period))."""
    if not pattern or pattern == ((0, period),):
        return 1
    n = len(pattern) - (1 if len(pattern) > 1 and pattern[0][0] == 0 and pattern[-1][1] == period else 0)
    for k in sorted((k for k in range(1, n + 1) if n % k == 0 and period % k == 0), reverse=True):
        if k == 1 or _rotate(pattern, period // k, period) == pattern:  # k copies of one shorter pattern
            return period // k
    return period

