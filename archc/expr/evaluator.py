"""Evaluation of a parsed `${...}` expression against declared names only, and the interpolation of
spec strings. Every literal, argument and result is bounded (see README.md), and each evaluation has a
work cap and may charge a shared :class:`Budget`. The grammar is in ``parser.py``, the built-in
functions in ``functions.py``, the bounds in ``limits.py``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from archc.errors import ExprError, Loc
from archc.expr.compiled import compiled
from archc.expr.functions import FUNCTIONS
from archc.expr.lazy import Lazy
from archc.expr.limits import (
    ITEMS_PER_UNIT,
    MAX_BITS,
    MAX_FLOAT,
    MAX_NEST,
    MAX_SEQ,
    MAX_WEIGHT,
    MAX_WORK,
    WORK_PER_STEP,
    Budget,
    number_problem,
)
from archc.expr.parser import Node, parse

__all__ = ["FUNCTIONS", "Budget", "deep_interpolate", "evaluate", "interpolate", "is_expr", "number_problem",
           "parse"]

_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _weight(v: Any) -> tuple[int, int]:
    """(items and characters inside a value, nesting depth), stopping once over the bounds."""
    total, deepest, stack = 0, 0, [(v, 0)]
    while stack and total <= MAX_WEIGHT and deepest <= MAX_NEST:
        x, depth = stack.pop()
        deepest = max(deepest, depth)
        total += len(x)
        if isinstance(x, list) and not _FLAT.issuperset(map(type, x)):  # map/set: C speed on flat lists
            stack.extend((item, depth + 1) for item in x if isinstance(item, (str, list)))
    return total, deepest


_FLAT = frozenset({int, float, bool, type(None)})


_ARITH: dict[str, Callable[[Any, Any], Any]] = {"+": operator.add, "-": operator.sub, "*": operator.mul,
                                                "/": operator.truediv, "//": operator.floordiv, "%": operator.mod}


class _Eval:
    def __init__(self, env: Mapping[str, Any], text: str, loc: Loc | None) -> None:
        self.env, self.text, self.loc = env, text, loc
        self.work = 0
        self.scope: dict[str, Any] = {}  # comprehension loop variables, seen before env

    def fail(self, msg: str, hint: str | None = None) -> ExprError:
        return ExprError(f"{msg} in expression '{self.text}'", self.loc, hint=hint)

    def spend(self, units: int) -> None:
        self.work += units
        if self.work > MAX_WORK:
            raise self.fail("expression does too much work",
                            f"one expression may visit about {MAX_WORK:,} terms (each turn of a comprehension "
                            f"is one) or touch {MAX_WORK * ITEMS_PER_UNIT:,} list items")

    def touch(self, v: Any) -> int:
        """Charge the work of reading a list or string; return its weight."""
        if not isinstance(v, (str, list)):
            return 0
        weight, depth = _weight(v) if isinstance(v, list) else (len(v), 0)
        self.spend(weight // ITEMS_PER_UNIT)
        if weight > MAX_WEIGHT:
            raise self.fail(f"value holds more than {MAX_WEIGHT:,} items and characters",
                            "the items of a list, of the lists inside it and the characters of its strings "
                            "count together")
        if depth > MAX_NEST:
            raise self.fail(f"lists nested deeper than {MAX_NEST}")
        return weight

    def check(self, v: Any) -> Any:
        """Bound a result: numbers (see number_problem), lengths, weight and nesting."""
        problem = number_problem(v)
        if problem:
            raise self.fail(problem, f"integers are at most {MAX_BITS} bits, floats finite and at most "
                                     f"{MAX_FLOAT:g} in size")
        if isinstance(v, (str, list)) and len(v) > MAX_SEQ:
            raise self.fail(f"value longer than {MAX_SEQ} items")
        if not isinstance(v, (bool, int, float, str, list)) and v is not None:
            raise self.fail(f"unsupported result type {type(v).__name__}")
        self.touch(v)
        return v

    def number(self, v: Any, op: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.fail(f"'{op}' needs numbers, got {type(v).__name__}")
        return v

    def power(self, a: float, b: float) -> Any:
        if a == 0 and b < 0:
            raise self.fail("zero to a negative power")
        if a < 0 and isinstance(b, float) and not b.is_integer():
            raise self.fail(f"a negative number ({a}) to a fractional power ({b}) is complex")
        if a != 0 and b * math.log2(abs(a)) > MAX_BITS:  # magnitude of the result, before computing it
            raise self.fail(f"{a} ** {b} is too large")
        return a ** b

    def arith(self, op: str, a: Any, b: Any) -> Any:
        if op == "+" and type(a) is type(b) and isinstance(a, (str, list)):
            if len(a) + len(b) > MAX_SEQ:
                raise self.fail(f"value longer than {MAX_SEQ} items")
            return self.check(a + b)
        a, b = self.number(a, op), self.number(b, op)
        if op == "*" and abs(a) > 1 and abs(b) > 1 and math.log2(abs(a)) + math.log2(abs(b)) > MAX_BITS:
            raise self.fail("product is too large")
        if op in ("/", "//", "%") and b == 0:
            raise self.fail("division by zero")
        try:
            return self.check(self.power(a, b) if op == "**" else _ARITH[op](a, b))
        except (OverflowError, ZeroDivisionError):
            raise self.fail("number out of range") from None

    def run(self, n: Node) -> Any:
        self.spend(1)
        tag = n[0]
        if tag == "const":
            return n[1]
        if tag == "name":
            return self.lookup(n[1])
        if tag == "list":
            return self.check([self.run(x) for x in n[1]])
        if tag == "comp":
            return self.comprehension(n[1], n[2])
        if tag == "ifelse":
            return self.run(n[2]) if self.run(n[1]) else self.run(n[3])
        if tag == "and":
            a = self.run(n[1])
            return self.run(n[2]) if a else a
        if tag == "or":
            a = self.run(n[1])
            return a if a else self.run(n[2])
        if tag == "not":
            return not self.run(n[1])
        if tag in ("neg", "pos"):
            v = self.number(self.run(n[1]), "-")
            return -v if tag == "neg" else v
        if tag == "cmp":
            return self.compare(n)
        if tag in ("index", "slice"):
            return self.subscript(n)
        if tag == "call":
            return self.call(n[1], [self.run(a) for a in n[2]])
        return self.arith(tag, self.run(n[1]), self.run(n[2]))

    def lookup(self, name: str) -> Any:
        if name in self.scope:
            return self.scope[name]
        if name not in self.env:
            from difflib import get_close_matches
            known = sorted({*self.env, *self.scope})
            close = get_close_matches(name, known, 1)
            raise self.fail(f"unknown name '{name}'", f"did you mean '{close[0]}'?" if close else
                            f"names in scope: {', '.join(known) or 'none'}")
        value = self.env[name]
        return value.get() if isinstance(value, Lazy) else value  # in_shape: computed when first read

    def comprehension(self, elem: Node, gens: tuple[Any, ...]) -> list[Any]:
        """Build the list; loop variables live in ``scope`` only while it runs (outer ones restored)."""
        saved, out = dict(self.scope), list[Any]()
        try:
            self.generate(elem, gens, out)
        finally:
            self.scope = saved
        return self.check(out)

    def generate(self, elem: Node, gens: tuple[Any, ...], out: list[Any]) -> None:
        if not gens:
            out.append(self.run(elem))
            return
        names, unpack, source, conds = gens[0]
        items = self.run(source)  # re-read for every outer item, as in Python
        if not isinstance(items, list):
            raise self.fail(f"a comprehension loops over a list, not {type(items).__name__}")
        for item in items:
            self.spend(1)  # every turn is work, filtered or not (the per-expression cap bounds the loop)
            self.bind(names, unpack, item)
            if all(self.run(c) for c in conds):
                self.generate(elem, gens[1:], out)

    def bind(self, names: tuple[str, ...], unpack: bool, item: Any) -> None:
        if not unpack:
            self.scope[names[0]] = item
            return
        if not isinstance(item, list) or len(item) != len(names):
            got = f"{len(item)} values" if isinstance(item, list) else type(item).__name__
            raise self.fail(f"cannot unpack {got} into {', '.join(names)}")
        self.scope.update(zip(names, item))

    def compare(self, n: Node) -> bool:
        return self.chain(self.run(n[1]), [(op, _walker(r)) for op, r in n[2]])

    def chain(self, left: Any, rest: list[tuple[str, Callable[[_Eval], Any]]]) -> bool:
        """A chained comparison: each right operand evaluated (``right(self)``) only while the chain holds."""
        for op, rfn in rest:
            right = rfn(self)
            self.touch(left)  # comparing lists reads them
            self.touch(right)
            try:
                if not _CMP[op](left, right):
                    return False
            except TypeError:
                raise self.fail(f"cannot compare {type(left).__name__} and {type(right).__name__}") from None
            left = right
        return True

    def subscript(self, n: Node) -> Any:
        seq = self.run(n[1])
        if not isinstance(seq, list):
            raise self.fail(f"only lists can be indexed, not {type(seq).__name__}")
        return self.pick(seq, [self.run(x) if x is not None else None for x in n[2:]], n[0] == "slice")

    def pick(self, seq: list[Any], idx: list[Any], slicing: bool) -> Any:
        """``seq[i]`` or ``seq[lo:hi]`` once the operands are evaluated."""
        if any(i is not None and (isinstance(i, bool) or not isinstance(i, int)) for i in idx):
            raise self.fail("list indices must be integers")
        if slicing:
            return self.check(seq[idx[0]:idx[1]])
        if not -len(seq) <= idx[0] < len(seq):
            raise self.fail(f"index {idx[0]} out of range for a list of {len(seq)}")
        return seq[idx[0]]

    def call(self, name: str, args: list[Any]) -> Any:
        if name in ("str", "len") or all(isinstance(a, (int, float, bool, list)) for a in args):
            for a in args:
                self.touch(a)  # every builtin reads its list arguments whole
            try:
                return self.check(FUNCTIONS[name](*args))
            except (TypeError, ValueError, OverflowError, ZeroDivisionError) as e:
                raise self.fail(f"{name}(): {e}") from None
        raise self.fail(f"{name}() got an argument of the wrong type")


def _walker(n: Node) -> Callable[[_Eval], Any]:
    return lambda ev: ev.run(n)


def is_expr(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


_INTERP = re.compile(r"\$\{([^{}]*)\}")
_WHOLE: dict[str, str | None] = {}  # a spec string -> the expression it is whole (None: not one), kept per text


def evaluate(text: str, env: Mapping[str, Any], loc: Loc | None = None, budget: Budget | None = None) -> Any:
    """Evaluate an expression (without ``${}``) in ``env``, charging its work to ``budget``: through its
    closure tree (compiled.py, built once per text)."""
    ev = _Eval(env, text, loc)
    value = compiled(text, loc)(ev)
    if budget is not None:
        budget.spend(1 + ev.work // WORK_PER_STEP, loc)
    return value


def evaluate_walk(text: str, env: Mapping[str, Any], loc: Loc | None = None, budget: Budget | None = None) -> Any:
    """``evaluate`` by walking the parsed tree (``_Eval.run``): the reference the compiled form is tested
    against."""
    ev = _Eval(env, text, loc)
    value = ev.run(parse(text, loc))
    if budget is not None:
        budget.spend(1 + ev.work // WORK_PER_STEP, loc)
    return value


def interpolate(value: str, env: Mapping[str, Any], loc: Loc | None = None, budget: Budget | None = None) -> Any:
    """Resolve a spec string: ``"${e}"`` gives e's value (any type); ``"a${e}b"`` gives a string."""
    whole = _WHOLE.get(value, "")
    if whole == "":
        m = _INTERP.fullmatch(value.strip())
        whole = m.group(1) if m else None
        if len(_WHOLE) >= 4096:
            _WHOLE.clear()
        _WHOLE[value] = whole
    if whole is not None:
        return evaluate(whole, env, loc, budget)
    if "${" in _INTERP.sub("", value):
        raise ExprError(f"unterminated or nested '${{' in '{value}'", loc)
    out = _INTERP.sub(lambda m: str(evaluate(m.group(1), env, loc, budget)), value)
    if len(out) > MAX_SEQ:
        raise ExprError(f"string built from '{value[:60]}' is longer than {MAX_SEQ} characters", loc)
    return out


def deep_interpolate(value: Any, env: Mapping[str, Any], loc: Loc | None = None,
                     budget: Budget | None = None) -> Any:
    """Resolve every ``${}`` string inside a value, descending into lists (which may carry ``locs``)."""
    if isinstance(value, str) and "${" in value:
        return interpolate(value, env, loc, budget)
    if isinstance(value, list):
        locs = getattr(value, "locs", None) or [loc] * len(value)
        return [deep_interpolate(x, env, locs[i], budget) for i, x in enumerate(value)]
    return value
