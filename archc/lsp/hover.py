"""Hover and inlay hints: what is written at a position, and what the analysis says about it."""

from __future__ import annotations

from typing import Any

from archc import blocks as library
from archc.analyze import NodeInfo
from archc.analyze.summary import fmt_count
from archc.errors import ArchcError, Loc, rel
from archc.expr import interpolate, is_expr
from archc.ir import Group, Node
from archc.load import LocDict, load_file
from archc.lsp.state import DocState, Site, Value, _blocks, _decl_text, _env, _shape_text, _show
from archc.resolve import spec_file

__all__ = ["at", "value_at", "hover_node", "hover_op", "inlay_hints", "hover_value", "param_origins", "hover_param",
           "hover_link", "hover_fanin"]


def at(state: DocState, line: int, col: int) -> tuple[str, Site | None, Any]:
    """What is written at a position: ('name'|'op'|'ref'|'share'|'after'|'else'|'file'|'value', site, detail)
    or ('', None, None)."""
    def hit(loc: Loc | None) -> bool:
        if loc is None or not state.here(loc) or loc.line != line:
            return False
        start, end = state.span(loc)
        return start <= col < end

    for site in state.sites:
        if hit(site.name_loc):
            return "name", site, site.name
        if hit(site.op_loc):
            return "op", site, site.op
        for ref, rloc in site.refs:
            if hit(rloc):
                return "ref", site, ref
        for key, name, lloc in site.links:
            if hit(lloc):
                return key, site, name
    for loc, _, target in state.file_refs:
        if hit(loc):
            return "file", None, target
    value = value_at(state, line, col)
    return ("value", None, value) if value is not None else ("", None, None)


def value_at(state: DocState, line: int, col: int) -> Value | None:
    """The `${...}`, param or block argument written at a position."""
    for v in state.values:
        if v.loc.line == line:
            start, end = state.span(v.loc)
            if start <= col < end:
                return v
    return None


def hover_node(state: DocState, site: Site) -> str | None:
    """Markdown for a node name: op, arguments, shapes, parameters, MACs, receptive field."""
    if site.spec_loc in state.stand_ins:
        return f"**{site.name or site.op}**: not analysed: it has an error (see the problems listed here)"
    groups, nodes = state.units(site)
    if state.analysis is None or not (groups or nodes):
        return None
    info = state.analysis.info
    count = len(groups) + len(nodes)
    lines: list[str] = []
    if groups:
        g = groups[0]
        members = [i for p, i in info.items() if p.startswith(g.path + ".")]
        outs = state.group_outputs(g.path)
        lines += [f"**{g.path}**: `{g.label}` ({g.kind}, {len(members)} nodes)",
                  f"- output: {', '.join(_shape_text(i) for i in outs) or '?'}",
                  f"- params: {sum(i.params for i in members):,}",
                  f"- MACs: {fmt_count(sum(i.macs for i in members))}"]
        if outs:
            lines.append(f"- receptive field: {_rf_text(outs[-1])}")
    else:
        n = nodes[0]
        if n.path not in info:
            return f"**{n.path}**: `{n.op}` (not analysed: an input failed)"
        i = info[n.path]
        args = ", ".join(f"{k}={v!r}" for k, v in n.args.items())
        lines += [f"**{n.path}**: `{n.op}({args})`",
                  f"- input: {', '.join(str(tuple(s)) for s in i.in_shapes)}",
                  f"- output: {_shape_text(i)}",
                  f"- params: {i.params:,}", f"- MACs: {fmt_count(i.macs)}",
                  f"- receptive field: {_rf_text(i)}"]
    lines += _weights_lines(state, groups, nodes)
    if count > 1:
        shapes = state.shapes_of(site)
        paths = [g.path for g in groups] + [n.path for n in nodes]
        listed = [f"  - {p}: {s}" for p, s in zip(paths, shapes)][:8]
        lines += [f"- {count} instances:", *listed] + (["  - ..."] if count > 8 else [])
    if _assumed(state, groups, nodes):
        lines.append("- assumed: an input comes from a node with an error, taken as passing its input through")
    return "\n".join(lines)


