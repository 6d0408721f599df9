"""Storage sharing, the one aliasing model: in-place safety here, memory liveness in memory.py.

The facts come from the blocks' tags (blocks/README.md): ``alias`` ops may return their first
input itself or a view of it (``view``: a view, unless flatten or reshape must copy;
``pass_through``: the input itself in the eval forward), and an ``inplace: true`` node writes into
its first input. Every such node may share its first input's storage. An in-place write into one
member of such a family is visible through every other member, so every other reader of the family
would see the overwritten values, and a producer whose backward uses its own output (sigmoid, tanh,
relu, in-place leaky_relu: tags ``keeps_output``, ``keeps_output_inplace``) would fail in backward.

The compiled model also runs some residual adds in place (``adds_in_place``), as torchvision's
``out += identity`` does; memory.py counts them as sharing too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from archc import blocks as library
from archc.errors import ArchcError, SpecError
from archc.ir import Graph, Node
from archc.ir.algebra import shape_key
from archc.ir.refs import output_ref

__all__ = ["tags_of", "shares_input", "keeps_output", "adds_in_place", "storage_parents", "check_inplace"]


def tags_of(op: str) -> frozenset[str]:
    """The block's tags (none for an unknown op)."""
    return library.get(op).tags if library.is_registered(op) else frozenset()


def shares_input(node: Node) -> bool:
    """Whether the node's output may be its first input itself, or a view of it."""
    if not node.inputs:
        return False
    return "alias" in tags_of(node.op) or bool(node.args.get("inplace"))


def keeps_output(node: Node) -> bool:
    """Whether autograd saves this node's output for its backward pass (measured per op in torch)."""
    tags = tags_of(node.op)
    return "keeps_output" in tags or ("keeps_output_inplace" in tags and bool(node.args.get("inplace")))


def _fresh(node: Node) -> bool:
    """A new tensor that autograd does not keep: safe to add into in place."""
    if not library.is_registered(node.op) or library.get(node.op).outputs is not None:
        return False
    return not shares_input(node) and not keeps_output(node)


def adds_in_place(graph: Graph, shapes: Mapping[str, Any]) -> frozenset[str]:
    """The two-input adds the compiled model runs as ``a += b`` (builder.py): the first input has the
    result's shape and nothing else reads it, through ``pass_through`` nodes that keep the shape
    (identity, dropout), back to a producer whose output is new and not kept for backward."""
    readers, skip = graph.consumers(), graph.train_only()
    held = {*graph.outputs, *graph.train_outputs}
    nodes = {n.path: n for n in graph.nodes}
    found = set()
    for node in graph.nodes:
        if node.op != "add" or len(node.inputs) != 2 or node.path in skip or node.path not in shapes:
            continue
        src = node.inputs[0]
        if shape_key(shapes.get(src, ())) != shape_key(shapes[node.path]):
            continue  # broadcasting: the first input is smaller than the result
        while src not in held and len(readers.get(src, [])) == 1 and src in nodes and src in shapes:
            producer = nodes[src]
            if _fresh(producer):
                found.add(node.path)
                break
            same = bool(producer.inputs) and shape_key(shapes.get(producer.inputs[0], ())) == shape_key(shapes[src])
            if not ("pass_through" in tags_of(producer.op) and same and not producer.args.get("inplace")):
                break
            src = producer.inputs[0]
    return frozenset(found)


def _producers(graph: Graph) -> list[str]:
    """Every value in execution order: graph inputs, nodes, and the outputs `NAME[K]` read of a
    multi-output node (right after it)."""
    read: dict[str, list[str]] = {}
    for src in (*(s for n in graph.nodes for s in n.inputs), *graph.outputs, *graph.train_outputs):
        base, k = output_ref(src)
        if k is not None and src not in read.setdefault(base, []):
            read[base].append(src)
    return [*(n for n, _ in graph.inputs), *(p for n in graph.nodes for p in (n.path, *read.get(n.path, [])))]


def storage_parents(graph: Graph, shares: Callable[[Node], bool] = shares_input) -> dict[str, str]:
    """For each value that shares its producer's first input's storage, that input. ``shares``
    says which nodes do (default: those that may, for the in-place check; memory.py passes what the
    eval forward does)."""
    parents = {n.path: n.inputs[0] for n in graph.nodes if n.inputs and shares(n)}
    for p in _producers(graph):
        base, k = output_ref(p)
        if k is not None and base in parents:
            parents[p] = parents[base]  # split/chunk outputs are views of the input
    return parents


def storage_roots(graph: Graph, parents: dict[str, str]) -> dict[str, str]:
    """Each value's storage root: the graph input or node whose allocation it shares."""
    roots: dict[str, str] = {}
    for path in _producers(graph):
        roots[path] = roots.get(parents[path], parents[path]) if path in parents else path
    return roots


def _chain(path: str, parents: dict[str, str]) -> list[str]:
    """The node and every producer its storage comes from, nearest first."""
    chain = [path]
    while chain[-1] in parents:
        chain.append(parents[chain[-1]])
    return chain


