"""Memoised block instances (archc/resolve/memo.py, issue 28): a replayed expansion is exactly a fresh one.

Every spec (built-in, examples, the error goldens, the attacks) resolves to an equal graph, or an equal
error (message, location, node, hint, notes, others), with the memo off, cold and warm; so do sequences
of LSP-like edits of texts on disk and adversarial blocks (forward names, `after:`, `share:`, `NAME.*`,
`outputs:`, `when:`/`else:`, shapes read in `when:`, limits hit inside a replayed instance). The work
saved is counted (calls, tests/work.py), never timed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from archc.errors import ArchcError
from archc.resolve import Limits, memo, resolve

sys.path.insert(0, str(Path(__file__).parent))
from work import counted  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted([*ROOT.glob("specs/*.yaml"), *ROOT.glob("specs/examples/*.yaml"), *ROOT.glob("tests/errors/*.yaml"),
                *ROOT.glob("tests/attacks/*.yaml")])


def _err(e: ArchcError) -> tuple[Any, ...]:
    return (type(e).__name__, e.message, str(e.loc), e.node, e.hint, tuple(e.notes), tuple(map(str, e.chain or ())),
            tuple(_err(o) for o in e.others))


def outcome(spec: Any, **kw: Any) -> Any:
    """The resolved graph, field by field, or the error in full."""
    try:
        g = resolve(spec, **kw).graph
    except ArchcError as e:
        return ("error", _err(e))
    return ("graph", g.name, g.inputs, g.nodes, g.outputs, g.groups, dict(g.params), dict(g.meta), g.file,
            g.train_outputs)


def three(spec: Any, **kw: Any) -> tuple[Any, Any, Any]:
    """(memo off, memo cold, memo warm)."""
    with memo.disabled():
        fresh = outcome(spec, **kw)
    memo.clear()
    return fresh, outcome(spec, **kw), outcome(spec, **kw)


def assert_same(spec: Any, **kw: Any) -> None:
    fresh, cold, warm = three(spec, **kw)
    assert cold == fresh, f"{spec}: cold memo differs"
    assert warm == fresh, f"{spec}: warm memo differs"
    assert outcome(spec, **kw) == fresh, f"{spec}: replayed memo differs"  # the third: what the second recorded


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_spec_resolves_the_same(path: Path) -> None:
    assert_same(path)


def test_replays_happen_and_are_exact() -> None:
    """The zoo replays many instances (otherwise the comparisons above prove nothing)."""
    memo.clear()
    memo.STATS.clear()
    for name in ("resnet50", "efficientnet_b7", "efficientnet_v2_l", "regnet_y_16gf", "convnext_base", "densenet201"):
        assert_same(name)
    assert memo.STATS["hit"] > 250 and memo.STATS["unit_hit"] > 250, memo.STATS
    assert memo.STATS["hit"] + memo.STATS["unit_hit"] > 500, memo.STATS
    assert memo.STATS["uncacheable"] == 0 and memo.STATS["unit_uncacheable"] == 0, memo.STATS


LAYERS = {"layers": [3, 4, 90, 3]}


def test_ninety_identical_units_expand_once() -> None:
    """ResNet-50 [3, 4, 90, 3]: a key is recorded the second time it is met, so layer3's units 1..89 (planes
    256, stride 1, no projection) are two fresh expansions (the second recorded) and 87 replays; each stage's
    first unit (met once) is recorded by the next resolve; the whole model makes 8 recordings for 100
    instances. The second resolve also records the four stages (`repeat:` nodes, memo.expand_unit), which the
    third replays whole, instance by instance no more; a depth edit of layer3 then replays the other three
    stages whole and layer3's 91 units as instances."""
    memo.clear()
    memo.STATS.clear()
    fresh, cold, _ = three("resnet50", params=LAYERS)
    assert cold == fresh
    assert (memo.STATS["record"], memo.STATS["hit"]) == (4 + 4, 88 + 96), memo.STATS  # cold, then warm
    assert memo.STATS["unit_record"] == 4 + 4, memo.STATS  # the stages; each stage's first unit's downsample seq
    memo.STATS.clear()
    resolve("resnet50", params=LAYERS)
    assert (memo.STATS["unit_hit"], memo.STATS["record"], memo.STATS["hit"]) == (4, 0, 0), memo.STATS
    deeper = {"layers": [3, 4, 91, 3]}
    with memo.disabled():
        fresh = outcome("resnet50", params=deeper)
    memo.STATS.clear()
    assert outcome("resnet50", params=deeper) == fresh
    # layer1, layer2, layer4 replay whole; layer3 replays its 90-unit recording and expands the 91st (a replay)
    assert (memo.STATS["unit_hit"], memo.STATS["unit_extend"], memo.STATS["record"], memo.STATS["hit"]) == \
        (3, 1, 0, 1), memo.STATS
    off, cold_work, warm_work = calls("resnet50", params=LAYERS)
    assert cold_work * 3 < off * 2  # the units after the first replay
    assert warm_work * 2 < off  # an edit of num_classes: every instance replays


