"""The analysis cache: ``analyse_text`` (load, resolve, analyse, lint the editor's text) and the reuse of
the previous analysis when an edit changes nothing that was loaded."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from archc.analyze.lint import lint
from archc.api import analyse_graph, collector_paused
from archc.errors import ArchcError, SchemaError, rel
from archc.load import LocDict, load_text
from archc.lsp.index import _file_refs, _index, _index_values
from archc.lsp.recover import Recovered, recover
from archc.lsp.state import DocState
from archc.resolve import Limits, build
from archc.resolve.spec import SpecSource, load_spec

__all__ = ["analyse_text", "same_tree"]


def _flatten(err: ArchcError, out: list[ArchcError], seen: set[tuple[Any, str]]) -> None:
    """An error and its `.others`, depth first, each (location, message) once; each object visited once
    (so an error that lists itself among its others cannot loop). Their tracebacks are dropped: a raised
    error's frames hold the analysis's locals, the previous state among them, so a document in error kept
    every earlier state alive, one chain link per edit (~1 MB an edit on a 400-node ResNet)."""
    visited: set[int] = set()
    stack = [err]
    while stack:
        e = stack.pop()
        if id(e) in visited:
            continue
        visited.add(id(e))
        e.__traceback__ = None
        key = (e.loc, e.message)
        if key not in seen:
            seen.add(key)
            out.append(e)
        stack.extend(reversed(e.others))


def analyse_text(text: str, path: Path, limits: Limits | None = None, previous: DocState | None = None) -> DocState:
    """Load, resolve, analyse and lint a document's text; every independent error is collected.

    With ``previous`` (the last state of the same document, same limits), a text that loads to the
    same values at the same positions, with every extended or imported file unchanged on disk, gets
    the previous analysis back (its text replaced): the analysis is a function of those inputs."""
    with collector_paused():
        return _analyse_text(text, path, limits or Limits(), previous)


def _analyse_text(text: str, path: Path, limits: Limits, previous: DocState | None) -> DocState:
    state = DocState(text, path, rel(path))
    if previous is not None and _reusable(previous, text, path, state.display):
        return replace(previous, text=text)
    found: list[ArchcError] = []
    started = time.time_ns()
    try:
        _load(state, path, text)
        assert state.source is not None
        analysis = analyse_graph(build(state.source, limits=limits), limits)
        state.analysis = analysis
        found = list(analysis.errors)
        state.warnings = lint(analysis, state.source)
    except SchemaError as e:
        found = [e]
        _load_unchecked(state, path, text)
    except ArchcError as e:
        found = [e]
    seen: set[tuple[Any, str]] = set()
    for err in found:
        _flatten(err, state.errors, seen)
    if state.source is not None:
        state.source.add_chains([*state.errors, *state.warnings])
        state.bases = _read_bases(state.source, state.display, started)
        recovered = _recover(state, limits) if state.errors else None
        if recovered is not None:  # hover and inlay hints beside the errors (the diagnostics are above)
            state.analysis, state.stand_ins, state.assumed = recovered.analysis, recovered.stand_ins, recovered.assumed
    return state


def _recover(state: DocState, limits: Limits) -> Any:
    """recover(), which may meet anything when the document failed its schema check (see _load_unchecked)."""
    if state.source is None or not any(isinstance(e, SchemaError) for e in state.errors):
        return recover(state, limits)
    try:  # the schema error lies outside the nodes: build as loaded, standing in the nodes that fail there
        try:
            analysis = analyse_graph(build(state.source, limits=limits), limits)
            errors = list(analysis.errors)
        except ArchcError as e:
            analysis, errors = None, [e, *e.others]
        if analysis is not None and not errors:
            return Recovered(analysis)
        return recover(replace(state, errors=errors), limits)
    except Exception:  # noqa: BLE001 - an unvalidated spec: no shapes rather than a crash in the server
        return None


_MTIME_MARGIN_NS = 2_000_000_000  # a base modified this close to (or after) the analysis start is not trusted


def _load(state: DocState, path: Path, text: str, schema: bool = True) -> None:
    """Load the document (and what it extends) and index its sites for hover, hints and definitions."""
    state.source = load_spec(path, text, schema)
    top = state.source.top
    assert top is not None
    _index(state, state.source.data)
    _file_refs(state, top)
    _index_values(state, state.source.data)


def _load_unchecked(state: DocState, path: Path, text: str) -> None:
    """After a schema error (already a diagnostic): the document loaded without the schema check, so that
    hover and inlay hints still work beside it (recover builds from it). Best effort: the schema is what
    makes a spec's types safe to read, so any failure here just leaves the document without shapes."""
    try:
        _load(state, path, text, schema=False)
    except Exception:  # noqa: BLE001 - an unvalidated spec may break anything; the diagnostics stand
        state.source = None


def _reusable(previous: DocState, text: str, path: Path, display: str) -> bool:
    """Whether ``text`` gives ``previous``'s analysis: same path, same loaded top (values, types and
    positions) and the same bytes in every file it extended or imported."""
    if previous.bases is None or previous.source is None or previous.path != path or previous.display != display:
        return False
    try:
        top = load_text(text, display)
    except ArchcError:
        return False
    if not same_tree(top, previous.source.top):
        return False
    for file, data in previous.bases.items():
        try:
            if file.read_bytes() != data:
                return False
        except OSError:
            return False
    return True


def _read_bases(source: SpecSource, display: str, started: int) -> dict[Path, bytes] | None:
    """The bytes of each file the load read besides the document; None (never reuse) when one cannot
    be read or may have changed while it was being analysed."""
    out: dict[Path, bytes] = {}
    for file in source.includes:
        if file == display:
            continue
        p = Path(file)
        try:
            if p.stat().st_mtime_ns > started - _MTIME_MARGIN_NS:
                return None
            out[p.resolve()] = p.read_bytes()
        except OSError:
            return None
    return out


def same_tree(a: Any, b: Any) -> bool:
    """Two loaded YAML values equal in values, types, key order and every position."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, LocDict):
            if x.loc != y.loc or list(x) != list(y) or x.key_locs != y.key_locs or x.val_locs != y.val_locs:
                return False
            stack.extend(zip(x.values(), y.values()))
        elif isinstance(x, list):
            if len(x) != len(y) or getattr(x, "loc", None) != getattr(y, "loc", None) or \
                    getattr(x, "locs", None) != getattr(y, "locs", None):
                return False
            stack.extend(zip(x, y))
        elif x != y or (isinstance(x, float) and math.copysign(1, x) != math.copysign(1, y)):
            return False
    return True
