"""The pygls wiring of `archc lsp`: LSP requests in, :mod:`archc.lsp.document` answers out."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.workspace.position_codec import ServerTextPosition

from archc import __version__
from archc.api import collect
from archc.errors import Loc
from archc.lsp import document as doc
from archc.lsp.diagnostics import diagnostics, location, path_of, publish, token_range, uri_of_file
from archc.lsp.document import DocState

__all__ = ["ArchcServer", "server"]

_OP_CONTEXT = re.compile(r"""(?:^|[{,\s])op:\s*["']?[\w.-]*$|^\s*-\s+[\w.-]*$""")
_IN_CONTEXT = re.compile(r"""(?:^|[{,\s])in:\s*(?:\[[^\]]*)?["']?[\w.\[\]-]*$""")
_LINK_CONTEXT = re.compile(r"""(?:^|[{,\s])(share|after|else):\s*["']?[\w.-]*$""")  # a node-naming value
_EXPR_CONTEXT = re.compile(r"\$\{[^}]*$")
_KEY_CONTEXT = re.compile(r"""(?:^\s*|[{,]\s*)(\w*)$""")  # a key being typed in a block or flow mapping
_TRIGGERS = [":", " ", "[", ",", '"', "'", "{"]


class ArchcServer(LanguageServer):
    """A language server that keeps the last analysis of each open spec."""

    def __init__(self) -> None:
        super().__init__("archc", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.states: dict[str, DocState] = {}
        self.indexed: dict[str, DocState] = {}  # the last state with a parsed spec (completion while typing)
        self.published: dict[str, dict[str, list[types.Diagnostic]]] = {}  # target uri -> owner uri -> diags
        self.running: dict[str, asyncio.Future[DocState | Exception]] = {}  # uri -> its analysis in flight
        self.wanted: dict[str, int] = {}  # uri -> the version of its last change (older ones are never analysed)
        self.queued: set[str] = set()  # uris whose change waits for the event loop's next turn
        self.analysed: dict[str, int] = {}  # uri -> analyses started (work, counted by the tests)
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="archc-analysis")  # one analysis at a time
        self.since_collect = 0  # analyses published since the last full collection (tidy)


server = ArchcServer()


def refresh(ls: ArchcServer, uri: str) -> None:
    """Analyse a document's current text off the event loop and publish its diagnostics (none unless
    it is a spec). While an analysis of the document runs, changes only pile up: when it ends, the
    latest text is analysed once more and the versions in between are never analysed."""
    if uri in ls.running:
        return  # _finished starts again with the latest text
    opened = ls.workspace.text_documents.get(uri)
    if opened is None:
        return
    text = opened.source
    if not doc.is_spec(text):
        ls.states.pop(uri, None)
        publish(ls, uri, {})
        return
    ls.analysed[uri] = ls.analysed.get(uri, 0) + 1
    future = asyncio.get_running_loop().run_in_executor(ls.worker, _analyse, text, path_of(uri), ls.states.get(uri))
    ls.running[uri] = future
    future.add_done_callback(lambda f: _finished(ls, uri, text, f.result()))


def _analyse(text: str, path: Path, previous: DocState | None) -> DocState | Exception:
    """The worker thread's job; an exception that is not an archc error comes back as a value."""
    try:
        return doc.analyse_text(text, path, previous=previous)
    except Exception as e:  # an archc bug must not take the server (and the other documents) down
        return e


def _finished(ls: ArchcServer, uri: str, text: str, result: DocState | Exception) -> None:
    """An analysis of ``text`` ended (on the event loop): publish it, or analyse the newer text."""
    del ls.running[uri]
    opened = ls.workspace.text_documents.get(uri)
    if opened is None:
        return  # closed meanwhile (did_close cleared its diagnostics)
    if opened.source != text:  # replaced while analysed: only the latest text is published
        if isinstance(result, DocState):
            ls.states[uri] = result  # a good `previous` for the reuse check
        refresh(ls, uri)
        return
    if isinstance(result, Exception):
        ls.states.pop(uri, None)
        crash = types.Diagnostic(types.Range(types.Position(0, 0), types.Position(0, 1)),
                                 f"archc: internal error: {type(result).__name__}: {result}", source="archc",
                                 severity=types.DiagnosticSeverity.Error)
        publish(ls, uri, {uri: [crash]})
        return
    ls.states[uri] = result
    if result.source is not None:
        ls.indexed[uri] = result
    publish(ls, uri, diagnostics(ls, uri, result))
    tidy(ls)


COLLECT_EVERY = 256  # analyses between two full collections


def tidy(ls: ArchcServer) -> None:
    """A full collection now and then, after a publish with nothing queued: an analysis leaves what it made
    in the oldest generation (archc.api.collector_paused), so the few reference cycles an old analysis
    leaves (a few dozen objects an edit) wait for a full collection, which would otherwise rarely come."""
    ls.since_collect += 1
    if ls.since_collect >= COLLECT_EVERY and not ls.running and not ls.queued:
        ls.since_collect = 0
        collect()


def changed(ls: ArchcServer, uri: str, version: int) -> None:
    """Debounce by version: the analysis waits for the event loop's next turn, so the changes already
    received (a burst, read from the client in one go) all land first; then only the last is analysed."""
    ls.wanted[uri] = version
    ls.queued.add(uri)
    asyncio.get_running_loop().call_soon(_due, ls, uri, version)


def _due(ls: ArchcServer, uri: str, version: int) -> None:
    if ls.wanted.get(uri) != version:
        return  # a later change has its own turn queued
    ls.queued.discard(uri)
    refresh(ls, uri)


async def settled(ls: ArchcServer, uri: str) -> None:
    """Wait until the document's latest change is analysed (requests answer from its latest text)."""
    while uri in ls.queued or uri in ls.running:
        future = ls.running.get(uri)
        await (asyncio.wait([future]) if future is not None else asyncio.sleep(0))


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: ArchcServer, params: types.DidOpenTextDocumentParams) -> None:
    refresh(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: ArchcServer, params: types.DidChangeTextDocumentParams) -> None:
    changed(ls, params.text_document.uri, params.text_document.version)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: ArchcServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.states.pop(uri, None)
    ls.indexed.pop(uri, None)
    ls.wanted.pop(uri, None)
    ls.queued.discard(uri)
    publish(ls, uri, {})


