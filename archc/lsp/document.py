"""An open spec document, analysed from the editor's text (not the file on disk).

Everything here is plain Python (no pygls, no torch): ``analyse_text`` loads the text the way
``archc check`` loads a file (same strict YAML, schema, `extends:`/`imports:` from disk, resolve,
analyze, lint) and indexes where the nodes, ops and `in:` references are written, so that the
server can answer hover, inlay hints, completion and go-to-definition from positions.
Lines and columns are 1-based here, as in :class:`archc.errors.Loc`.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from archc import blocks as library
from archc.analyze import Analysis, NodeInfo
from archc.analyze.lint import LintWarning, lint
from archc.analyze.summary import fmt_count
from archc.api import analyse_graph
from archc.errors import ArchcError, Loc, rel
from archc.expr import interpolate, is_expr
from archc.ir import Group, Node
from archc.load import LocDict, LocList, load_file, load_text
from archc.resolve import Limits, build, spec_file
from archc.resolve.spec import SpecSource, load_spec

__all__ = ["DocState", "Site", "Symbol", "Value", "analyse_text", "is_spec", "symbols", "token_end"]

_SPEC_KEY = re.compile(r"^(archc|nodes|extends)\s*:", re.MULTILINE)
_TOKEN = re.compile(r"""[^\s,\[\]{}#:"']+(?::[^\s,\[\]{}#]+)*""")


def is_spec(text: str) -> bool:
    """Whether a document looks like an archc spec: a top-level `archc:`, `nodes:` or `extends:`."""
    return _SPEC_KEY.search(text) is not None


def token_end(line: str, col: int) -> int:
    """The 1-based column just past the YAML token that starts at ``col`` (a quoted string, a flow
    collection, a plain scalar); at least one character wide."""
    i = col - 1
    if i >= len(line):
        return col + 1
    c = line[i]
    if c in "\"'":
        j = line.find(c, i + 1)
        return (j + 2) if j >= 0 else len(line) + 1
    if c in "[{":
        close, depth = "]" if c == "[" else "}", 0
        for j in range(i, len(line)):
            depth += line[j] == c
            depth -= line[j] == close
            if depth == 0:
                return j + 2
        return len(line) + 1
    m = _TOKEN.match(line, i)
    return (m.end() + 1) if m and m.end() > i else col + 1


@dataclass
class Site:
    """Where a node (or seq item) is written: its name key, its `op:` value and its `in:` refs."""

    name: str | None
    name_loc: Loc | None
    op: Any
    op_loc: Loc | None
    spec_loc: Loc
    body: Body
    refs: list[tuple[str, Loc]] = field(default_factory=list)


@dataclass
class Body:
    """A scope: the named children of a `nodes:` mapping (seq bodies have none), `input` and the
    declared block inputs are names too."""

    names: dict[str, Loc]
    inputs: tuple[str, ...] = ("input",)


@dataclass
class Value:
    """Something written here that hover explains: a `${...}` value (kind 'expr'), a param's name
    ('param') or a block argument's name, in its block's `args:` or at a use of the block ('arg')."""

    kind: str
    loc: Loc
    key: str
    holder: LocDict
    block: str | None = None  # for 'arg': the block; for 'expr': the enclosing block definition, if any


@dataclass
class DocState:
    """One analysis of one document version."""

    text: str
    path: Path
    display: str
    source: SpecSource | None = None
    analysis: Analysis | None = None
    errors: list[ArchcError] = field(default_factory=list)
    warnings: list[LintWarning] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)
    bodies: list[Body] = field(default_factory=list)
    block_defs: dict[str, Loc] = field(default_factory=dict)
    file_refs: list[tuple[Loc, str, Path]] = field(default_factory=list)  # extends/imports values -> file
    values: list[Value] = field(default_factory=list)  # `${...}` values, params and block arguments written here
    bases: dict[Path, bytes] | None = None  # the bytes of each extended/imported file read (None: not reusable)

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def here(self, loc: Loc | None) -> bool:
        return loc is not None and loc.file == self.display

    def span(self, loc: Loc) -> tuple[int, int]:
        """Columns [start, end) of the token at ``loc`` in this document."""
        lines = self.lines
        line = lines[loc.line - 1] if 0 < loc.line <= len(lines) else ""
        return loc.col, token_end(line, loc.col)

    # -- what the graph says about a site -------------------------------------------------
    def units(self, site: Site) -> tuple[list[Group], list[Node]]:
        """The outermost groups (repeat, block instance, seq) and the nodes made from a site."""
        if self.analysis is None:
            return [], []
        graph = self.analysis.graph
        groups = [g for g in graph.groups if g.loc == site.spec_loc]
        outer = [g for g in groups if not any(g.path.startswith(h.path + ".") for h in groups)]
        if outer:
            return outer, []
        return [], [n for n in graph.nodes if site.op_loc is not None and n.loc == site.op_loc]

    def group_outputs(self, path: str) -> list[NodeInfo]:
        """The infos of a group's outputs: its members read from outside it (or graph outputs);
        else its last member."""
        assert self.analysis is not None
        prefix = path + "."
        members = [i for p, i in self.analysis.info.items() if p.startswith(prefix)]
        outside = {src.partition("[")[0] for n in self.analysis.graph.nodes if not n.path.startswith(prefix)
                   for src in n.inputs}
        outside.update(o.partition("[")[0] for o in self.analysis.graph.outputs)
        read = [i for i in members if i.node.path in outside]
        return read or members[-1:]

    def shapes_of(self, site: Site) -> list[str]:
        """One text per instance of the site: its output shape(s)."""
        groups, nodes = self.units(site)
        out = []
        for g in groups:
            infos = self.group_outputs(g.path)
            out.append(", ".join(_shape_text(i) for i in infos) if infos else "?")
        if self.analysis is not None:
            out.extend(_shape_text(self.analysis.info[n.path]) for n in nodes if n.path in self.analysis.info)
        return out


