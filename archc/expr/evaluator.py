"""A small expression language for specs, parsed and evaluated by hand.

Grammar (Python-like): literals (ints, floats, 'strings', [lists], true/false/none),
declared names, `+ - * / // % **`, comparisons, `and or not`, `a if c else b`, list indexing
and slicing, list comprehensions (``[e for a, b in xs if c]``, at most 2 ``for`` deep), and calls
to the functions in :data:`FUNCTIONS`. Nothing else exists: no attributes, no dunders, no generator
expressions, no lambdas, no format strings. Size, nesting depth and the
magnitude of every number are bounded *before* computing, so `2 ** 100000` is refused; every
literal, argument and result is bounded too (see README.md), and each evaluation has a work cap
and may charge a shared :class:`Budget`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from archc.errors import ExprError, LimitError, Loc
from archc.expr.lazy import Lazy

__all__ = ["FUNCTIONS", "Budget", "deep_interpolate", "evaluate", "interpolate", "is_expr", "number_problem",
           "parse"]

MAX_LEN = 500  # characters of one expression
MAX_DEPTH = 40  # parser nesting
MAX_BITS = 64  # integers: |n| < 2 ** 64
MAX_FLOAT = 1e18  # floats: finite and |x| <= 1e18
MAX_SEQ = 10_000  # items of one list, characters of one string
MAX_WEIGHT = 100_000  # items and characters inside one list value, nested lists included
MAX_NEST = 32  # nesting of list values
MAX_NDIGITS = 30  # round(x, n): |n| <= 30
MAX_COMP = 2  # `for` clauses nested in one comprehension, those of comprehensions inside it included
MAX_WORK = 5_000  # work units of one evaluation (about 20 ms): a term visited, or ITEMS_PER_UNIT items touched
ITEMS_PER_UNIT = 32
WORK_PER_STEP = 2  # an evaluation charges a shared Budget 1 + work // WORK_PER_STEP steps


def number_problem(v: Any) -> str | None:
    """Why a number is out of bounds, or None: the one rule for literals, YAML values and results."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int) and v.bit_length() > MAX_BITS:
        return f"integer over {MAX_BITS} bits"
    if isinstance(v, float) and not math.isfinite(v):
        return "number is not finite"
    if isinstance(v, float) and abs(v) > MAX_FLOAT:
        return f"number larger than {MAX_FLOAT:g}"
    if isinstance(v, complex):
        return "complex number"
    return None


class Budget:
    """Work allowed to one resolve, in steps, shared by expansion and expression evaluation."""

    def __init__(self, limit: int, hint: str | None = None) -> None:
        self.limit, self.used, self.hint = limit, 0, hint

    def room(self, n: int, loc: Loc | None, what: str) -> None:
        """Refuse early when ``n`` more steps (e.g. a repeat count) cannot fit."""
        if self.used + n > self.limit:
            raise LimitError(f"{what} would take the expansion over {self.limit:,} steps", loc, hint=self.hint)

    def spend(self, n: int, loc: Loc | None) -> None:
        self.used += n
        if self.used > self.limit:
            raise LimitError(f"expanding the spec takes more than {self.limit:,} steps", loc, hint=self.hint)

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?)
  | (?P<str>'[^'\\\n]*'|"[^"\\\n]*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|//|==|!=|<=|>=|[-+*/%<>()\[\],:])
""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not", "if", "else", "for", "in"}
_CONSTS = {"true": True, "True": True, "false": False, "False": False, "none": None, "None": None}
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}

