"""Integer expressions in symbolic input sizes (H, W, ...): exact, canonical and torch-free.

An ``Expr`` is a polynomial with integer coefficients over *atoms*: a size symbol, a floor
division ``P // d`` of a polynomial by a positive integer, or ``max``/``min`` of expressions.
It supports the arithmetic that archc's shape rules do on ints (``+ - * // %`` with ints and
with each other), so the unchanged rules compute exact shape expressions. Floor divisions are
kept canonical, which makes compositions collapse: ``((H + 1) // 2 + 1) // 2`` is
``(H + 3) // 4``, and two branches that downsample alike compare equal structurally.

A comparison that the algebra cannot decide for every size (``H // 2 >= 3``) is a *guard*: it is
answered at the hint sizes of the current ``Guards`` context (guards.py) and recorded there, so the
analysis knows the conditions under which its formulas hold. Anything inexact (a float scale that is
not a small fraction, ``int()`` of a symbol) raises ``NotSymbolic``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from math import gcd, prod
from typing import Any, Protocol

__all__ = ["Expr", "NotSymbolic", "symbol"]

class NotSymbolic(Exception):
    """An operation on a symbolic size that has no exact integer form."""


class Atom:
    """A size symbol, ``P // d``, or ``max``/``min`` of expressions; compared by canonical text."""

    __slots__ = ("kind", "name", "args", "d", "key", "_hash", "_low")

    def __init__(self, kind: str, key: str, name: str = "", args: tuple[Expr, ...] = (), d: int = 1):
        self.kind, self.key, self.name, self.args, self.d = kind, key, name, args, d
        self._hash = hash(key)
        self._low: int | None | bool = False  # not computed yet

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Atom) and other.key == self.key

    def value(self, env: Mapping[str, int], memo: dict[str, int]) -> int:
        got = memo.get(self.key)
        if got is None:
            if self.kind == "sym":
                got = env[self.name]
            elif self.kind == "floor":
                got = self.args[0].value(env, memo) // self.d
            else:
                vals = [a.value(env, memo) for a in self.args]
                got = max(vals) if self.kind == "max" else min(vals)
            memo[self.key] = got
        return got

    def symbols(self) -> set[str]:
        return {self.name} if self.kind == "sym" else set().union(*(e.symbols for e in self.args))

    def low(self) -> int | None:
        """A lower bound over all sizes >= 1 (None: unbounded below)."""
        if self._low is False:
            self._low = self._bound()
        return self._low  # type: ignore[return-value]

    def _bound(self) -> int | None:
        if self.kind == "sym":
            return 1
        lows = [a.low() for a in self.args]
        if self.kind == "floor":
            return None if lows[0] is None else lows[0] // self.d
        known = [v for v in lows if v is not None]
        if self.kind == "max":
            return max(known) if known else None
        return None if len(known) < len(lows) else min(known)


Monomial = tuple[Atom, ...]
Num = Any  # an int, or an Expr when it depends on a symbol


def _mono_key(m: Monomial) -> str:
    return " * ".join(a.key for a in m)


