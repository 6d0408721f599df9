"""Diagnostics: archc errors and lint warnings as LSP diagnostics on the file each is located in, merged
per target file across the documents that report there; positions in the client's units."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import TextDocument, Workspace
from pygls.workspace.position_codec import ServerTextPosition, ServerTextRange

from archc.analyze.lint import LintWarning
from archc.errors import ArchcError, Loc
from archc.lsp.state import DocState, token_end


class ArchcServer(Protocol):
    """What this module reads of archc.lsp.server.ArchcServer (declared here: no import cycle)."""

    @property
    def workspace(self) -> Workspace: ...

    published: dict[str, dict[str, list[types.Diagnostic]]]

    def text_document_publish_diagnostics(self, params: types.PublishDiagnosticsParams) -> Any: ...

__all__ = ["diagnostics", "location", "path_of", "publish", "token_range", "uri_of_file"]


# -- positions ------------------------------------------------------------------------------
def path_of(uri: str) -> Path:
    fs = to_fs_path(uri)
    return Path(fs) if fs and uri.startswith("file:") else Path.cwd() / "untitled.yaml"


def uri_of_file(file: str) -> str:
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


def token_range(lines: list[str], loc: Loc | None, opened: TextDocument | None = None) -> types.Range:
    """The range of the token at ``loc`` (0-based, in the client's units when the file is open)."""
    if loc is None:
        return types.Range(types.Position(0, 0), types.Position(0, 1))
    line = lines[loc.line - 1] if 0 < loc.line <= len(lines) else ""
    start, end = loc.col - 1, token_end(line, loc.col) - 1
    server_range = ServerTextRange(ServerTextPosition(loc.line - 1, start), ServerTextPosition(loc.line - 1, end))
    if opened is not None and loc.line <= len(lines):
        return opened.range_to_client_units(server_range)
    return types.Range(types.Position(loc.line - 1, start), types.Position(loc.line - 1, end))


def location(ls: ArchcServer, loc: Loc) -> types.Location:
    uri = uri_of_file(loc.file)
    return types.Location(uri, token_range(_file_lines(ls, uri, loc.file), loc, ls.workspace.text_documents.get(uri)))


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
            out[uri].append(_diagnostic(ls, err, token_range(lines, err.loc if state.here(err.loc) else None, opened)))
            continue
        chain = [location(ls, c) for c in err.chain]
        where = location(ls, err.loc)
        related = [types.DiagnosticRelatedInformation(c, "included from here") for c in chain]
        out.setdefault(where.uri, []).append(_diagnostic(ls, err, where.range, related=related))
        entry = next((c for c in err.chain if state.here(c)), None)
        out[uri].append(_diagnostic(ls, err, token_range(lines, entry, opened), prefix=f"in {err.loc}: ",
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
