"""Integer expressions in symbolic input sizes (H, W, ...): exact, canonical and torch-free.

An ``Expr`` is a polynomial with integer coefficients over *atoms*: a size symbol, a floor
division ``P // d`` of a polynomial by a positive integer, or ``max``/``min`` of expressions.
It supports the arithmetic that archc's shape rules do on ints (``+ - * // %`` with ints and
with each other), so the unchanged rules compute exact shape expressions. Floor divisions are
kept canonical, which makes compositions collapse: ``((H + 1) // 2 + 1) // 2`` is
``(H + 3) // 4``, and two branches that downsample alike compare equal structurally.

A comparison that the algebra cannot decide for every size (``H // 2 >= 3``) is a *guard*: it is
answered at the hint sizes of the current ``Guards`` context and recorded, so the analysis
knows the conditions under which its formulas hold. Anything inexact (a float scale that is
not a small fraction, ``int()`` of a symbol) raises ``NotSymbolic``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from math import gcd, lcm, prod
from typing import Any

__all__ = ["Expr", "Guard", "Guards", "NotSymbolic", "symbol", "smax", "evaluate", "value_at", "guarding",
           "shape_key", "substitute", "bounds", "piece", "condition"]


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


def smax(*xs: Num) -> Num:
    """max() without a guard: entries that another provably dominates are dropped. Each entry is
    checked against the largest few kept so far (largest at a probe size), so the cost stays
    linear; an entry kept that a later one dominates only makes the max longer, never wrong."""
    flat = list({_text(a): a for x in xs for a in (_max_args(x) or (x,))}.values())
    if len(flat) == 1:
        return flat[0]
    if all(isinstance(x, int) for x in flat):
        return max(flat)
    probe = {n: 1000 for x in flat if isinstance(x, Expr) for n in x.symbols}
    flat.sort(key=lambda x: -(x.value(probe) if isinstance(x, Expr) else x))
    keep: list[Num] = []
    for x in flat:
        if not any(_provably_ge(k, x) for k in keep[:8]):
            keep.append(x)
    if len(keep) == 1:
        return keep[0]
    args = tuple(sorted((k if isinstance(k, Expr) else Expr({(): k}) for k in keep), key=lambda e: e.key))
    key = "max(" + ", ".join(a.key for a in args) + ")"
    return Expr({(Atom("max", key, args=args),): 1})


def _text(x: Num) -> Any:
    """A dictionary key for a size: Exprs by their text (their == records a guard)."""
    return x.key if isinstance(x, Expr) else x


def _max_args(x: Num) -> tuple[Num, ...]:
    """The entries of a max() expression (empty for anything else)."""
    if isinstance(x, Expr) and len(x.terms) == 1:
        (m, c), = x.terms.items()
        if c == 1 and len(m) == 1 and m[0].kind == "max":
            return tuple(a.const if not (a.terms.keys() - {()}) else a for a in m[0].args)
    return ()


def _provably_ge(a: Num, b: Num) -> bool:
    diff = a - b
    if isinstance(diff, int):
        return diff >= 0
    low = diff.low()
    return low is not None and low >= 0


def shape_key(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    """A dictionary key for a shape that may hold expressions."""
    return tuple(d if type(d) is int else _text(d) for d in shape)


# ---- guards ----

@dataclass(frozen=True)
class Guard:
    """``expr REL 0`` held at the hint (REL in >, >=, ==, !=), recorded at ``node``."""

    expr: Expr
    rel: str
    node: str
    index: int

    def holds(self, env: Mapping[str, int], memo: dict[str, int] | None = None) -> bool:
        return _REL[self.rel](self.expr.value(env, memo))

    def text(self) -> str:
        return _guard_text(self.expr, self.rel)


_REL = {">": lambda v: v > 0, ">=": lambda v: v >= 0, "==": lambda v: v == 0, "!=": lambda v: v != 0}
_NEGATE = {">": ">=", ">=": ">", "==": "!=", "!=": "=="}  # for `not (e > 0)`: -e >= 0 etc.


@dataclass
class Guards:
    """The hint sizes that answer undecidable comparisons, and the guards recorded so far."""

    hint: dict[str, int]
    node: str = ""
    items: list[Guard] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)
    # what a node whose rule has no exact form gets instead: (node, input shapes, why) -> NodeInfo
    fallback: Callable[[Any, tuple[Any, ...], NotSymbolic], Any] | None = None
    notes: list[str] = field(default_factory=list)
    # comparisons already guarded: answer, and the guards that hold it
    answers: dict[tuple[str, str, int], tuple[bool, tuple[tuple[str, str], ...]]] = field(default_factory=dict)
    users: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # guard (text, rel) -> nodes that rely on it

    def use(self, key: tuple[str, str]) -> None:
        nodes = self.users.setdefault(key, [])
        if not nodes or nodes[-1] != self.node:
            nodes.append(self.node)


_ACTIVE: list[Guards] = []


@contextmanager
def guarding(guards: Guards) -> Iterator[Guards]:
    _ACTIVE.append(guards)
    try:
        yield guards
    finally:
        _ACTIVE.pop()


def value_at(x: Any, env: Mapping[str, int], memo: dict[str, int] | None = None) -> Any:
    """A size at concrete sizes ``env`` (plain values pass through); records nothing."""
    return x.value(env, memo) if isinstance(x, Expr) else x


def evaluate(x: Any) -> Any:
    """A size at the current hint (plain values pass through); records nothing."""
    if not isinstance(x, Expr):
        return x
    if not _ACTIVE:
        raise NotSymbolic(f"no hint for the symbolic size {x}")
    return x.value(_ACTIVE[-1].hint)


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
    g = _ACTIVE[-1]
    result = _REL[rel](e.value(g.hint))
    held, held_rel = (e, rel) if result else ((-e, _NEGATE[rel]) if rel in (">", ">=") else (e, _NEGATE[rel]))
    assert isinstance(held, Expr)
    held, held_rel = _normal(held, held_rel)
    keys = []
    for part in _factors(held, held_rel, g.hint) or [held]:
        key = (part.key, held_rel)
        if key not in g.seen:
            g.seen.add(key)
            g.items.append(Guard(part, held_rel, g.node, len(g.items)))
        g.use(key)
        keys.append(key)
    return result, tuple(keys)


def _factors(e: Expr, rel: str, hint: Mapping[str, int]) -> list[Expr] | None:
    """``f·g - 1 >= 0`` with f in some symbols and g in others, f, g >= 1 at the hint: the guards
    ``f - 1 >= 0`` and ``g - 1 >= 0`` (a flattened map is non-empty because each side is; f and
    g are sizes the analysis has already held to >= 1)."""
    if rel != ">=" or len(e.symbols) < 2:
        return None
    first = min(e.symbols)
    q = e + 1
    if not isinstance(q, Expr):
        return None
    rows: dict[Monomial, dict[Monomial, int]] = {}
    for m, c in q.terms.items():
        if any(len(a.symbols()) != 1 for a in m):
            return None
        left = tuple(a for a in m if a.symbols() == {first})
        rows.setdefault(left, {})[tuple(a for a in m if a.symbols() != {first})] = c
    r0 = next(iter(rows))
    col = rows[r0]
    base = next(iter(col))
    ratio = {j: Fraction(c, col[base]) for j, c in col.items()}
    if any(set(row) != set(col) or any(row[j] != row[base] * ratio[j] for j in row) for row in rows.values()):
        return None
    scale = lcm(*(r.denominator for r in ratio.values()))
    f = Expr({m: row[base] for m, row in rows.items()})
    g = Expr({j: int(r * scale) for j, r in ratio.items()})
    if scale != 1 or f.value(hint) < 1 or g.value(hint) < 1:
        return None
    ff, gg = f - 1, g - 1
    return [x for x in (ff, gg) if isinstance(x, Expr)]


def condition(e: Expr, rel: str, node: str = "") -> Guard:
    """The guard ``e REL 0`` in the one form `Guards` records it (REL in >, >=, ==, !=)."""
    held, held_rel = _normal(e, rel)
    return Guard(held, held_rel, node, -1)


def _normal(e: Expr, rel: str) -> tuple[Expr, str]:
    """One form per guard: `>` as `>= 1`, coefficients divided by their common factor."""
    if rel == ">":
        e, rel = e - 1, ">="  # type: ignore[assignment]
    g = gcd(*(c for m, c in e.terms.items() if m))
    c = e.const
    if g > 1 and (rel == ">=" or c % g == 0):
        e = Expr({m: c2 // g for m, c2 in e.terms.items() if m}) + c // g  # g·Q + c >= 0 iff Q + c // g >= 0
    return e, rel


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


# ---- partial evaluation, bounds over a box, affine pieces (used by analyze.symbolic) ----

def substitute(x: Any, env: Mapping[str, int]) -> Any:
    """``x`` with the symbols of ``env`` replaced by their values, kept canonical (plain values pass through)."""
    if not isinstance(x, Expr) or not (x.symbols & env.keys()):
        return x
    total: Any = 0
    for m, c in x.terms.items():
        term: Any = c
        for a in m:
            term = term * _substitute_atom(a, env)
        total = total + term
    return total


def _substitute_atom(a: Atom, env: Mapping[str, int]) -> Any:
    if a.kind == "sym":
        return env.get(a.name, Expr({(a,): 1}))
    if not (a.symbols() & env.keys()):
        return Expr({(a,): 1})
    args = [substitute(e, env) for e in a.args]
    if a.kind == "floor":
        return _floordiv(args[0], a.d)
    return smax(*args) if a.kind == "max" else -smax(*(-v for v in args))


Box = Mapping[str, tuple[int, "int | None"]]  # symbol -> (lowest, highest or None: unbounded)


def bounds(x: Any, box: Box) -> tuple[int | None, int | None]:
    """Lower and upper bounds of ``x`` over every size in ``box`` (None: unbounded that way)."""
    if not isinstance(x, Expr):
        return x, x
    lo: int | None = 0
    hi: int | None = 0
    for m, c in x.terms.items():
        t_lo: int | None = c
        t_hi: int | None = c
        for a in m:
            t_lo, t_hi = _mul_bounds((t_lo, t_hi), _atom_bounds(a, box))
        lo = None if lo is None or t_lo is None else lo + t_lo
        hi = None if hi is None or t_hi is None else hi + t_hi
    return lo, hi


def _atom_bounds(a: Atom, box: Box) -> tuple[int | None, int | None]:
    if a.kind == "sym":
        return box.get(a.name, (1, None))
    parts = [bounds(e, box) for e in a.args]
    if a.kind == "floor":
        lo, hi = parts[0]
        return (None if lo is None else lo // a.d), (None if hi is None else hi // a.d)
    los, his = [p[0] for p in parts], [p[1] for p in parts]
    if a.kind == "max":
        return max((v for v in los if v is not None), default=None), None if None in his else max(his)  # type: ignore
    return None if None in los else min(los), min((v for v in his if v is not None), default=None)  # type: ignore


def _mul_bounds(p: tuple[int | None, int | None], q: tuple[int | None, int | None]) -> tuple[int | None, int | None]:
    """Interval product; None stands for -inf (low side) or +inf (high side)."""
    inf = float("inf")
    a = (-inf if p[0] is None else p[0], inf if p[1] is None else p[1])
    b = (-inf if q[0] is None else q[0], inf if q[1] is None else q[1])
    prods = [x * y if x and y else 0 for x in a for y in b]  # 0 * inf is 0 here: a bound of 0 stays 0
    lo, hi = min(prods), max(prods)
    return (None if lo == -inf else int(lo)), (None if hi == inf else int(hi))


Piece = tuple[int, int, "int | None"]  # value at x, slope on the piece, where the piece ends (None: never)


def piece(x: Any, s: str, at: int, env: Mapping[str, int], memo: dict[str, Piece] | None = None) -> Piece:
    """``x`` as a function of the size ``s`` (others at ``env``) near ``s = at``: it is affine,
    ``value + slope * (t - at)``, for every t from ``at`` up to the end of the piece. Floor divisions
    are constant on a piece; a product of two terms that both grow ends the piece after one size."""
    if not isinstance(x, Expr):
        return x, 0, None
    memo = {} if memo is None else memo
    value, slope, end = 0, 0, None
    for m, c in x.terms.items():
        v, sl, e = c, 0, None
        for a in m:
            av, asl, ae = _atom_piece(a, s, at, env, memo)
            if sl and asl:  # two growing factors: not affine past this size
                sl, e = 0, at + 1
            else:
                sl = sl * av + v * asl
            v = v * av
            e = ae if e is None else e if ae is None else min(e, ae)
        value, slope = value + v, slope + sl
        end = e if end is None else end if e is None else min(end, e)
    return value, slope, end


def _atom_piece(a: Atom, s: str, at: int, env: Mapping[str, int], memo: dict[str, Piece]) -> Piece:
    got = memo.get(a.key)
    if got is not None:
        return got
    if a.kind == "sym":
        got = (at, 1, None) if a.name == s else (env[a.name], 0, None)
    elif a.kind == "floor":
        v, sl, e = piece(a.args[0], s, at, env, memo)
        q = v // a.d
        step = None if sl == 0 else at + -(-(a.d * (q + 1) - v) // sl) if sl > 0 else at + (v - a.d * q) // -sl + 1
        got = (q, 0, e if step is None else step if e is None else min(e, step))
    else:
        parts = [piece(e, s, at, env, memo) for e in a.args]
        sign = 1 if a.kind == "max" else -1
        best = max(parts, key=lambda p: (sign * p[0], sign * p[1]))
        ends = [p[2] for p in parts if p[2] is not None]
        for p in parts:  # where another entry overtakes the one on top
            if sign * p[1] > sign * best[1]:
                ends.append(at + (sign * (best[0] - p[0])) // (sign * (p[1] - best[1])) + 1)
        got = (best[0], best[1], min(ends) if ends else None)
    memo[a.key] = got
    return got
