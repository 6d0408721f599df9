"""One axis: the guards in one symbol, their truth found piece by piece over the stretch that decides
them, and the classes they split the axis into (steps 2 of the package doc); the symbolic work budget."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from math import floor, lcm
from typing import Any

from archc.analyze.symbolic.runs import (
    AxisSet,
    Point,
    Runs,
    _and,
    _clip,
    _in,
    _merge,
    _min_period,
    _not,
    _rotate,
    _shift,
)
from archc.ir.algebra import Expr, Guard, piece

_SCAN = 4096  # sizes examined when a guard is not quasi-affine (e.g. H * H): nothing is claimed past it
_WINDOW = 8  # members of a class tried when looking for a size with a given truth combination

class _OverBudget(Exception):
    """The symbolic work went past its budget."""


@dataclass
class _Work:
    limit: int
    used: int = 0
    node: str = ""  # whose guard is being solved, or where a size is being explored

    def spend(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise _OverBudget



def _axis_set(runs: Runs, ax: _Axis, work: _Work) -> AxisSet:
    """Runs over the stretch [1, ax.end) that repeat with ``ax.period`` from ``ax.settle`` on, as
    simply as they are: the shortest period, and the earliest size from which it holds."""
    if ax.upto:
        return AxisSet(runs, ax.end, upto=ax.end)
    pattern = _shift(_clip(runs, ax.settle, ax.settle + ax.period), -ax.settle)
    q = _min_period(pattern, ax.period)
    pat = _clip(pattern, 0, q)
    if not pat:  # false from settle on: back to the end of the last run before it
        start = max([b for a, b in runs if b <= ax.settle], default=1)
    elif pat == ((0, q),):  # true from settle on: back to the start of the run holding it
        start = next(a for a, b in runs if a <= ax.settle < b)
    else:  # walk back one period at a time (each period matched holds a run boundary already paid for)
        x = ax.settle
        while x - q >= 1 and _shift(_clip(runs, x - q, x), q - x) == pat:
            work.spend(1)
            x -= q
        lo = max(1, x - q)
        actual, expect = _clip(runs, lo, x), _clip(_shift(pat, x - q), lo, x)
        diff = _merge([*_and(actual, _not(expect, lo, x)), *_and(expect, _not(actual, lo, x))])
        start = diff[-1][1] if diff else lo
    return AxisSet(_clip(runs, 1, start), start, q, _rotate(pat, ax.settle % q, q))



# ---- one axis: guards in one symbol, their truth piece by piece, classes ----

@dataclass(frozen=True)
class _Profile:
    """For sizes >= ``start``: e(H + period) = e(H) + slope·period, and
    slope·H + lo <= e(H) <= slope·H + hi."""

    period: int
    slope: Fraction
    lo: Fraction
    hi: Fraction
    start: int


def _scale(p: _Profile, c: int) -> _Profile:
    lo, hi = p.lo * c, p.hi * c
    return _Profile(p.period, p.slope * c, min(lo, hi), max(lo, hi), p.start)


def _add(a: _Profile, b: _Profile) -> _Profile:
    return _Profile(lcm(a.period, b.period), a.slope + b.slope, a.lo + b.lo, a.hi + b.hi, max(a.start, b.start))


def _atom_profile(atom: Any, s: str) -> _Profile | None:
    if atom.kind == "sym":
        return _Profile(1, Fraction(1), Fraction(0), Fraction(0), 1) if atom.name == s else None
    parts = [_profile(a, s) for a in atom.args]
    if any(p is None for p in parts):
        return None
    if atom.kind == "floor":
        p, d = parts[0], atom.d
        assert p is not None
        return _Profile(p.period * d, p.slope / d, (p.lo - d + 1) / d, p.hi / d, p.start)
    return _extreme([p for p in parts if p is not None], atom.kind == "max")


def _extreme(parts: list[_Profile], biggest: bool) -> _Profile:
    """max/min of profiles: past the crossings the steepest (flattest) one wins outright."""
    pick = max if biggest else min
    slope = pick(p.slope for p in parts)
    top = [p for p in parts if p.slope == slope]
    start = max(p.start for p in parts)
    for p in parts:
        if p.slope != slope:
            for t in top:  # past this size t's bound beats p's
                gap = (p.hi - t.lo) / (t.slope - p.slope) if biggest else (t.hi - p.lo) / (p.slope - t.slope)
                start = max(start, floor(gap) + 1)
    period = lcm(*(p.period for p in top))
    return _Profile(period, slope, pick(p.lo for p in top) if not biggest else max(p.lo for p in top),
                    max(p.hi for p in top) if biggest else min(p.hi for p in top), start)


def _profile(e: Expr | int, s: str) -> _Profile | None:
    if isinstance(e, int):
        return _Profile(1, Fraction(0), Fraction(e), Fraction(e), 1)
    total = _Profile(1, Fraction(0), Fraction(e.const), Fraction(e.const), 1)
    for m, c in e.terms.items():
        if not m:
            continue
        if len(m) > 1:
            return None
        p = _atom_profile(m[0], s)
        if p is None:
            return None
        total = _add(total, _scale(p, c))
    return total


def _settles(p: _Profile) -> tuple[int, int]:
    """(size from which the guard's truth is constant or periodic, its period there)."""
    if p.slope > 0:
        return max(p.start, floor(-p.lo / p.slope) + 1), 1
    if p.slope < 0:
        return max(p.start, floor(p.hi / -p.slope) + 1), 1
    return p.start, p.period


def _piece_truth(v: int, slope: int, rel: str, x: int, stop: int) -> list[tuple[int, int]]:
    """Where ``v + slope * (t - x) REL 0`` holds for t in [x, stop)."""
    if rel == "!=":
        return list(_not(tuple(_piece_truth(v, slope, "==", x, stop)), x, stop))
    if slope == 0:
        return [(x, stop)] if (v == 0 if rel == "==" else v > 0 if rel == ">" else v >= 0) else []
    if rel == "==":
        t = x + (-v) // slope
        return [(t, t + 1)] if (-v) % slope == 0 and x <= t < stop else []
    need = 1 if rel == ">" else 0
    if slope > 0:
        t = x + max(0, -(-(need - v) // slope))
        return [(t, stop)] if t < stop else []
    return [(x, min(stop, x + (v - need) // -slope + 1))] if v >= need else []


def _truth(g: Guard, s: str, env: Point, end: int, work: _Work) -> Runs:
    """The sizes in [1, end) of axis ``s`` where ``g`` holds, found one affine piece at a time."""
    out: list[tuple[int, int]] = []
    x = 1
    work.node = g.node
    while x < end:
        work.spend(1)
        v, slope, nxt = piece(g.expr, s, x, env, {})
        stop = end if nxt is None else min(nxt, end)
        out += _piece_truth(v, slope, g.rel, x, stop)
        x = stop
    return _merge(out)


def _key(g: Guard) -> tuple[str, str]:
    return g.expr.key, g.rel


@dataclass
class _Class:
    """Sizes of one axis on which every guard of the axis has the same truth (``sig``: those that hold)."""

    sig: frozenset[tuple[str, str]]
    runs: Runs  # its sizes within the stretch
    infinite: bool  # it repeats past the stretch

    @property
    def rep(self) -> int:
        return self.runs[0][0]

    @property
    def hi(self) -> int | None:
        return None if self.infinite else self.runs[-1][1] - 1

    def window(self, period: int, hint: int) -> list[int]:
        """A few sizes of the class: its first ones, its last in the stretch, and some past it."""
        first = [v for a, b in self.runs for v in range(a, min(b, a + _WINDOW))][:_WINDOW]
        last = self.runs[-1][1] - 1
        far = [last + k * period for k in (1, 2, 10, 100)] if self.infinite else []
        near_hint = [hint] if _in(self.runs, hint) or (self.infinite and hint > last) else []
        return list(dict.fromkeys(first + [last] + far + near_hint))


@dataclass
class _Axis:
    """One symbol's guards, their truth over the stretch [1, end) that decides them, and its classes."""

    s: str
    conds: dict[tuple[str, str], Guard] = field(default_factory=dict)
    settle: int = 1
    period: int = 1
    end: int = 2
    upto: bool = False
    truth: dict[tuple[str, str], Runs] = field(default_factory=dict)
    classes: list[_Class] = field(default_factory=list)
    dirty: bool = True

    def add(self, g: Guard) -> None:
        if _key(g) not in self.conds:
            self.conds[_key(g)] = g
            self.dirty = True

    def refresh(self, env: Point, work: _Work) -> None:
        if not self.dirty:
            return
        self.dirty = False
        settle, period, upto = 1, 1, False
        for g in self.conds.values():
            p = _profile(g.expr, self.s)
            if p is None:
                upto = True
                break
            st, per = _settles(p)
            settle, period = max(settle, st), lcm(period, per)
        end = _SCAN + 1 if upto else settle + period
        if (settle, period, end, upto) != (self.settle, self.period, self.end, self.upto):
            self.settle, self.period, self.end, self.upto = settle, period, end, upto
            self.truth.clear()
        for k, g in self.conds.items():
            if k not in self.truth:
                self.truth[k] = _truth(g, self.s, env, self.end, work)
        cuts = sorted({1, self.end, *(x for runs in self.truth.values() for run in runs for x in run)})
        found: dict[frozenset[tuple[str, str]], list[tuple[int, int]]] = {}
        for lo, hi in zip(cuts, cuts[1:]):
            work.spend(1 + len(self.truth) // 8)
            found.setdefault(frozenset(k for k, runs in self.truth.items() if _in(runs, lo)), []).append((lo, hi))
        self.classes = [_Class(sig, _merge(runs), not upto and runs[-1][1] > settle) for sig, runs in found.items()]
        self.classes.sort(key=lambda c: c.rep)

    def holds(self, keys: Iterable[tuple[str, str]]) -> Runs:
        """Where every guard of ``keys`` holds, within the stretch."""
        runs: Runs = ((1, self.end),)
        for k in keys:
            runs = _and(runs, self.truth[k])
        return runs

