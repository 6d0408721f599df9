"""split and chunk: one input, several outputs (read as `NAME[0]`, `NAME[1]`, ...).

Their `outputs` rules give a shape per output; the outputs are views of the input (tag
``alias``), as torch.split and torch.chunk return views.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Strides
from archc.blocks.registry import register
from archc.blocks.reshape import _axis
from archc.errors import ShapeError

Shapes = tuple[Shape, ...]


def _pieces(shape: Shape, axis: int, sizes: Sequence[int]) -> Shapes:
    return tuple((*shape[:axis], n, *shape[axis + 1:]) for n in sizes)


def split_shape(args: Args, ins: Sequence[Shape]) -> Shapes:
    s, sizes = ins[0], list(args["sizes"])
    a = _axis(args["dim"], len(s), "dim")
    if len(sizes) < 2:
        raise ShapeError(f"split needs at least 2 sizes, got {sizes}", hint="to keep the whole tensor use identity")
    if sum(sizes) != s[a]:
        raise ShapeError(f"split sizes {sizes} add up to {sum(sizes)}, but dim {args['dim']} of {s} has size {s[a]}",
                         hint=f"make the sizes add up to {s[a]}")
    return _pieces(s, a, sizes)


def chunk_sizes(n: int, chunks: int) -> list[int]:
    """torch.chunk's pieces: ceil(n / chunks) each, the last smaller; possibly fewer than `chunks`."""
    step = -(-n // chunks)
    return [min(step, n - start) for start in range(0, n, step)]


def chunk_shape(args: Args, ins: Sequence[Shape]) -> Shapes:
    s = ins[0]
    a = _axis(args["dim"], len(s), "dim")
    sizes = chunk_sizes(s[a], args["chunks"])
    if len(sizes) != args["chunks"]:
        raise ShapeError(f"chunk: size {s[a]} of dim {args['dim']} gives {len(sizes)} chunks {sizes}, "
                         f"not {args['chunks']}", hint="use `split` with explicit sizes, or a divisible size")
    return _pieces(s, a, sizes)


def _fn(name: str) -> Any:
    def function(args: Args) -> tuple[Any, dict[str, Any]]:
        import torch

        if name == "split":
            return torch.split, {"split_size_or_sections": list(args["sizes"]), "dim": args["dim"]}
        return torch.chunk, {"chunks": args["chunks"], "dim": args["dim"]}

    return function


_TAGS = frozenset({"alias", "view"})


def _parts_view(args: Args, strides: Strides, sizes: Shape, out: Shape) -> Strides:
    return strides  # each part is a view with its input's strides (fact read by analyze/memory.py)


register(Block("split", "split: cut dim into pieces of the given sizes; outputs NAME[0], NAME[1], ... "
               "(torch.split).", {"sizes": Param("ints", min=1), "dim": Param("int", 1)},
               lambda a, s: split_shape(a, s)[0], outputs=split_shape, kind="function", function=_fn("split"),
               category="layout", tags=_TAGS, view=_parts_view))
register(Block("chunk", "chunk: cut dim into `chunks` equal pieces; outputs NAME[0], NAME[1], ... (torch.chunk).",
               {"chunks": Param("int", min=2), "dim": Param("int", 1)}, lambda a, s: chunk_shape(a, s)[0],
               outputs=chunk_shape, kind="function", function=_fn("chunk"), category="layout", tags=_TAGS,
               view=_parts_view))
