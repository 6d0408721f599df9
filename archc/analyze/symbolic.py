"""Symbolic input sizes (`--input 3xHxW`): every node's shape, and the model's parameters, MACs,
activations and memory, as exact expressions in H and W, with exactly the sizes for which they hold.

1. One analysis runs on symbolic sizes (`analyze.algebra`) at a hint size (224 unless that fails):
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
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from fractions import Fraction
from itertools import product
from math import floor, lcm
from typing import Any

from archc import blocks as library
from archc.analyze.algebra import (
    Expr,
    Guard,
    Guards,
    NotSymbolic,
    bounds,
    condition,
    guarding,
    piece,
    substitute,
    symbol,
    value_at,
)
from archc.analyze.shapes import RF, Analysis, NodeInfo, analyze, node_info
from archc.analyze.shapes import _receptive as receptive  # same package: one receptive-field rule
from archc.errors import ArchcError, ShapeError
from archc.ir import Graph, Node
from archc.resolve import SYMBOL_PLACEHOLDER, Limits

__all__ = ["SymbolicResult", "AxisSet", "solve", "sweep", "at_sizes", "STEPS_PER_LIMIT_STEP"]

HINTS = (224, 256, 320, 384, 512, 518, 572, 299, 128, 64, 32, 1024)  # tried in turn until one is valid
STEPS_PER_LIMIT_STEP = 2  # symbolic work allowed per step of Limits.max_steps (200,000 by default, ~1 s)
_NODE_STEPS = 25  # a node analysed costs this many steps (a piece of a guard's truth, one)
_SAMPLE = 512  # sizes a rule with no exact form is sampled at
_SCAN = 4096  # sizes examined when a guard is not quasi-affine (e.g. H * H): nothing is claimed past it
_HINT_WORK = 60_000  # node analyses spent looking for a hint size that works
_MAX_JOINT = 6  # undecided guards tying symbols whose truth combinations are enumerated per class combination
_WINDOW = 8  # members of a class tried when looking for a size with a given truth combination
_MAX_ITEMS = 16  # runs printed in one set of sizes
_MAX_REGIONS = 6  # regions printed (each a set of sizes per axis)
_RELAXED = {"max_params": 10**30, "max_activation": 10**30}  # limits apply at the hint, not to other sizes

Runs = tuple[tuple[int, int], ...]  # disjoint, ordered [a, b) runs of sizes
Point = dict[str, int]


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


# ---- paths ----

@dataclass
class _Path:
    """Guards, and what the graph does wherever they all hold: ``analysis`` (formulas) or ``error``."""

    guards: tuple[Guard, ...]
    analysis: Analysis | None = None
    error: tuple[str, str] | None = None  # (node, message)
    pins: dict[str, int] = field(default_factory=dict)  # symbols fixed to one size (literal in the analysis)
    _split: tuple[dict[str, list[Guard]], list[Guard]] | None = field(default=None, repr=False)
    _needs: list[tuple[str, tuple[str, str]]] | None = field(default=None, repr=False)

    def holds(self, sizes: Mapping[str, int], memo: dict[str, int] | None = None) -> bool:
        memo = {} if memo is None else memo
        return all(g.holds(sizes, memo) for g in self.guards)

    def split(self) -> tuple[dict[str, list[Guard]], list[Guard]]:
        """Its guards by symbol (one symbol each), and those tying several."""
        if self._split is None:
            single: dict[str, list[Guard]] = {}
            joint = []
            for g in self.guards:
                syms = g.expr.symbols
                if len(syms) == 1:
                    single.setdefault(next(iter(syms)), []).append(g)
                elif syms:
                    joint.append(g)
            self._split = single, joint
        return self._split

    def needs(self) -> list[tuple[str, tuple[str, str]]]:
        """(symbol, guard key) for each of its guards in one symbol."""
        if self._needs is None:
            self._needs = [(s, _key(g)) for s, gs in self.split()[0].items() for g in gs]
        return self._needs


def _decide(g: Guard, box: Mapping[str, tuple[int, int | None]]) -> bool | None:
    """Whether ``g`` holds everywhere (True), nowhere (False) in ``box``, or None: not known."""
    lo, hi = bounds(g.expr, box)
    if g.rel in (">=", ">"):
        need = 1 if g.rel == ">" else 0
        return True if lo is not None and lo >= need else False if hi is not None and hi < need else None
    zero = lo == 0 and hi == 0
    apart = (lo is not None and lo > 0) or (hi is not None and hi < 0)
    if g.rel == "==":
        return True if zero else False if apart else None
    return True if apart else False if zero else None


def _variable(g: Guard) -> tuple[tuple[str, str], bool, Guard]:
    """``g`` as (a truth variable shared with its negation, whether g is it or its negation, the variable)."""
    if g.rel in ("==", "!="):
        base = condition(g.expr, "==", g.node)
        return _key(base), g.rel == "==", base
    neg = condition(-g.expr, ">", g.node)  # not (e >= 0)
    return (_key(g), True, g) if g.expr.key <= neg.expr.key else (_key(neg), False, neg)


# ---- the result ----

@dataclass
class SymbolicResult:
    symbols: dict[int, str]  # input axis -> symbol
    hint: dict[str, int]  # the sizes that answered the guards (and where concrete figures are taken)
    shapes: dict[str, tuple[str, ...]]  # node (and NAME[k] output) -> output shape as expressions
    constraint: str  # where the formulas hold
    breaks: str  # what fails just below the smallest valid size
    figures: dict[str, Any] = field(default_factory=dict)  # params, macs, ... as Expr or int
    guards: list[Guard] = field(default_factory=list)  # the formulas' guards at the hint
    axes: dict[str, AxisSet] = field(default_factory=dict)  # the formulas' sizes per axis (their first region)
    method: str = "algebra"  # "sweep" (see `note`), or "none" when no hint size works
    note: str = ""
    sampled: tuple[int, ...] = ()  # the sweep's valid sizes (method "sweep"), the hint sizes tried ("none")
    analysis: Analysis | None = None  # the analysis on symbolic sizes (method "algebra")
    paths: list[tuple[str, _Path]] = field(default_factory=list)  # ("formulas" | "other" | "invalid", path)
    complete: bool = True  # every size is covered by a path (else `status` may say "unknown")
    steps: int = 0  # symbolic work counted

    def status(self, sizes: dict[str, int]) -> str:
        """"formulas" (they hold here), "other" (valid, with other formulas), "invalid", or "unknown"."""
        if self.method == "none":  # the hint sizes tried fail; nothing is known of the others
            one = len(set(sizes.values())) == 1 and next(iter(sizes.values()))
            return "invalid" if one in self.sampled else "unknown"
        if self.method == "sweep":
            one = len(set(sizes.values())) == 1 and next(iter(sizes.values()))
            return "formulas" if one in self.sampled else "unknown"
        memo: dict[str, int] = {}
        return next((kind for kind, p in self.paths if p.holds(sizes, memo)), "unknown")

    def valid(self, sizes: dict[str, int]) -> bool:
        """Whether the formulas hold at these sizes."""
        return self.status(sizes) == "formulas"

    def accepts(self, sizes: dict[str, int]) -> bool | None:
        """Whether these sizes are valid (with these formulas or others); None: not known."""
        kind = self.status(sizes)
        return None if kind == "unknown" else kind != "invalid"

    def formula(self, name: str) -> str:
        v = self.figures.get(name)
        return "?" if v is None else str(v)

    def at(self, name: str, sizes: dict[str, int]) -> int:
        v = self.figures[name]
        return int(value_at(v, sizes))


# ---- the analysis ----

def solve(graph: Graph, symbols: dict[int, str], limits: Limits | None = None) -> SymbolicResult:
    """Analyse ``graph`` with its input's ``symbols`` axes symbolic (see the module doc)."""
    limits = limits or Limits()
    name, shape = graph.inputs[0]
    names = list(dict.fromkeys(symbols.values()))
    dims: tuple[Any, ...] = tuple(symbol(symbols[i]) if i in symbols else d for i, d in enumerate(shape))
    sym_graph = replace(graph, inputs=((name, dims),))
    first: Analysis | None = None
    tried: list[int] = []
    for size in HINTS[:max(2, _HINT_WORK // max(1, len(graph.nodes)))]:  # bounded work on failing specs
        tried.append(size)
        guards = Guards({s: size for s in names})
        guards.fallback = _sampler(guards)
        try:
            with guarding(guards):
                a = analyze(sym_graph, limits, guards)
        except NotSymbolic as e:
            return replace(sweep(graph, symbols), note=f"[{guards.node}] {e}: sizes fitted to a sweep of 1..512")
        if not a.errors:
            return _Solver(graph, symbols, limits, a, guards).result()
        first = first or a
    assert first is not None
    err = first.errors[0]
    return SymbolicResult(symbols, {s: HINTS[0] for s in names}, {}, f"none of the sizes {', '.join(map(str, tried))} "
                          "works", f"at {HINTS[0]}: [{err.node}] {err.message}", method="none", sampled=tuple(tried),
                          complete=False)


class _Solver:
    """The paths of one spec: the formulas' (found at the hint), and those found exploring the
    class combinations that no known path covers (module doc, steps 2-4)."""

    def __init__(self, graph: Graph, symbols: dict[int, str], limits: Limits, a: Analysis, guards: Guards):
        self.graph, self.symbols, self.limits = graph, symbols, limits
        self.relaxed = replace(limits, **_RELAXED)
        self.names = list(dict.fromkeys(symbols.values()))
        self.hint: Point = dict(guards.hint)
        self.main = _Path(tuple(guards.items), analysis=a)
        self.notes = list(guards.notes)
        self.users = guards.users  # guard -> the nodes that rely on it
        self.sampled = bool(guards.notes)  # a node's sizes were fitted (`_sampler`)
        self.order = {n.path: k for k, n in enumerate(graph.nodes)}
        self.work = _Work(STEPS_PER_LIMIT_STEP * limits.max_steps)
        self.axes = {s: _Axis(s) for s in self.names}
        self.paths: list[_Path] = [self.main]
        self.unchecked: list[str] = []  # class combinations whose truth combinations were not all found

    # -- the result --
    def result(self) -> SymbolicResult:
        a = self.main.analysis
        assert a is not None
        stand_in = self.graph.meta.get("sized_by_stand_in")
        if stand_in is not None:  # the expansion itself read a symbolic size: the figures hold at the stand-in only
            at = {s: SYMBOL_PLACEHOLDER for s in self.names}
            why = (f"`${{in_shape}}` reads a symbolic size, which archc resolves at {SYMBOL_PLACEHOLDER}: the "
                   "formulas hold there only (give concrete sizes with --input)")
            return self._pinned(a, at, why, stand_in[0])
        try:
            self._add(self.main)
            self._refresh()
            main_sets = {s: _axis_set(self._holds(self.main, s), self.axes[s], self.work) for s in self.names}
        except _OverBudget:
            return self._pinned(a, self.hint, f"solving the valid sizes takes more than {self.work.limit:,} steps: "
                                "the formulas are claimed at the hint only (raise --max-steps, Limits.max_steps, "
                                f"which allows {STEPS_PER_LIMIT_STEP} symbolic steps per step)", self.work.node)
        complete = not self.sampled  # sizes fitted over 1..512 are no path to explore from
        try:
            if complete:
                self._explore_all()
        except _OverBudget:
            complete = False
            self.notes.append(f"[{self.work.node}] sizes outside these were not all checked: exploring them takes "
                              f"more than {self.work.limit:,} steps (raise --max-steps, Limits.max_steps)")
        kinds = self._kinds()
        same = [p for k, p in kinds if k == "formulas"]
        if complete:
            try:
                regions = self._regions(same)
                others = self._regions([p for k, p in kinds if k == "other"])
            except _OverBudget:
                complete, regions, others = False, [(main_sets, self._joint(self.main))], []
        else:
            regions, others = [(main_sets, self._joint(self.main))], []
        if self.unchecked:
            complete = False
            self.notes.append("guards that tie the sizes were not checked at every combination: "
                              + "; ".join(self.unchecked[:3]))
        if any(ax.upto for ax in self.axes.values()):  # classes past _SCAN are not known
            complete = False
        if others:
            self.notes.append(f"also valid, with other formulas: {_regions_text(others)}")
        return self._assemble(a, regions, kinds, complete)

    def _assemble(self, a: Analysis, regions: list[tuple[dict[str, AxisSet], tuple[str, ...]]],
                  kinds: list[tuple[str, _Path]], complete: bool) -> SymbolicResult:
        from archc.analyze.memory import memory

        shapes = {path: tuple(str(d) for d in shape) for path, shape in a.shapes.items()}
        mem = memory(a)
        figures = {"params": a.params, "macs": a.macs, "other_ops": a.other_ops,
                   "activation_elements": a.activation_elements,
                   "inference_peak_activation_bytes": mem["inference_peak_activation_bytes"],
                   "training_activation_bytes": mem["training_activation_bytes"]}
        axes = regions[0][0] if regions else {}
        breaks = "; ".join(filter(None, (self._breaks(s, axes[s], kinds) for s in self.names if s in axes)))
        return SymbolicResult(self.symbols, dict(self.hint), shapes, _regions_text(regions), breaks, figures,
                              list(self.main.guards), axes, note="; ".join(self.notes), analysis=a, paths=kinds,
                              complete=complete, steps=self.work.used)

    def _pinned(self, a: Analysis, at: Point, why: str, node: str = "") -> SymbolicResult:
        """The formulas claimed at the sizes ``at`` only (where they hold there), with why."""
        pins = tuple(condition(symbol(s) - v, "==") for s, v in at.items())
        ok = self.main.holds(at)
        path = _Path(pins, analysis=a, pins=dict(at))
        sets = {s: AxisSet(((v, v + 1),), v + 1) for s, v in at.items()}
        note = "; ".join([f"[{node}] {why}" if node else why, *self.notes])
        result = replace(self._assemble(a, [(sets, ())], [("formulas", path)] if ok else [], False), note=note)
        if not ok:
            result.constraint = f"none claimed ({_regions_text([(sets, ())])} only, where the formulas fail)"
        return result

    def _kinds(self) -> list[tuple[str, _Path]]:
        """Every path, with what it stands for; the formulas' paths first."""
        def kind(p: _Path) -> str:
            return "invalid" if p.analysis is None else "formulas" if self._same_formulas(p) else "other"
        return sorted(((kind(p), p) for p in self.paths), key=lambda kp: ("formulas", "other", "invalid").index(kp[0]))

    def _same_formulas(self, p: _Path) -> bool:
        """Whether a path's formulas are the main ones (with its pinned sizes put in), as expressions."""
        a, b = self.main.analysis, p.analysis
        assert a is not None and b is not None
        if a is b:
            return True
        if a.shapes.keys() != b.shapes.keys() or a.info.keys() != b.info.keys():
            return False

        def same(x: Any, y: Any) -> bool:
            return _same(substitute(x, p.pins), y)
        return all(len(a.shapes[k]) == len(b.shapes[k]) and all(map(same, a.shapes[k], b.shapes[k]))
                   for k in a.shapes) and all(
            same(x.params, y.params) and same(x.macs, y.macs) and same(x.other_ops, y.other_ops)
            for x, y in zip(a.info.values(), b.info.values()))

    def _breaks(self, s: str, axis: AxisSet, kinds: list[tuple[str, _Path]]) -> str:
        low = axis.smallest()
        if low is None or low <= 1:
            return ""
        at = {**self.hint, s: low - 1}
        memo: dict[str, int] = {}
        p = next((p for k, p in kinds if p.holds(at, memo)), None)
        if p is None:  # not explored (sizes fitted): the node whose guard fails there, at concrete sizes
            a = self.main.analysis
            g = next((g for g in self.main.guards if not g.holds(at, memo)), None)
            if a is None or g is None or g.node not in self.order:
                return ""
            node = self.graph.node(g.node)
            ins = [a.shapes[src] for src in node.inputs]
            p = _Path((), error=(g.node, _message(node, ins, at, ShapeError(f"{g.text()} fails"))))
        return "" if p.error is None else f"at {s} = {low - 1}: [{p.error[0]}] {p.error[1]}"

    # -- classes --
    def _add(self, p: _Path) -> None:
        single, _ = p.split()
        for s, gs in single.items():
            for g in gs:
                self.axes[s].add(g)

    def _refresh(self) -> None:
        for ax in self.axes.values():
            ax.refresh(self.hint, self.work)

    def _holds(self, p: _Path, s: str) -> Runs:
        single, _ = p.split()
        return self.axes[s].holds(_key(g) for g in single.get(s, []))

    def _joint(self, p: _Path) -> tuple[str, ...]:
        return tuple(dict.fromkeys(g.text() for g in p.split()[1]))

    def _regions(self, paths: list[_Path]) -> list[tuple[dict[str, AxisSet], tuple[str, ...]]]:
        """The paths' sizes as few regions as possible (merged where they differ on one axis only)."""
        raw: list[tuple[dict[str, Runs], tuple[str, ...]]] = []
        for p in paths:
            runs = {s: self._holds(p, s) for s in self.names}
            if all(runs.values()):
                raw.append((runs, self._joint(p)))
        while (pair := _mergeable(raw, self.names)) is not None:
            i, j, union = pair
            raw[i:j + 1] = [(union, raw[i][1]), *raw[i + 1:j]]
        return [({s: _axis_set(r[s], self.axes[s], self.work) for s in self.names}, j) for r, j in raw]

    # -- exploring the class combinations --
    def _explore_all(self) -> None:
        while True:
            self._refresh()
            todo: list[Point] = []
            self.unchecked = []
            needs = [(p.needs(), p.split()[1]) for p in self.paths]
            for combo in product(*(self.axes[s].classes for s in self.names)):
                self.work.spend(1 + len(self.paths) // 4)
                pt = self._uncovered(dict(zip(self.names, combo)), needs)
                if pt is not None:
                    todo.append(pt)
            if not todo:
                return
            known = len(self.paths)
            for pt in todo:
                memo: dict[str, int] = {}
                if not any(p.holds(pt, memo) for p in self.paths[known:]):  # one found in this round may cover it
                    p = self._explore(pt)
                    if not p.holds(pt):
                        raise AssertionError(f"a path explored at {pt} does not hold there")
                    self.paths.append(p)
                    self._add(p)

    def _uncovered(self, classes: dict[str, _Class],
                   needs: list[tuple[list[tuple[str, tuple[str, str]]], list[Guard]]]) -> Point | None:
        """A size of this class combination that no path covers yet (None: all covered, or not found)."""
        box = {s: (c.rep, c.hi) for s, c in classes.items()}
        wants: list[dict[tuple[str, str], bool]] = []
        variables: dict[tuple[str, str], Guard] = {}
        for single, joint in needs:
            if not all(k in classes[s].sig for s, k in single):
                continue
            want: dict[tuple[str, str], bool] = {}
            for g in joint:
                decided = _decide(g, box)
                if decided is False:
                    break
                if decided is None:
                    k, polarity, var = _variable(g)
                    variables[k] = var
                    if want.setdefault(k, polarity) != polarity:
                        break
            else:
                if not want:
                    return None
                wants.append(want)
        rep = {s: c.rep for s, c in classes.items()}
        if not wants:
            return rep
        keys = sorted(variables)
        if len(keys) > _MAX_JOINT:
            self.unchecked.append(f"{len(keys)} guards tying the sizes near {rep}")
            return None
        for values in product((True, False), repeat=len(keys)):
            assign = dict(zip(keys, values))
            if any(all(assign[k] == v for k, v in w.items()) for w in wants):
                continue
            pt = self._realise(classes, [(variables[k], v) for k, v in assign.items()])
            if pt is not None:
                return pt
            self.unchecked.append(" and ".join(f"{'' if v else 'not '}{variables[k].text()}"
                                               for k, v in assign.items()) + f" near {rep}")
        return None

    def _realise(self, classes: dict[str, _Class], want: list[tuple[Guard, bool]]) -> Point | None:
        """A size among the first few of each class where each guard's truth is as wanted."""
        windows = [classes[s].window(self.axes[s].period, self.hint[s]) for s in self.names]
        for values in product(*windows):
            self.work.spend(1)
            pt = dict(zip(self.names, values))
            memo: dict[str, int] = {}
            if all(g.holds(pt, memo) == v for g, v in want):
                return pt
        return None

    def _explore(self, pt: Point) -> _Path:
        """A path holding at ``pt``. The nodes that rely on a guard failing there are re-run there in
        order: the first that fails gives a path ending in its error; those that take another branch
        with the same outputs (a rule's special case that agrees) keep the formulas. Otherwise the
        whole graph is analysed there."""
        a = self.main.analysis
        assert a is not None
        memo: dict[str, int] = {}
        failing = {_key(g) for g in self.main.guards if not g.holds(pt, memo)}
        kept = [g for g in self.main.guards if _key(g) not in failing]
        nodes = {n for k in failing for n in self.users.get(k, ())}
        replaced: list[Guard] = []
        for path in sorted(nodes & self.order.keys(), key=self.order.__getitem__):
            self.work.node = path
            rerun = self._rerun(a, path, pt)
            if rerun is None:
                break
            guards, outcome = rerun
            if isinstance(outcome, str):
                k = self.order[path]
                prefix = [g for g in kept if self.order.get(g.node, -1) < k]
                return _Path((*prefix, *replaced, *guards), error=(path, outcome))
            if not _same_info(outcome, a.info[path]):
                break
            replaced += guards
        else:
            if nodes <= self.order.keys():
                return _Path((*kept, *replaced), analysis=a)
        return self._whole(pt)

    def _rerun(self, a: Analysis, path: str, pt: Point, pins: Mapping[str, int] = {}
               ) -> tuple[list[Guard], NodeInfo | str] | None:
        """Node ``path`` re-run at ``pt`` on its symbolic inputs in ``a`` (valid where the guards recorded
        before it hold): the guards it records there, and its info, or its error's message (None: its
        rule has no exact form). Where inputs broadcast (two or more of them), sizes equal to 1 there
        are made literal (only a literal 1 broadcasts in the rules), and guards say which sizes are 1."""
        node = self.graph.node(path)
        if any(src not in a.shapes for src in node.inputs):
            return None
        splits: list[Guard] = []
        ins = []
        for shape in (a.shapes[src] for src in node.inputs):
            dims = []
            for d in shape:
                if isinstance(d, Expr) and len(node.inputs) > 1:
                    one = d.value(pt) == 1
                    splits.append(condition(d - 1, "==" if one else "!=", path))
                    d = 1 if one else d
                dims.append(d)
            ins.append(tuple(dims))
        local = Guards({s: v for s, v in pt.items() if s not in pins}, node=path)
        self.work.spend(_NODE_STEPS)
        with guarding(local):
            try:
                info = node_info(node, tuple(ins))
                if any(d < 1 for d in info.shape):
                    return [*splits, *local.items], _message(node, ins, pt, ShapeError(f"output shape {info.shape} "
                                                                                       "is empty"))
            except NotSymbolic:
                return None
            except ArchcError as e:
                return [*splits, *local.items], _message(node, ins, pt, e)
        return [*splits, *local.items], info

    def _raising(self, a: Analysis, guards: tuple[Guard, ...], path: str, pt: Point,
                 pins: dict[str, int]) -> _Path | None:
        """A path ending in node ``path``'s error at ``pt`` (None: it does not fail there), from an
        analysis at ``pt`` whose ``guards`` all hold there."""
        rerun = self._rerun(a, path, pt, pins)
        if rerun is None or not isinstance(rerun[1], str):
            return None
        k = self.order[path]
        prefix = [g for g in guards if self.order.get(g.node, -1) < k]
        return _Path((*_pin_guards(pins), *prefix, *rerun[0]), error=(path, rerun[1]), pins=dict(pins))

    def _whole(self, pt: Point) -> _Path:
        """The graph analysed at ``pt`` concretely, and symbolically with as few sizes pinned as agree."""
        name, shape = self.graph.inputs[0]
        concrete = analyze(replace(self.graph, inputs=((name, self._dims(pt, pt)),)), self.relaxed)
        self.work.spend(_NODE_STEPS * len(self.graph.nodes))
        choices = [(), *((s,) for s in self.names)] if len(self.names) > 1 else [()]
        for pinned in choices:
            pins = {s: pt[s] for s in pinned}
            a, guards = self._analyse(pt, pins)
            if a is None or guards is None:
                continue
            if not a.errors:
                if not concrete.errors and _agrees(a, concrete, pt):
                    self.notes.extend(n for n in guards.notes if n not in self.notes)
                    return _Path((*_pin_guards(pins), *guards.items), analysis=a, pins=pins)
                continue
            if concrete.errors:
                for e in a.errors:
                    p = self._raising(a, tuple(guards.items), e.node, pt, pins) if e.node in self.order else None
                    if p is not None:
                        return p
        pins = dict(pt)  # this size alone
        err = concrete.errors[0] if concrete.errors else None
        return _Path(tuple(_pin_guards(pins)), analysis=None if err else concrete, pins=pins,
                     error=(err.node or "", err.message) if err else None)

    def _dims(self, pt: Point, pins: Mapping[str, int]) -> tuple[Any, ...]:
        _, shape = self.graph.inputs[0]
        return tuple(d if i not in self.symbols else pins[self.symbols[i]] if self.symbols[i] in pins
                     else symbol(self.symbols[i]) for i, d in enumerate(shape))

    def _analyse(self, pt: Point, pins: dict[str, int]) -> tuple[Analysis | None, Guards | None]:
        name, _ = self.graph.inputs[0]
        guards = Guards({s: v for s, v in pt.items() if s not in pins})
        guards.fallback = _sampler(guards)
        self.work.spend(_NODE_STEPS * len(self.graph.nodes))
        graph = replace(self.graph, inputs=((name, self._dims(pt, pins)),))
        try:
            with guarding(guards):
                return analyze(graph, self.relaxed, guards), guards
        except NotSymbolic:
            return None, None


def _mergeable(raw: list[tuple[dict[str, Runs], tuple[str, ...]]], names: list[str]
               ) -> tuple[int, int, dict[str, Runs]] | None:
    """Two regions with the same joint guards that differ on one axis at most, and their union."""
    for i, (ri, ji) in enumerate(raw):
        for j in range(i + 1, len(raw)):
            rj, jj = raw[j]
            differ = [s for s in names if ri[s] != rj[s]]
            if ji == jj and len(differ) <= 1:
                return i, j, {**ri, **{s: _merge([*ri[s], *rj[s]]) for s in differ}}
    return None


def _message(node: Node, ins: list[tuple[Any, ...]], pt: Point, err: ArchcError) -> str:
    """The error a node gives at concrete sizes (its sizes read as numbers), else the symbolic one."""
    try:
        info = node_info(node, _at(tuple(ins), pt))
    except ArchcError as e:
        return e.message
    return f"output shape {info.shape} is empty" if any(d < 1 for d in info.shape) else err.message


def _same_info(x: NodeInfo, y: NodeInfo) -> bool:
    """Whether two infos of one node have the same shapes and costs, as expressions."""
    def flat(i: NodeInfo) -> list[Any]:
        return [i.params, i.macs, i.other_ops, len(i.shape), *i.shape, len(i.outputs),
                *(d for o in i.outputs for d in (len(o), *o))]
    fx, fy = flat(x), flat(y)
    return len(fx) == len(fy) and all(map(_same, fx, fy))


def _same(x: Any, y: Any) -> bool:
    """Equal as expressions (their canonical text), or as numbers; never a guard."""
    if isinstance(x, Expr) or isinstance(y, Expr):
        return isinstance(x, Expr) and isinstance(y, Expr) and x.key == y.key
    return bool(x == y)


def _pin_guards(pins: Mapping[str, int]) -> list[Guard]:
    return [condition(symbol(s) - v, "==") for s, v in pins.items()]


def _regions_text(regions: list[tuple[dict[str, AxisSet], tuple[str, ...]]]) -> str:
    if not regions:
        return "no size works"
    texts = [", ".join([axes[s].text(s) for s in axes] + list(joint)) for axes, joint in regions[:_MAX_REGIONS]]
    more = [f"… ({len(regions)} regions in all)"] if len(regions) > _MAX_REGIONS else []
    return texts[0] if len(texts) == 1 else " or ".join([f"({t})" for t in texts] + more)


def at_sizes(result: SymbolicResult, graph: Graph, sizes: dict[str, int]) -> Analysis:
    """The symbolic analysis evaluated at ``sizes`` (where ``result.valid``): what a concrete
    analysis there gives, receptive fields included, without a second pass over the rules."""
    assert result.analysis is not None
    memo: dict[str, int] = {}

    def at(x: Any) -> Any:
        return value_at(x, sizes, memo)

    def dims(shape: tuple[Any, ...]) -> tuple[int, ...]:
        return tuple(at(d) for d in shape)

    out = Analysis(graph, errors=list(result.analysis.errors))
    out.shapes = {k: dims(v) for k, v in result.analysis.shapes.items()}
    fields: dict[str, RF | None] = {name: RF(Fraction(1), Fraction(1)) for name, _ in graph.inputs}
    for path, info in result.analysis.info.items():
        node, ins, outs = info.node, tuple(dims(s) for s in info.in_shapes), tuple(dims(s) for s in info.outputs)
        rf = receptive(library.get(node.op), node, ins, dims(info.shape), [fields[s] for s in node.inputs])
        out.info[path] = NodeInfo(node, ins, dims(info.shape), at(info.params), at(info.macs), at(info.other_ops),
                                  rf, outs)
        fields.update({path: rf, **{f"{path}[{k}]": rf for k in range(len(outs))}})
    return out


def _sampler(guards: Guards) -> Callable[[Node, tuple[Any, ...], NotSymbolic], NodeInfo]:
    """For a node whose rule has no exact form: each output size fitted to ``m * ((S + a) // d)``
    over S = 1.._SAMPLE (the other sizes at the hint), valid from the smallest size that works."""
    def fallback(node: Node, ins: tuple[Any, ...], why: NotSymbolic) -> NodeInfo:
        block = library.get(node.op)
        fits: dict[tuple[int, int], Any] = {}
        for s in guards.hint:
            pts = _samples(block, node, ins, {**guards.hint}, s)
            if not pts or [v for v, _ in pts] != list(range(pts[0][0], _SAMPLE + 1)):
                raise why  # not valid on one stretch of sizes: leave it to the sweep
            if pts[0][0] > 1:
                _ = symbol(s) >= pts[0][0]  # records the guard, at this node
            for k, outs in enumerate(pts[0][1]):
                for i in range(len(outs)):
                    series = [(v, o[k][i]) for v, o in pts]
                    if len({x for _, x in series}) > 1:
                        if (k, i) in fits:
                            raise why  # depends on two sizes
                        fits[(k, i)] = _fit(series, s)
        if any(f is None for f in fits.values()):
            raise why
        first = block.out_shapes(node.args, _at(ins, guards.hint))
        outs = tuple(tuple(fits.get((k, i), d) for i, d in enumerate(o)) for k, o in enumerate(first))
        guards.notes.append(f"[{node.path}] {why}: its sizes are fitted to 1..{_SAMPLE} (exact there)")
        return NodeInfo(node, ins, outs[0], block.count_params(node.args, ins), block.macs(node.args, ins, outs[0]),
                        block.other_ops(node.args, ins, outs[0]), None, outs if block.outputs is not None else ())
    return fallback


def _at(ins: tuple[Any, ...], env: dict[str, int]) -> tuple[tuple[int, ...], ...]:
    """Shapes at concrete sizes."""
    return tuple(tuple(value_at(d, env) for d in shape) for shape in ins)


def _samples(block: Any, node: Node, ins: tuple[Any, ...], env: dict[str, int], s: str) -> list[tuple[int, Any]]:
    out = []
    for v in range(1, _SAMPLE + 1):
        env[s] = v
        with suppress(ShapeError):  # a size this rule refuses
            out.append((v, block.out_shapes(node.args, _at(ins, env))))
    return out


def _agrees(sym: Analysis, conc: Analysis, env: dict[str, int]) -> bool:
    """Whether every shape and cost of the symbolic analysis, evaluated at ``env``, is the concrete one."""
    def at(x: Any) -> Any:
        return value_at(x, env)

    return sym.shapes.keys() == conc.shapes.keys() and all(
        _at((sym.shapes[k],), env)[0] == conc.shapes[k] for k in sym.shapes) and all(
        (at(i.params), at(i.macs), at(i.other_ops)) == (c.params, c.macs, c.other_ops)
        for i, c in zip(sym.info.values(), conc.info.values()))


# ---- the fallback: a sweep of sizes, fitted ----

_DIVISORS = (1, 2, 3, 4, 8, 14, 16, 28, 32, 64)
_MULTIPLIERS = (1, 2, 4, 8, 16, 32)
def _fit(points: list[tuple[int, int]], name: str) -> Any:
    """``m * ((name + a) // d)`` (an Expr, or an int when constant) reproducing every point, or None."""
    values = {v for _, v in points}
    if len(values) == 1:
        return values.pop()
    x = symbol(name)
    for m in _MULTIPLIERS:
        for d in _DIVISORS:
            for a in range(-2 * d - 8, 2 * d + 8):
                if all(m * ((s + a) // d) == v for s, v in points):
                    return m * ((x + a) // d)
    return None


def _constraint(valid: list[int], lo: int, hi: int, names: str) -> str:
    if not valid:
        return f"no {names} in {lo}..{hi} works"
    if len(valid) == 1:
        return f"{names} must be exactly {valid[0]}"
    first = valid[0]
    for p in range(2, 65):
        if valid == [s for s in range(first, hi + 1) if (s - first) % p == 0]:
            return f"{names} >= {first} and {names} % {p} == {first % p}"
    if valid == list(range(first, hi + 1)):
        return f"{names} >= {first}"
    if valid == list(range(first, valid[-1] + 1)):
        return f"{first} <= {names} <= {valid[-1]}"
    return f"{names} in {valid[:8]}{' ...' if len(valid) > 8 else ''}"


def sweep(graph: Graph, symbols: dict[int, str], lo: int = 1, hi: int = 512) -> SymbolicResult:
    """Analyse ``graph`` with every symbolic axis of its (single) input set to lo..hi together."""
    name, shape = graph.inputs[0]
    results: dict[int, Analysis] = {}
    for s in range(lo, hi + 1):
        concrete = tuple(s if i in symbols else d for i, d in enumerate(shape))
        a = analyze(replace(graph, inputs=((name, concrete),)))
        if not a.errors:
            results[s] = a
    valid = sorted(results)
    label = "/".join(dict.fromkeys(symbols.values()))
    breaks = ""
    if valid and valid[0] > lo:
        below = analyze(replace(graph, inputs=((name, tuple(valid[0] - 1 if i in symbols else d
                                                            for i, d in enumerate(shape))),)))
        if below.errors:
            err = below.errors[0]
            breaks = f"at {label} = {valid[0] - 1}: [{err.node}] {err.message}"
    shapes: dict[str, tuple[str, ...]] = {}
    first = next(iter(symbols.values()), "H")
    for node in graph.nodes:
        if not valid or node.path not in results[valid[0]].info:
            continue
        rank = len(results[valid[0]].info[node.path].shape)
        dims = []
        for axis in range(rank):
            pts = [(s, results[s].info[node.path].shape[axis]) for s in valid]
            # (C, H, W) maps keep the input's axis names; other layouts use the first symbol
            fit = _fit(pts, symbols.get(axis, first) if rank == len(shape) else first)
            dims.append("?" if fit is None else str(fit))
        shapes[node.path] = tuple(dims)
    hint = {x: valid[0] if valid else lo for x in symbols.values()}
    return SymbolicResult(symbols, hint, shapes, _constraint(valid, lo, hi, label), breaks, method="sweep",
                          sampled=tuple(valid))


