"""In-place safety: an op that writes into its input must be the only reader of that storage.

Views (flatten, permute, ...), pass-through ops (identity, dropout, stochastic depth) and in-place
ops return their first input or a view of it: they share its storage. An in-place write into one
member of such a family is visible through every other member, so every other reader of the
family would see the overwritten values, and a producer whose backward uses its own output
(sigmoid, tanh, relu, in-place leaky_relu: tags ``keeps_output``, ``keeps_output_inplace``) would fail in backward.
"""

from __future__ import annotations

from archc import blocks as library
from archc.errors import ArchcError, SpecError
from archc.ir import Graph, Node
from archc.ir.refs import output_ref

__all__ = ["shares_input", "storage_parents", "check_inplace"]


def shares_input(node: Node) -> bool:
    """Whether the node's output may be its first input itself, or a view of it."""
    if not node.inputs or not library.is_registered(node.op):
        return False
    return "alias" in library.get(node.op).tags or bool(node.args.get("inplace"))


def _producers(graph: Graph) -> list[str]:
    """Every value in execution order: graph inputs, nodes, and the outputs `NAME[K]` read of a
    multi-output node (right after it)."""
    read: dict[str, list[str]] = {}
    for src in (*(s for n in graph.nodes for s in n.inputs), *graph.outputs, *graph.train_outputs):
        base, k = output_ref(src)
        if k is not None and src not in read.setdefault(base, []):
            read[base].append(src)
    return [*(n for n, _ in graph.inputs), *(p for n in graph.nodes for p in (n.path, *read.get(n.path, [])))]


def storage_parents(graph: Graph) -> dict[str, str]:
    """For each value that shares its producer's first input's storage, that input."""
    parents = {n.path: n.inputs[0] for n in graph.nodes if shares_input(n)}
    for p in _producers(graph):
        base, k = output_ref(p)
        if k is not None and base in parents:
            parents[p] = parents[base]  # split/chunk outputs are views of the input
    return parents


def _chain(path: str, parents: dict[str, str]) -> list[str]:
    """The node and every producer its storage comes from, nearest first."""
    chain = [path]
    while chain[-1] in parents:
        chain.append(parents[chain[-1]])
    return chain


def _families(graph: Graph, parents: dict[str, str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Each producer's storage root, and each root's members (graph inputs and nodes)."""
    roots: dict[str, str] = {}
    families: dict[str, list[str]] = {}
    for path in _producers(graph):
        root = roots.get(parents[path], parents[path]) if path in parents else path
        roots[path] = root
        families.setdefault(root, []).append(path)
    return roots, families


def _keeps_output(node: Node) -> bool:
    """Whether autograd saves this node's output for its backward pass (measured per op in torch)."""
    if not library.is_registered(node.op):
        return False
    tags = library.get(node.op).tags
    return "keeps_output" in tags or ("keeps_output_inplace" in tags and bool(node.args.get("inplace")))


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
        elif member in nodes and _keeps_output(graph.node(member)):
            seen.append(f"the backward pass of '{member}' ({graph.node(member).op} keeps its output)")
        for reader in readers.get(member, []):
            via_view = parents.get(reader) == member and member not in graph.node(reader).inputs[1:]
            if reader != node.path and not via_view:
                seen.append(reader)
    return sorted(set(seen), key=seen.index)


def check_inplace(graph: Graph, errors: list[ArchcError]) -> None:
    """Refuse, located, every `inplace: true` that would corrupt a value something else still reads."""
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
