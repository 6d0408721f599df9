"""Paths: a set of guards with what the graph does wherever they all hold (formulas, or an error), and
the comparisons of guards, regions, shapes and costs that the solver makes between paths."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archc.analyze.shapes import Analysis, NodeInfo, node_info
from archc.analyze.symbolic.axes import _key
from archc.analyze.symbolic.runs import Point, Runs, _merge
from archc.errors import ArchcError
from archc.ir import Node
from archc.ir.algebra import Expr, Guard, bounds, condition, symbol, value_at


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



def _at(ins: tuple[Any, ...], env: dict[str, int]) -> tuple[tuple[int, ...], ...]:
    """Shapes at concrete sizes."""
    return tuple(tuple(value_at(d, env) for d in shape) for shape in ins)



def _agrees(sym: Analysis, conc: Analysis, env: dict[str, int]) -> bool:
    """Whether every shape and cost of the symbolic analysis, evaluated at ``env``, is the concrete one."""
    def at(x: Any) -> Any:
        return value_at(x, env)

    return sym.shapes.keys() == conc.shapes.keys() and all(
        _at((sym.shapes[k],), env)[0] == conc.shapes[k] for k in sym.shapes) and all(
        (at(i.params), at(i.macs), at(i.other_ops)) == (c.params, c.macs, c.other_ops)
        for i, c in zip(sym.info.values(), conc.info.values()))

