"""The node memo (archc/blocks/rule_memo.py, issue 28): a memoised analysis is exactly a fresh one.

Every built-in spec, the error specs whose problems the analysis finds, symbolic inputs and LSP-like edit
sequences (value edits back and forth) give, with the memo off, cold and warm, the same analysis field by
field: every node's shapes, parameters, MACs, other ops and receptive field (compared by ``repr``, so an
int is not a float), the errors in full (message, location, node, hint, notes), the lint warnings and the
symbolic result. The work saved is counted (rules run, calls: tests/work.py), never timed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from archc.analyze.lint import lint
from archc.analyze.shapes import Analysis, analyze
from archc.api import SPEC_TEXT, analyse
from archc.blocks import rule_memo as node_memo
from archc.errors import ArchcError
from archc.ir import Node
from archc.resolve import Limits, build, builtin_names, find_spec, load_spec

sys.path.insert(0, str(Path(__file__).parent))
from work import counted  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _err(e: ArchcError) -> tuple[Any, ...]:
    return (type(e).__name__, e.message, str(e.loc), e.node, e.hint, tuple(e.notes), tuple(map(str, e.chain or ())),
            tuple(_err(o) for o in e.others))


def snapshot(a: Analysis, source: Any = None) -> tuple[Any, ...]:
    """The analysis field by field (and its lint warnings when the source is given)."""
    infos = repr([(p, i.node, i.in_shapes, i.shape, i.params, i.macs, i.other_ops, i.rf, i.outputs)
                  for p, i in a.info.items()])
    warnings = [(w.code, *_err(w)) for w in lint(a, source)] if source is not None else None
    return (infos, repr(a.shapes), [_err(e) for e in a.errors], a.params, a.macs, a.other_ops, a.receptive_field,
            a.sees_whole_input, warnings, _symbolic(a.symbolic))


def _symbolic(s: Any) -> Any:
    if s is None:
        return None
    return (s.symbols, s.hint, s.shapes, s.constraint, s.breaks, {k: str(v) for k, v in s.figures.items()},
            [str(g) for g in s.guards], s.method, s.note, s.sampled, s.complete, s.steps,
            [(k, repr(p)) for k, p in s.paths], None if s.analysis is None else snapshot(s.analysis))


def three(run: Any) -> tuple[Any, Any, Any]:
    """(memo off, memo cold, memo warm) of ``run()``, a snapshot."""
    with node_memo.disabled():
        fresh = run()
    node_memo.clear()
    return fresh, run(), run()


def assert_same(run: Any, what: str) -> None:
    fresh, cold, warm = three(run)
    assert cold == fresh, f"{what}: cold memo differs"
    assert warm == fresh, f"{what}: warm memo differs"


def graph_of(text: str) -> Any:
    return build(load_spec(Path(SPEC_TEXT), text), None, None, Limits())


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_spec_analyses_the_same(name: str) -> None:
    source = load_spec(find_spec(name))
    graph = build(source, None, None, Limits())
    assert_same(lambda: snapshot(analyze(graph), source), name)


def _analysed_errors() -> list[Path]:
    """The error specs that resolve: their problems are the analysis's (shapes, in-place, limits...)."""
    found = []
    for path in sorted((ROOT / "tests" / "errors").glob("*.yaml")):
        try:
            build(load_spec(path), None, None, Limits())
        except ArchcError:
            continue
        found.append(path)
    return found


def test_error_specs_analyse_the_same() -> None:
    paths = _analysed_errors()
    assert len(paths) >= 10, paths  # otherwise this proves little
    for path in paths:
        source = load_spec(path)
        graph = build(source, None, None, Limits())
        assert_same(lambda g=graph, s=source: snapshot(analyze(g), s), path.name)
        assert analyze(graph).errors, path.name


TWINS = """name: twins
input: [3, 16, 16]
nodes:
  a: {op: conv2d, out_channels: 4, kernel_size: 3}
  b: {op: add, in: [a, input]}
  c: {op: conv2d, out_channels: 4, kernel_size: 3, in: input}
  d: {op: add, in: [c, input]}
"""


