"""matmul: batched matrix product (..., n, k) @ (..., k, m) -> (..., n, m) (torch.matmul).

Both samples need at least 2 dims (with the batch in front, a 1-D sample would be multiplied across
the batch) and the same rank; the leading dims broadcast like `add`. MACs: n * m * k per leading
index, as torch.utils.flop_counter counts (FLOPs / 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

from archc.blocks.base import Args, Block, Shape, common_size
from archc.blocks.merge import broadcast
from archc.blocks.registry import register
from archc.errors import ShapeError


def leading(ins: Sequence[Shape], core: int, what: str, count: int) -> Shape:
    """Broadcast the dims in front of the last ``core`` ones of ``count`` inputs (equal ranks required)."""
    if len(ins) != count:  # resolve checks the arity first; this guards direct calls of the rule
        raise ShapeError(f"{what} takes {count} inputs, got {len(ins)}")
    for s in ins:
        if len(s) < core:
            raise ShapeError(f"{what} needs samples of at least {core} dims, got {s}",
                             hint="shapes here leave out the batch; add a dim with `unflatten` or `reshape`")
    if len({len(s) for s in ins}) > 1:
        broadcast({}, ins)  # refuses different ranks, with its hint
    out = []
    for i in range(len(ins[0]) - core):
        size = common_size([s[i] for s in ins])
        if size is None:
            raise ShapeError(f"{what}: leading dims of {' and '.join(map(str, ins))} do not broadcast (dim {i + 1})")
        out.append(size)
    return tuple(out)


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    lead = leading(ins, 2, "matmul", 2)
    a, b = ins
    if a[-1] != b[-2]:
        hint = ("for a @ b^T (e.g. queries by keys) transpose the second input first: "
                "{op: transpose, dim0: -2, dim1: -1}" if a[-1] == b[-1] else
                "the first input's last dim must equal the second's next-to-last")
        raise ShapeError(f"matmul of {a} and {b}: inner sizes differ ({a[-1]} vs {b[-2]})", hint=hint)
    return (*lead, a[-2], b[-1])


def macs(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return prod(out) * ins[0][-1]


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    import torch

    return torch.matmul, {}


register(Block("matmul", "matmul: batched matrix product (..., n, k) @ (..., k, m) -> (..., n, m) (torch.matmul).",
               {}, shape, kind="function", function=function, macs=macs, arity=(2, 2),
               window=lambda a, s, o: None, category="attn"))
