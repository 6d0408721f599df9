"""Order nodes for execution (spec order among the ready ones), and report cycles at a node's location."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import TYPE_CHECKING

from archc.errors import ResolveError
from archc.ir.graph import Node
from archc.ir.refs import output_ref

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["to_digraph", "execution_order"]


def to_digraph(nodes: Iterable[Node], inputs: Iterable[str]) -> nx.DiGraph:
    import networkx as nx  # only for a cycle: importing it costs more than a whole `archc check`

    g = nx.DiGraph()
    g.add_nodes_from(inputs)
    for n in nodes:
        g.add_node(n.path)
        g.add_edges_from((output_ref(src)[0], n.path) for src in n.inputs)
    return g


def execution_order(nodes: list[Node], inputs: list[str]) -> list[Node]:
    """Topological order, ties broken by spec order so that output is deterministic (the smallest
    spec index among the ready nodes runs first: networkx's lexicographical topological sort, done
    with a heap here because it runs on every resolve). A cycle is found and located with networkx."""
    rank = {n.path: i for i, n in enumerate(nodes)}
    if len(rank) == len(nodes) and _in_spec_order(nodes, rank):  # what a spec usually is: then that order is the answer
        return list(nodes)
    waiting = {n.path: 0 for n in nodes}
    readers: dict[str, list[str]] = {}
    for n in nodes:
        for src in dict.fromkeys(output_ref(s)[0] for s in n.inputs):  # NAME[K] waits for NAME
            if src in rank:  # graph inputs are ready from the start
                waiting[n.path] += 1
                readers.setdefault(src, []).append(n.path)
    ready = [(rank[p], p) for p, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, path = heapq.heappop(ready)
        order.append(path)
        for reader in readers.get(path, ()):
            waiting[reader] -= 1
            if waiting[reader] == 0:
                heapq.heappush(ready, (rank[reader], reader))
    if len(order) < len(nodes):
        _raise_cycle(nodes, inputs, rank)
    by_path = {n.path: n for n in nodes}
    return [by_path[p] for p in order]


def _in_spec_order(nodes: list[Node], rank: dict[str, int]) -> bool:
    """Whether every node reads only graph inputs and nodes before it (``NAME[K]`` as NAME). Then the smallest
    spec index among the ready nodes is always the next one, so the heap would give the spec order."""
    for i, n in enumerate(nodes):
        for src in n.inputs:
            if rank.get(src, -1) >= i or (src not in rank and rank.get(output_ref(src)[0], -1) >= i):
                return False
    return True


def _raise_cycle(nodes: list[Node], inputs: list[str], rank: dict[str, int]) -> None:
    import networkx as nx

    g = to_digraph(nodes, inputs)
    cycle = [u for u, _ in nx.find_cycle(g)]
    first = min(cycle, key=lambda p: rank.get(p, -1))
    raise ResolveError(f"cycle: {' -> '.join(cycle + [cycle[0]])}", next(n.loc for n in nodes if n.path == first),
                       node=first, hint="a node cannot depend on its own output; check the `in:` names")
