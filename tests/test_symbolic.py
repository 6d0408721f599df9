"""Symbolic sizes by algebra (ir.algebra, analyze.symbolic): exact formulas and constraints.

Constraints are golden texts here; tests/test_symbolic_exact.py compares every built-in spec with
concrete analyses at sizes drawn independently of what the symbolic result claims."""

from __future__ import annotations

import ast
import json
import operator
from dataclasses import replace
from pathlib import Path

import pytest

import archc
from archc.analyze.shapes import analyze
from archc.cli import main
from archc.ir.algebra import Guards, guarding, symbol
from archc.resolve import Limits, resolve

SPECS = Path(__file__).parent / "specs"
BIG = Limits(max_activation=10**13, max_params=10**13)  # concrete checks far beyond the default limits
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv}


def evaluate(text: str, sizes: dict[str, int]) -> int:
    """A formula string from `--json` (integers, + - * // and parentheses) at concrete sizes."""
    def walk(n: ast.AST) -> int:
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](walk(n.left), walk(n.right))
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -walk(n.operand)
        if isinstance(n, ast.Constant) and type(n.value) is int:
            return n.value
        if isinstance(n, ast.Name):
            return sizes[n.id]
        raise AssertionError(f"not a plain integer formula: {ast.dump(n)}")
    return walk(ast.parse(text, mode="eval").body)


def symbolic_graph(spec: str | Path):
    channels = resolve(spec).graph.inputs[0][1][0]
    return resolve(spec, None, [channels, "H", "W"]).graph


def concrete(graph, h: int, w: int):
    name, (c, *_) = graph.inputs[0]
    return analyze(replace(graph, inputs=((name, (c, h, w)),)), BIG)


# ---- the algebra ----

