"""expand, repeat_tensor and tile: a sample's dims stretched or repeated (the batch is never touched).

- `expand(sizes)`: torch.Tensor.expand on the per-sample dims (one size per dim, -1 keeps it; only a
  size-1 dim grows). The result is materialised (torch.expand_copy): in-place ops after it write into a
  tensor of its own, never through a stride-0 view.
- `repeat_tensor(repeats)`: torch.Tensor.repeat with one count per sample dim (named so that it does
  not read as the node key `repeat:`, which stacks a node N times).
- `tile(dims)`: torch.tile; fewer counts than dims count from the last dim (the others 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.registry import register
from archc.errors import ShapeError


def expand_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    s, sizes = ins[0], list(args["sizes"])
    if len(sizes) != len(s):
        raise ShapeError(f"expand needs one size per dim of the {len(s)}-D sample {s}, got {sizes}",
                         hint="-1 keeps a dim; add size-1 dims first with `unflatten` or `reshape`")
    out = []
    for i, (n, k) in enumerate(zip(s, sizes)):
        if k == 0:
            raise ShapeError(f"expand: size 0 for dim {i + 1} makes the output empty", hint="-1 keeps the size")
        if k == -1 or k == n:
            out.append(n)
        elif n == 1:
            out.append(k)
        else:
            raise ShapeError(f"expand: dim {i + 1} has size {n}, which cannot become {k}",
                             hint="only a size-1 dim expands (-1 keeps the size); `repeat_tensor` or `tile` "
                                  "repeat a larger one")
    return tuple(out)


def expand_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    import torch

    return torch.expand_copy, {"size": (-1, *args["sizes"])}


def repeat_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    s, reps = ins[0], list(args["repeats"])
    if len(reps) != len(s):
        raise ShapeError(f"repeat_tensor needs one count per dim of the {len(s)}-D sample {s}, got {reps}",
                         hint="the batch is not repeated; `tile` takes fewer counts (from the last dim)")
    return tuple(n * r for n, r in zip(s, reps))


def tile_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    s, reps = ins[0], list(args["dims"])
    if len(reps) > len(s):
        raise ShapeError(f"tile: {len(reps)} counts for a {len(s)}-D sample {s} would tile the batch",
                         hint=f"give at most {len(s)} counts (they align with the last dims)")
    reps = [1] * (len(s) - len(reps)) + reps
    return tuple(n * r for n, r in zip(s, reps))


def repeat_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    import torch

    return torch.tile, {"dims": (1, *args["repeats"])}


def tile_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    import torch

    return torch.tile, {"dims": tuple(args["dims"])}


register(Block("expand", "expand: grow size-1 dims to `sizes` (one per dim, -1 keeps; torch.Tensor.expand, "
               "materialised).", {"sizes": Param("ints", min=-1)}, expand_shape, kind="function",
               function=expand_fn, category="layout"))
register(Block("repeat_tensor", "repeat_tensor: repeat each dim `repeats` times (torch.Tensor.repeat, one count per "
               "sample dim).", {"repeats": Param("ints", min=1)}, repeat_shape, kind="function", function=repeat_fn,
               category="layout"))
register(Block("tile", "tile: repeat the last len(dims) dims `dims` times (torch.tile; the batch never).",
               {"dims": Param("ints", min=1)}, tile_shape, kind="function", function=tile_fn, category="layout"))
