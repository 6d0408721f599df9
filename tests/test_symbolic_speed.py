"""Symbolic input sizes at the cost of concrete ones (issue 28: symbolic analysis <= 2x concrete, in-process).

A warm symbolic check reuses what the first one worked out, as a warm concrete check does: every rule run on
expressions is kept with the guards it recorded (archc/analyze/symbolic/walk.py; a guarded run under its hint,
its guards replayed on a hit), and the solver's result by the walk's nodes and the rest of the graph. Exactly
what a fresh analysis gives (tests/test_analysis_memo.py compares field by field); here the work is counted
(tests/work.py), never timed, and a graph that differs anywhere is solved afresh.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import archc
from archc.analyze.symbolic import solve
from archc.analyze.symbolic.walk import analyse_symbolic
from archc.api import SPEC_TEXT
from archc.blocks import rule_memo as node_memo
from archc.ir.algebra import Guards, guarding, symbol
from archc.resolve import Limits, build, find_spec, load_spec, memo

sys.path.insert(0, str(Path(__file__).parent))
from test_analysis_memo import snapshot  # noqa: E402
from work import counted  # noqa: E402


def _graph(name_or_text: str, shape: Any = (3, "H", "W")) -> Any:
    """The resolved graph (its input at the stand-in sizes, `meta["symbols"]` naming the symbolic axes)."""
    source = load_spec(Path(SPEC_TEXT), name_or_text) if "\n" in name_or_text else load_spec(find_spec(name_or_text))
    return build(source, None, list(shape), Limits())


def _warm_solve_calls(graph: Any) -> int:
    solve(graph, graph.meta["symbols"])
    with counted() as work:
        solve(graph, graph.meta["symbols"])
    return work.calls


# the calls of a warm solve; before the walk kept guarded runs and the solver its results: densenet121 77k, vgg16
# 67k, lenet5 47k, inception_v3 359k (every guarded rule run again, every class combination explored again; and
# inception_v3 walks at 224 and 256, where AuxLogits fails, before 320: 19k without `keep_hint`, now 7k)
@pytest.mark.parametrize("name, bound", [("densenet121", 15_000), ("vgg16", 3_000), ("lenet5", 1_500),
                                         ("inception_v3", 10_000)])
def test_a_warm_solve_runs_no_rule_and_explores_nothing(name: str, bound: int) -> None:
    graph = _graph(name)
    node_memo.STATS.clear()
    calls = _warm_solve_calls(graph)
    assert calls <= bound, f"{name}: {calls:,} calls (bound {bound:,})"
    assert node_memo.STATS["symbolic_solved_hit"] == 1, node_memo.STATS  # the second solve


def _check_calls(name: str, dims: list[Any]) -> int:
    for _ in range(2):  # a block instance is recorded the second time it is met, replayed from the third
        archc.check(name, input_shape=dims)
    with counted() as work:
        archc.check(name, input_shape=dims)
    return work.calls


# warm, in calls (before: lenet5 50k symbolic / 2.0k concrete, alexnet 50k / 3.4k, resnet18 16k / 8.1k; now 2.9k,
# 4.6k, 13.6k); densenet121 and inception_v3, whose resolving is the larger part, since resolve's memo replays
# block instances on symbolic sizes too (every built-in spec within 2x, inception_v3 the most)
@pytest.mark.parametrize("name", ["lenet5", "alexnet", "resnet18", "inception_module", "densenet121", "inception_v3"])
def test_a_warm_symbolic_check_costs_at_most_twice_a_concrete_one(name: str) -> None:
    shape = list(archc.check(name).graph.inputs[0][1])  # the spec's own input size
    concrete, symbolic = _check_calls(name, shape), _check_calls(name, [shape[0], "H", "W"])
    assert symbolic <= 2 * concrete, f"{name}: {symbolic:,} calls symbolic, {concrete:,} concrete"


GUARDED = "name: g\ninput: [3, H, W]\nnodes:\n  a: {op: conv2d, out_channels: 4, kernel_size: 5}\n" \
          "  b: {op: max_pool2d, kernel_size: 3, stride: 2, ceil_mode: true}\n  c: {op: conv2d, out_channels: 4, " \
          "kernel_size: 3}\n"


def _walk(graph: Any, hint: int) -> tuple[Any, ...]:
    """The symbolic walk at ``hint``: its guards (text, node, index), who relies on each, its shapes and costs."""
    symbols = graph.meta["symbols"]
    name, shape = graph.inputs[0]
    dims = tuple(symbol(symbols[i]) if i in symbols else d for i, d in enumerate(shape))
    guards = Guards({s: hint for s in symbols.values()})
    with guarding(guards):
        a, nodes = analyse_symbolic(replace(graph, inputs=((name, dims),)), Limits(), guards)
    return ([(g.text(), g.rel, g.node, g.index) for g in guards.items], guards.users, repr(a.shapes),
            [(p, repr((i.params, i.macs, i.other_ops, i.outputs))) for p, i in a.info.items()],
            [e.message for e in a.errors], nodes is None)


@pytest.mark.parametrize("name, hint", [(GUARDED, 224), (GUARDED, 7), ("vgg16", 224), ("densenet121", 224),
                                        ("inception_v3", 224), ("swin_t", 256)])
def test_guarded_rule_runs_are_kept_per_hint_and_replay_their_guards(name: str, hint: int) -> None:
    """A walk that takes every rule run from the table (the convs and ceil-mode pool of GUARDED record guards:
    their output exists from some size on) records the fresh walk's guards, node by node, in order, and the
    same nodes rely on each; at a hint where the walk fails (7: c's input is 1x1) too."""
    graph = _graph(name)
    with node_memo.disabled():
        fresh = _walk(graph, hint)
    node_memo.clear()
    node_memo.STATS.clear()
    assert _walk(graph, hint) == fresh
    assert node_memo.STATS["symbolic_hint_hit"] == 0, node_memo.STATS
    assert _walk(graph, hint) == fresh
    assert node_memo.STATS["symbolic_hint_hit"] > 0, node_memo.STATS


POOL = "name: p\ninput: [3, H, W]\nnodes:\n  a: {op: conv2d, out_channels: 4, kernel_size: 3}\n" \
       "  pool: {op: avg_pool2d, kernel_size: 300}\n"


def test_a_graph_met_again_skips_the_hints_where_its_walk_failed() -> None:
    """POOL fails at the hints 224 and 256 (the pool's input is smaller than its kernel): met again, the solver
    walks at 320 only, with the same result; a graph that differs is walked from 224 again."""
    graph = _graph(POOL)
    with node_memo.disabled():
        fresh = solve(graph, graph.meta["symbols"])
    assert fresh.hint == {"H": 320, "W": 320} and fresh.constraint == "H >= 302, W >= 302"
    node_memo.clear()
    assert repr(solve(graph, graph.meta["symbols"])) == repr(fresh)
    calls = _warm_solve_calls(graph)
    assert calls <= 700, f"{calls:,} calls (1,250 walking at 224 and 256 too)"
    assert repr(solve(graph, graph.meta["symbols"])) == repr(fresh)
    wider = _graph(POOL.replace("kernel_size: 300", "kernel_size: 240"))  # works from 256 on
    with node_memo.disabled():
        fresh = solve(wider, wider.meta["symbols"])
    assert fresh.hint == {"H": 256, "W": 256} and repr(solve(wider, wider.meta["symbols"])) == repr(fresh)


def test_a_graph_that_differs_is_solved_afresh() -> None:
    """Same nodes, another location, name or output: a result of its own (its analyses hold the graph)."""
    node_memo.clear()
    node_memo.STATS.clear()
    variants = [GUARDED, "\n" + GUARDED, GUARDED.replace("name: g", "name: h"), GUARDED + "outputs: [a, b]\n"]
    for text in variants:
        graph = _graph(text)
        result = solve(graph, graph.meta["symbols"])
        assert result.analysis is not None
        held = result.analysis.graph
        assert (held.name, held.nodes, held.outputs) == (graph.name, graph.nodes, graph.outputs)
        with node_memo.disabled():
            assert repr(solve(graph, graph.meta["symbols"])) == repr(result)
    assert node_memo.STATS["symbolic_solved_hit"] == 0, node_memo.STATS
    for text in variants:  # each met again
        graph = _graph(text)
        solve(graph, graph.meta["symbols"])
    assert node_memo.STATS["symbolic_solved_hit"] == len(variants), node_memo.STATS


# ---- resolve: reads of a symbolic size inside a memoised block instance ----

READS = """\
name: reads
input: [3, H, W]
blocks:
  unit:
    nodes:
      conv: {{op: conv2d, out_channels: "{width}", kernel_size: 1}}
nodes:
  stem: {{op: conv2d, out_channels: 8, kernel_size: 32, stride: 32}}
  {first}
  units: {{op: unit, repeat: 3}}
  head: {{op: adaptive_avg_pool2d, output_size: 1}}
"""
POOLED = "pooled: {op: adaptive_avg_pool2d, output_size: 7, in: stem}\n  early: {op: unit, repeat: 3}\n  back: " \
         "{op: identity, in: stem}"  # the block on a constant 7x7 first, then on the stem's 7x7 at 224
CASES = {
    "a size": READS.format(width="${4 if in_shape[1] > 0 else 8}", first="first: identity"),
    "the channels": READS.format(width="${in_shape[0] * 2}", first="first: identity"),
    "a constant first": READS.format(width="${4 if in_shape[1] > 0 else 8}", first=POOLED),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_memoised_instance_reads_symbolic_sizes_as_a_fresh_one(case: str) -> None:
    """Whether an expression read a size that depends on H or W (`sized_by_stand_in`: the formulas then hold at
    the stand-in only), and which one first, with the instance memo off, cold and warm: a replayed instance
    reads what its recording read, and one whose inputs depend on H and W otherwise is not replayed."""
    text = CASES[case]
    with memo.disabled():
        fresh = _graph(text)
    memo.clear()
    got = [_graph(text) for _ in range(3)]
    for graph in got:
        assert graph.meta.get("sized_by_stand_in") == fresh.meta.get("sized_by_stand_in"), case
        assert graph.nodes == fresh.nodes, case
    if case == "the channels":
        assert fresh.meta.get("sized_by_stand_in") is None
    else:
        assert fresh.meta["sized_by_stand_in"][0] in ("early.0.conv", "units.0.conv"), fresh.meta
    assert snapshot(archc.check(text, input_shape=[3, "H", "W"])) == snapshot(archc.check(text,
                                                                                          input_shape=[3, "H", "W"]))