def test_floor_divisions_collapse_and_compare_structurally():
    H = symbol("H")
    stem = (H + 2 * 3 - 7) // 2 + 1  # a 7x7 stride-2 conv
    pool = (stem + 2 - 3) // 2 + 1  # then a 3x3 stride-2 pool
    assert str(stem) == "(H + 1) // 2" and str(pool) == "(H + 3) // 4"
    assert str(-(-(pool - 3) // 2) + 1) == "(H + 3) // 8"  # a ceil-mode pool: ceil((x - 3) / 2) + 1
    assert stem == (H - 1) // 2 + 1  # a 1x1 stride-2 shortcut: equal without a guard
    for h in range(1, 300):
        assert pool.value({"H": h}) == ((h + 6 - 7) // 2 + 1 + 2 - 3) // 2 + 1


def test_undecided_comparisons_become_guards_at_the_hint():
    H, W = symbol("H"), symbol("W")
    g = Guards({"H": 224, "W": 224})
    with guarding(g):
        assert H // 16 >= 3 and H + 3 > 0 and H - 1 >= 0  # the last two hold for every size: no guard
        assert 16 * (H // 16) * (W // 16) + 16 == 3152
        assert 16 * (W // 4) >= 1  # a flattened map is non-empty: W // 4 >= 1, not W // 4 >= 0
        assert 32 * (H // 8) * (W // 8) >= 1  # both sides of a product non-empty
    assert [x.text() for x in g.items] == ["H // 16 >= 3", "(H // 16) * (W // 16) == 196", "W // 4 >= 1",
                                           "H // 8 >= 1", "W // 8 >= 1"]


# ---- golden constraints ----

def _smallest(spec: str) -> int:
    """The smallest valid square size by concrete analyses (googlenet's depends on the window rules)."""
    graph = symbolic_graph(spec)
    return next(v for v in range(1, 512) if not concrete(graph, v, v).errors)


@pytest.mark.parametrize("spec, constraint, breaks", [
    ("resnet18", "H >= 1, W >= 1", ""),
    ("googlenet", "H >= {m}, W >= {m}", "at H = {m1}: [maxpool"),  # a ceil-mode pool's window
    ("vit_b_16", "H >= 16, W >= 16, (H // 16) * (W // 16) == 196", "at H = 15: [conv_proj]"),
    ("convnext_tiny", "H >= 32, W >= 32", "at H = 31: "),  # W//32 == 1 takes another branch of linear's rule
    (SPECS / "unet_exact.yaml", "H >= 4 and H % 4 == 0, W >= 4 and W % 4 == 0", "at H = 3: "),
    (SPECS / "nonsquare.yaml", "H >= 4 and H % 4 == 0, W >= 1", "at H = 3: [cat] concat along dim 1"),
])
def test_constraints(spec, constraint, breaks):
    if "{m}" in constraint:
        m = _smallest(spec)
        constraint, breaks = constraint.format(m=m), breaks.format(m1=m - 1)
    a = archc.check(spec, input_shape=None if isinstance(spec, Path) else [3, "H", "W"])
    assert a.symbolic.method == "algebra"
    assert a.symbolic.constraint == constraint
    assert a.symbolic.breaks.startswith(breaks)


def test_shapes_are_exact_expressions():
    a = archc.check("resnet18", input_shape=[3, "H", "W"])
    assert a.symbolic.shapes["layer4.1.relu"] == ("512", "(H + 31) // 32", "(W + 31) // 32")
    assert a.symbolic.shapes["fc"] == ("1000",)
    assert archc.check(SPECS / "unet_exact.yaml").symbolic.shapes["head"] == ("2", "H", "W")


def test_a_size_outside_the_constraint_is_a_located_error():
    with pytest.raises(archc.ArchcError) as info:
        archc.check(SPECS / "unet_exact.yaml", input_shape=[1, 30, 30])
    assert info.value.node == "cat2" and info.value.loc.line == 10


def test_inexact_rule_is_sampled_at_that_node_only():
    sym = archc.check(SPECS / "scaled_third.yaml").symbolic  # interpolate by 0.3333, then a stride-2 conv
    assert sym.method == "algebra" and sym.note.startswith("[shrink] ") and "fitted to 1..512" in sym.note
    assert sym.constraint == "H >= 4, W >= 4" and sym.breaks.startswith("at H = 3: [shrink] scale_factor")
    assert sym.shapes["after"] == ("2", "(H + 2) // 6", "(W + 2) // 6")  # algebra again after the node
    graph = symbolic_graph(SPECS / "scaled_third.yaml")
    for h, w in ((4, 4), (97, 301), (512, 5)):
        assert sym.at("macs", {"H": h, "W": w}) == concrete(graph, h, w).macs


def test_a_spec_sized_by_in_shape_holds_at_the_stand_in_only(tmp_path):
    """`${in_shape}` of a symbolic size is read at the stand-in 224 while resolving: the graph is built
    for 224, so its formulas must not be offered for other sizes (a global pool by kernel H here)."""
    spec = tmp_path / "pin.yaml"
    spec.write_text("name: pin\ninput: [3, H, W]\nnodes:\n  conv: {op: conv2d, out_channels: 4, kernel_size: 1}\n"
                    "  pool: {op: avg_pool2d, kernel_size: \"${in_shape[1]}\"}\n")
    sym = archc.check(spec).symbolic
    assert sym.constraint == "H == 224, W == 224"
    assert sym.note.startswith("[pool] `${in_shape}` reads a symbolic size, which archc resolves at 224")
    channels_only = tmp_path / "channels.yaml"  # reading only the channels keeps every size
    channels_only.write_text("name: c\ninput: [3, H, W]\nnodes:\n"
                             "  conv: {op: conv2d, out_channels: \"${in_shape[0] * 2}\", kernel_size: 1}\n")
    assert archc.check(channels_only).symbolic.constraint == "H >= 1, W >= 1"


# ---- the bar: resnet50's MAC formula ----

def test_resnet50_mac_formula(capsys):
    assert main(["summary", "resnet50", "--input", "3xHxW", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    graph = symbolic_graph("resnet50")
    assert evaluate(doc["symbolic"]["macs"], {"H": 224, "W": 224}) == 4_089_184_256
    for h, w in ((320, 448), (1000, 1000), (2048, 1536)):
        assert evaluate(doc["symbolic"]["macs"], {"H": h, "W": w}) == concrete(graph, h, w).macs


# ---- the package: one entry, the algebra below the analysis walk ----

def test_the_entry_gives_what_check_gives():
    """`analyse` is `archc.check` on an input with symbolic sizes: the analysis at the hint, formulas attached."""
    from archc.analyze.symbolic import analyse
    got, want = analyse(symbolic_graph("resnet18")), archc.check("resnet18", input_shape=[3, "H", "W"])
    assert got.symbolic is not None and want.symbolic is not None
    assert (got.params, got.macs, got.shapes) == (want.params, want.macs, want.shapes)
    assert (got.symbolic.constraint, got.symbolic.shapes, got.symbolic.steps) == \
        (want.symbolic.constraint, want.symbolic.shapes, want.symbolic.steps)
    assert {k: str(v) for k, v in got.symbolic.figures.items()} == {k: str(v) for k, v in want.symbolic.figures.items()}


def test_the_entry_refuses_a_graph_no_size_fits(tmp_path):
    """A conv without padding concatenated with its input: the maps never match, so no size works."""
    from archc.analyze.symbolic import analyse
    from archc.errors import ShapeError
    spec = tmp_path / "never.yaml"
    spec.write_text("name: never\ninput: [4, H, W]\nnodes:\n  conv: {op: conv2d, out_channels: 4, kernel_size: 3}\n"
                    "  both: {op: concat, in: [conv, input]}\n")
    with pytest.raises(ShapeError, match="no input size works: none of the sizes 224, 256") as e:
        analyse(resolve(spec).graph)
    assert e.value.loc is not None and e.value.loc.line == 2  # the input line


def test_the_algebra_imports_nothing_above_it():
    """sizes/guards/forms (archc/ir/algebra/) import only each other (the walk, resolve and the solver import
    them), and the package loads its solver on first use only, so importing the walk does not import the solver."""
    import subprocess
    import sys
    root = Path(archc.__file__).parent / "ir" / "algebra"
    algebra = {"sizes", "guards", "forms", "__init__"}  # the package gathers the three
    for name in algebra:
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("archc"):
                assert node.module.rpartition(".")[2] in algebra and node.module.startswith("archc.ir.algebra."), \
                    (name, node.module)
            assert not isinstance(node, ast.Import) or not any(a.name.startswith("archc") for a in node.names), name
    code = ("import sys, archc.analyze.shapes; "
            "print(sorted(m for m in sys.modules if 'symbolic' in m or 'algebra' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "archc.ir.algebra.sizes" in out and "archc.analyze.symbolic.solver" not in out, out