def _members(state: DocState, path: str) -> list[Node]:
    assert state.analysis is not None
    return [n for n in state.analysis.graph.nodes if n.path.startswith(path + ".")]


def _group_owners(state: DocState, path: str) -> list[str]:
    """The groups (or nodes) whose weights the nodes under a group call: for each sharing member
    ``path.X``, its owner ``O.X`` gives ``O``."""
    out: dict[str, None] = {}
    for n in _members(state, path):
        if n.shares is None:
            continue
        rest = n.path[len(path):]
        out[n.shares[:-len(rest)] if n.shares.endswith(rest) else n.shares] = None
    return list(out)


def _weights_lines(state: DocState, groups: list[Group], nodes: list[Node]) -> list[str]:
    """`share:` in a node's hover: whose weights the first instance calls, or who calls its weights."""
    assert state.analysis is not None
    info, graph = state.analysis.info, state.analysis.graph
    if groups:
        g = groups[0]
        owners = _group_owners(state, g.path)
        own = sum(info[n.path].params for n in _members(state, g.path) if n.path in info)
        if owners:
            return [f"- weights of {', '.join(owners)} ({own:,} own parameters)"]
        users = list(dict.fromkeys(m.path[:-len(m.shares) + len(g.path)] for m in graph.nodes
                                   if m.shares is not None and m.shares.startswith(g.path + ".")
                                   and m.path.endswith(m.shares[len(g.path):])))
    else:
        n = nodes[0]
        if n.shares is not None:
            return [f"- weights of {n.shares} ({info[n.path].params if n.path in info else 0:,} own parameters)"]
        users = [m.path for m in graph.nodes if m.shares == n.path]
    return [f"- its weights are shared by {', '.join(users[:8])}{', ...' if len(users) > 8 else ''}"] if users else []


def hover_link(state: DocState, site: Site, key: str, name: str) -> str | None:
    """Markdown for a `share:` value (the owner and the parameters shared), or an `after:`/`else:` value (the
    node it names, as a hover on that node)."""
    if key != "share":
        target = _site_named(state, site, name)
        return hover_node(state, target) if target is not None else None
    if state.analysis is None:
        return f"**share: `{name}`**: not analysed (the spec does not resolve)"
    groups, nodes = state.units(site)
    if not groups and not nodes:
        return None
    rows = []
    every: list[Group | Node] = [*groups, *nodes]
    for unit in every[:8]:
        if isinstance(unit, Group):
            owners, pairs = _group_owners(state, unit.path), [n for n in _members(state, unit.path) if n.shares]
        else:
            owners, pairs = ([unit.shares], [unit]) if unit.shares else ([], [])
        sizes = {n.path: state.analysis.info[n.shares].params for n in pairs
                 if n.shares is not None and n.shares in state.analysis.info}
        pairs = [n for n in pairs if sizes.get(n.path)]  # the layers with parameters
        shared = sum(sizes.values())
        what = ", ".join(f"`{o}` ({_label(state, o)})" for o in owners) or "nothing (not linked)"
        rows.append(f"- `{unit.path}` calls the weights of {what}: {shared:,} parameters in {len(pairs)} layer(s)")
        if len(groups) + len(nodes) == 1:
            rows += [f"  - {n.path} → {n.shares}: {sizes[n.path]:,}" for n in pairs[:8]]
            rows += ["  - ..."] if len(pairs) > 8 else []
    more = ["- ..."] if len(groups) + len(nodes) > 8 else []
    return "\n".join([f"**share: `{name}`**: one set of weights, owned by the target (counted once)", *rows, *more])


def _label(state: DocState, path: str) -> str:
    assert state.analysis is not None
    group = next((g for g in state.analysis.graph.groups if g.path == path), None)
    if group is not None:
        return group.label
    info = state.analysis.info.get(path)
    return info.node.op if info is not None else "?"


def _site_named(state: DocState, site: Site, name: str) -> Site | None:
    """The site written under ``name`` in the scope of ``site``."""
    loc = site.body.names.get(name)
    return next((s for s in state.sites if loc is not None and s.name_loc == loc), None)