def test_a_kept_error_is_located_at_each_node_that_hits_it() -> None:
    """b and d fail the same rule on the same shapes: one rule run, two errors, each at its own line, on the
    first analysis and on a warm one (a kept error is copied and re-located, never the one reported first)."""
    graph = graph_of(TWINS)
    node_memo.clear()
    node_memo.STATS.clear()
    for _ in range(2):
        errors = analyze(graph).errors
        assert [(e.node, e.loc.line if e.loc else None) for e in errors] == [("b", 5), ("d", 7)]
        assert errors[0].message == errors[1].message and errors[0] is not errors[1]
    assert node_memo.STATS["miss"] == 2, node_memo.STATS  # conv a and add b; c, d and the second pass hit


SYMBOLIC = ["resnet18", "densenet121", "mobilenet_v3_small", "vit_b_16"]


@pytest.mark.parametrize("name", SYMBOLIC)
def test_symbolic_inputs_analyse_the_same(name: str) -> None:
    """The symbolic walk keeps the rule runs that recorded and relied on no guard (they hold at every hint)."""
    node_memo.STATS.clear()
    assert_same(lambda: snapshot(analyse(name, input_shape=[3, "H", "W"])), name)
    assert node_memo.STATS["symbolic_hit"] > 0, node_memo.STATS  # the warm run used them


def test_a_guarded_rule_run_is_kept_per_hint() -> None:
    """A convolution whose output exists only from some size on records a guard: it never counts as a hit at
    every hint (`symbolic_hit`); it is kept under its hint, its guards replayed (symbolic/walk.py), and the
    result stays exact."""
    text = "name: g\ninput: [3, H, W]\nnodes:\n  a: {op: conv2d, out_channels: 4, kernel_size: 5}\n"
    node_memo.clear()
    node_memo.STATS.clear()
    fresh = snapshot(analyse(text, input_shape=[3, "H", "W"]))
    assert snapshot(analyse(text, input_shape=[3, "H", "W"])) == fresh
    assert node_memo.STATS["symbolic_hit"] == 0, node_memo.STATS


B7 = "extends: efficientnet_b7\nname: b7\nparams: {{num_classes: {}}}\n"
R1K = "extends: resnet50\nname: resnet_1k\nparams: {{layers: {}}}\n"
EDITS = [
    [B7.format(n) for n in (1000, 1001, 1000, 7, 1001)],
    [R1K.format(v) for v in ([3, 4, 91, 3], [3, 4, 90, 3], [3, 4, 91, 3], [3, 4, 6, 3], [2, 4, 90, 3])],
    # an edit that breaks the shapes and one that mends them (the error's entry is kept and re-raised)
    [TWINS, TWINS.replace("out_channels: 4, kernel_size: 3}", "out_channels: 3, kernel_size: 3, padding: 1}"),
     TWINS, TWINS.replace("[3, 16, 16]", "[3, 17, 16]")],
]


@pytest.mark.parametrize("texts", EDITS, ids=["b7_num_classes", "r1k_layers", "twins_error"])
def test_edit_sequences_analyse_the_same(texts: list[str]) -> None:
    """As the LSP sees them: each text after the others, the memo warm from the texts before it."""
    graphs = [graph_of(t) for t in texts]
    with node_memo.disabled():
        fresh = [snapshot(analyze(g)) for g in graphs]
    node_memo.clear()
    for k in range(2):  # forward, then back through the same texts
        for i in range(len(graphs))[:: 1 if k == 0 else -1]:
            assert snapshot(analyze(graphs[i])) == fresh[i], f"text {i} differs"


def test_work_saved_on_an_edit() -> None:
    """ResNet-50 with 1,025 nodes runs each distinct rule once; an edit of a stage depth runs none, and a
    warm analysis makes a fraction of the calls of one without the memo."""
    before, after = graph_of(R1K.format([3, 4, 91, 3])), graph_of(R1K.format([3, 4, 90, 3]))
    node_memo.clear()
    node_memo.STATS.clear()
    analyze(before)
    assert len(before.nodes) == 1025
    assert node_memo.STATS["miss"] <= 60 and node_memo.STATS["hit"] >= 965, node_memo.STATS  # 55 distinct keys
    node_memo.STATS.clear()
    with counted() as warm:
        analyze(after)
    assert node_memo.STATS["miss"] == 0, node_memo.STATS
    with node_memo.disabled(), counted() as off:
        analyze(after)
    assert warm.calls * 3 < off.calls, (warm.calls, off.calls)  # 12,847 and 48,313 calls