def _shape_text(info: NodeInfo) -> str:
    shapes = info.outputs or (info.shape,)
    return ", ".join(str(tuple(s)) for s in shapes)


def _rf_text(info: NodeInfo) -> str:
    if info.rf is None:
        return "global" if len(info.shape) == 3 else "-"
    return f"{info.rf.pixels}+ px (also the whole input)" if info.rf.whole else f"{info.rf.pixels} px"


def _flatten(err: ArchcError, out: list[ArchcError], seen: set[tuple[Any, str]]) -> None:
    """An error and its `.others`, depth first, each (location, message) once; each object visited once
    (so an error that lists itself among its others cannot loop)."""
    visited: set[int] = set()
    stack = [err]
    while stack:
        e = stack.pop()
        if id(e) in visited:
            continue
        visited.add(id(e))
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
    limits = limits or Limits()
    state = DocState(text, path, rel(path))
    if previous is not None and _reusable(previous, text, path, state.display):
        return replace(previous, text=text)
    found: list[ArchcError] = []
    started = time.time_ns()
    try:
        state.source = load_spec(path, text)
        top = state.source.top
        assert top is not None
        _index(state, state.source.data)
        _file_refs(state, top)
        _index_values(state, state.source.data)
        analysis = analyse_graph(build(state.source, limits=limits), limits)
        state.analysis = analysis
        found = list(analysis.errors)
        state.warnings = lint(analysis, state.source)
    except ArchcError as e:
        found = [e]
    seen: set[tuple[Any, str]] = set()
    for err in found:
        _flatten(err, state.errors, seen)
    if state.source is not None:
        state.source.add_chains([*state.errors, *state.warnings])
        state.bases = _read_bases(state.source, state.display, started)
    return state


# -- reuse across edits ----------------------------------------------------------------------
_MTIME_MARGIN_NS = 2_000_000_000  # a base modified this close to (or after) the analysis start is not trusted


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


# -- where things are written ---------------------------------------------------------------
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
                _walk_body(state, body, inputs)


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


def _walk_body(state: DocState, body: LocDict | LocList, inputs: tuple[str, ...]) -> None:
    scope = Body(dict(body.key_locs) if isinstance(body, LocDict) else {}, inputs)
    state.bodies.append(scope)
    if isinstance(body, LocDict):
        for name, spec in body.items():
            _walk_node(state, spec, body.val_locs[name], scope, name, body.key_locs[name])
        return
    for item, loc in zip(body, body.locs):
        if isinstance(item, LocDict) and "each" in item:
            if isinstance(item.get("items"), LocList):
                _walk_items(state, item["items"], scope)
        else:
            _walk_node(state, item, loc, scope, None, None)


def _walk_items(state: DocState, items: LocList, scope: Body) -> None:
    """`each` items belong to the seq around them (one scope, numbered children)."""
    for item, loc in zip(items, items.locs):
        if isinstance(item, LocDict) and "each" in item and isinstance(item.get("items"), LocList):
            _walk_items(state, item["items"], scope)
        else:
            _walk_node(state, item, loc, scope, None, None)


def _walk_node(state: DocState, spec: Any, loc: Loc, scope: Body, name: str | None, name_loc: Loc | None) -> None:
    if isinstance(spec, str):
        state.sites.append(Site(name, name_loc, spec, loc, loc, scope))
        return
    if not isinstance(spec, LocDict):
        return
    site = Site(name, name_loc, spec.get("op"), spec.val_locs.get("op"), spec.loc, scope)
    raw = spec.get("in")
    if isinstance(raw, LocList):
        site.refs = [(str(r), rl) for r, rl in zip(raw, raw.locs) if isinstance(r, str)]
    elif isinstance(raw, str) and "in" in spec.val_locs:
        site.refs = [(raw, spec.val_locs["in"])]
    state.sites.append(site)
    inner = spec.get("nodes", spec.get("seq"))
    if isinstance(inner, (LocDict, LocList)):
        declared = spec.get("inputs")
        _walk_body(state, inner, tuple(declared) if isinstance(declared, list) else ("input",))