def calls(spec: str, **kw: Any) -> tuple[int, int, int]:
    """Function calls of one resolve: memo off, cold, warm (the third; after one resolve to load and import)."""
    with memo.disabled():
        resolve(spec, **kw)
        with counted() as off:
            resolve(spec, **kw)
    memo.clear()
    with counted() as cold:
        resolve(spec, **kw)
    resolve(spec, **kw)  # records the instances the cold resolve met once (a key is recorded when met again)
    with counted() as warm:
        resolve(spec, **kw)
    print(f"{spec} resolve calls: off {off.calls:,}, cold {cold.calls:,}, warm {warm.calls:,}")
    return off.calls, cold.calls, warm.calls


def test_a_value_edit_of_efficientnet_b7_replays_every_instance() -> None:
    off, cold, warm = calls("efficientnet_b7")
    assert cold < off * 1.1  # recording costs little
    assert warm * 2 < off


def test_value_edits_like_the_editor(tmp_path: Path) -> None:
    """Texts edited one after the other (the memo kept across them, as in the LSP server): each equals a
    fresh resolve, and a later edit replays what an earlier one recorded."""
    f = tmp_path / "spec.yaml"
    texts = [f"extends: resnet50\nname: r\nparams: {{layers: [3, 4, {k}, 3]}}\n" for k in (90, 91, 2, 0)]
    texts += [f"extends: efficientnet_b7\nname: b7\nparams: {{num_classes: {k}}}\n" for k in (1000, 1001, 7)]
    texts += ["extends: resnet50\nname: r\nparams: {block: basic, layers: [2, 2, 2, 2]}\n",
              "extends: resnet50\nname: r\ninput: [3, 64, 48]\n",
              "extends: resnet50\nname: r\nparams: {layers: [3, 4, 6, 3], groups: 2}\n",
              "extends: resnet50\nname: r\nparams: {layers: [3, 4, 6, 3], width_per_group: 3.5}\n"]
    memo.clear()
    memo.STATS.clear()
    for text in texts:
        f.write_text(text)
        with memo.disabled():
            fresh = outcome(f)
        assert outcome(f) == fresh, text
    assert memo.STATS["hit"] > 200, memo.STATS


BLOCKS = """\
archc: 1
name: adversarial
input: [8, 16, 16]
params: {n: 3, wide: 16}
blocks:
  unit:
    args: {w: int, tag: {type: int, default: 0}, cin: {type: int, default: "${in_shape[0]}"}}
    nodes:
      a: {op: conv2d, in: input, out_channels: "${w}", kernel_size: 3, padding: 1}
      b: {op: add, in: [a, late], when: "${in_shape[0] == w}", else: a}
      late: {op: conv2d, in: input, out_channels: "${in_shape[0]}", kernel_size: 1, after: a}
      c: {op: relu, when: "${tag % 2 == 0}"}
      d: {op: conv2d, out_channels: "${w}", kernel_size: 3, padding: 1, share: a, when: "${cin == w}"}
  pair:
    args: {w: int}
    outputs: [p, q]
    nodes:
      p: {op: unit, w: "${w}"}
      q: {op: unit, in: p, w: "${w}", tag: 1}
  fan:
    nodes:
      m: {op: conv2d, out_channels: "${in_shape[0]}", kernel_size: 1, repeat: 2}
      cat: {op: concat, in: ["m.*"]}
      7: {op: conv2d, out_channels: "${in_shape[0] // 2}", kernel_size: 1}
  grow:               # reads its input's shape (an input read)
    nodes:
      g: {op: conv2d, out_channels: "${in_shape[0] * 2}", kernel_size: 1}
      h: {op: relu, inplace: true}
  pool:               # reads the shape of a node inside, which depends on the input's (an inside read)
    nodes:
      p: {op: max_pool2d, kernel_size: 1}
      q: {op: conv2d, out_channels: "${in_shape[0] * 2}", kernel_size: 1}
nodes:
  gg: {op: grow, repeat: 3}
  hh: {op: pool, repeat: 2}
  s: {op: unit, w: "${wide}"}
  t: {op: unit, w: "${wide}", repeat: "${n}"}
  u: {op: pair, w: 8}
  v: {op: add, in: ["u[0]", "u[1]"]}
  w: {op: fan, repeat: 2}
  x: {op: unit, w: 32, tag: "${i}", repeat: 3, as: i}
  y: {op: pair, w: 32}
  z: {op: add, in: ["y[1]", x]}
"""


