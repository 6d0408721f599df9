"""Where things are written: node sites, scopes, block definitions, extends/imports values, `${...}`
values, params and block arguments of the document (1-based lines and columns)."""

from __future__ import annotations

from typing import Any

from archc.errors import ArchcError, Loc
from archc.expr import is_expr
from archc.load import LocDict, LocList
from archc.lsp.state import Body, DocState, Site, Value
from archc.resolve import spec_file
from archc.resolve.names import written_name

LINK_KEYS = ("share", "after", "else")  # node keys whose value names a node of the scope


def _index(state: DocState, data: LocDict) -> None:
    """Record every node site, scope, block definition and extends/imports file of the spec."""
    if isinstance(data.get("nodes"), (LocDict, LocList)):
        _walk_body(state, data["nodes"], ("input",))
    blocks = data.get("blocks")
    if isinstance(blocks, LocDict):
        for name, bdef in blocks.items():
            state.block_defs[name] = blocks.key_locs[name]
            if not isinstance(bdef, LocDict):
                continue
            inputs = tuple(bdef["inputs"]) if isinstance(bdef.get("inputs"), list) else ("input",)
            body = bdef.get("nodes", bdef.get("seq"))
            if isinstance(body, (LocDict, LocList)):
                state.block_bodies[name] = _walk_body(state, body, inputs)


def _file_refs(state: DocState, data: LocDict) -> None:
    """`extends:` and `imports:` values written in this document, with the file each names."""
    written: list[tuple[Any, Loc | None]] = []
    if "extends" in data:
        written.append((data["extends"], data.val_locs.get("extends")))
    imports = data.get("imports")
    if isinstance(imports, LocList):
        written.extend(zip(imports, imports.locs))
    for value, loc in written:
        if loc is None or not state.here(loc):
            continue
        try:
            state.file_refs.append((loc, str(value), spec_file(value, loc, state.path)))
        except ArchcError:
            continue  # reported as a diagnostic by the load


def _walk_body(state: DocState, body: LocDict | LocList, inputs: tuple[str, ...]) -> Body:
    scope = Body(dict(body.key_locs) if isinstance(body, LocDict) else {}, inputs)
    state.bodies.append(scope)
    if isinstance(body, LocDict):
        for name, spec in body.items():
            _walk_node(state, spec, body.val_locs[name], scope, name, body.key_locs[name], (body, name))
        return scope
    for i, (item, loc) in enumerate(zip(body, body.locs)):
        if isinstance(item, LocDict) and "each" in item:
            if isinstance(item.get("items"), LocList):
                _walk_items(state, item["items"], scope)
        else:
            _walk_node(state, item, loc, scope, None, None, (body, i))
    return scope


def _walk_items(state: DocState, items: LocList, scope: Body) -> None:
    """`each` items belong to the seq around them (one scope, numbered children)."""
    for i, (item, loc) in enumerate(zip(items, items.locs)):
        if isinstance(item, LocDict) and "each" in item and isinstance(item.get("items"), LocList):
            _walk_items(state, item["items"], scope)
        else:
            _walk_node(state, item, loc, scope, None, None, (items, i))


def _walk_node(state: DocState, spec: Any, loc: Loc, scope: Body, name: str | None, name_loc: Loc | None,
               held: tuple[Any, Any]) -> None:
    if isinstance(spec, str):
        state.sites.append(Site(name, name_loc, spec, loc, loc, scope, spec=spec, holder=held[0], key=held[1]))
        return
    if not isinstance(spec, LocDict):
        return
    site = Site(name, name_loc, spec.get("op"), spec.val_locs.get("op"), spec.loc, scope, spec=spec,
                holder=held[0], key=held[1])
    raw = spec.get("in")
    if isinstance(raw, LocList):  # a name written as a plain number (`in: [6, 4]`) is the node named 6
        site.refs = [(str(written_name(r)), rl) for r, rl in zip(raw, raw.locs) if isinstance(written_name(r), str)]
    elif isinstance(written_name(raw), str) and "in" in spec.val_locs:
        site.refs = [(str(written_name(raw)), spec.val_locs["in"])]
    for key in LINK_KEYS:  # `share: enc_a`, `after: bn3`, `else: cv2`: names of the scope, as `in:`
        value = written_name(spec.get(key))
        if isinstance(value, str) and state.here(spec.val_locs.get(key)):
            site.links.append((key, value, spec.val_locs[key]))
    state.sites.append(site)
    inner = spec.get("nodes", spec.get("seq"))
    if isinstance(inner, (LocDict, LocList)):
        declared = spec.get("inputs")
        site.inner = _walk_body(state, inner, tuple(declared) if isinstance(declared, list) else ("input",))


def _index_values(state: DocState, data: LocDict) -> None:
    """Record the `${...}` values, param names and block argument names written in this document."""
    raw = data.get("blocks")
    blocks = raw if isinstance(raw, LocDict) else LocDict(data.loc)
    params = data.get("params")
    if isinstance(params, LocDict):
        state.values += [Value("param", loc, k, params) for k, loc in params.key_locs.items() if state.here(loc)]
    for name, bdef in blocks.items():
        args = bdef.get("args") if isinstance(bdef, LocDict) else None
        if isinstance(args, LocDict):
            state.values += [Value("arg", loc, k, args, name) for k, loc in args.key_locs.items() if state.here(loc)]
        _index_exprs(state, bdef, blocks, name)
    for key, value in data.items():
        if key != "blocks":
            _index_exprs(state, value, blocks, None)


def _index_exprs(state: DocState, value: Any, blocks: LocDict, block: str | None) -> None:
    """Every `${...}` value inside a loaded value, and the arguments written at each use of a spec block."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(x for x in v if isinstance(x, (dict, list)))
        if not isinstance(v, LocDict):
            continue
        op = v.get("op")
        bdef = blocks.get(op) if isinstance(op, str) else None
        declared = bdef.get("args") if isinstance(bdef, LocDict) else None
        for key, item in v.items():
            if isinstance(item, (dict, list)):
                stack.append(item)
            elif is_expr(item) and state.here(v.val_locs.get(key)):
                state.values.append(Value("expr", v.val_locs[key], key, v, block))
            if isinstance(declared, dict) and key in declared and state.here(v.key_locs.get(key)):
                state.values.append(Value("arg", v.key_locs[key], key, v, str(op)))
