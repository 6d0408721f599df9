"""Lint and the in-place check do no work per node beyond a few comprehensions (the language server runs both on
every edit), and the shortcuts that make them so give the warnings and refusals of the rules as written."""

from __future__ import annotations

from pathlib import Path

from archc.analyze.inplace import check_inplace
from archc.analyze.lint import lint
from archc.api import analyse, analyse_source, collector_paused
from archc.resolve.spec import load_spec
from tests.work import counted

HEAD = "name: l\ninput: [8, 16, 16]\n"


def _lint(tmp_path: Path, text: str) -> list[tuple[str, int, str]]:
    spec = tmp_path / "lint.yaml"
    spec.write_text(text)
    return [(w.code, w.loc.line if w.loc else 0, w.message) for w in lint(analyse(spec))]


def _calls(tmp_path: Path, depth: int) -> tuple[int, int]:
    """(nodes, calls of lint + check_inplace) on ResNet-50 with ``depth`` units in its third stage."""
    spec = tmp_path / f"r{depth}.yaml"
    spec.write_text(f"extends: resnet50\nname: r\nparams: {{layers: [3, 4, {depth}, 3]}}\n")
    with collector_paused():
        source = load_spec(spec)
        analysis = analyse_source(source)
        lint(analysis, source)  # the blocks' modules imported, the expressions parsed: what an edit finds
        with counted() as work:
            lint(analysis, source)
            check_inplace(analysis.graph, [])
    return len(analysis.graph.nodes), work.calls


def test_no_calls_per_node(tmp_path: Path) -> None:
    """A deeper network adds nodes, not calls: less than one call per node added (the rules one at a time, a
    method call or two per node each, made ~20)."""
    small, few = _calls(tmp_path, 6)
    large, many = _calls(tmp_path, 46)
    assert large - small == 400
    assert many - few < (large - small) // 10, (few, many)
    assert many < 2_000, many


def test_a_value_read_only_as_name_k_is_read(tmp_path: Path) -> None:
    body = "nodes:\n  c: {op: chunk, chunks: 2}\n  r: {op: relu, in: \"c[1]\"}\n"
    assert _lint(tmp_path, HEAD + body) == []
    dead = body + "  d: {op: relu, in: \"c[0]\"}\n  o: {op: relu, in: r}\n"
    assert _lint(tmp_path, HEAD + dead) == [("W001", 6, "nothing reads 'd' and it is not an output [W001]")]


def test_strides_as_ints_and_pairs(tmp_path: Path) -> None:
    def pool(args: str) -> list[tuple[str, int]]:
        return [(code, line) for code, line, _ in _lint(tmp_path, HEAD + f"nodes:\n  p: {{op: max_pool2d, {args}}}\n")]

    assert pool("kernel_size: 2, stride: 3") == [("W004", 4)]
    assert pool("kernel_size: 2, stride: 3, dilation: 2") == []  # the window spans 3 pixels
    assert pool("kernel_size: [1, 3], stride: [1, 4]") == [("W004", 4)]
    assert pool("kernel_size: [1, 3], stride: [1, 3]") == []
    assert pool("kernel_size: 1, stride: 2") == []  # a 1x1 projection


def test_a_bias_read_by_two_batchnorms_names_the_first(tmp_path: Path) -> None:
    body = ("nodes:\n  c: {op: conv2d, out_channels: 4, kernel_size: 1}\n  b1: batchnorm2d\n"
            "  b2: {op: batchnorm2d, in: c}\n  s: {op: add, in: [b1, b2]}\n")
    found = _lint(tmp_path, HEAD + body)
    assert [(code, line) for code, line, _ in found] == [("W007", 4)]
    assert "a bias before batchnorm2d 'b1'" in found[0][2]


def test_a_constant_when_on_a_block_use_inside_a_block(tmp_path: Path) -> None:
    """The `when:` node is a group (a block use) in every instance, not a node: built in all of them."""
    block = ("blocks:\n  inner: {seq: [relu]}\n  unit:\n    args: {s: {type: int, default: 1}}\n    nodes:\n"
             "      c: {op: conv2d, out_channels: 8, kernel_size: 1, bias: false}\n"
             "      g: {op: inner, when: \"${s == 1}\", else: c}\n")
    found = _lint(tmp_path, HEAD + block + "nodes:\n  a: unit\n  b: unit\n")
    assert [(code, line) for code, line, _ in found] == [("W011", 9)]
    assert "is true in all 2 instances of block 'unit'" in found[0][2]


def test_two_writers_over_one_value_are_refused(tmp_path: Path) -> None:
    """Each writer's chain alone looks plain; the value they share is read twice."""
    spec = tmp_path / "two.yaml"
    spec.write_text(HEAD + "nodes:\n  c: {op: conv2d, out_channels: 8, kernel_size: 1}\n"
                    "  r1: {op: relu, inplace: true}\n  r2: {op: relu, in: c, inplace: true}\n"
                    "  s: {op: add, in: [r1, r2]}\n")
    errors = analyse(spec).errors
    assert [e.node for e in errors] == ["r1", "r2"]
    assert all(e.message.startswith("inplace=true would overwrite 'c', which is also read by") for e in errors)
