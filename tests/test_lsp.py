"""`archc lsp` driven over stdio by pygls's LSP client (real JSON-RPC messages), and the lints."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archc.analyze.lint import lint
from archc.api import analyse

pytest.importorskip("pygls")
from lsprotocol import types as T  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 20.0


class Session:
    """One server process; every call runs the client's event loop until its answer arrives."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = LanguageClient("archc-test", "1")
        self.diags: dict[str, list[T.Diagnostic]] = {}
        self.arrived: dict[str, int] = {}
        self.published_version: dict[str, int | None] = {}
        self.history: dict[str, list[int | None]] = {}  # the versions published, in order

        @self.client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _published(params: T.PublishDiagnosticsParams) -> None:
            self.diags[params.uri] = list(params.diagnostics)
            self.arrived[params.uri] = self.arrived.get(params.uri, 0) + 1
            self.published_version[params.uri] = params.version
            self.history.setdefault(params.uri, []).append(params.version)

        self.run(self.client.start_io(sys.executable, "-m", "archc", "lsp", cwd=str(ROOT)))
        self.run(self.client.initialize_async(T.InitializeParams(capabilities=T.ClientCapabilities())))
        self.client.initialized(T.InitializedParams())
        self.versions: dict[str, int] = {}

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT))

    def wait_diags(self, uri: str, before: int) -> list[T.Diagnostic]:
        async def until() -> None:
            while self.arrived.get(uri, 0) <= before:
                await asyncio.sleep(0.002)
        self.run(until())
        return self.diags[uri]

    def open(self, path: Path, text: str | None = None) -> list[T.Diagnostic]:
        """didOpen; the diagnostics published for it."""
        uri = path.resolve().as_uri()
        before = self.arrived.get(uri, 0)
        self.versions[uri] = 1
        text = path.read_text(encoding="utf-8", errors="replace") if text is None else text
        self.client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "yaml", 1, text)))
        return self.wait_diags(uri, before)

    def change(self, path: Path, text: str) -> list[T.Diagnostic]:
        """didChange with the whole new text; the diagnostics published for it."""
        uri = path.resolve().as_uri()
        before = self.arrived.get(uri, 0)
        self.versions[uri] += 1
        change = T.TextDocumentContentChangeWholeDocument(text=text)
        self.client.text_document_did_change(T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(self.versions[uri], uri), [change]))
        return self.wait_diags(uri, before)

    def hover(self, path: Path, line: int, col: int) -> str | None:
        h = self.run(self.client.text_document_hover_async(T.HoverParams(_doc(path), T.Position(line, col))))
        return None if h is None else h.contents.value

    def hints(self, path: Path) -> dict[int, str]:
        rng = T.Range(T.Position(0, 0), T.Position(10_000, 0))
        got = self.run(self.client.text_document_inlay_hint_async(T.InlayHintParams(_doc(path), rng)))
        return {h.position.line: h.label for h in got or []}

    def complete(self, path: Path, line: int, col: int) -> list[str]:
        params = T.CompletionParams(_doc(path), T.Position(line, col))
        got = self.run(self.client.text_document_completion_async(params))
        items = got.items if isinstance(got, T.CompletionList) else got or []
        return [i.label for i in items]

    def definition(self, path: Path, line: int, col: int) -> Any:
        params = T.DefinitionParams(_doc(path), T.Position(line, col))
        got = self.run(self.client.text_document_definition_async(params))
        return got[0] if isinstance(got, list) else got

    def symbols(self, path: Path) -> list[Any]:
        params = T.DocumentSymbolParams(_doc(path))
        return list(self.run(self.client.text_document_document_symbol_async(params)) or [])

    def close(self) -> None:
        self.run(self.client.shutdown_async(None))
        self.client.exit(None)
        self.run(self.client.stop())
        self.loop.close()


def _doc(path: Path) -> T.TextDocumentIdentifier:
    return T.TextDocumentIdentifier(path.resolve().as_uri())


