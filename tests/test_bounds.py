"""Bounds that are promised: every hostile number, name, loop or input ends in a located archc error, fast.

Each case asserts the error class, the message, the location (file:line:col) and that the refusal
came within a counted bound of work (function calls and allocation peak, tests/work.py): a missing
limit shows as millions of calls or gigabytes. No wall-clock time is asserted (machines are loaded).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

import archc
from archc.errors import ArchcError, ExprError, LimitError, Loc, ResolveError, SchemaError, YamlError
from archc.expr import Budget, interpolate
from archc.load import load_text
from archc.resolve import Limits, resolve
from tests.work import Work, bounded

HERE = Loc("spec.yaml", 7, 9)
# The bound for any refusal: a cold check of resnet18 (imports and registry included) makes ~180,000
# calls; the largest refusal here makes ~1.6 million. A missing limit (10^6 repeats, a 10^12-item range)
# would make tens of millions.
MAX_CALLS = 5_000_000


def under_bar() -> AbstractContextManager[Work]:
    return bounded(MAX_CALLS)


def refused(expr: str, env: dict | None = None) -> ExprError:
    with under_bar(), pytest.raises(ExprError) as info:
        interpolate(expr, env or {}, HERE)
    assert info.value.loc == HERE
    return info.value


# -- 1. numbers: every builtin and operator, with zero, huge and negative operands ---------------------

@pytest.mark.parametrize("expr,needle", [
    ("${min([])}", "min(): "),
    ("${max([1, 'a'])}", "max(): "),
    ("${abs([1])}", "abs(): "),
    ("${round(8, -10 ** 9)}", "digits -1000000000 outside -30..30"),
    ("${round(1.5, 10 ** 9)}", "digits 1000000000 outside"),
    ("${int([1])}", "int(): "),
    ("${float(2 ** 63)}", "number larger than 1e+18"),
    ("${ceil([1.5])}", "ceil(): "),
    ("${floor(1e18) * 1000}", "product is too large"),
    ("${sqrt(-1)}", "square root of a negative number"),
    ("${len(5)}", "len(): "),
    ("${sum([2 ** 62, 2 ** 62, 2 ** 62, 2 ** 62, 2 ** 62])}", "integer over 64 bits"),
    ("${sum([1e18, 1e18])}", "number larger than 1e+18"),
    ("${range(10 ** 18)}", "over the limit of 10000"),
    ("${range(-2 ** 63, 2 ** 63 - 1)}", "more than 2**63 items"),
    ("${range(0, 5, 0)}", "range(): "),
    ("${make_divisible(8, 0)}", "divisor must be a positive integer, got 0"),
    ("${make_divisible(8, -8)}", "divisor must be a positive integer"),
    ("${make_divisible(8, 2.5)}", "divisor must be a positive integer"),
    ("${str(range(10000))}", "longer than 10000"),
    ("${bool('x')}", "bool() got an argument of the wrong type"),
    ("${0.5 ** -100000}", "is too large"),
    ("${2 ** 64}", "integer over 64 bits"),
    ("${(-2) ** 65}", "is too large"),
    ("${10.0 ** 18.5}", "number larger than 1e+18"),
    ("${(-8) ** 0.5}", "fractional power"),
    ("${0 ** -1}", "zero to a negative power"),
    ("${1 // 0}", "division by zero"),
    ("${1 % 0}", "division by zero"),
    ("${1.5 / 0.0}", "division by zero"),
    ("${1e18 / 5e-324}", "number is not finite"),
    ("${2 ** 63 + 2 ** 63}", "integer over 64 bits"),
    ("${-(2 ** 63) * 4}", "product is too large"),
    ("${1e999}", "number is not finite"),
    ("${-1e999}", "number is not finite"),
    ("${" + "9" * 400 + "}", "integer over 64 bits"),
    ("${" + "+".join(["sum(range(10000))"] * 27) + "}", "too much work"),
    ("${log(0)}", "log(): logarithm of a number that is not positive (0)"),
    ("${log(-1e18)}", "not positive"),
    ("${log(8, 0)}", "base 0 must be positive and not 1"),
    ("${log(8, -2)}", "base -2 must be positive"),
    ("${log(8, 1.0)}", "base 1.0 must be positive and not 1"),
    ("${log([8])}", "log(): "),
    ("${exp(41.5)}", "exp(41.5) is larger than 1e+18"),
    ("${exp(2 ** 63)}", "is larger than 1e+18"),
    ("${exp(1e18)}", "is larger than 1e+18"),
    # comprehensions: every turn is work, the result is bounded like a list literal, nesting at most 2
    ("${[x for x in range(5000)]}", "too much work"),
    ("${[0 for x in range(2600)]}", "too much work"),  # a turn is a unit besides its terms: ~2,400 turns at most
    ("${[0 for x in range(3000) if false]}", "too much work"),  # filtered turns count too
    ("${[0 for x in range(100) for y in range(100)]}", "too much work"),
    ("${[[1, 2] for x in range(100) for y in range(range(10000)[-1])]}", "too much work"),
    ("${[range(10000) for x in range(11)]}", "too much work"),  # building each row is work too
    ("${[[x * 2 ** 62 for x in range(5)] for y in range(2)]}", "integer over 64 bits"),
    ("${[a ** b for a, b in [[2, 64]]]}", "integer over 64 bits"),
    ("${[1 for a in [] for b in [] for c in []]}", "nested more than 2 deep"),
    ("${[[[1 for a in []] for b in []] for c in []]}", "nested more than 2 deep"),
    ("${[1 for a in [[b for b in []] for c in []]]}", "nested more than 2 deep"),
    ("${[[1 for a in [] if [b for b in []]] for c in []]}", "nested more than 2 deep"),
])
def test_every_builtin_and_operator_is_bounded(expr, needle):
    assert needle in refused(expr).message


def test_values_built_from_names_are_bounded_too():
    r = list(range(10_000))
    assert "more than 100,000 items" in refused("${[m, m]}", {"m": [r] * 6}).message
    nested: list = []
    for _ in range(40):
        nested = [nested]
    assert "nested deeper than 32" in refused("${[n]}", {"n": nested}).message
    big = refused("${[r for x in range(11)]}", {"r": r})  # 11 references to 10,000 items: 110,000
    assert "more than 100,000 items" in big.message and "count together" in (big.hint or "")
    assert "nested deeper than 32" in refused("${[[x] for x in [n]]}", {"n": nested[0]}).message


@pytest.mark.parametrize("expr,value", [
    ("${round(2.567, 2)}", 2.57), ("${round(1234, -2)}", 1200), ("${(-8) ** 2.0}", 64.0),
    ("${2 ** -3}", 0.125), ("${2 ** -100000}", 0.0), ("${0.5 ** 100000}", 0.0), ("${2 ** 63}", 2 ** 63),
    ("${make_divisible(8, 8)}", 8), ("${sqrt(16)}", 4.0), ("${1e18}", 1e18), ("${len(range(10000))}", 10_000),
    ("${9e17 < exp(41.4) < 1e18}", True), ("${exp(-1e18)}", 0.0), ("${log(2 ** 63, 2)}", 63.0),
    ("${log(1e-300) < -690}", True), ("${len([x for x in range(2000)])}", 2000),
    ("${len([0 for x in range(2300)])}", 2300),
    ("${len([[1 for a in range(30)] for b in range(30)])}", 30),
    ("${[1 for a in [] for b in []] + [1 for c in [] for d in []]}", []),  # siblings do not nest
])
def test_values_inside_the_bounds_still_work(expr, value):
    assert interpolate(expr, {}) == value


def test_an_evaluation_charges_the_shared_budget():
    cheap, heavy = Budget(10**9), Budget(10**9)
    interpolate("${1 + 1}", {}, None, cheap)
    interpolate("${sum(range(10000))}", {}, None, heavy)
    assert cheap.used == 2 and heavy.used > 100
    with under_bar(), pytest.raises(LimitError, match="more than 500 steps") as info:
        interpolate("${sum(range(10000)) + sum(range(10000))}", {}, HERE, Budget(500, "the hint"))
    assert info.value.loc == HERE and info.value.hint == "the hint"


def test_a_comprehension_charges_the_budget_per_turn():
    small, large = Budget(10**9), Budget(10**9)
    interpolate("${[x for x in range(10)]}", {}, None, small)
    interpolate("${[x for x in range(1000)]}", {}, None, large)
    assert large.used > 100 * small.used / 10 > 0  # ~2 work units a turn, halved into steps
    with under_bar(), pytest.raises(LimitError, match="more than 500 steps"):
        interpolate("${[x for x in range(1000)]}", {}, HERE, Budget(500))


@pytest.mark.parametrize("text,needle", [
    ("a: " + "9" * 5000, "(5003 characters)' is out of range (integer over 64 bits)"),
    ("a: 0x" + "f" * 5000, "is out of range (integer over 64 bits)"),
    ("a: 18446744073709551616", "'18446744073709551616' is out of range"),
    ("a: 1e999", "'1e999' is out of range (number is not finite)"),
    ("a: -1e999", "'-1e999' is out of range (number is not finite)"),
    ("a: 2e18", "number larger than 1e+18"),
])
def test_yaml_numbers_are_bounded_like_expressions(text, needle):
    with under_bar(), pytest.raises(YamlError) as info:
        load_text(text, "t.yaml")
    assert needle.replace("5003", str(len(text) - 3)) in info.value.message
    assert info.value.loc == Loc("t.yaml", 1, 4)
    assert "64 bits" in (info.value.hint or "")


def test_yaml_numbers_inside_the_bounds_load():
    assert load_text("a: [18446744073709551615, 1e18, 1e-999, 0x10, 1_000]")["a"] == [2**64 - 1, 1e18, 0.0, 16, 1000]


# -- specs: written to a temporary folder -------------------------------------------------------------

def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def spec_refused(path: Path, kind: type[ArchcError] = ArchcError, limits: Limits | None = None) -> ArchcError:
    with under_bar(), pytest.raises(kind) as info:
        archc.check(path, limits=limits)
    err = info.value
    assert err.loc is not None and err.loc.file.endswith("spec.yaml")
    return err


def test_eps_1e999_is_refused_where_written(tmp_path):
    path = write(tmp_path, "name: t\ninput: [3, 8, 8]\nnodes:\n  a: {op: batchnorm2d, eps: 1e999}\n")
    err = spec_refused(path, YamlError)
    assert (err.loc.line, err.loc.col) == (4, 29) and "not finite" in err.message


# -- 2. work: groups, `each` iterations and expressions count, not only nodes --------------------------

EMPTY_REPEATS = """name: t
input: [3, 16, 16]
blocks:
  e: {seq: [{op: relu, when: false}]}
  f: {seq: [{op: e, repeat: 40000}]}
