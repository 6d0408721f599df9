"""Memory from the graph alone: parameter bytes, inference peak (tensor liveness in execution
order) and the activations a training step keeps for backward, per batch size and dtype."""

from __future__ import annotations

from math import prod
from typing import Any

from archc.analyze.algebra import shape_key, smax
from archc.analyze.shapes import Analysis

__all__ = ["DTYPE_BYTES", "memory"]

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
# ops whose output is a view of (or written into) their input: no new storage
_VIEWS = {"flatten", "reshape", "permute", "transpose", "select", "unflatten", "identity", "split", "chunk"}
# in-place ops whose backward needs only their result (other in-place ops keep their input too)
_RESULT_ONLY = {"relu"}


def _allocates(analysis: Analysis, path: str) -> bool:
    node = analysis.info[path].node
    return node.op not in _VIEWS and not node.args.get("inplace", False)


def memory(analysis: Analysis, batch: int = 1, dtype: str = "fp32") -> dict[str, Any]:
    """Byte estimates; activations scale with ``batch``, parameters do not."""
    size = DTYPE_BYTES[dtype]
    graph = analysis.graph
    per_shape: dict[tuple[Any, ...], Any] = {}  # deep stacks repeat a few shapes (expressions are costly)

    def nbytes_of(shape: tuple[Any, ...]) -> Any:
        key = shape_key(shape)
        if key not in per_shape:
            per_shape[key] = prod(shape) * batch * size
        return per_shape[key]

    nbytes = {p: nbytes_of(s) for p, s in analysis.shapes.items()}
    kept = 0  # a training step runs every node, train-only branches included
    for node in graph.nodes:
        inplace_free = node.op in _RESULT_ONLY and node.args.get("inplace", False)
        if node.path in analysis.info and node.op not in _VIEWS and not inplace_free:
            kept += nbytes.get(node.path, 0)
    return {"batch": batch, "dtype": dtype, "param_bytes": analysis.params * size,
            "inference_peak_activation_bytes": _inference_peak(analysis, nbytes),
            "training_activation_bytes": kept + sum(nbytes[n] for n, _ in graph.inputs)}


def _inference_peak(analysis: Analysis, nbytes: dict[str, Any]) -> Any:
    """The most bytes live at once in the eval-mode forward (train-only nodes do not run)."""
    graph = analysis.graph
    skip = analysis.train_only
    nodes = [n for n in graph.nodes if n.path not in skip]
    readers: dict[str, int] = {}
    for node in nodes:
        for src in node.inputs:
            readers[src] = readers.get(src, 0) + 1
    live = {name: nbytes[name] for name, _ in graph.inputs}
    sums = [sum(live.values())]
    for node in nodes:
        if node.path not in analysis.info:
            continue
        if _allocates(analysis, node.path):
            live[node.path] = nbytes.get(node.path, 0)
        sums.append(sum(live.values()))
        for src in node.inputs:
            readers[src] -= 1
            if readers[src] == 0 and src not in graph.outputs:
                live.pop(src, None)
    return smax(*sums)  # with symbolic sizes, a max() of expressions
