"""The strict YAML reader, the expression evaluator and spec-language forms (extends replace, references,
argument types), unit by unit."""

from __future__ import annotations

import pytest

import archc
from archc.errors import ExprError, ResolveError, SchemaError, YamlError
from archc.expr import fits, interpolate
from archc.expr.functions import make_divisible
from archc.expr.kinds import KINDS
from archc.load import load_text
from archc.schema import schema_text
from tests.work import bounded


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
    with bounded(200_000), pytest.raises(YamlError, match="aliases"):  # expanded: 9^9 nodes
        load_text(bomb)


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
    ("${sum(x for x in layers)}", "found 'for'"),  # generator expressions stay out; comprehensions below
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


STAGES = [[1, 1, 16, 16, 1, 1, 2], [6, 2, 16, 24, 2, 2, 3], [6, 2, 24, 40, 2, 3, 4]]


@pytest.mark.parametrize("expr,value", [
    ("${[s[6] for s in stages]}", [2, 3, 4]),               # issue 11: a column of a stage table
    ("${sum([s[2] for s in stages])}", 56),
    ("${[a * b for a, b in [[1, 2], [3, 4]]]}", [2, 12]),   # tuple-unpacking targets
    ("${[a * b for (a, b) in [[1, 2], [3, 4]] if a > 1]}", [12]),
    ("${[x + y for x in [1, 2] for y in [10, 20]]}", [11, 21, 12, 22]),
    ("${[[x * y for y in [1, 2]] for x in [1, 2]]}", [[1, 2], [2, 4]]),
    ("${[x for x in layers if x > 3 if x < 6]}", [4]),
    ("${[2 if x == 'M' else x for x in cfg]}", [64, 2]),
    ("${[x for x in []]}", []),
    ("${[planes for x in range(2)]}", [64, 64]),
    ("${[i for i in layers] + [i]}", [3, 4, 6, 3, 0]),      # `i` is the loop's inside, env's outside
    ("${[[i, j] for i in range(2) for j in range(i)]}", [[1, 0]]),  # later sources see earlier variables
    ("${[1, 2,]}", [1, 2]), ("${[]}", []), ("${[[]]}", [[]]),
    ("${log(8, 2)}", 3.0), ("${round(exp(log(5)), 9)}", 5.0), ("${log(1)}", 0.0),
])
def test_comprehensions_and_logs(expr, value):
    assert interpolate(expr, {**ENV, "stages": STAGES}) == value


@pytest.mark.parametrize("expr,needle", [
    ("${[x for x in layers] + [x]}", "unknown name 'x'"),    # loop variables do not leak
    ("${[a for a, b in layers]}", "cannot unpack int into a, b"),
    ("${[a for a, b in [[1, 2, 3]]]}", "cannot unpack 3 values into a, b"),
    ("${[a for a in 3]}", "loops over a list, not int"),
    ("${[a for a in 'abc']}", "loops over a list, not str"),
    ("${[a for true in layers]}", "expected a loop variable name but found 'true'"),
    ("${[a for a.b in layers]}", "unexpected character"),
    ("${[a for a in layers if]}", "unexpected ']'"),
    ("${[a for a]}", "expected 'in' but found ']'"),
    ("${[a for a in layers}", "expected ']' but found 'end'"),
    ("${1 in layers}", "unexpected 'in'"),
    ("${log(0)}", "not positive"),
    ("${log(2, 1)}", "base 1 must be positive and not 1"),
    ("${exp(42)}", r"exp\(42\) is larger than 1e\+18"),
])
def test_comprehension_refusals(expr, needle):
    with pytest.raises(ExprError, match=needle):
        interpolate(expr, ENV)


def test_regnet_quantised_widths_with_log():
    # RegNetY-400MF (w_0 48, w_a 27.89, w_m 2.09, depth 16): published stages 48/104/208/440 x 1/3/6/6
    widths = interpolate("${[int(round(w0 * wm ** round(log((w0 + wa * j) / w0) / log(wm)) / 8) * 8) "
                         "for j in range(d)]}", {"w0": 48, "wa": 27.89, "wm": 2.09, "d": 16})
    assert interpolate("${[len([w for w in ws if w == u]) for u in [48, 104, 208, 440]]}", {"ws": widths}) == \
        [1, 3, 6, 6]
    assert len(widths) == 16


# -- extends: `replace: true` takes an inherited node or block whole ----------------------------------

STEM = """extends: resnet50
name: resnet50_deep_stem
nodes:
  conv1:
    replace: true
    seq:
      - {op: conv2d, out_channels: 32, kernel_size: 3, stride: 2, padding: 1, bias: false}
      - {op: conv2d, out_channels: 32, kernel_size: 3, padding: 1, bias: false}
      - {op: conv2d, out_channels: 64, kernel_size: 3, padding: 1, bias: false}
"""


