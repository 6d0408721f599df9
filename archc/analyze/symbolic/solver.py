"""The solver: `solve` runs the analysis on symbolic sizes at a hint, and `_Solver` finds the paths
that cover every size (steps 1-4 of the package doc)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import cache, partial
from itertools import product
from typing import Any

from archc.analyze.shapes import Analysis, NodeInfo, analyze, node_info
from archc.analyze.symbolic.axes import _Axis, _axis_set, _Class, _key, _OverBudget, _Work
from archc.analyze.symbolic.paths import (
    _agrees,
    _decide,
    _mergeable,
    _message,
    _Path,
    _pin_guards,
    _same,
    _same_info,
    _variable,
)
from archc.analyze.symbolic.result import Lazy, SymbolicResult, _regions_text
from archc.analyze.symbolic.runs import AxisSet, Point, Runs
from archc.analyze.symbolic.sampling import _sampler, sweep
from archc.analyze.symbolic.walk import analyse_symbolic, keep_hint, kept_hint, solved
from archc.errors import ArchcError, ShapeError
from archc.ir import Graph
from archc.ir.algebra import (
    Expr,
    Guard,
    Guards,
    NotSymbolic,
    condition,
    guarding,
    substitute,
    symbol,
)
from archc.resolve import SYMBOL_PLACEHOLDER, Limits

__all__ = ["STEPS_PER_LIMIT_STEP", "solve"]

HINTS = (224, 256, 320, 384, 512, 518, 572, 299, 128, 64, 32, 1024)  # tried in turn until one is valid
STEPS_PER_LIMIT_STEP = 2  # symbolic work allowed per step of Limits.max_steps (200,000 by default, ~1 s)
_NODE_STEPS = 25  # a node analysed costs this many steps (a piece of a guard's truth, one)
_HINT_WORK = 60_000  # node analyses spent looking for a hint size that works
_MAX_JOINT = 6  # undecided guards tying symbols whose truth combinations are enumerated per class combination
_RELAXED = {"max_params": 10**30, "max_activation": 10**30}  # limits apply at the hint, not to other sizes
_MEMORY_FIGURES = ("inference_peak_activation_bytes", "training_activation_bytes")


def solve(graph: Graph, symbols: dict[int, str], limits: Limits | None = None) -> SymbolicResult:
    """Analyse ``graph`` with its input's ``symbols`` axes symbolic (see the module doc)."""
    limits = limits or Limits()
    name, shape = graph.inputs[0]
    names = list(dict.fromkeys(symbols.values()))
    dims: tuple[Any, ...] = tuple(symbol(symbols[i]) if i in symbols else d for i, d in enumerate(shape))
    sym_graph = replace(graph, inputs=((name, dims),))
    first: Analysis | None = None
    tried: list[int] = []
    sizes = HINTS[:max(2, _HINT_WORK // max(1, len(graph.nodes)))]  # bounded work on failing specs
    known = kept_hint(graph, symbols, limits)  # the same graph met before: the walks at the sizes before it fail
    k = sizes.index(known) if known in sizes else 0
    while k < len(sizes):
        size = sizes[k]
        tried.append(size)
        guards = Guards({s: size for s in names})
        guards.fallback = _sampler(guards)
        try:
            with guarding(guards):
                a, nodes = analyse_symbolic(sym_graph, limits, guards)
        except NotSymbolic as e:
            return replace(sweep(graph, symbols), note=f"[{guards.node}] {e}: sizes fitted to a sweep of 1..512")
        if not a.errors:
            if k:
                keep_hint(graph, symbols, limits, size)
            solve_here = partial(_result, graph, symbols, limits, a, guards)
            return solved(graph, symbols, limits, guards.hint, nodes, solve_here)
        first = first or a
        k += 1
    assert first is not None
    err = first.errors[0]
    return SymbolicResult(symbols, {s: HINTS[0] for s in names}, {}, f"none of the sizes {', '.join(map(str, tried))} "
                          "works", f"at {HINTS[0]}: [{err.node}] {err.message}", method="none", sampled=tuple(tried),
                          complete=False)


def _result(graph: Graph, symbols: dict[int, str], limits: Limits, a: Analysis, guards: Guards) -> SymbolicResult:
    return _Solver(graph, symbols, limits, a, guards).result()


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

        shapes = Lazy(lambda path: tuple(str(d) for d in a.shapes[path]), a.shapes.keys())
        mem = cache(lambda: memory(a))  # one walk for both memory figures, when one is read

        def figure(name: str) -> Any:  # the Analysis property of that name, or a memory figure
            return mem()[name] if name in _MEMORY_FIGURES else getattr(a, name)
        figures = Lazy(figure, ("params", "macs", "other_ops", "activation_elements", *_MEMORY_FIGURES))
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
                return analyse_symbolic(graph, self.relaxed, guards)[0], guards
        except NotSymbolic:
            return None, None

