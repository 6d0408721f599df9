"""Completion: op names, names inside `in:` (and `NAME.*` of a repeat), `share:`/`after:`/`else:` values, names
inside `${`, and the arguments of a node's op with the language's node keys."""

from __future__ import annotations

import re

from archc import blocks as library
from archc.load import LocDict
from archc.lsp.state import Body, DocState, Site, _blocks, _decl_text, _env, _lines_of, _show

__all__ = ["op_names", "scope_names", "fanin_names", "link_names", "NODE_KEYS", "op_args", "op_of_mapping",
           "expr_names"]


def op_names(state: DocState | None) -> list[tuple[str, str]]:
    """(name, detail) of every op a node may use: the spec's blocks (its own and imported) and the library."""
    out: list[tuple[str, str]] = []
    blocks = state.source.data.get("blocks") if state and state.source else None
    if isinstance(blocks, LocDict):
        out += [(name, f"block ({blocks.key_locs[name]})") for name in blocks]
    out += [(name, library.get(name).doc.split(":", 1)[-1].strip()) for name in library.names()]
    return out


def _scope_at(state: DocState, line: int) -> Body | None:
    """The innermost scope written around a line (else the last one above it)."""
    spans = []
    for body in state.bodies:
        lines = [loc.line for loc in body.names.values() if state.here(loc)]
        if lines and min(lines) <= line:
            spans.append((min(lines), max(lines), body))
    inside = [s for s in spans if line <= s[1] + 1]
    pick = max(inside, key=lambda s: s[0]) if inside else max(spans, key=lambda s: s[1], default=None)
    return None if pick is None else pick[2]


def scope_names(state: DocState, line: int) -> list[str]:
    """Names an `in:` on this line may read: the innermost scope written around it (else the last
    one above it)."""
    body = _scope_at(state, line)
    return ["input"] if body is None else [*body.names, *body.inputs]


def fanin_names(state: DocState, line: int) -> list[str]:
    """`NAME.*` for every repeat of the scope around this line (an `in:` list reads all its units)."""
    body = _scope_at(state, line)
    if body is None:
        return []
    repeats = {s.name_loc for s in state.sites if isinstance(s.spec, LocDict) and "repeat" in s.spec}
    return [f"{name}.*" for name, loc in body.names.items() if loc in repeats]


def link_names(state: DocState, line: int, key: str) -> list[str]:
    """Names a `share:`, `after:` or `else:` value on this line may name: the nodes of its scope (`else:` also
    its inputs)."""
    body = _scope_at(state, line)
    return [] if body is None else [*body.names, *(body.inputs if key == "else" else ())]


# the language's node keys offered beside an op's arguments: (key, detail)
NODE_KEYS = (("share", "share: NODE — call that node's (or group's) weights instead of owning them"),
             ("after", "after: NODE — insert this node right after its sibling NODE (readers of NODE read it)"),
             ("else", "else: NAME — the input a node with several inputs stands for when its `when:` is false"))


def op_args(state: DocState | None, op: str) -> list[tuple[str, str, str]]:
    """(name, 'type = default', doc) of every argument an op takes: a library block's or a spec block's."""
    if state is not None:
        bdef = _blocks(state).get(op)
        if isinstance(bdef, LocDict):
            args = bdef.get("args") or {}
            return [(k, _decl_text(d), str(d.get("doc", "")) if isinstance(d, dict) else "") for k, d in args.items()]
    if not library.is_registered(op):
        return []
    return [(k, p.kind + ("" if p.default is library.REQUIRED else f" = {p.default!r}"), p.doc)
            for k, p in library.get(op).params.items()]


def op_of_mapping(state: DocState, line: int, col: int, text_line: str) -> tuple[str | None, set[str]]:
    """The op of the node mapping a key is being typed in (line, 1-based key column), and the keys it has."""
    m = re.search(r"""(?:^|[{,\s])op:\s*["']?([\w.-]+)""", text_line)
    if m and "{" in text_line[:col]:
        written = set(re.findall(r"(\w+)\s*:", text_line))
        return m.group(1), written
    best: Site | None = None
    for site in state.sites:
        loc = site.spec_loc
        if state.here(loc) and loc.col == col and loc.line <= line and (best is None or loc.line > best.spec_loc.line):
            best = site
    if best is None or not isinstance(best.op, str):
        return None, set()
    holder = next((v.holder for v in state.values if v.holder.loc == best.spec_loc), None)
    return best.op, set(holder) if holder is not None else set()


def expr_names(state: DocState | None, line: int) -> list[tuple[str, str]]:
    """(name, detail) readable inside `${` on this line: params (with values), the arguments of the
    block written around it, the shape variables and the functions."""
    out: list[tuple[str, str]] = []
    env = _env(state) if state is not None else None
    if state is not None and state.source is not None:
        params = state.source.data.get("params")
        for k in params if isinstance(params, LocDict) else ():
            out.append((k, f"param = {_show(env[k])}" if env and k in env else "param"))
        for name, bdef in _blocks(state).items():
            if isinstance(bdef, LocDict) and _lines_of(bdef, state)[0] <= line <= _lines_of(bdef, state)[1]:
                out += [(a, f"argument of {name}: {_decl_text(d)}") for a, d in (bdef.get("args") or {}).items()]
    out += [("in_shape", "the shape flowing in (batch left out)"), ("in_shapes", "every input's shape")]
    from archc.expr import FUNCTIONS

    return out + [(f, "function") for f in FUNCTIONS]