def _spec(tmp_path, text: str, name: str = "spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_replace_swaps_resnet50s_stem_for_three_convs_in_place(tmp_path):
    a = archc.check(_spec(tmp_path, STEM))
    paths = [n.path for n in a.graph.nodes]
    assert paths[:5] == ["conv1.0", "conv1.1", "conv1.2", "bn1", "relu"]  # the base's place, not the end
    assert [n.args["out_channels"] for n in a.graph.nodes[:3]] == [32, 32, 64]
    # resnet50 (25,557,032) less the 7x7 conv (64*3*49), plus 3*32*9 + 32*32*9 + 32*64*9 weights
    assert a.params == 25_557_032 - 9408 + 864 + 9216 + 18432
    assert a.output_shapes == [(1000,)]


def test_without_replace_a_seq_merged_into_an_op_node_is_refused(tmp_path):
    # before: the merged {op: conv2d, kernel_size: 7, ..., seq: [...]} silently ignored op and its arguments
    with pytest.raises(ResolveError, match="nodes.conv1 has both `op:` and `seq:`") as info:
        archc.check(_spec(tmp_path, STEM.replace("    replace: true\n", "")))
    assert info.value.loc.line == 5 and "add `replace: true`" in (info.value.hint or "")
    with pytest.raises(ResolveError, match="nodes.a.seq.1 has both `op:` and `nodes:`") as info:
        archc.check(_spec(tmp_path, "name: x\ninput: [3, 8, 8]\nnodes:\n  a:\n    seq:\n      - relu\n"
                                    "      - {op: relu, nodes: {b: relu}}\n"))
    assert info.value.loc.line == 7 and "drop `op:` or `nodes:`" in (info.value.hint or "")


@pytest.mark.parametrize("text,needle,line", [
    (STEM.replace("  conv1:", "  conv_1:"), "'conv_1' has `replace:` but inherits no 'conv_1'", 5),
    ("name: x\ninput: [3, 8, 8]\nnodes:\n  a: {op: relu, replace: true}\n", "nothing to replace", 4),
    (STEM + "  extra: {nodes: {r: {op: relu, replace: true}}}\n", "nothing to replace", 10),
])
def test_replace_needs_something_inherited(tmp_path, text, needle, line):
    with pytest.raises(ResolveError, match=needle) as info:
        archc.check(_spec(tmp_path, text))
    assert info.value.loc is not None and info.value.loc.line == line


BASE = """name: base
input: [3, 8, 8]
blocks:
  unit:
    args: {ch: int}
    seq: [{op: conv2d, out_channels: "${ch}", kernel_size: 3, padding: 1}, relu]
nodes:
  a: {op: unit, ch: 4}
  b: {op: conv2d, out_channels: 6, kernel_size: 1}
  c: relu
"""


@pytest.mark.parametrize("child,paths,out", [
    ("  b: {replace: false, out_channels: 5}\n", ["a.0", "a.1", "b", "c"], (5, 8, 8)),  # merges as before
    ("  b: null\n", ["a.0", "a.1", "c"], (4, 8, 8)),                                    # null still deletes
    ("  b: {replace: true, op: max_pool2d, kernel_size: 2}\n", ["a.0", "a.1", "b", "c"], (4, 4, 4)),
    ("  a: {replace: true, seq: [{op: conv2d, out_channels: 2, kernel_size: 1}]}\n", ["a.0", "b", "c"], (6, 8, 8)),
])
def test_replace_false_merges_and_null_deletes(tmp_path, child, paths, out):
    _spec(tmp_path, BASE, "base.yaml")
    a = archc.check(_spec(tmp_path, "extends: base.yaml\nname: child\nnodes:\n" + child))
    assert [n.path for n in a.graph.nodes] == paths and a.output_shapes == [out]


def test_without_replace_the_old_arguments_stay(tmp_path):
    _spec(tmp_path, BASE, "base.yaml")
    with pytest.raises(archc.errors.ArchcError, match="out_channels"):  # max_pool2d given out_channels: 6
        archc.check(_spec(tmp_path, "extends: base.yaml\nname: child\nnodes:\n  b: {op: max_pool2d, kernel_size: 2}\n"))


def test_replace_takes_a_block_whole(tmp_path):
    _spec(tmp_path, BASE, "base.yaml")
    child = "extends: base.yaml\nname: child\nblocks:\n  unit: {replace: true, args: {ch: int}, seq: [sigmoid]}\n"
    a = archc.check(_spec(tmp_path, child))
    assert [n.op for n in a.graph.nodes] == ["sigmoid", "conv2d", "relu"]
    with pytest.raises(SchemaError, match="reserved key"):  # `replace` cannot name a block argument
        archc.check(_spec(tmp_path, BASE.replace("{ch: int}", "{replace: bool}"), "c2.yaml"))


# -- reference: any source; a twin only for a torchvision builder -------------------------------------

@pytest.mark.parametrize("ref,twin", [
    ("torchvision.models.resnet18", ("resnet18", {})),
    ("{torchvision: torchvision.models.vit_b_16, paper: 'An Image is Worth 16x16 Words', args: {dropout: 0.1}}",
     ("vit_b_16", {"dropout": 0.1})),
    ("https://arxiv.org/abs/2003.13678", None),
    ("'Designing Network Design Spaces (2020)'", None),
    ("torchvision.models.quantization.resnet18", None),  # a submodule is not a plain builder
    ("{timm: regnety_016.tv_in1k, url: 'https://github.com/huggingface/pytorch-image-models', params: 11202430}",
     None),
    ("{library: 'pycls RegNetY-1.6GF', paper: 'Designing Network Design Spaces'}", None),
])
def test_reference_names_any_source(tmp_path, ref, twin):
    a = archc.check(_spec(tmp_path, f"name: r\nreference: {ref}\ninput: [3, 8, 8]\nnodes:\n  a: relu\n"))
    assert a.graph.twin() == twin


@pytest.mark.parametrize("ref,needle", [
    ("{torchvision: resnet18}", "'resnet18' is not valid for reference.torchvision"),
    ("{timm: 'bad name'}", "'bad name' is not valid for reference.timm"),
    ("{github: x}", "unknown key 'github' in reference"),
    ("{}", "reference"),
    ("''", "reference"),
])
def test_reference_refusals(tmp_path, ref, needle):
    with pytest.raises(SchemaError, match=needle):
        archc.check(_spec(tmp_path, f"name: r\nreference: {ref}\ninput: [3, 8, 8]\nnodes:\n  a: relu\n"))


# -- argument types: fits(kind, value) and the schema's names -----------------------------------------

@pytest.mark.parametrize("kind,good,bad", [
    ("int", [0, -3, 2**63], [True, 1.0, "1", None, [1]]),
    ("float", [1, 1.5], [True, "1.5", None]),
    ("bool", [True, False], [0, 1, "true"]),
    ("str", ["x", ""], [1, None]),
    ("list", [[], [1, "a"]], ["ab", 1]),
    ("any", [None, 1, [1], "x"], []),
    ("int2", [3, [3, 5]], [[3], [3, 5, 7], [3, 5.0], [True, 1], 3.0, True]),
    ("float2", [3, 0.5, [1, 0.5]], [[1], "x", None]),
    ("ints", [[], [1, 2, 3]], [1, [1, 2.0], [False]]),
    ("floats", [[], [1, 2.5]], [1.0, [1, "a"]]),
    ("float|none", [None, 1, 0.5], [True, [1]]),
    ("int2|none", [None, 1, [1, 2]], [[1, 2, 3]]),
    ("int|ints", [1, [1, 2, 3]], [[1.0]]),
])
def test_argument_types(kind, good, bad):
    assert all(fits(kind, v) for v in good), [v for v in good if not fits(kind, v)]
    assert not any(fits(kind, v) for v in bad), [v for v in bad if fits(kind, v)]


def test_unknown_argument_type_is_a_value_error():
    with pytest.raises(ValueError, match="unknown argument type 'int3'"):
        fits("int|int3", 1)


def test_the_schema_accepts_exactly_the_argument_types():
    import json
    import re
    pattern = re.compile(json.loads(schema_text())["$defs"]["arg_type"]["pattern"])
    assert all(pattern.search(k) for k in KINDS)
    assert all(pattern.search(k) for k in ("float|none", "int2|none", "int|ints", "float2|none", "int|float|str|none"))
    assert not any(pattern.search(k) for k in ("int3", "Int", "int|", "|int", "int||none", "a|b|c|d|e", " int"))


def test_block_arguments_may_declare_int2(tmp_path):
    text = """name: k
input: [3, 16, 16]
blocks:
  c:
    args: {k: int2, p: {type: "int2|none", default: 1}, s: {type: ints, default: [1]}}
    seq: [{op: conv2d, out_channels: 4, kernel_size: "${k}", padding: "${p}", stride: "${s[0]}"}]
nodes:
  a: {op: c, k: [3, 5], p: [1, 2]}
"""
    assert archc.check(_spec(tmp_path, text)).output_shapes == [(4, 16, 16)]
    with pytest.raises(SchemaError, match="'int3' is not valid for blocks.c.args.k") as info:
        archc.check(_spec(tmp_path, text.replace("{k: int2,", "{k: int3,"), "bad.yaml"))
    assert "int2 (an int or a list of 2 ints)" in (info.value.hint or "")