Node = tuple[Any, ...]


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of ``divisor``, never dropping more than 10% (MobileNet rule)."""
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
        raise ValueError(f"divisor must be a positive integer, got {divisor!r}")
    floor_ = divisor if min_value is None else min_value
    out = max(floor_, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


def _round(x: float, ndigits: int | None = None) -> float:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_NDIGITS:  # round(8, -10 ** 9) would never return
        raise ValueError(f"digits {ndigits} outside -{MAX_NDIGITS}..{MAX_NDIGITS}")
    return round(x, ndigits)


def _sqrt(x: float) -> float:
    if isinstance(x, (int, float)) and x < 0:
        raise ValueError(f"square root of a negative number ({x})")
    return math.sqrt(x)


def _range(*args: int) -> list[int]:
    r = range(*args)
    try:
        n: int | None = len(r)
    except OverflowError:  # more items than a C ssize_t holds
        n = None
    if n is None or n > MAX_SEQ:
        raise ValueError(f"range of {'more than 2**63' if n is None else n} items is over the limit of {MAX_SEQ}")
    return list(r)


def _log(x: float, base: float | None = None) -> float:
    """Natural logarithm, or to ``base``: x > 0, base > 0 and not 1 (results are then finite)."""
    if isinstance(x, (int, float)) and x <= 0:
        raise ValueError(f"logarithm of a number that is not positive ({x})")
    if base is None:
        return math.log(x)
    if isinstance(base, (int, float)) and (base <= 0 or base == 1):
        raise ValueError(f"base {base} must be positive and not 1")
    return math.log(x, base)


_EXP_MAX = math.log(MAX_FLOAT)


def _exp(x: float) -> float:
    if isinstance(x, (int, float)) and x > _EXP_MAX:  # refused before computing (exp(1e18) overflows)
        raise ValueError(f"exp({x}) is larger than {MAX_FLOAT:g}")
    return math.exp(x)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min, "max": max, "abs": abs, "round": _round, "int": int, "float": float,
    "ceil": math.ceil, "floor": math.floor, "sqrt": _sqrt, "len": len, "sum": sum,
    "range": _range, "make_divisible": make_divisible, "str": str, "bool": bool, "log": _log, "exp": _exp,
}


def _nesting(node: Any) -> int:
    """How many comprehension `for` clauses nest inside a parsed node (a comp node stores its own)."""
    if not isinstance(node, tuple):
        return 0
    if node and node[0] == "comp":
        return int(node[3])
    return max((_nesting(x) for x in node), default=0)


class _Parser:
    def __init__(self, text: str, loc: Loc | None) -> None:
        self.text, self.loc = text, loc
        self.toks = self._tokenize(text)
        self.pos = 0
        self.depth = 0

    def fail(self, msg: str, hint: str | None = None) -> ExprError:
        return ExprError(f"{msg} in expression '{self.text}'", self.loc, hint=hint)

    def _tokenize(self, text: str) -> list[tuple[str, str]]:
        toks, i = [], 0
        while i < len(text):
            m = _TOKEN.match(text, i)
            if not m:
                raise self.fail(f"unexpected character {text[i]!r}")
            kind = m.lastgroup or ""
            if kind == "name" and m.group() in _KEYWORDS:
                kind = "op"
            if kind != "ws":
                toks.append((kind, m.group()))
            i = m.end()
        return toks + [("end", "")]

    def peek(self) -> tuple[str, str]:
        return self.toks[self.pos]

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.toks[self.pos]
        if value is not None and tok[1] != value:
            raise self.fail(f"expected '{value}' but found '{tok[1] or 'end'}'")
        self.pos += 1
        return tok

    def accept(self, *values: str) -> str | None:
        kind, val = self.peek()
        if kind == "op" and val in values:
            self.pos += 1
            return val
        return None

    def parse(self) -> Node:
        node = self.expr()
        if self.peek()[0] != "end":
            raise self.fail(f"unexpected '{self.peek()[1]}'")
        return node

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail("expression nested too deeply")
        node = self.binary(0)
        if self.accept("if"):
            cond = self.binary(0)
            self.take("else")
            node = ("ifelse", cond, node, self.expr())
        self.depth -= 1
        return node

    _LEVELS: list[tuple[str, ...]] = [("or",), ("and",), ("not",), ("==", "!=", "<", "<=", ">", ">="),
                                      ("+", "-"), ("*", "/", "//", "%")]

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        ops = self._LEVELS[level]
        if ops == ("not",):
            return ("not", self.binary(level)) if self.accept("not") else self.binary(level + 1)
        node = self.binary(level + 1)
        if level == 3:  # chained comparisons: a < b < c
            pairs = []
            while op := self.accept(*ops):
                pairs.append((op, self.binary(level + 1)))
            return ("cmp", node, tuple(pairs)) if pairs else node
        while op := self.accept(*ops):
            node = (op, node, self.binary(level + 1))
        return node

    def unary(self) -> Node:
        if op := self.accept("-", "+"):
            return ("neg" if op == "-" else "pos", self.unary())
        node = self.postfix()
        if self.accept("**"):
            node = ("**", node, self.unary())
        return node

    def postfix(self) -> Node:
        node = self.atom()
        while True:
            if self.accept("["):
                node = self.subscript(node)
            elif self.peek() == ("op", "("):
                if node[0] != "name" or node[1] not in FUNCTIONS:
                    raise self.fail("only the built-in functions can be called "
                                    f"({', '.join(sorted(FUNCTIONS))})")
                self.take("(")
                node = ("call", node[1], tuple(self.items(")")))
            else:
                return node

    def subscript(self, node: Node) -> Node:
        lo = hi = None
        if self.peek() != ("op", ":"):
            lo = self.expr()
        if self.accept(":"):
            if self.peek() != ("op", "]"):
                hi = self.expr()
            self.take("]")
            return ("slice", node, lo, hi)
        self.take("]")
        if lo is None:
            raise self.fail("empty index")
        return ("index", node, lo)

    def items(self, close: str) -> list[Node]:
        out: list[Node] = []
        while not self.accept(close):
            out.append(self.expr())
            if not self.accept(","):
                self.take(close)
                break
        return out

    def number(self, val: str) -> float:
        """A numeric literal, bounded like every result (no 5,000-digit integers, no 1e999)."""
        is_float = any(c in val for c in ".eE")
        if not is_float and len(val.lstrip("0")) > 20:
            raise self.fail(f"integer over {MAX_BITS} bits")
        v = float(val) if is_float else int(val)
        problem = number_problem(v)
        if problem:
            raise self.fail(problem)
        return v

    def atom(self) -> Node:
        kind, val = self.take()
        if kind == "num":
            return ("const", self.number(val))
        if kind == "str":
            return ("const", val[1:-1])
        if kind == "name":
            return ("const", _CONSTS[val]) if val in _CONSTS else ("name", val)
        if (kind, val) == ("op", "("):
            node = self.expr()
            self.take(")")
            return node
        if (kind, val) == ("op", "["):
            return self.list_or_comprehension()
        raise self.fail(f"unexpected '{val or 'end'}'")

    def list_or_comprehension(self) -> Node:
        """After '[': a list literal, or ``[elem for targets in xs if cond ...]``."""
        if self.accept("]"):
            return ("list", ())
        first = self.expr()
        if self.accept("for"):
            return self.comprehension(first)
        if self.accept(","):
            return ("list", (first, *self.items("]")))
        self.take("]")
        return ("list", (first,))

    def comprehension(self, elem: Node) -> Node:
        """``("comp", elem, ((names, unpack, iterable, conds), ...), nesting)``; 'for' already taken."""
        gens = []
        while True:
            names, unpack = self.targets()
            self.take("in")
            source = self.binary(0)  # no `a if c else b` here: `if` starts a filter, as in Python
            conds = []
            while self.accept("if"):
                conds.append(self.binary(0))
            gens.append((names, unpack, source, tuple(conds)))
            if not self.accept("for"):
                break
        self.take("]")
        inner = max(_nesting(elem), *(_nesting(g[2:]) for g in gens))
        if len(gens) + inner > MAX_COMP:
            raise self.fail(f"comprehensions nested more than {MAX_COMP} deep",
                            f"at most {MAX_COMP} `for` clauses, counting those of comprehensions inside it; "
                            "put a table in params instead")
        return ("comp", elem, tuple(gens), len(gens) + inner)

    def targets(self) -> tuple[tuple[str, ...], bool]:
        """Loop variables: ``x``, ``a, b`` or ``(a, b)``; the flag says whether items are unpacked."""
        paren = self.accept("(") is not None
        names = [self.target()]
        while self.accept(","):
            names.append(self.target())
        if paren:
            self.take(")")
        return tuple(names), paren or len(names) > 1

    def target(self) -> str:
        kind, val = self.take()
        if kind != "name" or val in _CONSTS:
            raise self.fail(f"expected a loop variable name but found '{val or 'end'}'")
        return val


def parse(text: str, loc: Loc | None = None) -> Node:
    """Parse an expression (without the surrounding ``${}``) into a small tuple tree."""
    if len(text) > MAX_LEN:
        raise ExprError(f"expression longer than {MAX_LEN} characters", loc)
    try:
        return _parse_cached(text)
    except ExprError as e:
        raise e.located(loc) from None


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Node:
    return _Parser(text, None).parse()


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
        left = self.run(n[1])
        for op, rnode in n[2]:
            right = self.run(rnode)
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
        idx: list[Any] = [self.run(x) if x is not None else None for x in n[2:]]
        if any(i is not None and (isinstance(i, bool) or not isinstance(i, int)) for i in idx):
            raise self.fail("list indices must be integers")
        if n[0] == "slice":
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


def is_expr(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


_INTERP = re.compile(r"\$\{([^{}]*)\}")


def evaluate(text: str, env: Mapping[str, Any], loc: Loc | None = None, budget: Budget | None = None) -> Any:
    """Evaluate an expression (without ``${}``) in ``env``, charging its work to ``budget``."""
    ev = _Eval(env, text, loc)
    value = ev.run(parse(text, loc))
    if budget is not None:
        budget.spend(1 + ev.work // WORK_PER_STEP, loc)
    return value


def interpolate(value: str, env: Mapping[str, Any], loc: Loc | None = None, budget: Budget | None = None) -> Any:
    """Resolve a spec string: ``"${e}"`` gives e's value (any type); ``"a${e}b"`` gives a string."""
    whole = _INTERP.fullmatch(value.strip())
    if whole:
        return evaluate(whole.group(1), env, loc, budget)
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
