"""Trust III (issue 24): specs that compiled to something else, or died with an internal error, are
located errors or have a written meaning.

- A node with `when:` and several inputs names the one it stands for when skipped (`else:`), or is
  refused; a shape error behind a skipped shortcut says so.
- `NAME[K]` on a single output (a graph input, or through a skipped split) is located; `check` never
  prints ok for outputs without a shape.
- `repeat:` on several inputs is refused (it kept the first; `repeat: 0` stood for it).
- `each:` without `items:` is located; a kept shape error is re-raised as a copy, so no error lists
  itself among its `others` (the editor looped on it).
- `in_channels` and friends say that input widths are inferred; W010 and W008 under `extends:`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archc
from archc.analyze import analyze
from archc.analyze.lint import lint
from archc.api import analyse
from archc.cli import main
from archc.errors import ArchcError, Loc, ResolveError, ShapeError
from archc.ir import Graph, Node
from archc.lsp.cache import _flatten
from archc.lsp.document import analyse_text
from archc.resolve.shapes_so_far import ShapesSoFar

HEAD = "name: t\ninput: [3, 8, 8]\n"
TWO = ("  a: {op: conv2d, out_channels: 3, kernel_size: 3, padding: 1}\n"
       "  b: {op: conv2d, out_channels: 3, kernel_size: 3, padding: 1, in: input}\n")


def _spec(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> ArchcError:
    with pytest.raises(ArchcError) as info:
        archc.check(_spec(tmp_path, text))
    return info.value


def _at(err: ArchcError) -> tuple[int, int]:
    assert err.loc is not None, err
    return err.loc.line, err.loc.col


# -- when: on several inputs -----------------------------------------------------------------------
@pytest.mark.parametrize("shortcut", ["false", "true"])
def test_a_skippable_node_with_several_inputs_must_say_what_it_stands_for(tmp_path, shortcut):
    """It stood for its first input, silently (a C2f bottleneck without its bottleneck). Refused
    wherever it can be skipped, not only where it is: `--set shortcut=false` must not change that."""
    text = HEAD + f"params: {{shortcut: {shortcut}}}\nnodes:\n" + TWO + \
        '  add: {op: add, in: [a, b], when: "${shortcut}"}\n'
    err = _error(tmp_path, text)
    assert isinstance(err, ResolveError)
    assert "reads 2 inputs ('a', 'b') and may be skipped" in err.message
    assert _at(err) == (7, 36)  # the `when:` value
    assert err.hint is not None and "else: a" in err.hint


@pytest.mark.parametrize("pick", ["a", "b"])
def test_else_names_what_a_skipped_node_stands_for(tmp_path, pick):
    text = HEAD + "nodes:\n" + TWO + f"  add: {{op: add, in: [a, b], when: false, else: {pick}}}\n  r: relu\n"
    graph = analyse(_spec(tmp_path, text)).graph
    assert graph.node("r").inputs == (pick,)
    assert "add" not in {n.path for n in graph.nodes}


def test_else_of_a_node_that_runs_is_ignored_but_checked(tmp_path):
    text = HEAD + "nodes:\n" + TWO + "  add: {op: add, in: [a, b], when: true, else: b}\n"
    assert archc.check(_spec(tmp_path, text)).graph.node("add").inputs == ("a", "b")


@pytest.mark.parametrize("line, message, anchor", [
    ("  add: {op: add, in: [a, b], when: false, else: c}\n", "`else: c` is not an input of 'add'", "c}"),
    ("  add: {op: add, in: [a, b], else: a}\n", "'add' has `else:` but no `when:`", "else"),
    ("  s:\n    seq:\n      - {op: add, in: [input, input], when: false, else: input}\n",
     "`else:` on a seq item", "else"),
])
def test_misplaced_else_is_located(tmp_path, line, message, anchor):
    err = _error(tmp_path, HEAD + "nodes:\n" + TWO + line)
    written = line.splitlines()[-1]
    assert message in err.message and _at(err) == (5 + len(line.splitlines()), written.index(anchor) + 1)


def test_the_zoo_residuals_say_else():
    """The zoo's skippable residual adds and auxiliary resizes name their main input; built the same."""
    graph = archc.check("mobilenet_v2").graph
    assert graph.node("features.2.conv.3").path  # a stride-2 block: no add, its name stands for conv
    assert not any(n.path == "features.2.add" for n in graph.nodes)
    assert graph.node("features.3.add").inputs == ("features.3.conv.3", "features.2.conv.3")


