"""Reading symbolic sizes: at concrete sizes or at the hint, as dictionary keys, ``max`` without a guard,
partial substitution, bounds over a box and affine pieces (the last three used by the solver)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archc.ir.algebra.sizes import _ACTIVE, Atom, Expr, NotSymbolic, Num, _floordiv

__all__ = ["bounds", "evaluate", "piece", "shape_key", "smax", "substitute", "value_at"]


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