class Expr:
    """A canonical integer polynomial over atoms; constant results come back as plain ints."""

    __slots__ = ("terms", "_key", "_low", "_symbols")

    def __init__(self, terms: dict[Monomial, int]):
        self.terms = {m: c for m, c in terms.items() if c}
        self._key: str | None = None
        self._low: int | None | bool = False  # not computed yet
        self._symbols: frozenset[str] | None = None

    # ---- construction and inspection ----
    @property
    def const(self) -> int:
        return self.terms.get((), 0)

    @property
    def symbols(self) -> frozenset[str]:
        if self._symbols is None:
            self._symbols = frozenset().union(*(a.symbols() for m in self.terms for a in m))
        return self._symbols

    @property
    def key(self) -> str:
        if self._key is None:
            self._key = _render(self)
        return self._key

    def __str__(self) -> str:
        return self.key

    def __repr__(self) -> str:  # messages format shapes as tuples: (64, (H + 1) // 2, W)
        return self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def value(self, env: Mapping[str, int], memo: dict[str, int] | None = None) -> int:
        memo = {} if memo is None else memo
        return sum(c * prod(a.value(env, memo) for a in m) for m, c in self.terms.items())

    def low(self) -> int | None:
        """A lower bound over all sizes >= 1, or None when the algebra cannot bound it."""
        if self._low is False:
            self._low = self._bound()
        return self._low  # type: ignore[return-value]

    def _bound(self) -> int | None:
        total = 0
        for m, c in self.terms.items():
            if not m:
                total += c
                continue
            lows = [a.low() for a in m]
            if c < 0 or any(v is None or v < 0 for v in lows):
                return None
            total += c * prod(v for v in lows if v is not None)
        return total

    # ---- arithmetic ----
    def __add__(self, other: Any) -> Num:
        if type(other) is int:  # the common case: only the constant changes
            terms = dict(self.terms)
            terms[()] = terms.get((), 0) + other
            return _make(terms)
        o = _lift(other)
        if o is None:
            return NotImplemented
        terms = dict(self.terms)
        for m, c in o.terms.items():
            terms[m] = terms.get(m, 0) + c
        return _make(terms)

    __radd__ = __add__

    def __neg__(self) -> Num:
        return _make({m: -c for m, c in self.terms.items()})

    def __pos__(self) -> Expr:
        return self

    def __sub__(self, other: Any) -> Num:
        o = _lift(other)
        return NotImplemented if o is None else self + (-o)

    def __rsub__(self, other: Any) -> Num:
        o = _lift(other)
        return NotImplemented if o is None else o + (-self)

    def __mul__(self, other: Any) -> Any:
        if type(other) is int:  # the common case: scale every coefficient
            return _make({m: c * other for m, c in self.terms.items()}) if other else 0
        if isinstance(other, float) and not other.is_integer():
            return Scaled(self, Fraction(other))
        o = _lift(other)
        if o is None:
            return NotImplemented
        terms: dict[Monomial, int] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in o.terms.items():
                m = tuple(sorted(m1 + m2, key=lambda a: a.key))
                terms[m] = terms.get(m, 0) + c1 * c2
        return _make(terms)

    __rmul__ = __mul__

    def __floordiv__(self, other: Any) -> Num:
        return _floordiv(self, _divisor(other))

    def __rfloordiv__(self, other: Any) -> Num:
        raise NotSymbolic(f"division by the symbolic size {self}")

    def __mod__(self, other: Any) -> Num:
        d = _divisor(other)
        return self - d * _floordiv(self, d)

    def __rmod__(self, other: Any) -> Num:
        raise NotSymbolic(f"remainder by the symbolic size {self}")

    def __truediv__(self, other: Any) -> Scaled:
        return Scaled(self, Fraction(1) / Fraction(_divisor(other)))

    def __int__(self) -> int:
        raise NotSymbolic(f"int() of the symbolic size {self}")

    __index__ = __int__

    def __floor__(self) -> Expr:
        return self

    __ceil__ = __trunc__ = __floor__

    def __float__(self) -> float:
        raise NotSymbolic(f"float() of the symbolic size {self}")

    # ---- comparisons: decided when possible, else guarded at the hint ----
    def __lt__(self, other: Any) -> bool:
        if type(other) is int:  # the common `size < 1` check: by the lower bound, or answered before
            if (low := self.low()) is not None and low >= other:
                return False
            key = (self.key, "<", other)
            answers = _ACTIVE[-1].answers if _ACTIVE else {}
            if key in answers:  # asked before: this node makes the comparison too
                result, held = answers[key]
                for k in held:
                    _ACTIVE[-1].use(k)
                return result
            answers[key] = _compare_held(other - self, ">")
            return answers[key][0]
        return _compare(_lift_or_fail(other) - self, ">")

    def __le__(self, other: Any) -> bool:
        return _compare(_lift_or_fail(other) - self, ">=")

    def __gt__(self, other: Any) -> bool:
        return _compare(self - _lift_or_fail(other), ">")

    def __ge__(self, other: Any) -> bool:
        if type(other) is int and (low := self.low()) is not None and low >= other:
            return True
        return _compare(self - _lift_or_fail(other), ">=")

    def __eq__(self, other: Any) -> bool:  # type: ignore[override]
        o = _lift(other)
        return False if o is None else _compare(self - o, "==")

    def __ne__(self, other: Any) -> bool:  # type: ignore[override]
        return not self.__eq__(other)

    def __bool__(self) -> bool:
        return _compare(self, "!=")


