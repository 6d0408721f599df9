"""Go-to-definition and the document outline."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archc.errors import Loc
from archc.load import LocDict, LocList
from archc.lsp.state import Body, DocState, Site, _lines_of

__all__ = ["definition", "Symbol", "symbols"]


def definition(state: DocState, kind: str, site: Site | None, detail: Any) -> Loc | Path | None:
    """Where a block used as an op, a name read by `in:`, or an extends/imports file is defined."""
    if kind == "op" and isinstance(detail, str):
        return state.block_defs.get(detail)
    if kind == "ref" and site is not None and isinstance(detail, str):  # `name`, `name[K]`, `name.*`
        return site.body.names.get(re.sub(r"(\[\d+\]|\.\*)$", "", detail))
    if kind in ("share", "after", "else") and site is not None and isinstance(detail, str):
        return _path_target(state, site.body, detail)
    if kind == "file" and isinstance(detail, Path):
        return detail
    return None


def _path_target(state: DocState, body: Body, path: str) -> Loc | None:
    """Where the node at a path relative to a scope is written (`enc_a`, `enc_a.conv1` through a group or a spec
    block's body, `m.0.cv1` through a repeat's unit); as deep as the document says."""
    parts = path.split(".")
    loc = body.names.get(parts[0])
    unit = False  # the next part names a unit of a repeat
    for part in parts[1:]:
        site = next((s for s in state.sites if loc is not None and s.name_loc == loc), None)
        if site is None:
            break
        if not unit and isinstance(site.spec, LocDict) and "repeat" in site.spec:
            unit = True
            continue
        unit = False
        inner = site.inner or (state.block_bodies.get(site.op) if isinstance(site.op, str) else None)
        if inner is None or part not in inner.names:
            break
        loc = inner.names[part]
    return loc


# -- document symbols ------------------------------------------------------------------------------
@dataclass
class Symbol:
    """One outline entry: a block, a node or a group, with its children; lines and columns 1-based."""

    name: str
    detail: str
    kind: str  # block | node | group
    loc: Loc
    end_line: int
    children: list[Symbol] = field(default_factory=list)


def symbols(state: DocState) -> list[Symbol]:
    """The outline of this document: its blocks (their nodes inside) and its nodes (groups nested)."""
    data = state.source.top if state.source is not None else None
    if not isinstance(data, LocDict):
        return []
    out = []
    blocks = data.get("blocks")
    if isinstance(blocks, LocDict):
        for name, bdef in blocks.items():
            if not isinstance(bdef, LocDict) or not state.here(blocks.key_locs[name]):
                continue
            args = ", ".join(bdef.get("args") or {})
            sym = Symbol(name, f"block({args})", "block", blocks.key_locs[name], _lines_of(bdef, state)[1])
            sym.children = _body_symbols(state, bdef.get("nodes", bdef.get("seq")))
            out.append(sym)
    out += _body_symbols(state, data.get("nodes"))
    return out


def _body_symbols(state: DocState, body: Any) -> list[Symbol]:
    if isinstance(body, LocDict):
        entries = [(k, v, body.key_locs[k]) for k, v in body.items()]
    elif isinstance(body, LocList):
        entries = [(str(i), v, loc) for i, (v, loc) in enumerate(zip(body, body.locs))]
    else:
        return []
    out = []
    for name, spec, loc in entries:
        if not state.here(loc):
            continue
        inner = spec.get("nodes", spec.get("seq", spec.get("items"))) if isinstance(spec, LocDict) else None
        op = spec if isinstance(spec, str) else spec.get("op") if isinstance(spec, LocDict) else None
        detail = str(op) if op is not None else "each" if isinstance(spec, LocDict) and "each" in spec else "group"
        if isinstance(spec, LocDict) and "repeat" in spec:
            detail += f" x {spec['repeat']}"
        end = max(loc.line, _lines_of(spec, state)[1])
        out.append(Symbol(name, detail, "group" if inner is not None else "node", loc, end,
                          _body_symbols(state, inner)))
    return out
