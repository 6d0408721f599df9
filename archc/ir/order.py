"""Order nodes for execution with networkx, and report cycles at a node's location."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from archc.errors import ResolveError
from archc.ir.graph import Node

__all__ = ["to_digraph", "execution_order"]


def to_digraph(nodes: Iterable[Node], inputs: Iterable[str]) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(inputs)
    for n in nodes:
        g.add_node(n.path)
        g.add_edges_from((src, n.path) for src in n.inputs)
    return g


def execution_order(nodes: list[Node], inputs: list[str]) -> list[Node]:
    """Topological order, ties broken by spec order so that output is deterministic."""
    rank = {n.path: i for i, n in enumerate(nodes)}
    by_path = {n.path: n for n in nodes}
    g = to_digraph(nodes, inputs)
    try:
        order = list(nx.lexicographical_topological_sort(g, key=lambda p: rank.get(p, -1)))
    except nx.NetworkXUnfeasible:
        cycle = [u for u, _ in nx.find_cycle(g)]
        first = min(cycle, key=lambda p: rank[p])
        raise ResolveError(f"cycle: {' -> '.join(cycle + [cycle[0]])}", by_path[first].loc, node=first,
                           hint="a node cannot depend on its own output; check the `in:` names") from None
    return [by_path[p] for p in order if p in by_path]