@dataclass(frozen=True)
class Scaled:
    """``expr * p / q`` from a float scale or a true division: only its floor is an integer."""

    expr: Expr
    factor: Fraction

    def _floor(self) -> Num:
        if self.factor.denominator > 1 << 16:
            raise NotSymbolic(f"{self.expr} times {float(self.factor)} has no small exact fraction")
        return (self.expr * self.factor.numerator) // self.factor.denominator

    def __floor__(self) -> Any:
        return self._floor()

    def __int__(self) -> int:
        raise NotSymbolic(f"int() of the symbolic size {self.expr} * {self.factor}")

    def __ceil__(self) -> Any:
        return -((-self.expr * self.factor.numerator) // self.factor.denominator)


def symbol(name: str) -> Expr:
    return Expr({(Atom("sym", name, name=name),): 1})


def _lift(x: Any) -> Expr | None:
    if isinstance(x, Expr):
        return x
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    if isinstance(x, float):
        if not x.is_integer():
            return None
        x = int(x)
    return Expr({(): x}) if x else Expr({})


def _lift_or_fail(x: Any) -> Expr:
    o = _lift(x)
    if o is None:
        raise NotSymbolic(f"comparison of a symbolic size with {x!r}")
    return o


def _make(terms: dict[Monomial, int]) -> Num:
    e = Expr(terms)
    if not e.terms:
        return 0
    if len(e.terms) == 1 and () in e.terms:
        return e.terms[()]
    return e


def _divisor(other: Any) -> int:
    o = other
    if isinstance(o, Expr):
        raise NotSymbolic(f"division by the symbolic size {o}")
    if isinstance(o, float) and o.is_integer():
        o = int(o)
    if isinstance(o, bool) or not isinstance(o, int):
        raise NotSymbolic(f"division of a symbolic size by {o!r}")
    if o == 0:
        raise ZeroDivisionError("integer division or modulo by zero")
    return o


def _floordiv(p: Expr | int, d: int) -> Num:
    """``p // d`` kept canonical: whole multiples pulled out, coefficients reduced below d and by
    their common factor, nested floors merged (``(P // a + c) // b == (P + c·a) // (a·b)``)."""
    if isinstance(p, int):
        return p // d
    if d < 0:
        return _floordiv(-p, -d) if isinstance(-p, Expr) else (-p) // -d  # type: ignore[operator]
    if d == 1:
        return p
    if all(c < 0 for m, c in p.terms.items() if m):  # a ceil division: -((-P + d - 1) // d) collapses
        flipped = -p + (d - 1)
        return -_floordiv(flipped, d) if isinstance(flipped, Expr) else -(flipped // d)
    q: dict[Monomial, int] = {}
    r: dict[Monomial, int] = {}
    for m, c in p.terms.items():
        q[m], r[m] = divmod(c, d)
    whole = _make(q)
    rest = Expr(r)
    if not rest.terms or set(rest.terms) == {()}:
        return whole + rest.const // d
    g = gcd(d, *rest.terms.values())
    if g > 1:
        rest, d = Expr({m: c // g for m, c in rest.terms.items()}), d // g
    if d == 1:
        return whole + _make(rest.terms)
    inner = [(m, c) for m, c in rest.terms.items() if m]
    if len(inner) == 1 and inner[0][1] == 1 and len(inner[0][0]) == 1 and inner[0][0][0].kind == "floor":
        a = inner[0][0][0]
        return whole + _floordiv(a.args[0] + rest.const * a.d, a.d * d)
    bare = len(rest.terms) == 1 and not rest.const and list(rest.terms.items())[0][1] == 1 \
        and len(next(iter(rest.terms))) == 1 and next(iter(rest.terms))[0].kind == "sym"
    atom = Atom("floor", f"{rest.key} // {d}" if bare else f"({rest.key}) // {d}", args=(rest,), d=d)
    return whole + Expr({(atom,): 1})


# ---- comparisons: decided by the algebra, else answered and recorded by the active context ----

_REL = {">": lambda v: v > 0, ">=": lambda v: v >= 0, "==": lambda v: v == 0, "!=": lambda v: v != 0}


class Context(Protocol):
    """What a comparison needs of the active ``guards.Guards``: the hint, earlier answers, where to record."""

    hint: dict[str, int]
    answers: dict[tuple[str, str, int], tuple[bool, tuple[tuple[str, str], ...]]]

    def use(self, key: tuple[str, str]) -> None: ...

    def record(self, e: Expr, rel: str) -> tuple[bool, tuple[tuple[str, str], ...]]: ...


_ACTIVE: list[Context] = []  # entered with guards.guarding, innermost last


def _decide(e: Expr, rel: str) -> bool | None:
    low, neg = e.low(), (-e).low() if isinstance(-e, Expr) else None
    pos_sure = low is not None and (low > 0 if rel in (">", "!=") else low >= 0)
    neg_sure = neg is not None and (neg >= 0 if rel == ">" else neg > 0)
    if rel in (">", ">="):
        return True if pos_sure else False if neg_sure else None
    if (low is not None and low > 0) or (neg is not None and neg > 0):
        return rel == "!="
    return None


def _compare(e: Num, rel: str) -> bool:
    return _compare_held(e, rel)[0]


def _compare_held(e: Num, rel: str) -> tuple[bool, tuple[tuple[str, str], ...]]:
    """The comparison's answer, and the guards (text, rel) it recorded or relied on (none when decided)."""
    if isinstance(e, int):
        return _REL[rel](e), ()
    decided = _decide(e, rel)
    if decided is not None:
        return decided, ()
    if not _ACTIVE:
        raise NotSymbolic(f"the comparison {_guard_text(e, rel)} depends on the input size")
    return _ACTIVE[-1].record(e, rel)


# ---- text ----

def _render(e: Expr) -> str:
    """`2 * ((H + 1) // 2) * W + 3`: terms by degree, constant last; Python syntax (a floor
    division is parenthesised wherever `*` or a leading minus would otherwise bind to it)."""
    order = sorted(e.terms.items(), key=lambda mc: (-len(mc[0]), _mono_key(mc[0])))
    parts: list[str] = []
    for m, c in order:
        alone = len(m) == 1 and abs(c) == 1 and (parts or c > 0)
        atoms = [a.key if alone or a.kind != "floor" else f"({a.key})" for a in m]
        body = " * ".join(([str(abs(c))] if abs(c) != 1 or not m else []) + atoms)
        parts.append((" - " if parts else "-") + body if c < 0 else (" + " if parts else "") + body)
    return "".join(parts) or "0"


def _guard_text(e: Expr, rel: str) -> str:
    """``H // 16 - 14 == 0`` reads better as ``H // 16 == 14``."""
    c = e.const
    return f"{e - c} {rel} {-c}"