def test_a_mismatch_behind_a_skipped_shortcut_says_so(tmp_path):
    """The hint suggested adding a downsample when one is written and skipped by its `when:`."""
    text = ("name: t\ninput: [8, 16, 16]\nblocks:\n  unit:\n"
            "    args: {c: int, down: {type: bool, default: false}}\n    nodes:\n"
            "      conv: {op: conv2d, out_channels: \"${c}\", kernel_size: 1}\n"
            "      downsample: {in: input, op: conv2d, out_channels: \"${c}\", kernel_size: 1, when: \"${down}\"}\n"
            "      add: {op: add, in: [conv, downsample]}\nnodes:\n  a: {op: unit, c: 16}\n")
    err = _error(tmp_path, text)
    assert isinstance(err, ShapeError) and err.node == "a.add"
    assert err.hint is not None
    assert "'a.downsample' is skipped here (its `when:` at" in err.hint and "t.yaml:8:" in err.hint
    assert "add a downsample" not in err.hint
    fine = text.replace("{op: unit, c: 16}", "{op: unit, c: 16, down: true}")
    assert archc.check(_spec(tmp_path, fine)).output_shapes == [(16, 16, 16)]


# -- NAME[K] on a single output ----------------------------------------------------------------------
def test_an_output_index_on_the_graph_input_is_located(tmp_path):
    """`check` printed ok with every node unanalysed; `build` died with an internal KeyError."""
    text = HEAD + 'nodes:\n  a: {op: conv2d, out_channels: 3, kernel_size: 3, in: ["input[0]"]}\n'
    err = _error(tmp_path, text)
    assert err.message == "the input 'input' has a single output: there is no 'input[0]'"
    assert _at(err) == (4, 57)
    assert main(["build", str(tmp_path / "t.yaml")]) == 1


def test_an_output_of_a_skipped_split_is_located(tmp_path):
    text = ("name: t\ninput: [4, 8, 8]\nnodes:\n  s: {op: split, sizes: [2, 2], when: false}\n"
            '  a: {op: conv2d, out_channels: 3, kernel_size: 3, in: ["s[0]"]}\n')
    err = _error(tmp_path, text)
    assert "'s[0]' reads output 0 of 's', which is skipped here" in err.message
    assert _at(err) == (5, 57)
    assert err.hint is not None and "t.yaml:4:39" in err.hint
    text = text.replace("  s: {op", "  c: {op: conv2d, out_channels: 4, kernel_size: 1}\n  s: {op")
    assert "stands for 'c' (conv2d): it has a single output" in _error(tmp_path, text).message


def test_analysis_never_leaves_an_output_without_a_shape_unexplained():
    """A graph built by hand (not through resolve) reading input[0]: a located shape error, and an
    output naming nothing is an internal error rather than an `ok` with no shape."""
    loc = Loc("g.yaml", 3, 5)
    node = Node("a", "relu", {"inplace": False}, ("input[0]",), loc)
    result = analyze(Graph("g", (("input", (3, 8, 8)),), (node,), ("a",)))
    assert [(e.message, e.loc) for e in result.errors] == [
        ("the input 'input' has a single output: there is no 'input[0]'", loc)]
    with pytest.raises(AssertionError):
        analyze(Graph("g", (("input", (3, 8, 8)),), (), ("nowhere",)))