def hover_fanin(state: DocState, site: Site, ref: str) -> str | None:
    """Markdown for `NAME.*` in an `in:` list: the units of the repeat NAME it stands for (per instance)."""
    target = _site_named(state, site, ref[:-2])
    if target is None:
        return None
    if state.analysis is None:
        return f"**`{ref}`**: not analysed (the spec does not resolve)"
    groups, nodes = state.units(target)
    if not groups:
        return f"**`{ref}`**: `{ref[:-2]}` is no repeat here" if nodes else \
            f"**`{ref}`**: no units (the repeat is skipped or not built)"
    lines = [f"**`{ref}`**: every unit of the repeat `{ref[:-2]}`, in order"]
    for g in groups[:3]:
        units = _units(state, g.path)
        lines.append(f"- `{g.path}` ({g.label}): {len(units)} unit(s)")
        lines += [f"  - {u}: {shape}" for u, shape in units[:8]] + (["  - ..."] if len(units) > 8 else [])
    return "\n".join(lines + (["- ..."] if len(groups) > 3 else []))


def _units(state: DocState, path: str) -> list[tuple[str, str]]:
    """(path, output shape) of each direct child of a repeat group, in execution order."""
    assert state.analysis is not None
    out: dict[str, None] = {}
    for n in _members(state, path):
        out[path + "." + n.path[len(path) + 1:].split(".")[0]] = None
    info = state.analysis.info
    return [(u, _shape_text(info[u]) if u in info else
             ", ".join(_shape_text(i) for i in state.group_outputs(u)) or "?") for u in out]


def _assumed(state: DocState, groups: list[Any], nodes: list[Any]) -> bool:
    """Whether a site's shapes depend on a node in error (recover.py)."""
    if not state.assumed:
        return False
    paths = [n.path for n in nodes] + [m for g in groups for m in state.assumed if m.startswith(g.path + ".")]
    return any(p in state.assumed for p in paths)


def _rf_text(info: NodeInfo) -> str:
    if info.rf is None:
        return "global" if len(info.shape) == 3 else "-"
    return f"{info.rf.pixels}+ px (also the whole input)" if info.rf.whole else f"{info.rf.pixels} px"


def hover_op(state: DocState, op: Any) -> str | None:
    """Markdown for an op name: a library block's signature and doc, or a spec block's arguments."""
    if not isinstance(op, str):
        return None
    data = state.source.data if state.source else None
    blocks = data.get("blocks") if data is not None else None
    if isinstance(blocks, LocDict) and isinstance(blocks.get(op), LocDict):
        args = blocks[op].get("args") or {}
        rows = []
        for k, decl in args.items():
            if isinstance(decl, dict):
                default = f" = {decl['default']!r}" if "default" in decl else ""
                rows.append(f"- `{k}`: {decl.get('type', 'any')}{default}")
            else:
                rows.append(f"- `{k}`: {decl}")
        return "\n".join([f"**{op}** (block defined at {blocks.key_locs[op]})", *rows])
    if not library.is_registered(op):
        return None
    b = library.get(op)
    sig = ", ".join(k if p.default is library.REQUIRED else f"{k}={p.default!r}" for k, p in b.params.items())
    rows = [f"- `{k}`: {p.kind}{'' if p.default is library.REQUIRED else f' = {p.default!r}'}"
            f"{' — ' + p.doc if p.doc else ''}" for k, p in b.params.items()]
    return "\n".join([f"```\n{op}({sig})\n```", b.doc.split(":", 1)[-1].strip(), *rows])


def inlay_hints(state: DocState) -> list[tuple[int, str]]:
    """(line, label) for each line of the document where a node is written: its output shape(s)."""
    by_line: dict[int, list[str]] = {}
    for site in state.sites:
        anchor = site.name_loc or site.op_loc or site.spec_loc
        if not state.here(anchor) or site.spec_loc in state.stand_ins or _assumed(state, *state.units(site)):
            continue
        shapes = list(dict.fromkeys(state.shapes_of(site)))
        if not shapes:
            continue
        text = " | ".join(shapes[:3]) + (" | ..." if len(shapes) > 3 else "")
        by_line.setdefault(anchor.line, []).append(text)
    return [(line, "→ " + "; ".join(texts)) for line, texts in sorted(by_line.items())]