def _pos(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """0-based (line, character) of the nth occurrence of needle."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at)
    return line, at - (text.rfind("\n", 0, at) + 1)


@pytest.fixture(scope="module")
def lsp() -> Iterator[Session]:
    s = Session()
    yield s
    s.close()


BROKEN = """\
name: broken
input: [3, 32, 32]
nodes:
  a: {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1}
  b: {op: add, in: [a, input]}
  f: flatten
  c: {op: linear, out_feature: 10}
"""
FIXED = BROKEN.replace("in: [a, input]", "in: [a, a]").replace("out_feature:", "out_features:")


def test_diagnostics_at_the_right_range_then_cleared(lsp: Session, tmp_path: Path) -> None:
    spec = tmp_path / "mine.yaml"
    spec.write_text("name: other\n")  # the editor's text is analysed, not the file on disk
    diags = lsp.open(spec, BROKEN)
    assert len(diags) == 1 and "no argument 'out_feature'" in diags[0].message  # resolve stops at names
    line, col = _pos(BROKEN, "out_feature")
    assert (diags[0].range.start.line, diags[0].range.start.character) == (line, col)
    assert diags[0].range.end.character == col + len("out_feature")
    assert diags[0].severity == T.DiagnosticSeverity.Error and "did you mean 'out_features'" in diags[0].message
    half = BROKEN.replace("out_feature:", "out_features:")
    diags = lsp.change(spec, half)
    line, col = _pos(half, "op: add")
    assert [(d.range.start.line, d.range.start.character, d.range.end.character) for d in diags] == [
        (line, col + 4, col + 7)]
    assert "cannot combine shapes (8, 32, 32) and (3, 32, 32)" in diags[0].message
    assert lsp.change(spec, FIXED) == []


def test_independent_errors_each_with_its_range(lsp: Session, tmp_path: Path) -> None:
    text = BROKEN.replace("out_feature:", "out_features:").replace(
        "  c:", "  d: {op: conv2d, out_channels: 4, kernel_size: 64, in: input}\n  c:")
    diags = lsp.open(tmp_path / "two.yaml", text)
    starts = sorted((d.range.start.line, d.range.start.character) for d in diags
                    if d.severity == T.DiagnosticSeverity.Error)
    add, conv = _pos(text, "op: add"), _pos(text, "op: conv2d", 1)
    assert starts == [(add[0], add[1] + 4), (conv[0], conv[1] + 4)]


def test_not_a_spec_gets_no_diagnostics(lsp: Session, tmp_path: Path) -> None:
    assert lsp.open(tmp_path / "ci.yaml", "jobs:\n  build: {runs-on: ubuntu}\n  x: [\n") == []


def test_error_in_an_extended_file_is_published_there(lsp: Session, tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("name: base\ninput: [3, 16, 16]\nparams: {ch: 3}\nnodes:\n"
                    "  a: {op: conv2d, out_channels: \"${ch}\", kernel_size: 1}\n  b: {op: add, in: [a, input]}\n")
    child = tmp_path / "child.yaml"
    text = "extends: base.yaml\nname: child\nparams: {ch: 8}\n"
    diags = lsp.open(child, text)
    assert len(diags) == 1 and diags[0].range.start.line == 0 and "base.yaml:6:11" in diags[0].message
    there = lsp.diags[base.resolve().as_uri()]
    assert [(d.range.start.line, d.range.start.character) for d in there] == [(5, 10)]
    chain = there[0].related_information or []
    assert [(r.location.uri, r.location.range.start.line) for r in chain] == [(child.resolve().as_uri(), 0)]
    assert lsp.definition(child, 0, len("extends: b")).uri == base.resolve().as_uri()
    assert lsp.change(child, text.replace("ch: 8", "ch: 3")) == []
    assert lsp.diags[base.resolve().as_uri()] == []  # cleared there too


def test_lint_warnings_are_published_as_warnings(lsp: Session, tmp_path: Path) -> None:
    text = FIXED.replace("  c:", "  dead: {op: relu, in: a}\n  c:").replace("features: 10", "features: 10, in: f")
    diags = lsp.open(tmp_path / "lint.yaml", text)
    assert [(d.severity, d.code, d.range.start.line) for d in diags] == [
        (T.DiagnosticSeverity.Warning, "W001", _pos(text, "dead")[0])]


RESNET = ROOT / "specs" / "resnet50.yaml"


def test_resnet50_diagnostics_open_and_edit(lsp: Session, tmp_path: Path) -> None:
    """Clean on open and after an edit (latency is measured by tools/bench_lsp.py, not asserted here)."""
    text = RESNET.read_text()
    doc = tmp_path / "resnet50.yaml"  # a copy: `extends`-free, so it analyses the same anywhere
    assert lsp.open(doc, text) == []
    assert lsp.change(doc, text.replace("num_classes: 1000", "num_classes: 10")) == []
    assert lsp.change(doc, text.replace("num_classes: 1000", "num_classes: -1")) != []


def test_hover_inlay_hints_on_resnet50(lsp: Session) -> None:
    text = RESNET.read_text()
    lsp.open(RESNET, text)
    line, col = _pos(text, "layer1:")
    layer1 = lsp.hover(RESNET, line, col + 2)
    assert layer1 is not None and "(256, 56, 56)" in layer1 and "215,808" in layer1 and "35 px" in layer1
    line, col = _pos(text, "fc:")
    fc = lsp.hover(RESNET, line, col)
    assert fc is not None and "linear(out_features=1000" in fc and "(2048,)" in fc and "2,049,000" in fc
    line, col = _pos(text, "conv2d", 2)  # `op: conv2d` of the stem
    conv = lsp.hover(RESNET, line, col + 1)
    assert conv is not None and "conv2d(out_channels, kernel_size, stride=1" in conv
    hints = lsp.hints(RESNET)
    assert hints[_pos(text, "fc:")[0]] == "→ (1000,)"
    assert hints[_pos(text, "layer4:")[0]] == "→ (2048, 7, 7)"  # a repeat: the shape after the stack
    line = _pos(text, "conv3:")[0]  # inside the block: one shape per stage
    assert hints[line].startswith("→ (256, 56, 56) | (512, 28, 28)")
    assert lsp.hover(RESNET, 0, 0) is None


BLOCKS = """\
name: blocks
input: [3, 32, 32]
blocks:
  unit:
    args: {ch: int}
    nodes:
      conv: {op: conv2d, out_channels: "${ch}", kernel_size: 3, padding: 1}
      act: relu
nodes:
  stem: {op: unit, ch: 8}
  halves: {op: chunk, chunks: 2, dim: 1}
  head: {op: add, in: ["halves[0]", "halves[1]"]}
  out: {op: unit, ch: 4, in: head}
"""


def test_completion_and_definition(lsp: Session, tmp_path: Path) -> None:
    doc = tmp_path / "blocks.yaml"
    assert lsp.open(doc, BLOCKS) == []
    hints = lsp.hints(doc)
    assert hints[_pos(BLOCKS, "halves:")[0]] == "→ (4, 32, 32), (4, 32, 32)"  # each output
    line, col = _pos(BLOCKS, "unit, ch: 8")
    ops = lsp.complete(doc, line, col)
    assert "unit" in ops and "conv2d" in ops and "max_pool2d" in ops
    line, col = _pos(BLOCKS, "in: head")
    names = lsp.complete(doc, line, col + 4)
    assert {"stem", "halves", "head", "out", "input"} <= set(names) and "conv" not in names
    assert lsp.complete(doc, 0, 3) == []  # `name:` is neither
    target = lsp.definition(doc, *_pos(BLOCKS, "unit, ch: 4"))
    assert target.uri == doc.resolve().as_uri() and target.range.start.line == _pos(BLOCKS, "unit:")[0]
    line, col = _pos(BLOCKS, "in: head")
    target = lsp.definition(doc, line, col + 5)
    assert (target.range.start.line, target.range.start.character) == _pos(BLOCKS, "head:")
    line, col = _pos(BLOCKS, "halves[1]")
    assert lsp.definition(doc, line, col + 1).range.start.line == _pos(BLOCKS, "halves:")[0]
    stem = lsp.hover(doc, *_pos(BLOCKS, "stem"))
    assert stem is not None and "(8, 32, 32)" in stem and "block" in stem
    conv = lsp.hover(doc, *_pos(BLOCKS, "conv:"))
    assert conv is not None and "2 instances" in conv and "stem.conv" in conv and "out.conv" in conv


def test_hover_on_values_params_and_block_arguments(lsp: Session, tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(BLOCKS.replace("input: [3, 32, 32]\n", "input: [3, 32, 32]\nparams: {w: 8}\n")
                    .replace("ch: 8}", 'ch: "${w * 2}"}'))
    child = tmp_path / "child.yaml"
    text = "extends: base.yaml\nname: child\nparams: {w: 5}\n"
    assert lsp.open(child, text) == []
    w = lsp.hover(child, *_pos(text, "w: 5"))
    assert w is not None and "`5`" in w and "child.yaml:3:10" in w and "base.yaml:3:10" in w  # where it was set
    btext = base.read_text()
    assert lsp.open(base, btext) == []
    value = lsp.hover(base, *_pos(btext, "${w * 2}"))
    assert value is not None and "= `16`" in value
    per = lsp.hover(base, *_pos(btext, '"${ch}"'))  # inside the block: one value per instance
    assert per is not None and "stem.conv: `16`" in per and "out.conv: `4`" in per
    arg = lsp.hover(base, *_pos(btext, "ch: int"))
    assert arg is not None and "argument `ch`" in arg and "int (required)" in arg and "2 instance(s)" in arg
    use = lsp.hover(base, *_pos(btext, "ch: 4"))
    assert use is not None and "argument `ch`" in use and "passed: `4`" in use


def test_completion_of_arguments_and_params(lsp: Session, tmp_path: Path) -> None:
    doc = tmp_path / "args.yaml"
    text = BLOCKS.replace("input: [3, 32, 32]\n", "input: [3, 32, 32]\nparams: {width: 8}\n")
    lsp.open(doc, text)
    line, col = _pos(text, "kernel_size: 3")
    args = lsp.complete(doc, line, col)  # a key in conv2d's flow mapping: the arguments not written yet
    assert "stride" in args and "padding_mode" in args and "out_channels" not in args and "padding" not in args
    line, col = _pos(text, "ch: 4")
    assert lsp.complete(doc, line, col) == []  # `ch` is written; the block has no other argument
    line, col = _pos(text, "${ch}")
    names = lsp.complete(doc, line, col + 2)
    assert "width" in names and "ch" in names and "in_shape" in names and "max" in names
    block_style = text + "  tail:\n    op: max_pool2d\n    \n"
    lsp.change(doc, block_style)
    args = lsp.complete(doc, block_style.count("\n") - 1, 4)
    assert "kernel_size" in args and "ceil_mode" in args


def test_document_symbols(lsp: Session, tmp_path: Path) -> None:
    doc = tmp_path / "outline.yaml"
    text = BLOCKS + "  tail:\n    seq: [relu, {op: max_pool2d, kernel_size: 2}]\n"
    lsp.open(doc, text)
    syms = lsp.symbols(doc)
    assert [s.name for s in syms] == ["unit", "stem", "halves", "head", "out", "tail"]
    unit = syms[0]
    assert unit.kind == T.SymbolKind.Class and [c.name for c in unit.children] == ["conv", "act"]
    assert unit.range.start.line == _pos(text, "unit:")[0] and unit.range.end.line == _pos(text, "act: relu")[0]
    assert [(c.name, c.detail) for c in syms[-1].children] == [("0", "relu"), ("1", "max_pool2d")]
    assert syms[1].detail == "unit" and syms[1].selection_range.start == T.Position(*_pos(text, "stem"))


def test_completion_while_the_text_does_not_parse(lsp: Session, tmp_path: Path) -> None:
    doc = tmp_path / "typing.yaml"
    lsp.open(doc, BLOCKS)
    typing = BLOCKS + "  more: {op: "
    diags = lsp.change(doc, typing)
    assert diags and diags[0].code == "YamlError"
    ops = lsp.complete(doc, typing.count("\n"), len("  more: {op: "))
    assert "unit" in ops and "conv2d" in ops  # from the last text that parsed


def test_hostile_specs_never_crash_the_server(lsp: Session, tmp_path: Path) -> None:
    attacks = sorted((ROOT / "tests" / "attacks").glob("*.yaml"))
    assert len(attacks) > 80
    for path in attacks:
        diags = lsp.open(path)
        assert all("internal error" not in d.message for d in diags), path.name
    doc = tmp_path / "after.yaml"
    assert lsp.open(doc, FIXED) == []
    assert "conv2d(" in (lsp.hover(doc, *_pos(FIXED, "conv2d")) or "")


# -- what the server keeps between edits gives what a fresh check gives --------------------------
_CLI_LINE = re.compile(r"^(.+?):(\d+):(\d+): (error|warning): (.*)$")
_IN_BASE = re.compile(r"^in (.+?):(\d+):(\d+): (.*)$", re.DOTALL)


def _fresh_check(path: Path, text: str) -> list[tuple[str, int, int, str, str]]:
    """(file name, line, col, severity, first message line) of a whole-process `archc check` of the text."""
    path.write_text(text)
    out = subprocess.run([sys.executable, "-m", "archc", "check", str(path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    found = [_CLI_LINE.match(line) for line in (out.stdout + out.stderr).splitlines()]
    return sorted((Path(m[1]).name, int(m[2]), int(m[3]), m[4], m[5]) for m in found if m)


def _as_cli(diags: list[T.Diagnostic], name: str) -> list[tuple[str, int, int, str, str]]:
    """The same tuples from a document's diagnostics (one located in a base names it in the prefix)."""
    out = []
    for d in diags:
        first = d.message.split("\n")[0]
        line, col = d.range.start.line + 1, d.range.start.character + 1
        if m := _IN_BASE.match(first):
            name_, line, col, first = Path(m[1]).name, int(m[2]), int(m[3]), m[4]
        else:
            name_ = name
        severity = "warning" if d.severity == T.DiagnosticSeverity.Warning else "error"
        out.append((name_, line, col, severity, first + (f" [{d.code}]" if severity == "warning" else "")))
    return sorted(out)


BASE = """\
name: base
input: [3, 16, 16]
params: {ch: 8}
nodes:
  a: {op: conv2d, out_channels: "${ch}", kernel_size: 3, padding: 1}
  b: {op: relu}
"""


def test_edits_and_base_edits_match_a_fresh_check(lsp: Session, tmp_path: Path) -> None:
    base, child, disk = tmp_path / "base.yaml", tmp_path / "child.yaml", tmp_path / "check.yaml"
    base.write_text(BASE)
    old = 1_000_000_000  # an mtime long past: the server may not rely on mtimes (a copy, a checkout)
    os.utime(base, (old, old))
    text = "extends: base.yaml\nname: child\nparams: {ch: 4}\n"
    steps = [text,
             text + "# a comment: the loaded spec is the same\n",
             text + "nodes:\n  c: {op: add, in: [b, input]}\n",  # an error here
             text + "nodes:\n  c: {op: add, in: [b, b]}\n  dead: {op: relu, in: c}\n  d: {op: relu, in: c}\n",
             text + "nodes:\n  c: {op: add, in: [b, b]}\n"]
    # the base breaks on disk as the document's text loads the same, then is mended as the text breaks
    bases = [None, BASE.replace("b: {op: relu}", "b: {op: add, in: [a, input]}"), BASE, None, None]
    seen = []
    for k, (step, new_base) in enumerate(zip(steps, bases)):
        if new_base is not None:
            base.write_text(new_base)
            os.utime(base, (old, old))
        # then a comment: below, the same loaded spec (reusable unless a base changed); above, the
        # same values one line lower (not reusable: every position moves)
        again = "# again\n" + step if k in (2, 3) else step + "# again\n"
        for n, version in enumerate((step, again)):
            diags = lsp.open(child, version) if k == n == 0 else lsp.change(child, version)
            got = _as_cli(diags, disk.name)
            assert got == _fresh_check(disk, version), (k, n)
            seen.append(got)
    assert [{(f, s) for (f, _, _, s, _) in got} for got in seen[::2]] == [
        set(), {("base.yaml", "error")}, {("check.yaml", "error")}, {("check.yaml", "warning")}, set()]


def test_a_burst_of_changes_is_answered_for_the_last(lsp: Session, tmp_path: Path) -> None:
    doc = tmp_path / "burst.yaml"
    lsp.open(doc, FIXED)
    uri = doc.resolve().as_uri()
    before = lsp.arrived[uri]
    texts = [FIXED.replace("features: 10", f"features: {n}") for n in range(11, 15)] + [BROKEN]
    for text in texts:  # back to back, no waiting
        lsp.versions[uri] += 1
        change = T.TextDocumentContentChangeWholeDocument(text)
        lsp.client.text_document_did_change(T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(lsp.versions[uri], uri), [change]))
    # a request sent right after the changes answers from the last text (it waits for its analysis):
    # the last text does not resolve: its node in error says so; any earlier text would show its shape
    assert "has an error" in (lsp.hover(doc, *_pos(BROKEN, "c: {op: linear")) or "")
    while lsp.published_version.get(uri) != lsp.versions[uri]:
        lsp.wait_diags(uri, lsp.arrived[uri])
    published = lsp.history[uri][-(lsp.arrived[uri] - before):]
    assert published == sorted(published) and len(published) <= len(texts)  # in order; some may be skipped
    assert len(lsp.diags[uri]) == 1 and "no argument 'out_feature'" in lsp.diags[uri][0].message


