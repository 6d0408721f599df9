"""The language server between edits: a burst of changes is analysed once (counted, never timed), and
hover and inlay hints keep working before and beside an error (archc/lsp/recover.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from archc.lsp import document as doc

BROKEN = """\
name: broken
input: [3, 32, 32]
nodes:
  a: {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1}
  b: {op: add, in: [a, a]}
  f: flatten
  c: {op: linear, out_feature: 10}
  d: {op: linear, out_features: 10, in: f}
"""
SHAPE_ERROR = BROKEN.replace("in: [a, a]", "in: [a, input]").replace("out_feature:", "out_features:")
BLOCK = """\
name: blocky
input: [3, 16, 16]
blocks:
  unit:
    nodes:
      conv: {op: conv2d, out_channels: 4, kernel_size: 3, padding: 1, strid: 2}
      act: relu
nodes:
  stem: {op: conv2d, out_channels: 4, kernel_size: 1}
  u1: {op: unit}
  side: {op: relu, in: stem}
"""


def _state(tmp_path: Path, text: str) -> doc.DocState:
    return doc.analyse_text(text, tmp_path / "spec.yaml")


def _hover(state: doc.DocState, name: str) -> str:
    site = next(s for s in state.sites if s.name == name)
    return doc.hover_node(state, site) or ""


def _hint_lines(state: doc.DocState) -> set[int]:
    return {line for line, _ in doc.inlay_hints(state)}


def test_hover_and_hints_before_and_beside_a_resolve_error(tmp_path):
    state = _state(tmp_path, BROKEN)
    assert [e.message for e in state.errors] == ["linear has no argument 'out_feature'"]  # diagnostics: the real ones
    assert "- output: (8, 32, 32)" in _hover(state, "a") and "- output: (8192,)" in _hover(state, "f")
    assert "- output: (10,)" in _hover(state, "d") and "assumed" not in _hover(state, "d")  # beside: exact
    assert "has an error" in _hover(state, "c")
    assert _hint_lines(state) == {4, 5, 6, 8}  # every node's line but the one in error


def test_nodes_after_a_shape_error_are_marked_assumed(tmp_path):
    state = _state(tmp_path, SHAPE_ERROR)
    assert [e.message for e in state.errors] == ["cannot combine shapes (8, 32, 32) and (3, 32, 32)"]
    assert "has an error" in _hover(state, "b")
    assert "- output: (8, 32, 32)" in _hover(state, "a") and "assumed" not in _hover(state, "a")
    for name in ("f", "c", "d"):  # downstream of b: shapes as if b passed its first input through, and said so
        assert "- assumed: an input comes from a node with an error" in _hover(state, name)
    assert _hint_lines(state) == {4}


def test_an_error_inside_a_block_stands_in_its_node(tmp_path):
    state = _state(tmp_path, BLOCK)
    assert len(state.errors) == 1 and "strid" in state.errors[0].message
    assert "has an error" in _hover(state, "conv")
    assert "- output: (4, 16, 16)" in _hover(state, "side") and "assumed" not in _hover(state, "side")
    assert "- output: (4, 16, 16)" in _hover(state, "stem")


def test_a_spec_without_errors_is_not_recovered(tmp_path):
    state = _state(tmp_path, BROKEN.replace("out_feature:", "out_features:"))
    assert state.errors == [] and state.stand_ins == set() and state.assumed == set()
    assert _hint_lines(state) == {4, 5, 6, 7, 8}


def test_the_loaded_spec_is_left_as_it_was(tmp_path):
    """Recovery swaps nodes in the loaded spec and puts them back: the index and a reuse check see the text."""
    state = _state(tmp_path, BROKEN)
    nodes = state.source.data["nodes"]
    assert nodes["c"]["op"] == "linear" and nodes["b"]["in"] == ["a", "a"]
    again = doc.analyse_text(BROKEN + "# a comment\n", tmp_path / "spec.yaml", previous=state)
    assert again.analysis is state.analysis  # reused: the same loaded values


# -- the server: a burst of changes, analysed once -------------------------------------------------
def _server(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[tuple[str, int | None]]]:
    pytest.importorskip("pygls")
    from lsprotocol import types as T
    from pygls.workspace import Workspace

    from archc.lsp import server as srv

    ls = srv.ArchcServer()
    ls.protocol._workspace = Workspace(None, T.TextDocumentSyncKind.Incremental)
    published: list[tuple[str, int | None]] = []
    monkeypatch.setattr(srv, "publish", lambda ls, owner, by_uri: published.append(
        (owner, ls.workspace.get_text_document(owner).version)))
    return ls, published


def test_a_burst_of_changes_is_analysed_once(tmp_path, monkeypatch):
    ls, published = _server(monkeypatch)
    from lsprotocol import types as T

    from archc.lsp import server as srv

    uri = (tmp_path / "burst.yaml").as_uri()
    texts = [BROKEN.replace("out_features: 10", f"out_features: {n}") for n in range(11, 16)]

    async def scenario() -> None:
        ls.workspace.put_text_document(T.TextDocumentItem(uri, "yaml", 1, BROKEN))
        srv.did_open(ls, T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "yaml", 1, BROKEN)))
        await srv.settled(ls, uri)
        for version, text in enumerate(texts, start=2):  # as pygls delivers a burst read in one go
            ident = T.VersionedTextDocumentIdentifier(version, uri)
            ls.workspace.update_text_document(ident, T.TextDocumentContentChangeWholeDocument(text))
            srv.did_change(ls, T.DidChangeTextDocumentParams(ident, [T.TextDocumentContentChangeWholeDocument(text)]))
        await srv.settled(ls, uri)

    asyncio.run(scenario())
    ls.worker.shutdown()
    assert ls.analysed[uri] == 2  # the open and the last change; versions 2-5 never analysed
    assert published == [(uri, 1), (uri, 6)] and ls.states[uri].text == texts[-1]


def test_hover_and_hints_beside_a_schema_error(tmp_path):
    """A schema error (an unknown top-level key, a misspelt `input:`) is the diagnostic; the nodes still get
    their shapes from the document loaded without the schema check (was: hover null anywhere in the file)."""
    good = BROKEN.replace("out_feature:", "out_features:")
    state = _state(tmp_path, good.replace("name: broken\n", "name: broken\nbogus: 3\n"))
    assert len(state.errors) == 1 and "bogus" in state.errors[0].message
    assert "- output: (8, 32, 32)" in _hover(state, "a") and "- output: (10,)" in _hover(state, "d")
    assert _hint_lines(state) == {5, 6, 7, 8, 9}
    broken_types = _state(tmp_path, good.replace("input: [3, 32, 32]", "input: {x: nope}"))
    assert broken_types.errors and broken_types.analysis is None  # nothing to show, and no crash