@pytest.mark.parametrize("params", ["{n: 3, wide: 16}", "{n: 0, wide: 16}", "{n: 3, wide: 8}", "{n: 2, wide: 9}",
                                    "{n: 40, wide: 16}"])
def test_adversarial_blocks(tmp_path: Path, params: str) -> None:
    """Shapes read in `when:` and arguments, `after:` inside a block, `share:`, `NAME.*`, numeric names,
    `outputs:`, nested blocks, a loop variable passed in; each value edit, on a memo kept from the last."""
    f = tmp_path / "adv.yaml"
    f.write_text(BLOCKS.replace("params: {n: 3, wide: 16}", f"params: {params}"))
    fresh, cold, warm = three(f)
    assert fresh[0] == "graph", fresh
    assert cold == fresh and warm == fresh


@pytest.mark.parametrize("limits", [Limits(max_nodes=900), Limits(max_steps=3000), Limits(max_block_depth=1)])
def test_limits_hit_inside_a_replay_fall_back(limits: Limits) -> None:
    """A replay that would go over a limit expands afresh instead, so the error is the fresh one, with
    its location (the memo is warm from an unlimited resolve first)."""
    with memo.disabled():
        fresh = outcome("resnet50", params=LAYERS, limits=limits)
    assert fresh[0] == "error"
    memo.clear()
    outcome("resnet50", params=LAYERS)
    assert outcome("resnet50", params=LAYERS, limits=limits) == fresh


def test_failing_instances_are_not_recorded(tmp_path: Path) -> None:
    """A block whose instances fail (a bad argument in some) gives the fresh errors, with every
    instance's note, warm or cold."""
    f = tmp_path / "bad.yaml"
    f.write_text(BLOCKS.replace('in: input, out_channels: "${in_shape[0]}"',
                                'in: input, out_channels: "${in_shape[0] if tag < 2 else missing}"'))
    fresh, cold, warm = three(f)
    assert fresh[0] == "error" and "missing" in str(fresh) and "x.2" in str(fresh), fresh
    assert cold == fresh and warm == fresh


@pytest.mark.parametrize("name", ["resnet50", "densenet121", "inception_v3", "efficientnet_b0", "swin_t"])
def test_symbolic_inputs_are_memoised_exactly(name: str) -> None:
    """With symbolic input sizes, instances replay too (a read of a symbolic size is part of the key: its
    shape, expressions and stand-in), and the graph (with `sized_by_stand_in`) equals the fresh one."""
    memo.clear()
    memo.STATS.clear()
    assert_same(name, input_shape=[3, "H", "W"])
    assert memo.STATS["hit"] + memo.STATS["unit_hit"] > 5, memo.STATS


def test_a_changed_block_is_a_new_table(tmp_path: Path) -> None:
    """Keys hold the blocks' contents and locations: editing a block (or a base file) on disk never
    replays the old expansion."""
    f = tmp_path / "adv.yaml"
    f.write_text(BLOCKS)
    memo.clear()
    outcome(f)
    f.write_text(BLOCKS.replace("kernel_size: 3, padding: 1", "kernel_size: 5, padding: 2"))
    with memo.disabled():
        fresh = outcome(f)
    assert outcome(f) == fresh
    f.write_text("# a line above moves every location\n" + BLOCKS)
    with memo.disabled():
        fresh = outcome(f)
    assert outcome(f) == fresh


def test_extends_a_builtin_name_without_globbing(tmp_path: Path) -> None:
    """`extends: resnet50` finds the built-in file by listing one folder (a value edit of an extending
    spec globbed every built-in spec twice): the same answer as builtin_names() for every name and
    for names it must refuse, and far fewer calls."""
    from archc.resolve.spec import _extends_target, _top_level, builtin_dir, builtin_names

    d, names = builtin_dir(), set(builtin_names())
    values = [*names, *(n.upper() for n in names), "..", ".hidden", "a b", "examples", "nope", "resnet50 ", "é"]
    for v in values:
        if _top_level(v, d / f"{v}.yaml") and (d / f"{v}.yaml").is_file():
            assert v in names, v
        elif "/" not in v and v in names:
            raise AssertionError(f"{v} is a top-level built-in name")
    here = tmp_path / "spec.yaml"
    with counted() as work:
        assert _extends_target("resnet50", None, here, [tmp_path, d]) == d / "resnet50.yaml"
    assert work.calls < 400, work.calls
    with pytest.raises(ArchcError, match="unknown spec 'ResNet50'"):
        _extends_target("ResNet50", None, here, [tmp_path, d])