def test_same_tree_compares_positions_and_types() -> None:
    from archc.load import load_text
    from archc.lsp.document import same_tree

    text = "a: {b: [1, 2.0, x]}\nc: 0.0\n"
    assert same_tree(load_text(text, "f"), load_text(text + "# note\n", "f"))
    assert not same_tree(load_text(text, "f"), load_text(text.replace("{b:", "{b: "), "f"))  # a position
    assert not same_tree(load_text("x: {y: 1}\n", "f"), load_text("x: {y:  1}\n", "f"))  # a value's only
    assert not same_tree(load_text(text, "f"), load_text(text.replace("[1,", "[1.0,"), "f"))  # a type
    assert not same_tree(load_text(text, "f"), load_text(text.replace("0.0", "-0.0"), "f"))
    assert not same_tree(load_text(text, "f"), load_text(text, "g"))  # the file named in positions


def test_loaded_text_is_a_fresh_copy_each_time() -> None:
    from archc.load import load_text

    text = "a: {b: [1, 2]}\n"
    first = load_text(text, "f")
    first["a"]["b"].append(3)
    first["a"].key_locs.clear()
    again = load_text(text, "f")
    assert again == {"a": {"b": [1, 2]}} and list(again["a"].key_locs) == ["b"]


# -- lints, on the analysis (no server) ----------------------------------------------------------
def _lint(tmp_path: Path, text: str) -> list[tuple[str, int]]:
    spec = tmp_path / "lint.yaml"
    spec.write_text(text)
    return [(w.code, w.loc.line if w.loc else 0) for w in lint(analyse(spec))]


