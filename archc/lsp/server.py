"""The pygls wiring of `archc lsp`: LSP requests in, :mod:`archc.lsp.document` answers out."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import ServerTextPosition, ServerTextRange

from archc import __version__
from archc.analyze.lint import LintWarning
from archc.errors import ArchcError, Loc
from archc.lsp import document as doc
from archc.lsp.document import DocState

__all__ = ["ArchcServer", "server"]

_OP_CONTEXT = re.compile(r"""(?:^|[{,\s])op:\s*["']?[\w.-]*$|^\s*-\s+[\w.-]*$""")
_IN_CONTEXT = re.compile(r"""(?:^|[{,\s])in:\s*(?:\[[^\]]*)?["']?[\w.\[\]-]*$""")
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
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="archc-analysis")  # one analysis at a time


server = ArchcServer()


# -- positions ------------------------------------------------------------------------------
def _path_of(uri: str) -> Path:
    fs = to_fs_path(uri)
    return Path(fs) if fs and uri.startswith("file:") else Path.cwd() / "untitled.yaml"


def _uri_of_file(file: str) -> str:
    return from_fs_path(str(Path(file).resolve())) or Path(file).resolve().as_uri()


def _file_lines(ls: ArchcServer, uri: str, file: str) -> list[str]:
    """A file's lines: the editor's text when it is open, else the disk's."""
    opened = ls.workspace.text_documents.get(uri)
    if opened is not None:
        return opened.source.splitlines()
    try:
        return Path(file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def _range(lines: list[str], loc: Loc | None, opened: TextDocument | None = None) -> types.Range:
    """The range of the token at ``loc`` (0-based, in the client's units when the file is open)."""
    if loc is None:
        return types.Range(types.Position(0, 0), types.Position(0, 1))
    line = lines[loc.line - 1] if 0 < loc.line <= len(lines) else ""
    start, end = loc.col - 1, doc.token_end(line, loc.col) - 1
    server_range = ServerTextRange(ServerTextPosition(loc.line - 1, start), ServerTextPosition(loc.line - 1, end))
    if opened is not None and loc.line <= len(lines):
        return opened.range_to_client_units(server_range)
    return types.Range(types.Position(loc.line - 1, start), types.Position(loc.line - 1, end))


def _location(ls: ArchcServer, loc: Loc) -> types.Location:
    uri = _uri_of_file(loc.file)
    return types.Location(uri, _range(_file_lines(ls, uri, loc.file), loc, ls.workspace.text_documents.get(uri)))


# -- diagnostics ----------------------------------------------------------------------------
def _message(err: ArchcError) -> str:
    node = f"[{err.node}] " if err.node else ""
    extra = [*err.notes, *([f"hint: {err.hint}"] if err.hint else [])]
    text = err.message.removesuffix(f" [{err.code}]") if isinstance(err, LintWarning) else err.message
    return "\n".join([f"{node}{text}", *extra])  # a warning's code is the diagnostic's code


def _diagnostic(ls: ArchcServer, err: ArchcError, rng: types.Range, prefix: str = "",
                related: list[types.DiagnosticRelatedInformation] | None = None) -> types.Diagnostic:
    warning = isinstance(err, LintWarning)
    return types.Diagnostic(rng, prefix + _message(err), source="archc",
                            severity=types.DiagnosticSeverity.Warning if warning else types.DiagnosticSeverity.Error,
                            code=err.code if isinstance(err, LintWarning) else type(err).__name__,
                            related_information=related or None)


def diagnostics(ls: ArchcServer, uri: str, state: DocState) -> dict[str, list[types.Diagnostic]]:
    """Every error and warning of a document, by the URI of the file it is located in. One in an
    extended or imported file goes to that file, and to the `extends:`/`imports:` line here."""
    opened = ls.workspace.text_documents.get(uri)
    lines = state.lines
    out: dict[str, list[types.Diagnostic]] = {uri: []}
    for err in [*state.errors, *state.warnings]:
        if err.loc is None or state.here(err.loc) or not Path(err.loc.file).is_file():
            out[uri].append(_diagnostic(ls, err, _range(lines, err.loc if state.here(err.loc) else None, opened)))
            continue
        chain = [_location(ls, c) for c in err.chain]
        where = _location(ls, err.loc)
        related = [types.DiagnosticRelatedInformation(c, "included from here") for c in chain]
        out.setdefault(where.uri, []).append(_diagnostic(ls, err, where.range, related=related))
        entry = next((c for c in err.chain if state.here(c)), None)
        out[uri].append(_diagnostic(ls, err, _range(lines, entry, opened), prefix=f"in {err.loc}: ",
                                    related=[types.DiagnosticRelatedInformation(where, "the problem")]))
    return out


def publish(ls: ArchcServer, owner: str, by_uri: dict[str, list[types.Diagnostic]]) -> None:
    """Publish an owner's diagnostics, merged per target with other owners'; clear what went away."""
    targets = {owner} | set(by_uri) | {t for t, owners in ls.published.items() if owner in owners}
    opened = ls.workspace.text_documents.get(owner)
    for target in sorted(targets):
        owners = ls.published.setdefault(target, {})
        owners[owner] = by_uri.get(target, [])
        merged = [d for diags in owners.values() for d in diags]
        version = opened.version if target == owner and opened is not None else None  # the text analysed
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(target, merged, version))


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
    future = asyncio.get_running_loop().run_in_executor(ls.worker, _analyse, text, _path_of(uri), ls.states.get(uri))
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


