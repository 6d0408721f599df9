"""`archc lsp` on the language of issues 26 and 29: `share:`, `after:`, `else:`, `NAME.*` and numeric names
(completion, hover, go-to-definition), over stdio as tests/test_lsp.py drives it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from archc.lsp import document as doc

pytest.importorskip("pygls")
from tests.test_lsp import Session, _pos  # noqa: E402

SPEC = """\
name: lang3
input: [6, 16, 16]
blocks:
  enc:
    nodes:
      conv1: {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1, bias: false}
      bn1: batchnorm2d
      act: relu
  unit:
    nodes:
      conv: {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1}
nodes:
  pair: {op: chunk, chunks: 2}
  enc_a: {op: enc, in: "pair[0]"}
  enc_b: {op: enc, in: "pair[1]", share: enc_a}
  solo: {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1, bias: false, in: "pair[1]", share: enc_a.conv1}
  head_a: {op: conv2d, out_channels: 8, kernel_size: 1, in: enc_a}
  head_b: {op: conv2d, out_channels: 8, kernel_size: 1, in: enc_b, share: head_a}
  m: {op: unit, repeat: 2, in: head_a}
  cat: {op: concat, in: [head_b, "m.*", solo]}
  extra: {op: relu, after: cat}
  5: {op: conv2d, out_channels: 4, kernel_size: 1}
  out: {op: add, in: [5, 5]}
