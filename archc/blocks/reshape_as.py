"""reshape_as: view input 0 with input 1's shape (torch.Tensor.reshape_as; the batch kept), e.g. attention
heads (h, d, H*W) back to the (C, H, W) map they came from, at any input size."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

from archc.blocks.base import Args, Block, Shape
from archc.blocks.registry import register
from archc.errors import ShapeError


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if len(ins) != 2:  # resolve checks the arity first; this guards direct calls of the rule
        raise ShapeError(f"takes 2 inputs, got {len(ins)}")
    if prod(ins[0]) != prod(ins[1]):
        raise ShapeError(f"cannot reshape {ins[0]} ({prod(ins[0])} values) as {ins[1]} ({prod(ins[1])} values)",
                         hint="input 1 only gives the shape: it must hold as many values per sample as input 0")
    return tuple(ins[1])


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    from archc.blocks.nn.modules import reshape_as

    return reshape_as, {}


register(Block("reshape_as", "reshape_as: view input 0 with input 1's shape, the batch kept (torch.Tensor.reshape_as).",
               {}, shape, kind="function", function=function, arity=(2, 2), category="layout",
               tags=frozenset({"alias", "view"})))  # a view of input 0 where torch can