# -- requests -------------------------------------------------------------------------------
async def _at(ls: ArchcServer, params: types.HoverParams | types.DefinitionParams
              ) -> tuple[DocState | None, str, Any, Any]:
    """The preamble of hover and definition: once the document's analysis is done, what is written at the
    position (see ``doc.at``); no state: (None, "", None, None)."""
    uri = params.text_document.uri
    await settled(ls, uri)
    state = ls.states.get(uri)
    if state is None:
        return None, "", None, None
    p = ls.workspace.get_text_document(uri).position_from_client_units(params.position)
    kind, site, detail = doc.at(state, p.line + 1, p.character + 1)
    return state, kind, site, detail


@server.feature(types.TEXT_DOCUMENT_HOVER)
async def hover(ls: ArchcServer, params: types.HoverParams) -> types.Hover | None:
    state, kind, site, detail = await _at(ls, params)
    if state is None:
        return None
    text = doc.hover_node(state, site) if kind == "name" else doc.hover_op(state, detail) if kind == "op" else None
    if kind == "value":
        text = doc.hover_value(state, detail)
    elif kind in ("share", "after", "else"):
        text = doc.hover_link(state, site, kind, detail)
    elif kind == "ref" and site is not None and str(detail).endswith(".*"):
        text = doc.hover_fanin(state, site, detail)
    if text is None:
        return None
    return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text))