def _families(graph: Graph, parents: dict[str, str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Each producer's storage root, and each root's members (graph inputs and nodes)."""
    roots = storage_roots(graph, parents)
    families: dict[str, list[str]] = {}
    for path, root in roots.items():
        families.setdefault(root, []).append(path)
    return roots, families


def _conflicts(node: Node, graph: Graph, parents: dict[str, str], roots: dict[str, str],
               families: dict[str, list[str]], readers: dict[str, list[str]],
               inputs: set[str], nodes: set[str]) -> list[str]:
    """Who else sees the storage ``node`` writes into: other readers, the caller (inputs, outputs),
    and producers whose backward needs the value (torch would fail in backward)."""
    family = [m for m in families[roots[node.inputs[0]]]
              if m != node.path and node.path not in _chain(m, parents)]
    seen: list[str] = []
    for member in family:
        if member in inputs or member in graph.outputs or member in graph.train_outputs:
            seen.append("the caller")
        elif member in nodes and keeps_output(graph.node(member)):
            seen.append(f"the backward pass of '{member}' ({graph.node(member).op} keeps its output)")
        for reader in readers.get(member, []):
            via_view = parents.get(reader) == member and member not in graph.node(reader).inputs[1:]
            if reader != node.path and not via_view:
                seen.append(reader)
    return sorted(set(seen), key=seen.index)


def _plainly_safe(graph: Graph, writers: list[Node]) -> bool:
    """Whether no in-place write can conflict, decided in linear time: each writer is a one-output node whose
    storage chain (its first input, then that value's own storage parent while it shares one: a flatten or
    other view) is made of one-output nodes that only the next link reads, that no backward needs and that the
    caller never sees. Then the writer's family (``_families``) is that chain and what the writer's output
    feeds, and ``_conflicts`` finds nobody; ``check_inplace`` runs in full otherwise. The chains are followed
    one link of all of them at a time, the block facts looked up once per op, the reads counted only for the
    chains' values: a few comprehensions, no call per node."""
    held = {*graph.outputs, *graph.train_outputs, *(name for name, _ in graph.inputs)}
    index, facts = graph._index(), _Facts()
    if facts.add({w.op for w in writers}) & facts.multi:
        return False
    links, chained = [w.inputs[0] for w in writers], []
    while links:
        producers = [index[src] for src in links if src in index and src not in held]
        if len(producers) != len(links):
            return False
        chained += links
        facts.add({p.op for p in producers})  # below, keeps_output() and shares_input() without a call per node
        kept, kept_inplace, alias = facts.kept, facts.kept_inplace, facts.alias
        if [p for p in producers if p.op in kept or p.op in kept_inplace and "inplace" in p.args and p.args["inplace"]]:
            return False
        links = [p.inputs[0] for p in producers
                 if p.inputs and (p.op in alias or "inplace" in p.args and p.args["inplace"])]
    wanted = set(chained)  # each read at least once (by the next link): once each when the reads are as many
    return len([src for n in graph.nodes for src in n.inputs if src in wanted]) == len(wanted)


class _Facts:
    """What the in-place check reads of the blocks, as sets of ops, each op looked up once (``add``)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.multi: set[str] = set()  # several outputs
        self.kept: set[str] = set()  # autograd keeps the output (a multi-output node is no plain link either)
        self.kept_inplace: set[str] = set()  # ... when run in place
        self.alias: set[str] = set()  # may return its input or a view of it

    def add(self, ops: set[str]) -> set[str]:
        """Look up the ops not seen yet; ``ops`` back."""
        for op in ops - self.seen:
            tags = tags_of(op)
            if library.is_registered(op) and library.get(op).outputs is not None:
                self.multi.add(op)
                self.kept.add(op)
            for tag, into in (("keeps_output", self.kept), ("keeps_output_inplace", self.kept_inplace),
                              ("alias", self.alias)):
                if tag in tags:
                    into.add(op)
        self.seen |= ops
        return ops


def check_inplace(graph: Graph, errors: list[ArchcError]) -> None:
    """Refuse, located, every `inplace: true` that would corrupt a value something else still reads."""
    writers = [n for n in graph.nodes if "inplace" in n.args and n.args["inplace"] and n.inputs]  # no call per node
    if not writers or _plainly_safe(graph, writers):
        return
    parents, readers = storage_parents(graph), graph.consumers()
    roots, families = _families(graph, parents)
    inputs, nodes = {n for n, _ in graph.inputs}, {n.path for n in graph.nodes}  # once, not per node
    for node in graph.nodes:
        if not (node.args.get("inplace") and node.inputs) or node.inputs[0] not in roots:
            continue
        others = _conflicts(node, graph, parents, roots, families, readers, inputs, nodes)
        if others:
            src, root = node.inputs[0], roots[node.inputs[0]]
            shared = "" if src == root else f" (which shares storage with '{root}')"
            errors.append(SpecError(f"inplace=true would overwrite '{src}'{shared}, which is also read by "
                                    f"{', '.join(others)}", node.loc, node=node.path,
                                    hint="set inplace: false here"))
