"""buffer: a non-learned tensor computed when the model is built and kept in the state_dict under the
node's own path (a persistent buffer, as torchvision keeps Swin's and MaxViT's tables).

`table` says what it holds, from `window` (wh, ww) alone:
- `relative_position_index`: for every pair (i, j) of the wh*ww positions of a window (row-major), the row
  of a ((2wh - 1)(2ww - 1), heads) bias table holding their offset, (dy + wh - 1)(2ww - 1) + dx + ww - 1
  (int64). `flatten: true` stores it as (N*N,) (Swin), false as (N, N) (MaxViT); N = wh*ww.
- `relative_coords_table`: Swin V2's log-spaced offsets (2wh - 1, 2ww - 1, 2), (dy, dx) each divided by
  the window minus 1, times 8, then sign(t) * log2(|t| + 1) / 3 (float32; windows of at least 2).

`batch_dim: true` stores it as (1, *shape) (Swin V2's coords table), false as the shape itself. The node
returns one copy per sample (the input gives only the batch size; in-place ops never reach the buffer).
Its size is static: the element limit refuses an oversized table before anything is allocated. An index
is stored as int64 (as torchvision stores it) and flows in the input's floating dtype like every archc value
(float32 where that dtype would round it): `index_select` and `gather` read it back as int64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, pair
from archc.blocks.registry import register
from archc.errors import ShapeError

TABLES = ("relative_position_index", "relative_coords_table")
PARAMS = {
    "table": Param("str", choices=TABLES, doc="what the buffer holds (see `archc blocks`)"),
    "window": Param("int2", min=1, doc="the window (wh, ww) the table is for"),
    "flatten": Param("bool", True, doc="relative_position_index: (N*N,) (true) or (N, N) (false)"),
    "batch_dim": Param("bool", False, doc="stored as (1, *shape) (true) or as shape itself (false)"),
}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if args["table"] not in TABLES:
        raise ShapeError(f"buffer: no table {args['table']!r}", hint=f"one of {', '.join(TABLES)}")
    wh, ww = pair(args["window"])
    if args["table"] == "relative_coords_table":
        if min(wh, ww) < 2:
            raise ShapeError(f"relative_coords_table needs a window of at least 2, got {[wh, ww]}",
                             hint="its offsets are divided by the window minus 1 (Swin V2)")
        return (2 * wh - 1, 2 * ww - 1, 2)
    n = wh * ww
    return (n * n,) if args["flatten"] else (n, n)


def stored_shape(args: Args, ins: Sequence[Shape]) -> tuple[int, ...]:
    s = shape(args, ins)
    return (1, *s) if args["batch_dim"] else s


def build(args: Args, ins: Sequence[Shape]) -> Any:
    wh, ww = pair(args["window"])
    table = (_coords_table if args["table"] == "relative_coords_table" else _position_index)(wh, ww)
    return table.reshape(stored_shape(args, ins))


def _position_index(wh: int, ww: int) -> Any:
    import torch

    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)  # (2, N)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (N, N, 2): dy, dx
    return (rel[..., 0] + wh - 1) * (2 * ww - 1) + rel[..., 1] + ww - 1


def _coords_table(wh: int, ww: int) -> Any:
    import torch

    dy = torch.arange(-(wh - 1), wh, dtype=torch.float32) / (wh - 1)
    dx = torch.arange(-(ww - 1), ww, dtype=torch.float32) / (ww - 1)
    t = torch.stack(torch.meshgrid(dy, dx, indexing="ij"), dim=-1) * 8  # (2wh - 1, 2ww - 1, 2), in [-8, 8]
    return torch.sign(t) * torch.log2(torch.abs(t) + 1.0) / 3.0


def per_sample(x: Any, buf: Any, batch_dim: bool = False, largest: int = 0) -> Any:
    """The buffer once per sample of x (a fresh copy; self-contained: export copies it), in x's floating dtype
    as archc's values are; an index table whose `largest` value that dtype would round (bf16 past 256) goes
    to float32 (exact up to 2^24). Decided from Python numbers only, so torch.jit.trace follows it."""
    import torch

    b = buf if batch_dim else buf.unsqueeze(0)
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    if largest > 2 / torch.finfo(dtype).eps:
        dtype = torch.float32
    return b.expand(x.shape[0], *b.shape[1:]).to(dtype, copy=True)


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    wh, ww = pair(args["window"])
    largest = (2 * wh - 1) * (2 * ww - 1) - 1 if args["table"] == "relative_position_index" else 0
    return per_sample, {"batch_dim": args["batch_dim"], "largest": largest}


register(Block("buffer", "buffer: a constant table computed at build time from `window` and kept in the state_dict "
               "under the node's path (`table`: relative_position_index (int64), Swin V2's relative_coords_table); "
               "returned per sample.", PARAMS, shape, kind="buffer", build=build, function=function,
               category="constant"))