nodes:
  a: {op: f, repeat: 40000}
"""
NESTED_EACH = """name: t
input: [3, 16, 16]
nodes:
  a:
    seq:
      - each: ${range(10000)}
        items:
          - each: ${range(10000)}
            items: [{op: relu, when: false}]
"""
HEAVY_WHEN = """name: t
input: [3, 16, 16]
nodes:
  a:
    seq:
      - each: ${range(10000)}
        items: [{op: relu, when: "${sum(range(10000)) < 0}"}]
"""
DROPPED_ITEMS = """name: t
input: [3, 16, 16]
nodes:
  a:
    repeat: 40000
    seq:
      - each: ${range(9000)}
        items: [{op: relu, when: false}]
"""
DOUBLING = "name: t\ninput: [3, 16, 16]\nblocks:\n  b0: {seq: [{op: relu, when: false}]}\n" + "".join(
    f"  b{i}: {{seq: [{{op: b{i - 1}, repeat: 2}}]}}\n" for i in range(1, 31)) + "nodes:\n  a: b30\n"
HEAVY_PARAMS = "name: t\ninput: [3, 16, 16]\nparams:\n" + "".join(
    f"  p{i}: ${{sum(range(10000))}}\n" for i in range(3000)) + "nodes:\n  a: relu\n"


@pytest.mark.parametrize("text,where,needle", [
    (EMPTY_REPEATS, (5, 13), "expanding the spec takes more than 100,000 steps"),
    (NESTED_EACH, (8, 19), "each over 10000 items would take the expansion over 100,000 steps"),
    (HEAVY_WHEN, (7, 34), "expanding the spec takes more than 100,000 steps"),
    (DROPPED_ITEMS, (7, 15), "each over 9000 items would take the expansion over 100,000 steps"),
    (DOUBLING, (5, 14), "expanding the spec takes more than 100,000 steps"),
    (HEAVY_PARAMS, None, "expanding the spec takes more than 100,000 steps"),
], ids=["empty-repeats", "nested-each", "heavy-when", "dropped-items", "doubling-blocks", "heavy-params"])
def test_expansion_work_is_bounded(tmp_path, text, where, needle):
    err = spec_refused(write(tmp_path, text), LimitError)
    assert err.message == needle
    if where:
        assert (err.loc.line, err.loc.col) == where
    assert "--max-steps" in (err.hint or "")


def test_step_budget_is_a_limit_that_can_be_raised(tmp_path):
    path = write(tmp_path, "name: t\ninput: [3, 16, 16]\nnodes:\n  a: {op: relu, repeat: 2000}\n")
    assert len(resolve(path).graph.nodes) == 2000
    err = spec_refused(path, LimitError, Limits(max_steps=1000))
    assert err.message == "repeat: 2000 would take the expansion over 1,000 steps"
    assert (err.loc.line, err.loc.col) == (4, 25)


def test_the_largest_zoo_spec_needs_under_a_fifth_of_the_default_budget(monkeypatch):
    from archc.resolve import expand

    used: list[int] = []
    finish = expand.Expander.finish
    monkeypatch.setattr(expand.Expander, "finish", lambda self: used.append(self.budget.used) or finish(self))
    resolve("efficientnet_v2_l")
    assert 1000 < used[0] < Limits().max_steps / 5


# -- 3. the input is a tensor too ------------------------------------------------------------------------

def test_input_is_held_to_the_activation_limit(tmp_path):
    path = write(tmp_path, "name: t\ninput: [3, 1000000000, 1000000000]\nnodes:\n"
                           "  a: {op: adaptive_avg_pool2d, output_size: 1}\n")
    err = spec_refused(path, LimitError)
    assert err.message == ("input 'input' 3x1000000000x1000000000 is 3,000,000,000,000,000,000 elements per sample, "
                           "over the limit of 250,000,000")
    assert (err.loc.line, err.loc.col) == (2, 8) and "--max-activation" in (err.hint or "")
    assert resolve(path, input_shape=[3, 9000, 9000], limits=Limits(max_activation=10**9)).graph.inputs


def test_activation_default_fits_a_laptop_and_the_zoo():
    assert Limits().max_activation * 4 <= 2**30  # one fp32 sample's largest tensor: at most 1 GiB
    assert archc.check("unet").graph.inputs[0][1] == (1, 572, 572)


# -- 4. generated names obey the written-name rule ---------------------------------------------------------

@pytest.mark.parametrize("template,needle", [
    ("x.${i}", "repeat name 'x.0' is not a valid name"),
    ("a b${i}", "repeat name 'a b0' is not a valid name"),
    ("'${i}", "repeat name ''0' is not a valid name"),
    ('"${i}', "repeat name '\"0' is not a valid name"),
    ("", "repeat name '' is not a valid name"),
    ("${true}", "repeat name True is a bool, not a name"),
    ("${[i]}", "repeat name [0] is a list, not a name"),
    ("forward", "repeat name 'forward' cannot name a node: it is an attribute of torch modules"),
    ("__x${i}", "repeat name '__x0' cannot name a node"),
    ("l${i}_${10 ** 17}${10 ** 17}${10 ** 17}${10 ** 17}", "is not a valid name"),  # 75 characters: over 64
])
def test_generated_names_are_validated_at_the_name_key(tmp_path, template, needle):
    quoted = json.dumps(template)  # a JSON string is a YAML double-quoted scalar
    path = write(tmp_path, f"name: t\ninput: [3, 8, 8]\nnodes:\n  a: {{op: relu, repeat: 2, name: {quoted}}}\n")
    err = spec_refused(path, ResolveError)
    assert needle in err.message
    assert (err.loc.line, err.loc.col) == (4, 34)


def test_a_generated_name_used_twice_is_refused(tmp_path):
    path = write(tmp_path, "name: t\ninput: [3, 8, 8]\nnodes:\n  a: {op: relu, repeat: 2, name: same}\n")
    assert "name 'same' is defined twice" in spec_refused(path, ResolveError).message


def test_good_generated_names_pass_and_written_names_follow_the_same_rule(tmp_path):
    path = write(tmp_path, "name: t\ninput: [3, 8, 8]\nnodes:\n  a: {op: relu, repeat: 2, name: 'layer${i + 1}'}\n")
    assert [n.path for n in resolve(path).graph.nodes] == ["a.layer1", "a.layer2"]
    path.write_text(path.read_text().replace("'layer${i + 1}'", "'${i + 1}'"))
    assert [n.path for n in resolve(path).graph.nodes] == ["a.1", "a.2"]
    written = write(tmp_path, "name: t\ninput: [3, 8, 8]\nnodes:\n  x.0: relu\n")
    assert "is not a valid name" in spec_refused(written, SchemaError).message


# -- 5. one typo in a repeated block is reported as itself ---------------------------------------------

def test_typo_in_repeated_block_is_not_called_recursion(tmp_path):
    path = write(tmp_path, "name: t\ninput: [3, 8, 8]\nblocks:\n  b: {seq: [{op: reluu}]}\n"
                           "nodes:\n  a: {op: b, repeat: 40}\n")
    err = spec_refused(path, ResolveError)
    assert err.message == "unknown block 'reluu'" and (err.loc.line, err.loc.col) == (4, 18)
    assert "did you mean 'relu'" in (err.hint or "")
    assert all("nested deeper" not in e.message for e in (err, *err.others))


def test_failing_instances_leave_the_full_nesting_depth(tmp_path):
    chain = "".join(f"  d{i}: {{seq: [{{op: d{i - 1}}}]}}\n" for i in range(1, 32))
    path = write(tmp_path, "name: t\ninput: [3, 8, 8]\nblocks:\n  b: {seq: [{op: reluu}]}\n  d0: {seq: [relu]}\n"
                           + chain + "nodes:\n  a: {op: b, repeat: 40}\n  c: {op: d31}\n")
    err = spec_refused(path, ResolveError)
    assert {e.message for e in (err, *err.others)} == {"unknown block 'reluu'"}
    path.write_text(path.read_text().replace("reluu", "relu"))
    assert len(resolve(path).graph.nodes) == 41  # 32 levels of blocks deep is allowed