def hover_value(state: DocState, v: Value) -> str:
    """Markdown for a `${...}` (its value), a param (value, where set) or a block argument."""
    if v.kind == "param":
        return hover_param(state, v.key)
    if v.kind == "arg":
        return _hover_arg(state, v)
    return _hover_expr(state, v)


def param_origins(state: DocState, name: str) -> list[tuple[Loc, Any]]:
    """Where a param is written along the `extends:` chain, this document first."""
    out: list[tuple[Loc, Any]] = []
    data: Any = state.source.top if state.source is not None else None
    path = state.path
    for _ in range(16):
        if not isinstance(data, LocDict):
            break
        params = data.get("params")
        if isinstance(params, LocDict) and name in params:
            out.append((params.key_locs[name], params[name]))
        if "extends" not in data:
            break
        try:
            path = spec_file(data["extends"], data.val_locs.get("extends"), path, state.path)
            data = load_file(path, rel(path))
        except ArchcError:
            break
    return out


def hover_param(state: DocState, name: str) -> str:
    env = _env(state)
    value = f" = `{_show(env[name])}`" if env is not None and name in env else ""
    lines = [f"**param `{name}`**{value}"]
    for k, (loc, written) in enumerate(param_origins(state, name)):  # the first one wins
        lines.append(f"- {'set' if k == 0 else 'overridden, in a base'} at {loc}: `{_show(written)}`")
    return "\n".join(lines)


def _hover_arg(state: DocState, v: Value) -> str:
    bdef = _blocks(state).get(v.block)
    args = bdef.get("args") if isinstance(bdef, LocDict) else None
    decl = args.get(v.key) if isinstance(args, dict) else None
    lines = [f"**argument `{v.key}`** of block `{v.block}`: {_decl_text(decl)}"]
    if isinstance(decl, dict) and decl.get("doc"):
        lines.append(str(decl["doc"]))
    if v.holder is not args:  # at a use of the block: the value passed
        written = v.holder[v.key]
        lines.append(f"- passed: `{_show(written)}`" + (f" = `{_show(_evaluate(state, written))}`"
                                                          if is_expr(written) else ""))
    elif state.analysis is not None:
        n = sum(g.kind == "block" and g.label == v.block for g in state.analysis.graph.groups)
        lines.append(f"- {n} instance(s) of `{v.block}`")
    return "\n".join(lines)


def _evaluate(state: DocState, text: Any) -> Any:
    env = _env(state)
    if env is None:
        return "?"
    try:
        return interpolate(str(text), env)
    except ArchcError:
        return "?"


def _hover_expr(state: DocState, v: Value) -> str:
    text = v.holder[v.key]
    head = f"`{text}`"
    env = _env(state)
    if env is None:
        return f"{head}: not evaluated (the spec does not resolve)"
    if v.block is None:
        try:
            return f"{head} = `{_show(interpolate(str(text), env))}`"
        except ArchcError:
            pass
    per = _per_instance(state, v)
    if not per:
        return f"{head}: its value depends on the instance (block arguments, loop variables, input shapes)"
    shown = list(dict.fromkeys(_show(x) for _, x in per))
    if len(shown) == 1:
        return f"{head} = `{shown[0]}` in all {len(per)} instance(s)"
    rows = [f"  - {path}: `{_show(x)}`" for path, x in per[:8]] + (["  - ..."] if len(per) > 8 else [])
    return "\n".join([f"{head}, per instance:", *rows])


def _per_instance(state: DocState, v: Value) -> list[tuple[str, Any]]:
    """The value of a node argument written as `${...}`, read from each node built from that line."""
    if state.analysis is None:
        return []
    site = next((s for s in state.sites if s.spec_loc == v.holder.loc), None)
    if site is None or site.op_loc is None:
        return []
    return [(n.path, n.args[v.key]) for n in state.analysis.graph.nodes if n.loc == site.op_loc and v.key in n.args]
