"""A wrong input at run time, explained: the spec's input, what it expects, what came, and a hint.

Called only after the compiled forward has failed (``graph_module.ArchcModule``), so a forward that runs
pays nothing and every size the layers accept keeps working. The input is compared with the spec's: its
rank (the batch plus the spec's dims), then each size the spec writes as a number (a symbolic size such as
``H`` takes any value). No difference found: torch's own error stands.
"""

from __future__ import annotations

from typing import Any

import torch

from archc.errors import InputShapeError

__all__ = ["InputShapeError", "input_error"]


def input_error(gm: Any, args: tuple[Any, ...], kwargs: dict[str, Any], cause: BaseException) -> InputShapeError | None:
    """The InputShapeError that explains ``cause``, or None when the inputs are what the spec takes."""
    graph = getattr(gm, "archc_graph", None)
    if graph is None:
        return None
    names = [n.target for n in gm.graph.nodes if n.op == "placeholder"]
    values = list(args) + [kwargs[n] for n in names[len(args):] if n in kwargs]
    symbols: dict[int, str] = graph.meta.get("symbols") or {}
    for k, ((name, shape), value) in enumerate(zip(graph.inputs, values)):
        problem = _problem(shape, value, symbols if k == 0 else {})
        if problem is not None:
            what, hint = problem
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            message = (f"{graph.name}: input '{name}' expects {_expected(shape, symbols if k == 0 else {})}, "
                       f"got {got}: {what}")
            return InputShapeError(message, graph.meta.get("input_loc"), node=name,
                                   hint=f"{hint} (torch said: {str(cause).splitlines()[0][:200]})")
    return None


def _expected(shape: tuple[Any, ...], symbols: dict[int, str]) -> str:
    dims = ["B", *(symbols.get(i, str(d)) for i, d in enumerate(shape))]
    return f"({', '.join(dims)})"


def _problem(shape: tuple[Any, ...], value: Any, symbols: dict[int, str]) -> tuple[str, str] | None:
    """(what differs, a hint), or None when ``value`` has the spec's shape."""
    if not isinstance(value, torch.Tensor):
        return "not a tensor", "pass a torch.Tensor batch"
    rank, sizes = 1 + len(shape), tuple(value.shape)
    if value.dim() != rank:
        if value.dim() == rank - 1:
            return (f"{value.dim()} dims, not {rank}: no batch dimension?",
                    "a single sample takes a batch dimension: x.unsqueeze(0)")
        return f"{value.dim()} dims, not {rank} (the batch, then {len(shape)})", \
            f"give a ({', '.join(['B', *map(str, shape)])}) tensor"
    for i, d in enumerate(shape):
        if i not in symbols and sizes[i + 1] != d:
            return _size(shape, sizes, i)
    return None


def _size(shape: tuple[Any, ...], sizes: tuple[int, ...], i: int) -> tuple[str, str]:
    got, want = sizes[i + 1], shape[i]
    if i == 0 and len(shape) == 3:  # (C, H, W)
        what = f"{got} channel{'s' if got != 1 else ''}, not {want}"
        if sizes[-1] == want:
            return what, "channels last? torch takes (B, C, H, W): x.permute(0, 3, 1, 2)"
        if got == 1 and want == 3:
            return what, "a greyscale batch: repeat its channel, x.expand(-1, 3, -1, -1), or compile the spec with " \
                "input_shape=[1, H, W]"
        return what, f"compile the spec with input_shape=[{got}, ...] to take {got}-channel inputs"
    fixed = "x".join(str(d) for d in shape[1:]) if len(shape) == 3 else str(want)
    return (f"dim {i + 1} is {got}, not {want}",
            f"the spec's input is written for {fixed}: resize the input, compile with input_shape=[...] at this "
            "size, or write the size as a symbol (input: [C, H, W]) to take any size that works")