def test_tables_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long session keeps at most KEYS keys per table and TABLES tables, and stays exact."""
    monkeypatch.setattr(memo, "KEYS", 3)
    monkeypatch.setattr(memo, "TABLES", 2)
    memo.clear()
    for name in ("resnet50", "efficientnet_b0", "densenet121", "resnet50"):
        with memo.disabled():
            fresh = outcome(name)
        assert outcome(name) == fresh
    assert len(memo._TABLES) == 2
    assert all(len(t.entries) <= 3 for t in memo._TABLES.values())


ZOO = sorted(ROOT.glob("specs/*.yaml")) + sorted(ROOT.glob("specs/examples/*.yaml"))


def test_the_zoo_shares_tables_across_specs() -> None:
    """Tables are per block (its definition and those it may use, with locations): one memo kept across the
    whole zoo, in order and then reversed, gives every spec exactly its fresh graph; a spec extending
    resnet50 replays resnet50's recordings instead of making its own."""
    with memo.disabled():
        fresh = {p: outcome(p) for p in ZOO}
    memo.clear()
    for order in (ZOO, ZOO[::-1]):
        for p in order:
            assert outcome(p) == fresh[p], p.stem
    memo.clear()
    outcome("resnet50")
    outcome("resnet50")  # a key is recorded when met again: now every resnet50 instance is
    memo.STATS.clear()
    assert outcome("resnet101") == fresh[ROOT / "specs/resnet101.yaml"]
    # layer1, layer2, layer4 repeat as in resnet50 (the same written nodes, the same counts): replayed whole;
    # layer3 (23 units, not 6) replays resnet50's 6 and expands 17 more, each replayed as an instance
    assert (memo.STATS["record"], memo.STATS["unit_hit"], memo.STATS["unit_extend"], memo.STATS["hit"]) == \
        (0, 3, 1, 17), memo.STATS


BASE = """\
archc: 1
name: base
input: [3, 32, 32]
params: {w: 8}
blocks:
  unit:
    args: {c: int}
    seq:
      - {op: conv2d, out_channels: "${c}", kernel_size: 3, padding: 1}
      - {op: relu}
nodes:
  a: {op: unit, c: "${w}", repeat: 3}
"""


def test_a_base_file_edited_between_checks(tmp_path: Path) -> None:
    """Two specs extending one base share its block's table; editing the base on disk (a body, or a line
    that moves every location) gives the fresh graph at once, never the old recording."""
    (tmp_path / "base.yaml").write_text(BASE)
    kids = []
    for k, w in enumerate((8, 16)):
        kids.append(tmp_path / f"kid{k}.yaml")
        kids[-1].write_text(f"extends: base.yaml\nname: kid{k}\nparams: {{w: {w}}}\n")
    memo.clear()
    for base in (BASE, BASE.replace("kernel_size: 3, padding: 1", "kernel_size: 5, padding: 2"), "\n" + BASE):
        (tmp_path / "base.yaml").write_text(base)
        for kid in kids:
            with memo.disabled():
                fresh = outcome(kid)
            assert fresh[0] == "graph"
            assert outcome(kid) == fresh, (base, kid.name)
    memo.STATS.clear()
    (tmp_path / "other.yaml").write_text("extends: base.yaml\nname: other\nparams: {w: 16}\n")
    outcome(tmp_path / "other.yaml")
    assert memo.STATS["record"] == 0 and memo.STATS["hit"] == 3, memo.STATS


UNITS = """\
archc: 1
name: units
input: [8, 16, 16]
params: {n: 3, k: 2, wide: 16, tail: 10}
nodes:
  r: {op: conv2d, out_channels: "${wide}", kernel_size: 3, padding: 1, repeat: "${n}"}
  fan: {op: concat, in: ["r.*"]}
  outer:
    repeat: "${k}"
    as: j
    nodes:
      inner: {op: conv2d, out_channels: "${in_shape[0] // 2 + j}", kernel_size: 1, repeat: 2, name: "c${i}"}
      act: {op: relu, when: "${j % 2 == 0}"}
  pair:
    inputs: [a, b]
    outputs: [s, t]
    in: [outer, fan]
    nodes:
      s: {op: conv2d, in: a, out_channels: "${wide}", kernel_size: 1}
      t: {op: adaptive_avg_pool2d, in: b, output_size: 4}
  mix:
    in: "pair[0]"
    seq:
      - {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1}
      - each: [1, 2]
        as: d
        items: [{op: conv2d, out_channels: "${8 * d}", kernel_size: 1}]
  pooled: {op: adaptive_avg_pool2d, output_size: 1}
  flat: flatten
  head: {op: linear, out_features: "${tail}"}
"""


