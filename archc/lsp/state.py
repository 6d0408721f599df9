"""The document state: what one analysis of one version holds, and the helpers every answer shares."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archc.analyze import Analysis, NodeInfo
from archc.analyze.lint import LintWarning
from archc.errors import ArchcError, Loc
from archc.ir import Group, Node
from archc.load import LocDict
from archc.resolve.spec import SpecSource

__all__ = ["is_spec", "token_end", "Site", "Body", "Value", "DocState"]


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
    links: list[tuple[str, str, Loc]] = field(default_factory=list)  # (share|after|else, name written, where)
    inner: Body | None = None  # the scope of a group's `nodes:`/`seq:`
    spec: Any = None  # the node as loaded, and where it is held (holder[key]): recovery swaps it out
    holder: Any = None
    key: Any = None



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
    block_bodies: dict[str, Body] = field(default_factory=dict)  # a spec block's scope (written in this document)
    file_refs: list[tuple[Loc, str, Path]] = field(default_factory=list)  # extends/imports values -> file
    values: list[Value] = field(default_factory=list)  # `${...}` values, params and block arguments written here
    bases: dict[Path, bytes] | None = None  # the bytes of each extended/imported file read (None: not reusable)
    # With errors, ``analysis`` is the recovered one (recover.py): the nodes in error stand for their input
    stand_ins: set[Loc] = field(default_factory=set)  # spec_loc of each site standing in
    assumed: set[str] = field(default_factory=set)  # node paths downstream of a stand-in (shapes assumed)

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


def _env(state: DocState) -> dict[str, Any] | None:
    return dict(state.analysis.graph.params) if state.analysis is not None else None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _decl_text(decl: Any) -> str:
    if isinstance(decl, dict):
        default = f", default `{_show(decl['default'])}`" if "default" in decl else " (required)"
        return f"{decl.get('type', 'any')}{default}"
    return f"{decl} (required)"


def _blocks(state: DocState) -> LocDict:
    blocks = state.source.data.get("blocks") if state.source is not None else None
    return blocks if isinstance(blocks, LocDict) else LocDict(Loc(state.display, 1, 1))


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
