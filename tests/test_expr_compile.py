"""Compiled `${...}` expressions (archc/expr/compiled.py, issue 28) are exactly the tree walker (`_Eval.run`):
the same value (with its type), the same work charged to the budget, or the same error (type, message,
location, hint) — on every evaluation the zoo, the examples, the error goldens and the attacks make while
resolving, in their real environments (`in_shape` included), and on hand-written error cases.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from archc.errors import ArchcError, Loc
from archc.expr import Budget, evaluator
from archc.expr.compiled import compiled
from archc.resolve import memo, resolve

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted([*ROOT.glob("specs/*.yaml"), *ROOT.glob("specs/examples/*.yaml"), *ROOT.glob("tests/errors/*.yaml"),
                *ROOT.glob("tests/attacks/*.yaml")])
LOC = Loc("spec.yaml", 3, 7)
COMPILED, WALKED = evaluator.evaluate, evaluator.evaluate_walk


def run(how: Any, text: str, env: dict[str, Any]) -> tuple[Any, ...]:
    """(value, its type, steps charged) or the error in full."""
    budget = Budget(10**9)
    try:
        value = how(text, env, LOC, budget)
    except ArchcError as e:
        return ("error", type(e).__name__, e.message, str(e.loc), e.hint)
    return ("value", repr(value), type(value).__name__, budget.used)


def same(text: str, env: dict[str, Any]) -> tuple[Any, ...]:
    walked = run(WALKED, text, env)
    assert run(COMPILED, text, env) == walked, text
    return walked


def test_every_expression_of_the_zoo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolving every spec file, each evaluation is made both ways in its own environment and compared."""
    seen: set[str] = set()
    count = [0]

    def both(text: str, env: Any, loc: Loc | None = None, budget: Budget | None = None) -> Any:
        seen.add(text)
        count[0] += 1
        same(text, dict(env))
        return COMPILED(text, env, loc, budget)

    monkeypatch.setattr(evaluator, "evaluate", both)
    with memo.disabled():  # every instance expands, so every argument is evaluated
        for path in FILES:
            with contextlib.suppress(ArchcError):  # the goldens fail on purpose, after evaluating what they can
                resolve(path)
    assert len(seen) > 300 and count[0] > 10_000, (len(seen), count)


ENV = {"n": 3, "x": 2.5, "b": True, "s": "ab", "xs": [1, 2, 3], "pairs": [[1, 2], [3, 4]], "none": None,
       "nested": [[1, [2]], [3]], "big": 2**62, "empty": []}
CASES = [
    # values, short-circuits and chains that must not evaluate their other side
    "n + x * 2 - n // 2 % 2", "-n ** 2", "+x", "not b", "b and n", "0 and missing", "1 or missing",
    "n if b else missing", "missing if not b else n", "1 < n < 5", "5 < n < missing", "xs[1:]", "xs[:-1]",
    "xs[-1]", "[a * c for a, c in pairs if a > 1]", "[x + y for x in xs for y in xs]", "[[y for y in xs] for x in xs]",
    "sum([s[0] for s in pairs])", "s + 'c'", "xs + xs", "len(s)", "str(n)", "round(x)", "min(xs)",
    "make_divisible(n * 8, 8)", "[x for x in xs]", "x", "[]", "[1, [2, [3]]]", "nested == nested",
    "none == none", "int(x)", "float(n)", "bool(empty)",
    # errors, each with its message and location
    "missing", "xss", "n / 0", "n % 0", "xs[3]", "xs['a']", "n[0]", "[x for x in n]", "[a for a, c in xs]",
    "xs < n", "s - 1", "-s", "len(n, n)", "round(x, 99)", "sqrt(-1)", "big * big", "2 ** 100", "0 ** -1",
    "(-8) ** 0.5", "[x for x in range(3000)] + [x for x in range(3000)]",
    "[[y for y in range(100)] for x in range(100)]",
    "range(20000)", "s * 2", "xs[1:'a']", "log(0)", "exp(100)", "n +", "a.b", "__import__", "[x for x in]",
    "[x for x in xs for y in xs for z in xs]", "9" * 30, "'" + "a" * 600 + "'",
]


@pytest.mark.parametrize("text", CASES)
def test_cases_walked_and_compiled_agree(text: str) -> None:
    same(text, dict(ENV))


def test_work_and_errors_are_located_the_same() -> None:
    """A sample of the cases above, pinned: the compiled form must keep these exact outcomes."""
    assert same("missing", dict(ENV)) == ("error", "ExprError", "unknown name 'missing' in expression 'missing'",
                                          "spec.yaml:3:7",
                                          "names in scope: b, big, empty, n, nested, none, pairs, s, x, xs")
    assert same("0 and missing", dict(ENV)) == ("value", "0", "int", 2)  # 1 + 2 terms // 2
    out = same("[x for x in range(3000)] + [x for x in range(3000)]", dict(ENV))
    assert out[0] == "error" and "too much work" in out[2], out


def test_compiled_once_per_text() -> None:
    assert compiled("n + 1") is compiled("n + 1")  # kept per text
    with pytest.raises(ArchcError) as e:
        compiled("n +", LOC)
    assert str(e.value.loc) == "spec.yaml:3:7"
