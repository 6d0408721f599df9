"""Lints W006-W011, silences (`lint: {ignore: {CODE: reason}}`) and `archc check --strict`; W001-W004 are in
test_lsp.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from archc.analyze.lint import CODES, lint
from archc.api import analyse
from archc.cli import main
from archc.errors import SchemaError
from archc.resolve import builtin_names

HEAD = "name: l\ninput: [8, 16, 16]\n"
README = Path(__file__).resolve().parents[1] / "README.md"

# Built-in specs that still warn under --strict: name -> "Wnnn: why" (none left).
ALLOWED: dict[str, str] = {}


def _lint(tmp_path: Path, text: str) -> list[tuple[str, int]]:
    spec = tmp_path / "lint.yaml"
    spec.write_text(text)
    return [(w.code, w.loc.line if w.loc else 0) for w in lint(analyse(spec))]


def test_linear_on_a_map(tmp_path: Path) -> None:
    conv = "nodes:\n  c: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1, bias: false}\n  r: relu\n"
    assert _lint(tmp_path, HEAD + conv + "  fc: {op: linear, out_features: 2}\n") == [("W006", 6)]
    assert _lint(tmp_path, HEAD + conv + "  f: flatten\n  fc: {op: linear, out_features: 2}\n") == []
    # a channels-last (H, W, C) map (Swin's MLP) is what linear is for
    last = "nodes:\n  p: {op: permute, dims: [0, 2, 3, 1]}\n  fc: {op: linear, out_features: 2}\n"
    assert _lint(tmp_path, HEAD + last) == []
    assert _lint(tmp_path, HEAD + "nodes:\n  fc: {op: linear, out_features: 2}\n") == [("W006", 4)]  # the input


def test_biased_conv_feeding_a_batchnorm(tmp_path: Path) -> None:
    body = "nodes:\n  c: {op: conv2d, out_channels: 4, kernel_size: 1}\n  bn: batchnorm2d\n"
    assert _lint(tmp_path, HEAD + body) == [("W007", 4)]
    assert _lint(tmp_path, HEAD + body.replace("kernel_size: 1", "kernel_size: 1, bias: false")) == []
    both = body + "  s: {op: add, in: [c, bn]}\n"  # the biased value is also read as it is: the bias counts
    assert _lint(tmp_path, HEAD + both) == []


def test_biased_conv_with_shared_weights(tmp_path: Path) -> None:
    """W007 and `share:`: the bias is owned once (by the owner), so it is reported once, there, and only when
    every node calling the weights is read by batchnorms only."""
    body = ("nodes:\n  c: {op: conv2d, out_channels: 4, kernel_size: 1}\n  bn: batchnorm2d\n"
            "  d: {op: conv2d, out_channels: 4, kernel_size: 1, in: input, share: c}\n  bn2: batchnorm2d\n"
            "  s: {op: add, in: [bn, bn2]}\n")
    spec = tmp_path / "shared.yaml"
    spec.write_text(HEAD + body)
    found = lint(analyse(spec))
    assert [(w.code, w.loc.line if w.loc else 0, w.node) for w in found] == [("W007", 4, "c")]  # not on d
    assert "(4 wasted parameters)" in found[0].message and "also called by d" in " ".join(found[0].notes)
    used = body.replace("  bn2: batchnorm2d\n", "  bn2: relu\n")  # d's output keeps the bias: not wasted
    assert _lint(tmp_path, HEAD + used) == []
    block = ("blocks:\n  enc:\n    seq: [{op: conv2d, out_channels: 4, kernel_size: 1}, batchnorm2d]\n"
             "nodes:\n  a: enc\n  b: {op: enc, in: input, share: a}\n  s: {op: add, in: [a, b]}\n")
    spec.write_text(HEAD + block)
    found = lint(analyse(spec))
    assert [(w.code, w.loc.line if w.loc else 0, w.node) for w in found] == [("W007", 5, "a.0")]
    assert not any("more instance" in n for n in found[0].notes)  # b's instance owns no bias


def test_unused_param_block_and_argument(tmp_path: Path) -> None:
    text = HEAD + ("params: {width: 4, unused: 3, size: 16}\n"
                   "blocks:\n"
                   "  unit:\n"
                   "    args: {ch: int, extra: {type: int, default: 1}, k: {type: int, default: \"${ch // 4}\"}}\n"
                   "    nodes: {c: {op: conv2d, out_channels: \"${ch}\", kernel_size: 1}}\n"
                   "  spare:\n"
                   "    seq: [relu]\n"
                   "nodes:\n  u: {op: unit, ch: \"${width}\"}\n")
    text = text.replace("input: [8, 16, 16]", "input: [8, size, size]")  # a bare param name in input counts
    assert sorted(_lint(tmp_path, text)) == [("W008", 3), ("W009", 8), ("W010", 6), ("W010", 6)]


def test_unused_in_a_base_is_reported_by_the_base_not_the_child(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(HEAD + "params: {gone: 1}\nnodes: {a: relu}\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nname: c\nparams: {also: 2}\n")
    assert [(w.code, w.loc.line, w.message) for w in lint(analyse(child)) if w.loc] == [
        ("W008", 3, "param 'also' is never read [W008]")]


def test_constant_when(tmp_path: Path) -> None:
    block = ("blocks:\n  unit:\n    args: {s: {type: int, default: 1}}\n    nodes:\n"
             "      c: {op: conv2d, out_channels: 8, kernel_size: 1, bias: false}\n"
             "      skip: {op: add, in: [c, input], when: \"${s == 1}\", else: c}\n")
    varies = HEAD + block + "nodes:\n  a: {op: unit, s: 2}\n  b: unit\n"
    assert _lint(tmp_path, varies) == []
    same = HEAD + block + "nodes:\n  a: unit\n  b: unit\n"
    assert _lint(tmp_path, same) == [("W011", 8)]
    once = HEAD + block + "nodes:\n  a: unit\n"  # one instance: nothing to compare
    assert _lint(tmp_path, once) == []
    literal = HEAD + ("params: {p: 1}\nnodes:\n  a: {op: relu, when: \"${2 > 1}\"}\n"
                      "  b: {op: relu, when: \"${p > 0}\"}\n")
    assert _lint(tmp_path, literal) == [("W011", 5)]  # reading a param is a configuration switch


def test_silences(tmp_path: Path) -> None:
    conv = "  c: {op: conv2d, out_channels: 4, kernel_size: 1%s}\n  bn: batchnorm2d\n"
    why = 'lint: {ignore: {W007: "as the reference"}}'
    assert _lint(tmp_path, HEAD + "nodes:\n" + conv % "") == [("W007", 4)]
    assert _lint(tmp_path, HEAD + why + "\nnodes:\n" + conv % "") == []  # the spec
    assert _lint(tmp_path, HEAD + "nodes:\n" + conv % (", " + why)) == []  # the node
    other = 'lint: {ignore: {W001: "another code"}}'
    assert _lint(tmp_path, HEAD + "nodes:\n" + conv % (", " + other)) == [("W007", 4)]
    block = ("blocks:\n  cb:\n    %s\n    seq: [{op: conv2d, out_channels: 4, kernel_size: 1}, batchnorm2d]\n"
             "nodes:\n  a: %s\n  b: cb\n")
    assert _lint(tmp_path, HEAD + block % ("doc: x", "cb")) == [("W007", 6)]
    assert _lint(tmp_path, HEAD + block % (why, "cb")) == []  # the block definition: every instance
    # a block use silences its own instance only; the other instance still warns
    assert _lint(tmp_path, HEAD + block % ("doc: x", "{op: cb, " + why + "}")) == [("W007", 6)]
    used = block % ("doc: x", "{op: cb, " + why + "}")
    assert _lint(tmp_path, HEAD + used.replace("  b: cb\n", "")) == []


@pytest.mark.parametrize("ignore", ['{W007: ""}', "{W007: }", "[W007]", '{X7: "why"}'])
def test_a_silence_needs_a_code_and_a_reason(tmp_path: Path, ignore: str) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(HEAD + f"lint: {{ignore: {ignore}}}\nnodes: {{a: relu}}\n")
    with pytest.raises(SchemaError) as e:
        analyse(spec)
    assert e.value.loc is not None and e.value.loc.line == 3 and e.value.hint


def test_strict_exits_1_on_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "w.yaml"
    spec.write_text(HEAD + "nodes:\n  c: {op: conv2d, out_channels: 4, kernel_size: 1}\n  bn: batchnorm2d\n")
    assert main(["check", "-q", str(spec)]) == 0
    assert main(["check", "-q", "--strict", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "w.yaml:4:11: warning: [c] a bias before batchnorm2d 'bn'" in err and "parameters) [W007]\n" in err
    assert "hint: set `bias: false`" in err
    assert main(["check", "-q", "--strict", "resnet50"]) == 0


def test_the_zoo_is_strict_clean(capsys: pytest.CaptureFixture[str]) -> None:
    names = [n for n in builtin_names() if n not in ALLOWED]
    assert len(names) > 80
    assert main(["check", "-q", "--strict", *names]) == 0, capsys.readouterr().err
    for name, why in ALLOWED.items():  # still warning, for the reason written above
        assert main(["check", "-q", "--strict", name]) == 1
        assert f" [{why[:4]}]\n" in capsys.readouterr().err, name


def test_every_code_has_a_readme_line() -> None:
    text = README.read_text(encoding="utf-8")
    assert [c for c in CODES if f"| {c} |" not in text] == []


def test_channels_last_input_warning_is_silenced_like_the_lints(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    body = "name: hwc\ninput: [64, 64, 3]\nnodes:\n  c: {op: conv2d, out_channels: 8, kernel_size: 1}\n"
    loud, quiet = tmp_path / "loud.yaml", tmp_path / "quiet.yaml"
    loud.write_text(body)
    quiet.write_text(body + 'lint: {ignore: {W005: "a strip sensor: 3 pixels wide"}}\n')
    assert main(["check", "-q", "--strict", str(loud)]) == 1
    assert "loud.yaml:2:8: warning: input [64, 64, 3] looks channels-last" in capsys.readouterr().err
    assert main(["check", "-q", "--strict", str(quiet)]) == 0
    assert "W005" not in capsys.readouterr().err
