"""Guards: the comparisons of sizes that the algebra cannot decide for every size, answered at the hint
sizes of the active `Guards` and recorded (with the nodes that rely on each), so the analysis knows the
conditions under which its formulas hold."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from math import gcd, lcm
from typing import Any

from archc.ir.algebra.sizes import _ACTIVE, _REL, Expr, Monomial, NotSymbolic, _guard_text

__all__ = ["Guard", "Guards", "condition", "guarding"]


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
    # while a list: the guards recorded or relied on, in order (a rule run's `events`, which `replay` repeats)
    log: list[tuple[str, str]] | None = None
    by_key: dict[tuple[str, str], Guard] = field(default_factory=dict)  # the guards recorded, by (text, rel)

    def use(self, key: tuple[str, str]) -> None:
        nodes = self.users.setdefault(key, [])
        if not nodes or nodes[-1] != self.node:
            nodes.append(self.node)
        if self.log is not None:
            self.log.append(key)

    def events(self, keys: list[tuple[str, str]]) -> tuple[tuple[tuple[str, str], Expr, str], ...]:
        """The logged ``keys`` with their guards' expressions: what `replay` needs, in any other `Guards`."""
        return tuple((k, self.by_key[k].expr, k[1]) for k in keys)

    def replay(self, events: tuple[tuple[tuple[str, str], Expr, str], ...]) -> None:
        """What the rule run that logged ``events`` did to these guards, at this node: each guard recorded
        where it is new, and relied on (at the same hint the run's comparisons answer alike)."""
        for key, expr, rel in events:
            if key not in self.seen:
                self._add(key, expr, rel)
            self.use(key)

    def _add(self, key: tuple[str, str], expr: Expr, rel: str) -> None:
        self.seen.add(key)
        self.by_key[key] = g = Guard(expr, rel, self.node, len(self.items))
        self.items.append(g)

    def record(self, e: Expr, rel: str) -> tuple[bool, tuple[tuple[str, str], ...]]:
        """An undecided ``e REL 0``: its answer at the hint, and the guards (text, rel) it records or relies on."""
        g = self
        result = _REL[rel](e.value(g.hint))
        held, held_rel = (e, rel) if result else ((-e, _NEGATE[rel]) if rel in (">", ">=") else (e, _NEGATE[rel]))
        assert isinstance(held, Expr)
        held, held_rel = _normal(held, held_rel)
        keys = []
        for part in _factors(held, held_rel, g.hint) or [held]:
            key = (part.key, held_rel)
            if key not in g.seen:
                g._add(key, part, held_rel)
            g.use(key)
            keys.append(key)
        return result, tuple(keys)


@contextmanager
def guarding(guards: Guards) -> Iterator[Guards]:
    _ACTIVE.append(guards)
    try:
        yield guards
    finally:
        _ACTIVE.pop()


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

