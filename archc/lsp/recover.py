"""Hover and inlay hints beside an error: the analysis of the spec with each node in error standing in.

A resolve error leaves no graph at all, and a shape error leaves every node after it unanalysed, so the
editor would show nothing anywhere in a file with one error. Here each node (or seq item) that holds an
error is swapped, in the loaded spec, for ``identity`` of its first input, and the spec is built and
analysed again (a few rounds, as new errors show up). The nodes before and beside the errors get their
exact shapes; the nodes downstream of a stand-in are marked as assumed (their input is what went into the
node in error). Diagnostics and lints always come from the real analysis, never from this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archc.analyze import Analysis
from archc.api import analyse_graph
from archc.errors import ArchcError, Loc
from archc.ir.refs import output_ref
from archc.load import LocDict
from archc.lsp.state import DocState, Site, _all_locs
from archc.resolve import Limits, build

__all__ = ["Recovered", "recover"]

ROUNDS = 3  # builds tried: each round may find the errors the stand-ins of the last one uncovered


@dataclass
class Recovered:
    analysis: Analysis
    stand_ins: set[Loc] = field(default_factory=set)  # spec_loc of the sites replaced
    assumed: set[str] = field(default_factory=set)  # node paths downstream of a stand-in


def _innermost(sites: list[Site], loc: Loc, locs: dict[int, set[Loc]]) -> Site | None:
    """The site whose node holds ``loc`` and starts last (nested nodes start after their parent)."""
    best: Site | None = None
    for site in sites:
        if site.holder is None or site.spec_loc.file != loc.file or site.spec_loc.line > loc.line:
            continue
        if id(site) not in locs:
            locs[id(site)] = {site.spec_loc, *_all_locs(site.spec)}
        if loc in locs[id(site)] and (best is None or (site.spec_loc.line, site.spec_loc.col) >
                                      (best.spec_loc.line, best.spec_loc.col)):
            best = site
    return best


def _stand_in(site: Site) -> Any:
    """``identity`` of the site's first input, where the site was written."""
    if isinstance(site.spec, str):
        return "identity"
    out = LocDict(site.spec.loc)
    out["op"], out.key_locs["op"], out.val_locs["op"] = "identity", site.spec.loc, site.op_loc or site.spec.loc
    if site.refs:
        ref, rloc = site.refs[0]
        out["in"], out.key_locs["in"], out.val_locs["in"] = ref, rloc, rloc
    return out


def _swap(site: Site, value: Any) -> Any:
    old = site.holder[site.key]
    site.holder[site.key] = value  # LocDict keeps the key's locations; LocList keeps the item's
    return old


def _assumed(analysis: Analysis, stand_in_locs: set[Loc]) -> set[str]:
    """Paths of the nodes that read (through any chain) a stand-in's output."""
    tainted = {n.path for n in analysis.graph.nodes if n.op == "identity" and n.loc in stand_in_locs}
    out: set[str] = set()
    for n in analysis.graph.nodes:  # in execution order: producers first
        if n.path not in tainted and any(output_ref(src)[0] in tainted for src in n.inputs):
            tainted.add(n.path)
            out.add(n.path)
    return out


def _sites_in_error(state: DocState, errors: list[ArchcError], locs: dict[int, set[Loc]]) -> list[Site]:
    found = (_innermost(state.sites, e.loc, locs) for e in errors if e.loc is not None)
    return list({id(s): s for s in found if s is not None}.values())


def recover(state: DocState, limits: Limits) -> Recovered | None:
    """The analysis with the nodes in error standing in, or None (an error outside any node, or no graph)."""
    if state.source is None or not state.errors:
        return None
    replaced: list[tuple[Site, Any]] = []
    locs: dict[int, set[Loc]] = {}
    errors, last = list(state.errors), None
    try:
        for _ in range(ROUNDS):
            fresh = [s for s in _sites_in_error(state, errors, locs) if all(s is not r for r, _ in replaced)]
            if not fresh:
                break
            replaced += [(s, _swap(s, _stand_in(s))) for s in fresh]
            try:
                last = analyse_graph(build(state.source, limits=limits), limits)
                errors = list(last.errors)  # shape errors downstream: stand those in too, next round
            except ArchcError as e:
                last, errors = None, [e, *e.others]
        if last is None:
            return None
        op_locs = {s.op_loc or s.spec_loc for s, _ in replaced}
        return Recovered(last, {s.spec_loc for s, _ in replaced}, _assumed(last, op_locs))
    finally:
        for site, old in reversed(replaced):
            _swap(site, old)