def test_lint_codes(tmp_path: Path) -> None:
    head = "name: l\ninput: [8, 16, 16]\nnodes:\n"
    assert _lint(tmp_path, head + "  a: relu\n  b: {op: relu, in: input}\n  c: {op: sigmoid, in: b}\n"
                 "  d: {op: add, in: [a, a]}\n") == [("W001", 6)]
    gate = "  g: {op: adaptive_avg_pool2d, output_size: 1}\n"
    row = "  p: {op: permute, dims: [0, 2, 3, 1]}\n  m: {op: mul, in: [input, p]}\n"
    assert _lint(tmp_path, head.replace("16]", "8]") + gate + row) == [("W002", 6)]  # (1, 1, 8) along W
    assert _lint(tmp_path, head + gate + "  m: {op: mul, in: [input, g]}\n") == []  # (8, 1, 1): a gate
    assert _lint(tmp_path, head + "  a: {op: relu, repeat: 0}\n  b: sigmoid\n") == [("W003", 4)]
    assert _lint(tmp_path, head + "  a: {op: max_pool2d, kernel_size: 2, stride: 3}\n"
                 "  b: {op: conv2d, out_channels: 4, kernel_size: 1, stride: 2}\n") == [("W004", 4)]


def test_zoo_lints(tmp_path: Path) -> None:
    for name in ("resnet50", "efficientnet_b0", "vit_b_16", "unet", "densenet121", "inception_v3"):
        assert lint(analyse(name)) == [], name  # inception_v3's aux head is a train-only output, not dead