# -- answers ----------------------------------------------------------------------------------
def at(state: DocState, line: int, col: int) -> tuple[str, Site | None, Any]:
    """What is written at a position: ('name'|'op'|'ref'|'file'|'value', site, detail) or ('', None, None)."""
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
    for loc, _, target in state.file_refs:
        if hit(loc):
            return "file", None, target
    value = value_at(state, line, col)
    return ("value", None, value) if value is not None else ("", None, None)


def hover_node(state: DocState, site: Site) -> str | None:
    """Markdown for a node name: op, arguments, shapes, parameters, MACs, receptive field."""
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
    if count > 1:
        shapes = state.shapes_of(site)
        paths = [g.path for g in groups] + [n.path for n in nodes]
        listed = [f"  - {p}: {s}" for p, s in zip(paths, shapes)][:8]
        lines += [f"- {count} instances:", *listed] + (["  - ..."] if count > 8 else [])
    return "\n".join(lines)


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
        if not state.here(anchor):
            continue
        shapes = list(dict.fromkeys(state.shapes_of(site)))
        if not shapes:
            continue
        text = " | ".join(shapes[:3]) + (" | ..." if len(shapes) > 3 else "")
        by_line.setdefault(anchor.line, []).append(text)
    return [(line, "→ " + "; ".join(texts)) for line, texts in sorted(by_line.items())]


def op_names(state: DocState | None) -> list[tuple[str, str]]:
    """(name, detail) of every op a node may use: the spec's blocks (its own and imported) and the library."""
    out: list[tuple[str, str]] = []
    blocks = state.source.data.get("blocks") if state and state.source else None
    if isinstance(blocks, LocDict):
        out += [(name, f"block ({blocks.key_locs[name]})") for name in blocks]
    out += [(name, library.get(name).doc.split(":", 1)[-1].strip()) for name in library.names()]
    return out


def scope_names(state: DocState, line: int) -> list[str]:
    """Names an `in:` on this line may read: the innermost scope written around it (else the last
    one above it)."""
    spans = []
    for body in state.bodies:
        lines = [loc.line for loc in body.names.values() if state.here(loc)]
        if lines and min(lines) <= line:
            spans.append((min(lines), max(lines), body))
    inside = [s for s in spans if line <= s[1] + 1]
    pick = max(inside, key=lambda s: s[0]) if inside else max(spans, key=lambda s: s[1], default=None)
    return ["input"] if pick is None else [*pick[2].names, *pick[2].inputs]


def definition(state: DocState, kind: str, site: Site | None, detail: Any) -> Loc | Path | None:
    """Where a block used as an op, a name read by `in:`, or an extends/imports file is defined."""
    if kind == "op" and isinstance(detail, str):
        return state.block_defs.get(detail)
    if kind == "ref" and site is not None and isinstance(detail, str):
        return site.body.names.get(re.sub(r"\[\d+\]$", "", detail))
    if kind == "file" and isinstance(detail, Path):
        return detail
    return None


# -- values: `${...}`, params, block arguments ----------------------------------------------------
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


def value_at(state: DocState, line: int, col: int) -> Value | None:
    """The `${...}`, param or block argument written at a position."""
    for v in state.values:
        if v.loc.line == line:
            start, end = state.span(v.loc)
            if start <= col < end:
                return v
    return None


def _env(state: DocState) -> dict[str, Any] | None:
    return dict(state.analysis.graph.params) if state.analysis is not None else None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


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


def _decl_text(decl: Any) -> str:
    if isinstance(decl, dict):
        default = f", default `{_show(decl['default'])}`" if "default" in decl else " (required)"
        return f"{decl.get('type', 'any')}{default}"
    return f"{decl} (required)"


def _blocks(state: DocState) -> LocDict:
    blocks = state.source.data.get("blocks") if state.source is not None else None
    return blocks if isinstance(blocks, LocDict) else LocDict(Loc(state.display, 1, 1))


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


# -- completion of arguments and of names inside `${` ----------------------------------------------
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


def _lines_of(value: Any, state: DocState) -> tuple[int, int]:
    """First and last line of a loaded value written in this document."""
    lines = [loc.line for loc in _all_locs(value) if state.here(loc)]
    return (min(lines), max(lines)) if lines else (0, -1)


def _all_locs(value: Any) -> list[Loc]:
    out: list[Loc] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, LocDict):
            out += [v.loc, *v.key_locs.values(), *v.val_locs.values()]
            stack.extend(v.values())
        elif isinstance(v, list):
            out += list(getattr(v, "locs", []))
            stack.extend(v)
    return out


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