async def settled(ls: ArchcServer, uri: str) -> None:
    """Wait until no analysis of the document is running (requests answer from its latest text)."""
    while (future := ls.running.get(uri)) is not None:
        await asyncio.wait([future])


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: ArchcServer, params: types.DidOpenTextDocumentParams) -> None:
    refresh(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: ArchcServer, params: types.DidChangeTextDocumentParams) -> None:
    refresh(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: ArchcServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.states.pop(uri, None)
    ls.indexed.pop(uri, None)
    publish(ls, uri, {})


# -- requests -------------------------------------------------------------------------------
def _at(ls: ArchcServer, uri: str, pos: types.Position) -> tuple[DocState | None, str, Any, Any]:
    state = ls.states.get(uri)
    if state is None:
        return None, "", None, None
    p = ls.workspace.get_text_document(uri).position_from_client_units(pos)
    kind, site, detail = doc.at(state, p.line + 1, p.character + 1)
    return state, kind, site, detail


@server.feature(types.TEXT_DOCUMENT_HOVER)
async def hover(ls: ArchcServer, params: types.HoverParams) -> types.Hover | None:
    await settled(ls, params.text_document.uri)
    state, kind, site, detail = _at(ls, params.text_document.uri, params.position)
    if state is None:
        return None
    text = doc.hover_node(state, site) if kind == "name" else doc.hover_op(state, detail) if kind == "op" else None
    if kind == "value":
        text = doc.hover_value(state, detail)
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
    elif _OP_CONTEXT.search(before):
        items = [types.CompletionItem(name, kind=types.CompletionItemKind.Function, detail=detail)
                 for name, detail in doc.op_names(state)]
    elif state is not None and (key := _KEY_CONTEXT.search(before)):
        items = _arg_items(state, p.line + 1, key.start(1) + 1, lines[p.line])
    return types.CompletionList(is_incomplete=False, items=items)


def _arg_items(state: DocState, line: int, col: int, text: str) -> list[types.CompletionItem]:
    """An op's arguments not written yet, once the node's op is known."""
    op, written = doc.op_of_mapping(state, line, col, text)
    if op is None:
        return []
    return [types.CompletionItem(name, kind=types.CompletionItemKind.Property, detail=detail,
                                 documentation=help_ or None, insert_text=f"{name}: ")
            for name, detail, help_ in doc.op_args(state, op) if name not in written]


_KIND = {"block": types.SymbolKind.Class, "group": types.SymbolKind.Namespace, "node": types.SymbolKind.Field}


def _symbol(ls: ArchcServer, uri: str, lines: list[str], sym: doc.Symbol) -> types.DocumentSymbol:
    opened = ls.workspace.text_documents.get(uri)
    pick = _range(lines, sym.loc, opened)
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
    await settled(ls, params.text_document.uri)
    state, kind, site, detail = _at(ls, params.text_document.uri, params.position)
    if state is None:
        return None
    target = doc.definition(state, kind, site, detail)
    if isinstance(target, Loc):
        return _location(ls, target)
    if isinstance(target, Path):
        return types.Location(_uri_of_file(str(target)), types.Range(types.Position(0, 0), types.Position(0, 0)))
    return None


def serve() -> None:
    """Serve LSP over stdin/stdout until the client says exit."""
    server.start_io()