def test_b7_num_classes_edit_reruns_the_classifier_only() -> None:
    node_memo.clear()
    analyze(graph_of(B7.format(1000)))
    node_memo.STATS.clear()
    analyze(graph_of(B7.format(1001)))
    assert node_memo.STATS["miss"] == 1, node_memo.STATS  # the last linear


def test_memo_stays_bounded() -> None:
    """The table drops its oldest quarter when full, and analyses stay exact meanwhile."""
    graph = graph_of(R1K.format([3, 4, 6, 3]))
    with node_memo.disabled():
        fresh = snapshot(analyze(graph))
    was = node_memo.SIZE
    node_memo.SIZE = 8
    try:
        node_memo.clear()
        assert snapshot(analyze(graph)) == fresh
        assert len(node_memo.table() or {}) <= 8
        assert snapshot(analyze(graph)) == fresh
    finally:
        node_memo.SIZE = was


def _lexicographic(nodes: list[Any], inputs: list[str]) -> list[str]:
    """networkx's lexicographical topological sort by spec index (what execution_order computes)."""
    import networkx as nx

    from archc.ir.order import to_digraph

    rank = {n.path: i for i, n in enumerate(nodes)}
    return [p for p in nx.lexicographical_topological_sort(to_digraph(nodes, inputs), key=lambda p: rank.get(p, -1))
            if p in rank]


def test_execution_order_in_spec_order_and_shuffled() -> None:
    """archc/ir/order.py returns a spec whose nodes read only earlier ones as it is (no heap): the same order as
    the lexicographical sort, on every built-in spec as resolved and with its nodes shuffled (the heap)."""
    import random

    from archc.ir.order import execution_order

    rng = random.Random(0)
    for name in builtin_names()[::4]:
        graph = build(load_spec(find_spec(name)), None, None, Limits())
        inputs = [n for n, _ in graph.inputs]
        for nodes in (list(graph.nodes), rng.sample(list(graph.nodes), len(graph.nodes))):
            assert [n.path for n in execution_order(nodes, inputs)] == _lexicographic(nodes, inputs), name
    # a reader of one output of a later multi-output node (NAME[K] waits for NAME) is not in spec order
    nodes = [Node("b", "relu", {}, ("s[0]",)), Node("s", "chunk", {"chunks": 2}, ("input",))]
    assert [n.path for n in execution_order(nodes, ["input"])] == ["s", "b"]


def test_resolve_side_helpers_are_the_rules() -> None:
    """node_memo.out_shapes and symbolic_out_shapes (for resolve's shape inference) give what the rule gives,
    raise a fresh copy of its error each time, and keep symbolic answers per hint (a guarded rule differs)."""
    from archc import blocks as library
    from archc.ir.algebra import Guards, guarding, symbol

    conv = library.get("conv2d")
    args = {"out_channels": 4, "kernel_size": 5, "stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True,
            "padding_mode": "zeros"}
    node_memo.clear()
    for _ in range(2):
        assert node_memo.out_shapes("conv2d", conv, args, [(3, 16, 16)]) == conv.out_shapes(args, [(3, 16, 16)])
    errors = []
    for _ in range(2):
        with pytest.raises(ArchcError) as info:
            node_memo.out_shapes("conv2d", conv, args, [(3, 4, 4)])
        errors.append(info.value)
    assert errors[0] is not errors[1] and errors[0].message == errors[1].message and errors[0].loc is None
    h = (3, symbol("H"), symbol("H"))
    with guarding(Guards({"H": 64})):
        want = conv.out_shapes(args, [h])
    for _ in range(2):
        got = node_memo.symbolic_out_shapes("conv2d", conv, args, [h], {"H": 64})
        assert [tuple(map(str, s)) for s in got] == [tuple(map(str, s)) for s in want]
        assert node_memo.symbolic_out_shapes("conv2d", conv, args, [h], {"H": 3}) is None  # at 3 the rule fails