@server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
async def inlay_hint(ls: ArchcServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    await settled(ls, params.text_document.uri)
    uri = params.text_document.uri
    state = ls.states.get(uri)
    if state is None:
        return []
    opened = ls.workspace.get_text_document(uri)
    lines = opened.source.splitlines()
    first, last = params.range.start.line, params.range.end.line
    hints = []
    for line, label in doc.inlay_hints(state):
        if first <= line - 1 <= last and line <= len(lines):
            end = opened.position_to_client_units(ServerTextPosition(line - 1, len(lines[line - 1])))
            hints.append(types.InlayHint(end, label, padding_left=True))
    return hints


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=_TRIGGERS))
async def completion(ls: ArchcServer, params: types.CompletionParams) -> types.CompletionList:
    await settled(ls, params.text_document.uri)
    uri = params.text_document.uri
    opened = ls.workspace.get_text_document(uri)
    p = opened.position_from_client_units(params.position)
    lines = opened.source.splitlines()
    before = lines[p.line][:p.character] if p.line < len(lines) else ""
    state = ls.indexed.get(uri)
    items: list[types.CompletionItem] = []
    if _EXPR_CONTEXT.search(before):
        items = [types.CompletionItem(n, kind=types.CompletionItemKind.Variable, detail=detail)
                 for n, detail in doc.expr_names(state, p.line + 1)]
    elif _IN_CONTEXT.search(before):
        names = doc.scope_names(state, p.line + 1) if state is not None else ["input"]
        items = [types.CompletionItem(n, kind=types.CompletionItemKind.Reference) for n in names]
        items += [types.CompletionItem(n, kind=types.CompletionItemKind.Reference, detail="every unit of the repeat")
                  for n in (doc.fanin_names(state, p.line + 1) if state is not None else [])]
    elif link := _LINK_CONTEXT.search(before):
        names = doc.link_names(state, p.line + 1, link.group(1)) if state is not None else []
        items = [types.CompletionItem(n, kind=types.CompletionItemKind.Reference) for n in names]
    elif _OP_CONTEXT.search(before):
        items = [types.CompletionItem(name, kind=types.CompletionItemKind.Function, detail=detail)
                 for name, detail in doc.op_names(state)]
    elif state is not None and (key := _KEY_CONTEXT.search(before)):
        items = _arg_items(state, p.line + 1, key.start(1) + 1, lines[p.line], key.group(1))
    return types.CompletionList(is_incomplete=False, items=items)


def _arg_items(state: DocState, line: int, col: int, text: str, prefix: str) -> list[types.CompletionItem]:
    """An op's arguments not written yet, once the node's op is known, and the node keys `share`, `after`, `else`
    once a letter of one is typed (a bare position lists the op's arguments only)."""
    op, written = doc.op_of_mapping(state, line, col, text)
    if op is None:
        return []
    return [types.CompletionItem(name, kind=types.CompletionItemKind.Property, detail=detail,
                                 documentation=help_ or None, insert_text=f"{name}: ")
            for name, detail, help_ in doc.op_args(state, op) if name not in written] + \
        [types.CompletionItem(name, kind=types.CompletionItemKind.Keyword, detail=detail, insert_text=f"{name}: ")
         for name, detail in doc.NODE_KEYS if name not in written and prefix and name.startswith(prefix)]


_KIND = {"block": types.SymbolKind.Class, "group": types.SymbolKind.Namespace, "node": types.SymbolKind.Field}


def _symbol(ls: ArchcServer, uri: str, lines: list[str], sym: doc.Symbol) -> types.DocumentSymbol:
    opened = ls.workspace.text_documents.get(uri)
    pick = token_range(lines, sym.loc, opened)
    end_line = min(sym.end_line, len(lines))
    end = ServerTextPosition(max(end_line - 1, 0), len(lines[end_line - 1]) if end_line else 0)
    stop = opened.position_to_client_units(end) if opened is not None else types.Position(end.line, end.character)
    whole = types.Range(pick.start, stop)
    return types.DocumentSymbol(sym.name, _KIND[sym.kind], whole, pick, detail=sym.detail,
                                children=[_symbol(ls, uri, lines, c) for c in sym.children] or None)


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
async def document_symbol(ls: ArchcServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
    await settled(ls, params.text_document.uri)
    uri = params.text_document.uri
    state = ls.indexed.get(uri)
    if state is None:
        return []
    lines = state.lines
    return [_symbol(ls, uri, lines, s) for s in doc.symbols(state)]


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
async def definition(ls: ArchcServer, params: types.DefinitionParams) -> types.Location | None:
    state, kind, site, detail = await _at(ls, params)
    if state is None:
        return None
    target = doc.definition(state, kind, site, detail)
    if isinstance(target, Loc):
        return location(ls, target)
    if isinstance(target, Path):
        return types.Location(uri_of_file(str(target)), types.Range(types.Position(0, 0), types.Position(0, 0)))
    return None


def serve() -> None:
    """Serve LSP over stdin/stdout until the client says exit."""
    server.start_io()