# -- repeat on several inputs ------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 2])
def test_repeat_on_several_inputs_is_refused(tmp_path, n):
    err = _error(tmp_path, HEAD + "nodes:\n" + TWO + f"  add: {{op: add, in: [a, b], repeat: {n}}}\n")
    assert err.message.startswith(f"'add' repeats {n} times but reads 2 inputs")
    assert _at(err) == (6, 22)  # the `in:` value


# -- each without items, cached errors ---------------------------------------------------------------
def test_each_without_items_is_located_in_check_and_in_the_editor(tmp_path):
    text = HEAD + 'nodes:\n  s:\n    seq:\n      - {each: "${[1, 2]}"}\n      - relu\n'
    err = _error(tmp_path, text)
    assert err.message.startswith("an `each:` loop needs `items:`") and _at(err) == (6, 10)
    state = analyse_text(text, tmp_path / "t.yaml")
    assert [e.message for e in state.errors] == [err.message]


IN_SHAPE_BLOCK = ("name: t\ninput: [3, 8, 8]\nblocks:\n  unit:\n"
                  "    args: {cin: {type: int, default: \"${in_shape[0]}\"}}\n    nodes:\n"
                  "      c: {op: conv2d, out_channels: \"${cin}\", kernel_size: %s}\n")


@pytest.mark.parametrize("where", ["before", "inside"])
def test_a_failing_node_read_by_in_shape_defaults_is_one_located_error(tmp_path, where):
    """Every instance re-raised one kept exception object: its `others` listed itself and the editor
    showed "internal error: RecursionError" at 0:0 instead of the user's error."""
    if where == "before":
        text = IN_SHAPE_BLOCK % 1 + "nodes:\n  bad: {op: conv2d, out_channels: 4, kernel_size: 20}\n" \
            "  stack: {op: unit, repeat: 3}\n"
    else:
        text = IN_SHAPE_BLOCK % 20 + "nodes:\n  stack: {op: unit, repeat: 3}\n"
    err = _error(tmp_path, text)
    pending, seen = [err], set()
    while pending:
        e = pending.pop()
        assert all(o is not e for o in e.others)
        assert id(e) not in seen
        seen.add(id(e))
        pending.extend(e.others)
    state = analyse_text(text, tmp_path / "t.yaml")
    assert [(e.loc.line if e.loc else 0, "smaller than the kernel (20)" in e.message) for e in state.errors] == [
        (9 if where == "before" else 7, True)]


def test_a_kept_shape_error_is_raised_as_a_new_object_each_time():
    """ShapesSoFar keeps the error of a node whose shape failed; whoever catches it extends `others`
    and `notes` in place, so every read raises a copy."""
    kept = ShapeError("kept", Loc("a", 1, 1))

    class Ex:  # the two things ShapesSoFar asks of the expander
        pending: list[object] = []

        @staticmethod
        def follow(ref: object) -> str:
            return "x"

    shapes = ShapesSoFar([])
    shapes.failed["x"] = kept
    raised = []
    for _ in range(2):
        with pytest.raises(ShapeError) as info:
            shapes.of(Ex(), (0, "x", None), None)  # type: ignore[arg-type]
        info.value.others.append(info.value)
        raised.append(info.value)
    assert raised[0] is not raised[1] and kept not in raised and kept.others == []


def test_the_editor_flattens_an_error_that_lists_itself():
    err = ShapeError("loop", Loc("a", 1, 1))
    other = ShapeError("other", Loc("a", 2, 1))
    err.others = [err, other]
    other.others = [err]
    out: list[ArchcError] = []
    _flatten(err, out, set())
    assert out == [err, other]


def test_a_kept_error_is_copied_when_raised_again():
    err = ShapeError("x", Loc("a", 1, 1), hint="h")
    err.notes.append("n")
    again = err.copy()
    again.others.append(err)
    again.notes.append("m")
    assert type(again) is ShapeError and again.message == "x" and again.hint == "h" and again.loc == err.loc
    assert err.others == [] and err.notes == ["n"] and str(again).startswith("a:1:1: error: x")


