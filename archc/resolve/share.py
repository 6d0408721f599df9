"""`share: TARGET`: a node or group that calls another's modules, so that both use one set of weights.

TARGET is a path relative to the sharing node's scope (`enc_a`, `enc_a.conv1`; at the top level, a model
path). A single node shares the node at TARGET; a group or block instance shares, node by node, every
node with weights (module and parameter ops) at the same path below TARGET. Each pair must have the same
op and arguments, and the widths flowing in must give the same parameter count (the module is built
once, for the target); anything else is a located error at the `share:` value. The sharing node keeps
its own path in the graph (its own shapes, MACs, place in diagrams) but owns no parameters:
`Node.shares` names the node whose module it calls, after following chains (a shares b, b shares c).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from archc import blocks as library
from archc.errors import ArchcError, Loc, ResolveError, get_close_matches, raise_together
from archc.ir import Node

if TYPE_CHECKING:
    from archc.resolve.expand import Expander, ShareRequest

__all__ = ["link_shares", "weighted"]


def weighted(node: Node) -> bool:
    """Whether the node owns a module or a parameter that `share:` can reuse."""
    return library.get(node.op).kind in ("module", "parameter")


def _under(nodes: list[Node], path: str) -> dict[str, Node]:
    """The nodes at ``path`` ('' for the node itself) or below it, by their path relative to it."""
    out = {}
    for n in nodes:
        if n.path == path:
            out[""] = n
        elif n.path.startswith(path + "."):
            out[n.path[len(path) + 1:]] = n
    return out


def _pairs(req: ShareRequest, nodes: list[Node]) -> list[tuple[str, str]]:
    """(sharing node, target node) for every weighted node under the request's path."""
    scope = req.path.rpartition(".")[0]
    target = f"{scope}.{req.target}" if scope else req.target
    if target == req.path or target.startswith(req.path + ".") or req.path.startswith(target + "."):
        raise ResolveError(f"'{req.path}' cannot share the weights of '{target}': one contains the other", req.loc,
                           node=req.path, hint="name a sibling node or group (a path relative to this one's scope)")
    mine, theirs = _under(nodes, req.path), _under(nodes, target)
    if not theirs:
        known = sorted({n.path for n in nodes if n.path.startswith(scope + ".") or not scope})
        rel = [p[len(scope) + 1:] if scope else p for p in known]
        close = get_close_matches(req.target, rel, 1)
        raise ResolveError(f"'{req.path}' shares the weights of '{target}', but no node or group is there", req.loc,
                           node=req.path, hint=f"did you mean '{close[0]}'?" if close else
                           "`share:` names a node or group by its path relative to this node's scope "
                           "(a skipped node has no weights)")
    mine = {k: n for k, n in mine.items() if weighted(n)}
    theirs = {k: n for k, n in theirs.items() if weighted(n)}
    if not mine:
        raise ResolveError(f"'{req.path}' has no weights to share", req.loc, node=req.path,
                           hint="`share:` applies to nodes with parameters or buffers (conv2d, linear, batchnorm2d, "
                                "parameter, ...) or to a group of them")
    missing = sorted(set(mine) ^ set(theirs))
    if missing:
        k = missing[0]
        here, there = (f"{req.path}.{k}" if k else req.path), (f"{target}.{k}" if k else target)
        what = f"'{here}' ({mine[k].op}) has no counterpart '{there}'" if k in mine else \
            f"'{there}' ({theirs[k].op}) has no counterpart '{here}'"
        raise ResolveError(f"'{req.path}' cannot share the weights of '{target}': {what}", req.loc, node=req.path,
                           hint="a shared group needs the same layers (modules and parameters) at the same paths")
    for k, n in mine.items():
        other = theirs[k]
        if n.op != other.op or dict(n.args) != dict(other.args):
            raise ResolveError(f"'{n.path}' cannot share the weights of '{other.path}': {_difference(n, other)}",
                               req.loc, node=n.path, hint="shared weights need the same op and the same arguments")
    return [(n.path, theirs[k].path) for k, n in mine.items()]


def _difference(a: Node, b: Node) -> str:
    if a.op != b.op:
        return f"it is {a.op}, the other {b.op}"
    diff = [k for k in a.args if a.args.get(k) != b.args.get(k)]
    k = diff[0]
    return f"{k} is {a.args[k]!r} here, {b.args.get(k)!r} there"


def _root(path: str, links: dict[str, tuple[str, Loc | None]]) -> str:
    seen = [path]
    while path in links:
        path = links[path][0]
        if path in seen:
            raise ResolveError(f"`share:` goes round in a circle: {' -> '.join([*seen, path])}", links[seen[0]][1],
                               node=seen[0], hint="one node of the circle must own its weights")
        seen.append(path)
    return path


def link_shares(ex: Expander, nodes: list[Node]) -> list[Node]:
    """The nodes with ``shares`` set from the spec's `share:` requests (checked as described above)."""
    if not ex.shares:
        return nodes
    links: dict[str, tuple[str, Loc | None]] = {}
    errors: list[ArchcError] = []
    for req in ex.shares:
        try:
            for mine, theirs in _pairs(req, nodes):
                if mine in links and links[mine][0] != theirs:
                    raise ResolveError(f"'{mine}' would share two nodes' weights ('{links[mine][0]}' and "
                                       f"'{theirs}')", req.loc, node=mine,
                                       hint="a node uses one set of weights: drop one of the `share:`s")
                links[mine] = (theirs, req.loc)
        except ArchcError as e:
            errors.append(e)
    out = []
    for n in nodes:
        if n.path not in links or errors:
            out.append(n)
            continue
        try:
            root = _root(n.path, links)
            _same_width(ex, n, root, links[n.path][1])
            out.append(replace(n, shares=root))
        except ArchcError as e:
            errors.append(e)
    raise_together(errors)
    return out


def _same_width(ex: Expander, node: Node, root: str, loc: Loc | None) -> None:
    """The module is built once, for ``root``: refuse a node whose inputs would give it another size."""
    mine, theirs = _params(ex, node.path), _params(ex, root)
    if mine is not None and theirs is not None and mine != theirs:
        raise ResolveError(f"'{node.path}' cannot share the weights of '{root}': its inputs give it {mine:,} "
                           f"parameters against {theirs:,} there", loc, node=node.path,
                           hint="shared weights need inputs of the same width (the spatial size may differ)")


def _params(ex: Expander, path: str) -> int | None:
    """The node's parameter count for the inputs it gets (None when a shape is not known: the analysis
    reports why)."""
    pending = next(p for p in ex.pending if p.path == path)
    try:
        ins = [ex.shapes.settled(ex, r) for r in pending.refs]
        known = [s for s in ins if s is not None]
        if len(known) < len(ins):
            return None
        return int(library.get(pending.op).count_params(pending.args, known))
    except ArchcError:
        return None
