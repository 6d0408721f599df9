"""A parsed `${...}` expression compiled once (cached by its text) into a tree of closures, so an evaluation
calls one small function per term instead of walking the tuple tree and dispatching on its tags.

Each closure takes the evaluation state (``evaluator._Eval``: the names, the loop variables, the work count)
and does exactly what the tree walker (``_Eval.run``) does for its term, in the same order: one work unit
on entry, then the same helpers (``check``, ``arith``, ``call``, ``bind``, ``touch``, ``fail``), so values,
work, errors and their locations are the same (tests/test_expr_compile.py compares them on every
expression of the zoo and on the error cases).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archc.errors import Loc
from archc.expr.lazy import Lazy
from archc.expr.limits import MAX_WORK
from archc.expr.parser import Node, parse

__all__ = ["compiled"]

Fn = Callable[[Any], Any]  # evaluation state -> value


def compiled(text: str, loc: Loc | None = None) -> Fn:
    """The closure tree of an expression (parse errors raise located, as ``parse``), kept per text."""
    fn = _DONE.get(text)
    if fn is None:
        fn = _node(parse(text, loc))  # bounds and syntax, located
        if len(_DONE) >= KEPT:
            _DONE.clear()
        _DONE[text] = fn
    return fn


KEPT = 4096  # texts kept compiled
_DONE: dict[str, Fn] = {}


def _node(n: Node) -> Fn:
    tag = n[0]
    make = _MAKERS.get(tag)
    return make(n) if make is not None else _arith(n)


def _const(n: Node) -> Fn:
    v = n[1]

    def const(ev: Any) -> Any:
        ev.work += 1  # one unit per term visited, as _Eval.run spends
        if ev.work > MAX_WORK:
            ev.spend(0)  # raises the work error
        return v
    return const


def _name(n: Node) -> Fn:
    name = n[1]

    def lookup(ev: Any) -> Any:
        ev.work += 1  # one unit per term visited, as _Eval.run spends
        if ev.work > MAX_WORK:
            ev.spend(0)  # raises the work error
        if name in ev.scope or name not in ev.env:
            return ev.lookup(name)
        value = ev.env[name]
        return value.get() if isinstance(value, Lazy) else value
    return lookup


def _list(n: Node) -> Fn:
    items = [_node(x) for x in n[1]]

    def make_list(ev: Any) -> Any:
        ev.work += 1  # one unit per term visited, as _Eval.run spends
        if ev.work > MAX_WORK:
            ev.spend(0)  # raises the work error
        return ev.check([f(ev) for f in items])
    return make_list


def _comp(n: Node) -> Fn:
    elem = _node(n[1])
    gens = [(names, unpack, _node(source), [_node(c) for c in conds]) for names, unpack, source, conds in n[2]]

    def generate(ev: Any, i: int, out: list[Any]) -> None:
        if i == len(gens):
            out.append(elem(ev))
            return
        names, unpack, source, conds = gens[i]
        items = source(ev)  # re-read for every outer item, as in Python
        if not isinstance(items, list):
            raise ev.fail(f"a comprehension loops over a list, not {type(items).__name__}")
        for item in items:
            ev.spend(1)
            ev.bind(names, unpack, item)
            if all(c(ev) for c in conds):
                generate(ev, i + 1, out)

    def comprehension(ev: Any) -> Any:
        ev.work += 1  # one unit per term visited, as _Eval.run spends
        if ev.work > MAX_WORK:
            ev.spend(0)  # raises the work error
        saved, out = dict(ev.scope), list[Any]()
        try:
            generate(ev, 0, out)
        finally:
            ev.scope = saved
        return ev.check(out)
    return comprehension


def _ifelse(n: Node) -> Fn:
    cond, yes, no = _node(n[1]), _node(n[2]), _node(n[3])

    def ifelse(ev: Any) -> Any:
        ev.work += 1  # one unit per term visited, as _Eval.run spends
        if ev.work > MAX_WORK:
            ev.spend(0)  # raises the work error
        return yes(ev) if cond(ev) else no(ev)
    return ifelse


def _and(n: Node) -> Fn:
    a, b = _node(n[1]), _node(n[2])

    def and_(ev: Any) -> Any:
        ev.work += 1  # one unit per term visited, as _Eval.run spends
        if ev.work > MAX_WORK:
            ev.spend(0)  # raises the work error
        x = a(ev)
        return b(ev) if x else x
    return and_


def _or(n: Node) -> Fn:
    a, b = _node(n[1]), _node(n[2])

    def or_(ev: Any) -> Any:
        ev.work += 1  # one unit per term visited, as _Eval.run spends
        if ev.work > MAX_WORK:
            ev.spend(0)  # raises the work error
        x = a(ev)
        return x if x else b(ev)
    return or_


def _not(n: Node) -> Fn:
    a = _node(n[1])

    def not_(ev: Any) -> Any:
        ev.work += 1  # one unit per term visited, as _Eval.run spends
        if ev.work > MAX_WORK:
            ev.spend(0)  # raises the work error
        return not a(ev)
    return not_


def _sign(n: Node) -> Fn:
    a, negate = _node(n[1]), n[0] == "neg"

    def sign(ev: Any) -> Any:
        ev.work += 1  # one unit per term visited, as _Eval.run spends
        if ev.work > MAX_WORK:
            ev.spend(0)  # raises the work error
        v = ev.number(a(ev), "-")
        return -v if negate else v
    return sign


def _cmp(n: Node) -> Fn:
    first = _node(n[1])
    rest = [(op, _node(r)) for op, r in n[2]]

    def compare(ev: Any) -> Any:
        ev.work += 1  # one unit per term visited, as _Eval.run spends
        if ev.work > MAX_WORK:
            ev.spend(0)  # raises the work error
        return ev.chain(first(ev), rest)
    return compare


def _subscript(n: Node) -> Fn:
    seq, slicing = _node(n[1]), n[0] == "slice"
    idx = [None if x is None else _node(x) for x in n[2:]]

    def subscript(ev: Any) -> Any:
        ev.work += 1  # one unit per term visited, as _Eval.run spends
        if ev.work > MAX_WORK:
            ev.spend(0)  # raises the work error
        s = seq(ev)
        if not isinstance(s, list):
            raise ev.fail(f"only lists can be indexed, not {type(s).__name__}")
        return ev.pick(s, [None if f is None else f(ev) for f in idx], slicing)
    return subscript


def _call(n: Node) -> Fn:
    name, args = n[1], [_node(a) for a in n[2]]

    def call(ev: Any) -> Any:
        ev.work += 1  # one unit per term visited, as _Eval.run spends
        if ev.work > MAX_WORK:
            ev.spend(0)  # raises the work error
        return ev.call(name, [f(ev) for f in args])
    return call


def _arith(n: Node) -> Fn:
    op, a, b = n[0], _node(n[1]), _node(n[2])

    def arith(ev: Any) -> Any:
        ev.work += 1  # one unit per term visited, as _Eval.run spends
        if ev.work > MAX_WORK:
            ev.spend(0)  # raises the work error
        return ev.arith(op, a(ev), b(ev))
    return arith


_MAKERS: dict[str, Callable[[Node], Fn]] = {
    "const": _const, "name": _name, "list": _list, "comp": _comp, "ifelse": _ifelse, "and": _and, "or": _or,
    "not": _not, "neg": _sign, "pos": _sign, "cmp": _cmp, "index": _subscript, "slice": _subscript, "call": _call,
}