# -- messages and lints -------------------------------------------------------------------------------
@pytest.mark.parametrize("node, key", [
    ("{op: conv2d, out_channels: 4, kernel_size: 1, in_channels: 3}", "in_channels"),
    ("{op: linear, out_features: 4, in_features: 3}", "in_features"),
    ("{op: batchnorm2d, num_features: 3}", "num_features"),
    ("{op: unit, in_channels: 3}", "in_channels"),
])
def test_input_widths_are_inferred(tmp_path, node, key):
    """`in_channels: 3` got "did you mean 'out_channels'?"."""
    text = HEAD + "blocks:\n  unit:\n    nodes: {r: relu}\nnodes:\n  x: " + node + "\n"
    err = _error(tmp_path, text)
    assert err.hint is not None and err.hint.startswith("input widths are inferred") and f"'{key}'" in err.hint
    assert "did you mean" not in err.hint


BASE = ("name: base\ninput: [3, 8, 8]\nparams: {drop: 0.5}\nblocks:\n  unit:\n    args: {w: int}\n    nodes:\n"
        "      c: {op: conv2d, out_channels: \"${w}\", kernel_size: 1}\n"
        "      d: {op: dropout, p: \"${drop}\"}\nnodes:\n  u: {op: unit, w: 4}\n")


def _codes(tmp_path: Path, child: str) -> list[tuple[str, str]]:
    _spec(tmp_path, BASE, "base.yaml")
    return [(w.code, w.message) for w in lint(analyse(_spec(tmp_path, child, "child.yaml")))]


def test_an_argument_read_by_inherited_nodes_is_read(tmp_path):
    """W010 looked at the child's block text only: `w`, read by the base's `c`, was "never read"."""
    child = ("extends: base.yaml\nname: child\nblocks:\n  unit:\n"
             "    args: {w: {type: int, default: 4}, k: {type: int, default: 1}}\n    nodes:\n      r: relu\n")
    assert _codes(tmp_path, child) == [("W010", "argument 'k' of block 'unit' is never read in its body [W010]")]


def test_a_param_deleted_under_extends_is_not_unread(tmp_path):
    """`p: null` in a child deletes the inherited param: nothing is set that could be read."""
    body = "nodes:\n  u: {op: unit, w: 4}\n  d: {op: dropout, p: 0.1}\n"
    child = "extends: base.yaml\nname: child\nparams: {drop: null}\nblocks:\n  unit:\n    nodes: {d: null}\n" + body
    assert _codes(tmp_path, child) == []
    alone = "name: t\ninput: [3, 8, 8]\nparams: {p: null}\nnodes: {r: relu}\n"  # not a deletion: set, unread
    assert [w.code for w in lint(analyse(_spec(tmp_path, alone)))] == ["W008"]


def test_the_segmentation_specs_are_strict_clean(capsys):
    assert main(["check", "-q", "--strict", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"]) == 0, \
        capsys.readouterr().err


def test_an_output_read_from_a_failed_node_adds_no_unlocated_error(tmp_path):
    """A node that fails to expand stands for its input so that later nodes are still checked; an
    output picked from it (`backbone[1]`) is a consequence, not a second error without a place."""
    text = ("name: t\ninput: [3, 8, 8]\nblocks:\n  two:\n    outputs: [a, b]\n    nodes:\n"
            "      a: {op: nothing}\n      b: relu\n  head:\n    args: {c: {type: int, default: \"${in_shape[0]}\"}}\n"
            "    nodes: {r: relu}\nnodes:\n  bb: two\n  h: {op: head, in: \"bb[1]\"}\n")
    err = _error(tmp_path, text)
    assert [e.message for e in [err, *err.others]] == ["unknown block 'nothing'"]
