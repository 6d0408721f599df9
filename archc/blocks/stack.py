"""stack: join inputs of equal shape along a new dim (torch.stack; default 1, before the first sample dim)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.registry import register
from archc.blocks.reshape import _axis
from archc.errors import ShapeError


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    for s in ins[1:]:
        if s != ins[0]:
            raise ShapeError(f"stack needs inputs of equal shape, got {', '.join(map(str, ins))}",
                             hint="`concat` joins inputs along an existing dim where only that dim differs")
    rank = len(ins[0]) + 1  # the result's sample rank
    d = args["dim"]
    if not 1 <= (d + rank + 1 if d < 0 else d) <= rank:
        raise ShapeError(f"dim {d} is out of range for stacking {rank - 1}-D samples "
                         f"(dims 1..{rank} of the result; 0 is the batch)")
    a = _axis(d, rank, "dim")
    return (*ins[0][:a], len(ins), *ins[0][a:])


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    import torch

    return torch.stack, {"dim": args["dim"]}


register(Block("stack", __doc__ or "", {"dim": Param("int", 1)}, shape, kind="function", function=function,
               arity=(2, None), category="merge", tags=frozenset({"list_input"})))
