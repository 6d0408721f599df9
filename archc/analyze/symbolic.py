"""Symbolic input sizes (`--input 3xHxW`): every node's shape, and the model's parameters, MACs,
activations and memory, as exact expressions in H and W, with the sizes for which they hold.

One analysis runs on symbolic sizes (`analyze.algebra`): the unchanged shape rules compute
expressions, and every comparison they make that depends on the size is recorded as a *guard*,
answered at a hint size (224 unless that fails). The guards are the validity constraints: the
formulas are exact wherever every guard holds. A guard in one symbol is quasi-affine
(``a·H + something periodic in H``), so past a size computed from its bounds its truth is
constant or repeats with a computed period; each axis's valid set is therefore solved exactly by
evaluating the guards over one stretch of sizes, and H and W are solved independently. Guards
that tie H and W (a ViT's token count) are reported as they are.

A size that fails a guard but not the rule that recorded it takes another branch of that rule
(a ceil-mode pool dropping its last window): such sizes are checked concretely and reported
beside the main formulas. A rule with no exact integer form (a float scale that is not a small
fraction) is sampled at that node only: its output sizes are fitted to ``m * ((H + a) // d)`` over
sizes 1..512 and the analysis goes on with the fits (the note names the node). Only when that
fails too (a size depending on both H and W) does the whole spec fall back to a sweep of sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from fractions import Fraction
from math import floor, lcm
from typing import Any

from archc import blocks as library
from archc.analyze.algebra import Expr, Guard, Guards, NotSymbolic, guarding, symbol, value_at
from archc.analyze.shapes import RF, Analysis, NodeInfo, analyze, node_info
from archc.analyze.shapes import _receptive as receptive  # same package: one receptive-field rule
from archc.errors import ShapeError
from archc.ir import Graph, Node
from archc.resolve import SYMBOL_PLACEHOLDER, Limits

__all__ = ["SymbolicResult", "AxisSet", "solve", "sweep", "at_sizes"]

HINTS = (224, 256, 320, 384, 512, 518, 572, 299, 128, 64, 32, 1024)  # tried in turn until one is valid
_SAMPLE = 512  # sizes a rule with no exact form is sampled at
_SCAN = 4096  # sizes checked one by one when a guard is not quasi-affine (e.g. H * H)
_MAX_STRETCH = 2_000_000  # guard evaluations beyond which the exact solve gives way to the scan
_HINT_WORK = 60_000  # node analyses spent looking for a hint size that works
_MAX_OTHER = 64  # other-branch sizes checked concretely per axis ...
_OTHER_WORK = 100_000  # ... and at most this many node analyses for them


@dataclass(frozen=True)
class AxisSet:
    """The valid sizes of one axis: ``extra`` below ``start``; from ``start`` on, the sizes whose
    remainder modulo ``period`` is in ``residues``. ``upto`` > 0: known only up to that size."""

    extra: frozenset[int]
    start: int
    period: int
    residues: frozenset[int]
    upto: int = 0

    def __contains__(self, v: int) -> bool:
        return v in self.extra if v < self.start else v % self.period in self.residues

    def smallest(self) -> int | None:
        tail = next((v for v in range(self.start, self.start + self.period) if v in self), None)
        return min([*self.extra, *([tail] if tail is not None else [])], default=None)

    def text(self, s: str) -> str:
        listed = sorted(self.extra)
        first = next((v for v in range(self.start, self.start + self.period) if v in self), None)
        if first is None:
            main = "" if listed else f"no {s} works"
        elif len(self.residues) == self.period:
            main = f"{s} >= {first}"
        elif len(self.residues) == 1:
            main = f"{s} >= {first} and {s} % {self.period} == {first % self.period}"
        else:
            main = f"{s} >= {first} and {s} % {self.period} in {{{', '.join(map(str, sorted(self.residues)))}}}"
        if listed:
            some = f"{s} == {listed[0]}" if len(listed) == 1 else f"{s} in {{{', '.join(map(str, listed))}}}"
            main = f"{main} or {some}" if main else some
        return main + (f" (checked up to {self.upto})" if self.upto else "")


@dataclass
class SymbolicResult:
    symbols: dict[int, str]  # input axis -> symbol
    hint: dict[str, int]  # the sizes that answered the guards (and where concrete figures are taken)
    shapes: dict[str, tuple[str, ...]]  # node (and NAME[k] output) -> output shape as expressions
    constraint: str
    breaks: str  # what fails just below the smallest valid size
    figures: dict[str, Any] = field(default_factory=dict)  # params, macs, ... as Expr or int
    guards: list[Guard] = field(default_factory=list)
    axes: dict[str, AxisSet] = field(default_factory=dict)
    method: str = "algebra"  # "sweep" (see `note`), or "none" when no size works
    note: str = ""
    sampled: tuple[int, ...] = ()  # the sweep's valid sizes (method "sweep")
    analysis: Analysis | None = None  # the analysis on symbolic sizes (method "algebra")

    def valid(self, sizes: dict[str, int]) -> bool:
        """Whether the formulas hold at these sizes (every guard holds)."""
        if self.method == "none":
            return False
        if self.method == "sweep":
            return len(set(sizes.values())) == 1 and next(iter(sizes.values())) in self.sampled
        memo: dict[str, int] = {}
        return all(sizes[s] in axis for s, axis in self.axes.items()) and all(
            g.holds(sizes, memo) for g in self.guards if len(g.expr.symbols) > 1)

    def formula(self, name: str) -> str:
        v = self.figures.get(name)
        return "?" if v is None else str(v)

    def at(self, name: str, sizes: dict[str, int]) -> int:
        v = self.figures[name]
        return int(value_at(v, sizes))


# ---- one axis: guards in one symbol, solved exactly ----

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


@dataclass
class _Table:
    """Which sizes 1..len(ok)-1 of one axis satisfy its guards; the pattern repeats with
    ``period`` from ``settle`` on (``upto`` > 0: nothing is known past it)."""

    ok: list[bool]
    settle: int
    period: int
    upto: int

    def axis_set(self) -> AxisSet:
        if self.upto:
            valid = frozenset(v for v in range(1, len(self.ok)) if self.ok[v])
            return AxisSet(valid, len(self.ok), 1, frozenset(), self.upto)
        return _periodic(self.ok, self.settle, self.period)


def _table(guards: list[Guard], s: str, hint: dict[str, int]) -> _Table:
    """The truth table of ``guards`` (all in ``s`` alone) over one stretch that decides them all."""
    settle, period, upto = 1, 1, 0
    for p in (_profile(g.expr, s) for g in guards):
        if p is None:
            upto = _SCAN
            break
        start, per = _settles(p)
        settle, period = max(settle, start), lcm(period, per)
    if not upto and (settle + period) * max(1, len(guards)) > _MAX_STRETCH:
        upto = _SCAN
    env = dict(hint)
    ok = [False]
    for v in range(1, upto + 1 if upto else settle + period):
        env[s] = v
        ok.append(all(g.holds(env) for g in guards))
    return _Table(ok, settle, period, upto)


def _periodic(ok: list[bool], settle: int, period: int) -> AxisSet:
    """Describe a truth table that repeats with ``period`` from ``settle`` on, as simply as it is."""
    p = min(q for q in range(1, period + 1) if period % q == 0 and
            all(ok[v] == ok[settle + (v - settle) % q] for v in range(settle, settle + period)))
    start = settle
    while start > 1 and ok[start - 1] == ok[settle + (start - 1 - settle) % p]:
        start -= 1
    residues = frozenset(v % p for v in range(start, start + p) if ok[v])
    return AxisSet(frozenset(v for v in range(1, start) if ok[v]), start, p, residues)


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
            return _result(a, symbols, guards, graph, limits)
        first = first or a
    assert first is not None
    err = first.errors[0]
    return SymbolicResult(symbols, {s: HINTS[0] for s in names}, {}, f"none of the sizes {', '.join(map(str, tried))} "
                          "works", f"at {HINTS[0]}: [{err.node}] {err.message}", method="none")


def _result(a: Analysis, symbols: dict[int, str], guards: Guards, graph: Graph, limits: Limits) -> SymbolicResult:
    from archc.analyze.memory import memory

    names = list(dict.fromkeys(symbols.values()))
    single = {s: [g for g in guards.items if g.expr.symbols == {s}] for s in names}
    joint = [g for g in guards.items if len(g.expr.symbols) > 1]
    axes, breaks, notes = {}, [], []
    for s in names:
        table = _table(single[s], s, guards.hint)
        same, other = _other_branches(a, single[s], s, table.ok, guards.hint, graph, symbols, limits)
        for v in same:  # another branch of a rule, but the same shapes and figures: valid here too
            table.ok[v] = True
        axes[s] = table.axis_set()
        low = axes[s].smallest()
        if low is not None and low > 1:
            breaks.append(_why(a, single[s], s, low - 1, guards.hint))
        if other:
            notes.append(f"{s} in {{{', '.join(map(str, other))}}} also works, with other formulas (a rule "
                         "branches there)")
    stand_in = graph.meta.get("sized_by_stand_in")
    if stand_in is not None:  # the expansion itself read a symbolic size: the figures hold at the stand-in only
        axes = {s: AxisSet(frozenset({SYMBOL_PLACEHOLDER}) if SYMBOL_PLACEHOLDER in axes[s] else frozenset(),
                           SYMBOL_PLACEHOLDER + 1, 1, frozenset()) for s in names}
        notes.insert(0, f"[{stand_in[0]}] `${{in_shape}}` reads a symbolic size, which archc resolves at "
                        f"{SYMBOL_PLACEHOLDER}: the formulas hold there only (give concrete sizes with --input)")
    constraint = ", ".join([axes[s].text(s) for s in names] + [g.text() for g in joint])
    shapes = {path: tuple(str(d) for d in shape) for path, shape in a.shapes.items()}
    mem = memory(a)
    figures = {"params": a.params, "macs": a.macs, "other_ops": a.other_ops,
               "activation_elements": a.activation_elements,
               "inference_peak_activation_bytes": mem["inference_peak_activation_bytes"],
               "training_activation_bytes": mem["training_activation_bytes"]}
    return SymbolicResult(symbols, dict(guards.hint), shapes, constraint, "; ".join(b for b in breaks if b), figures,
                          list(guards.items), axes, note="; ".join(guards.notes + notes), analysis=a)


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


def _first_failing(guards: list[Guard], env: dict[str, int]) -> Guard | None:
    return next((g for g in guards if not g.holds(env)), None)


def _local_error(a: Analysis, guard: Guard, env: dict[str, int]) -> ShapeError | None:
    """Re-run the node that recorded ``guard`` at concrete sizes (every earlier guard holds, so
    its inputs are its symbolic inputs evaluated there): its error, or None (another branch)."""
    info = a.info[guard.node]
    try:
        out = node_info(info.node, _at(info.in_shapes, env))
    except ShapeError as e:
        return e
    if any(d < 1 for shape in out.outputs or (out.shape,) for d in shape):
        return ShapeError(f"output shape {out.shape} is empty")
    return None


def _why(a: Analysis, guards: list[Guard], s: str, v: int, hint: dict[str, int]) -> str:
    env = {**hint, s: v}
    g = _first_failing(guards, env)
    if g is None:
        return ""
    err = _local_error(a, g, env)
    return f"at {s} = {v}: [{g.node}] " + (err.message if err else f"{g.text()} fails")


def _other_branches(a: Analysis, guards: list[Guard], s: str, ok: list[bool], hint: dict[str, int],
                    graph: Graph, symbols: dict[int, str], limits: Limits) -> tuple[list[int], list[int]]:
    """Sizes that fail a guard whose rule does not fail there, analysed concretely: those with the
    same shapes and figures as the formulas, and those valid with others."""
    same: list[int] = []
    other: list[int] = []
    name, shape = graph.inputs[0]
    for v in range(1, len(ok)):
        if ok[v]:
            continue
        env = {**hint, s: v}
        g = _first_failing(guards, env)
        if g is None or _local_error(a, g, env) is not None:
            continue
        if len(same) + len(other) >= min(_MAX_OTHER, _OTHER_WORK // max(1, len(graph.nodes))):
            break
        concrete = tuple(env[symbols[i]] if i in symbols else d for i, d in enumerate(shape))
        c = analyze(replace(graph, inputs=((name, concrete),)), limits)
        if not c.errors:
            (same if _agrees(a, c, env) else other).append(v)
    return same, other


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


