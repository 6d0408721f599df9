"""The tokenizer and recursive-descent parser of the `${...}` language: text to a small tuple tree.

Grammar (Python-like): literals (ints, floats, 'strings', [lists], true/false/none),
declared names, `+ - * / // % **`, comparisons, `and or not`, `a if c else b`, list indexing
and slicing, list comprehensions (``[e for a, b in xs if c]``, at most 2 ``for`` deep), and calls
to the functions in :data:`FUNCTIONS`. Nothing else exists: no attributes, no dunders, no generator
expressions, no lambdas, no format strings. Text length, parser depth and comprehension nesting are
bounded here, and every numeric literal by :func:`number_problem`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from archc.errors import ExprError, Loc
from archc.expr.functions import FUNCTIONS
from archc.expr.limits import MAX_BITS, MAX_COMP, MAX_DEPTH, MAX_LEN, number_problem

__all__ = ["Node", "parse"]

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?)
  | (?P<str>'[^'\\\n]*'|"[^"\\\n]*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|//|==|!=|<=|>=|[-+*/%<>()\[\],:])
""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not", "if", "else", "for", "in"}
_CONSTS = {"true": True, "True": True, "false": False, "False": False, "none": None, "None": None}

Node = tuple[Any, ...]


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