"""
ENC = 3 * 8 * 9 + 2 * 8  # enc_a's conv1 and bn1: the parameters enc_b shares
HEAD = 8 * 8 + 8


@pytest.fixture(scope="module")
def lsp() -> Iterator[Session]:
    s = Session()
    yield s
    s.close()


@pytest.fixture()
def spec(lsp: Session, tmp_path: Path) -> Path:
    path = tmp_path / "lang3.yaml"
    assert [d for d in lsp.open(path, SPEC) if d.severity == 1] == []
    return path


def _after(text: str, needle: str) -> tuple[int, int]:
    """0-based (line, character) just past the first occurrence of needle."""
    line, col = _pos(text, needle)
    return line, col + len(needle)


def test_completion_of_share_after_and_fan_in(lsp: Session, spec: Path) -> None:
    names = lsp.complete(spec, *_after(SPEC, "share: "))
    assert {"enc_a", "pair", "head_a", "m", "5"} <= set(names) and "input" not in names and "conv1" not in names
    assert {"pair", "cat", "m"} <= set(lsp.complete(spec, *_after(SPEC, "after: ")))
    fan = lsp.complete(spec, *_after(SPEC, 'in: [head_b, "'))
    assert "m.*" in fan and "head_a" in fan and "pair.*" not in fan and "enc_a.*" not in fan  # repeats only
    typed = SPEC.replace("kernel_size: 1, in: enc_a", "kernel_size: 1, s, in: enc_a")
    lsp.change(spec, typed)
    keys = lsp.complete(spec, *_after(typed, "kernel_size: 1, s"))  # a key begun in head_a's flow mapping
    assert {"share", "stride"} <= set(keys) and "after" not in keys and "padding" in keys  # the client filters
    typed = SPEC.replace("kernel_size: 1, in: enc_b", "kernel_size: 1, a, in: enc_b")
    lsp.change(spec, typed)
    assert "after" in lsp.complete(spec, *_after(typed, "kernel_size: 1, a"))
    typed = SPEC.replace("kernel_size: 1, in: enc_b", "kernel_size: 1, s, in: enc_b")
    lsp.change(spec, typed)
    assert "share" not in lsp.complete(spec, *_after(typed, "kernel_size: 1, s"))  # head_b has its share: already
    typed = SPEC.replace("in: [5, 5]}", "in: [5, 5], e}")
    lsp.change(spec, typed)
    assert "else" in lsp.complete(spec, *_after(typed, "in: [5, 5], e"))


def test_completion_while_typing_a_share(lsp: Session, spec: Path) -> None:
    typing = SPEC + "  tail: {op: conv2d, out_channels: 4, kernel_size: 1, share: "
    diags = lsp.change(spec, typing)
    assert diags and diags[0].code == "YamlError"
    names = lsp.complete(spec, typing.count("\n"), len(typing.rsplit("\n", 1)[1]))
    assert {"enc_a", "head_a", "5", "out"} <= set(names)  # from the last text that parsed


def test_hover_on_sharing(lsp: Session, spec: Path) -> None:
    value = lsp.hover(spec, *_pos(SPEC, "enc_a}"))
    assert value is not None and "`enc_b` calls the weights of `enc_a` (enc)" in value
    assert f"{ENC:,} parameters in 2 layer(s)" in value and "enc_b.conv1 → enc_a.conv1: 216" in value
    assert "enc_b.act" not in value  # a layer without parameters is not listed
    one = lsp.hover(spec, *_pos(SPEC, "head_a}"))
    assert one is not None and f"`head_b` calls the weights of `head_a` (conv2d): {HEAD:,} parameters" in one
    enc_b = lsp.hover(spec, *_pos(SPEC, "enc_b:"))
    assert enc_b is not None and "weights of enc_a (0 own parameters)" in enc_b
    head_b = lsp.hover(spec, *_pos(SPEC, "head_b:"))
    assert head_b is not None and "weights of head_a (0 own parameters)" in head_b and "- params: 0" in head_b
    solo = lsp.hover(spec, *_pos(SPEC, "solo:"))
    assert solo is not None and "weights of enc_a.conv1 (0 own parameters)" in solo
    owner = lsp.hover(spec, *_pos(SPEC, "enc_a:"))
    assert owner is not None and "shared by enc_b" in owner and f"params: {ENC:,}" in owner
    conv1 = lsp.hover(spec, *_pos(SPEC, "conv1:"))  # inside the block: the first instance's, and who shares it
    assert conv1 is not None and "shared by enc_b.conv1, solo" in conv1


def test_hover_on_fan_in_and_after(lsp: Session, spec: Path) -> None:
    fan = lsp.hover(spec, *_pos(SPEC, "m.*"))
    assert fan is not None and "repeat `m`" in fan and "2 unit(s)" in fan
    assert "m.0: (8, 16, 16)" in fan and "m.1: (8, 16, 16)" in fan
    after = lsp.hover(spec, *_pos(SPEC, "cat}"))
    assert after is not None and after.startswith("**cat**: `concat") and "(32, 16, 16)" in after


def test_definition_of_share_after_fan_in_and_numbers(lsp: Session, spec: Path) -> None:
    def target(needle: str, nth: int = 0) -> tuple[int, int]:
        got = lsp.definition(spec, *_pos(SPEC, needle, nth))
        assert got is not None, needle
        return got.range.start.line, got.range.start.character

    assert target("enc_a}") == _pos(SPEC, "enc_a:")
    assert target("head_a}") == _pos(SPEC, "head_a:")
    assert target("enc_a.conv1") == _pos(SPEC, "conv1:")  # through the block's body
    assert target("cat}") == _pos(SPEC, "cat:")
    assert target("m.*") == _pos(SPEC, "m:")
    assert target("5, 5]") == _pos(SPEC, "5:")  # a name written as a plain number


C2F = (Path(__file__).resolve().parents[1] / "specs" / "examples" / "c2f_fanin.yaml")


def test_in_process_on_the_example_c2f_fanin() -> None:
    """The same answers through archc.lsp.document, without a server: `else:` and `m.*` in a block body,
    one entry per instance of the block, and a dotted path through a repeat's unit."""
    text = C2F.read_text()
    state = doc.analyse_text(text, C2F)
    assert state.errors == []
    line, col = _one_based(text, '"m.*"]', 1)  # the first is in the comment at the top
    kind, site, detail = doc.at(state, line, col + 1)
    assert (kind, detail) == ("ref", "m.*") and site is not None
    fan = doc.hover_fanin(state, site, detail)
    assert fan is not None and "`c2f.m` (bottleneck x2): 2 unit(s)" in fan and "c2f.m.1: (64, 32, 32)" in fan
    line, col = _one_based(text, "else: cv2")
    kind, site, detail = doc.at(state, line, col + len("else: "))
    assert (kind, detail) == ("else", "cv2") and site is not None
    where = doc.definition(state, kind, site, detail)
    assert where is not None and (where.line, where.col) == _one_based(text, "cv2: {op: conv, c2: \"${c}\"")
    m = next(s for s in state.sites if s.name == "m")
    unit = doc.definition(state, "share", m, "m.0.cv1")  # as `share: m.0.cv1` beside m would
    assert unit is not None and (unit.line, unit.col) == _one_based(text, "cv1: {op: conv, c2: \"${c}\"")


def _one_based(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    line, col = _pos(text, needle, nth)
    return line + 1, col + 1
