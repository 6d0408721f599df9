"""The strict YAML reader and the expression evaluator, unit by unit."""

from __future__ import annotations

import time

import pytest

from archc.errors import ExprError, YamlError
from archc.expr import interpolate
from archc.expr.evaluator import make_divisible
from archc.load import load_text


def test_yaml_12_scalars_stay_what_they_look_like():
    data = load_text("a: [no, on, yes, off, 1:30, 2020-01-01, 1e6, 0x10, -3, 1.5, ~, true, '010']")
    assert data["a"] == ["no", "on", "yes", "off", "1:30", "2020-01-01", 1e6, 16, -3, 1.5, None, True, "010"]


@pytest.mark.parametrize("text,needle", [
    ("a: 1\na: 2", "duplicate key 'a'"),
    ("a: &x 1\nb: *x", "anchors and aliases"),
    ("a: !!python/name:os.system x", "tags are not allowed"),
    ("a: !custom 3", "tags are not allowed"),
    ("a: 010", "ambiguous number"),
    ("a: .nan", "not a finite number"),
    ("a: .inf", "not a finite number"),
    ("a: [1", "invalid YAML"),
    ("a: 1\n---\nb: 2", "exactly one YAML document"),
    ("[" * 100 + "]" * 100, "nesting deeper"),
])
def test_yaml_refusals(text, needle):
    with pytest.raises(YamlError, match=needle) as info:
        load_text(text, "t.yaml")
    assert info.value.loc is not None and info.value.loc.file == "t.yaml"


def test_alias_bomb_refused_fast():
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    start = time.perf_counter()
    with pytest.raises(YamlError, match="aliases"):
        load_text(bomb)
    assert time.perf_counter() - start < 0.5


def test_deep_nesting_refused_before_composing():
    with pytest.raises(YamlError, match="nesting"):
        load_text("[" * 60000 + "]" * 60000)


def test_huge_file_refused():
    with pytest.raises(YamlError, match="larger than"):
        load_text("a: '" + "x" * 1_100_000 + "'")


ENV = {"i": 0, "layers": [3, 4, 6, 3], "planes": 64, "stride": 2, "cfg": [64, "M"], "w": 1.4}


@pytest.mark.parametrize("expr,value", [
    ("${planes * 4}", 256),
    ("${i == 0 and stride or 1}", 2),
    ("${2 if i == 0 else 1}", 2),
    ("${layers[1:3]}", [4, 6]),
    ("${layers[-1]}", 3),
    ("${sum(layers[:2])}", 7),
    ("${cfg[1] == 'M'}", True),
    ("${-2 ** 2}", -4),
    ("${1 < 2 < 3}", True),
    ("${ceil(3 * 1.2)}", 4),
    ("${range(3)}", [0, 1, 2]),
    ("${max(1, min(5, 3))}", 3),
    ("${not i}", True),
    ("layer${i + 1}", "layer1"),
    ("${make_divisible(32 * w, 8)}", 48),
    ("${7 // 2 + 7 % 2}", 4),
])
def test_expressions(expr, value):
    assert interpolate(expr, ENV) == value


@pytest.mark.parametrize("expr,needle", [
    ("${2 ** 100000}", "too large"),
    ("${10 ** 20 * 10 ** 20}", "too large"),
    ("${().__class__}", "unexpected"),
    ("${x.y}", "unexpected character"),
    ("${open('f')}", "only the built-in functions"),
    ("${__import__('os')}", "only the built-in functions"),
    ("${'ab'[0]}", "only lists can be indexed"),
    ("${f'x'}", "unexpected"),
    ("${[x for x in layers]}", "found 'for'"),
    ("${lambda: 1}", "unexpected"),
    ("${range(100000)}", "over the limit"),
    ("${1 / 0}", "division by zero"),
    ("${plnaes}", "unknown name 'plnaes'"),
    ("${layers[9]}", "out of range"),
    ("${" + "(" * 50 + "1" + ")" * 50 + "}", "nested too deeply"),
    ("${" + "1+" * 300 + "1}", "longer than"),
    ("${'a' * 3}", "needs numbers"),
])
def test_expression_refusals(expr, needle):
    with pytest.raises(ExprError, match=needle):
        interpolate(expr, ENV)


def test_make_divisible_matches_mobilenet_rule():
    # torchvision's MobileNetV2 channel rounding, checked on values it documents in use
    assert [make_divisible(c * 0.75, 8) for c in (32, 16, 24, 96, 1280)] == [24, 16, 24, 72, 960]
    assert make_divisible(10, 8) == 16  # never drop more than 10%