@pytest.mark.parametrize("edits", [("{n: 3, k: 2, wide: 16, tail: 10}", "{n: 3, k: 2, wide: 16, tail: 11}",
                                    "{n: 4, k: 2, wide: 16, tail: 11}", "{n: 4, k: 3, wide: 16, tail: 11}",
                                    "{n: 4, k: 3, wide: 8, tail: 11}", "{n: 2, k: 0, wide: 8, tail: 11}",
                                    "{n: 3, k: 2, wide: 16, tail: 10}")])
def test_units_replay_exactly(tmp_path: Path, edits: tuple[str, ...]) -> None:
    """`repeat:` and `seq:`/`nodes:` nodes memoised whole (memo.expand_unit): a top-level repeat read as
    `NAME.*`, a repeat with `as:` around a repeat with a `name:` template, a group with declared inputs and
    `outputs:`, a seq with an `each:` loop; each edit (the tail only, a count, a width) three times in a row,
    on a memo kept across them, gives the fresh graph, and the unchanged units replay."""
    f = tmp_path / "units.yaml"
    memo.clear()
    memo.STATS.clear()
    for params in edits:
        f.write_text(UNITS.replace("params: {n: 3, k: 2, wide: 16, tail: 10}", f"params: {params}"))
        with memo.disabled():
            fresh = outcome(f)
        assert fresh[0] == "graph", fresh
        for _ in range(3):
            assert outcome(f) == fresh, params
    assert memo.STATS["unit_hit"] > 20 and memo.STATS["unit_uncacheable"] == 0, memo.STATS
    assert memo.STATS["unit_extend"] >= 2, memo.STATS  # n 3 -> 4 and k 2 -> 3: the longer repeat extends
    memo.STATS.clear()
    f.write_text(UNITS.replace("params: {n: 3, k: 2, wide: 16, tail: 10}", "params: {n: 3, k: 2, wide: 16, tail: 12}"))
    outcome(f)
    assert (memo.STATS["unit_hit"], memo.STATS["unit_miss"]) == (4, 0), memo.STATS  # r, outer, pair, mix


def test_a_deeper_stage_extends_the_shorter(tmp_path: Path) -> None:
    """An editor typing a stage's depth: ResNet-50's layer3 at 6, 7, 9, 8, 12, 2, 0, 13 units, each resolved
    twice on one memo. The first new count after 6 is recorded (the values were met before with another
    count), and every deeper count after it replays that recording and expands only the units after it
    (relabelled `bottleneck xN`); a shallower one expands; each equals the fresh graph."""
    f = tmp_path / "deep.yaml"
    memo.clear()
    memo.STATS.clear()
    for depth in (6, 7, 9, 8, 12, 2, 0, 13):
        f.write_text(f"extends: resnet50\nname: deep\nparams: {{layers: [3, 4, {depth}, 3]}}\n")
        with memo.disabled():
            fresh = outcome(f)
        assert fresh[0] == "graph"
        for _ in range(2):
            assert outcome(f) == fresh, depth
    assert memo.STATS["unit_extend"] >= 4, memo.STATS  # 9, 8 and 12 extend 7's recording; 13 too
    memo.STATS.clear()
    f.write_text("extends: resnet50\nname: deep\nparams: {layers: [3, 4, 40, 3]}\n")
    outcome(f)
    assert (memo.STATS["unit_extend"], memo.STATS["unit_hit"]) == (1, 3), memo.STATS
    assert memo.STATS["hit"] == 40 - 13, memo.STATS  # the units after the longest recording (13), as instances


@pytest.mark.parametrize("limits", [Limits(max_nodes=500), Limits(max_steps=1500), Limits(max_steps=900)])
def test_an_extended_repeat_breaks_a_limit_where_fresh_does(limits: Limits) -> None:
    """A deeper stage that extends a recording and breaks a limit on the way gives the fresh error (message
    and location), the budget being spent in the fresh order."""
    deep = {"layers": [3, 4, 90, 3]}
    with memo.disabled():
        fresh = outcome("resnet50", params=deep, limits=limits)
    assert fresh[0] == "error"
    memo.clear()
    for depth in (20, 21):  # 21 is recorded: its values were met with 20
        outcome("resnet50", params={"layers": [3, 4, depth, 3]})
    memo.STATS.clear()
    assert outcome("resnet50", params=deep, limits=limits) == fresh
