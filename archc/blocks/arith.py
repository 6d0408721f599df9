"""sub and div: element-wise difference and quotient of exactly two inputs (broadcasting like `add`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Shape, elementwise
from archc.blocks.merge import broadcast
from archc.blocks.registry import register
from archc.errors import ShapeError


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if len(ins) != 2:  # resolve checks the arity first; this guards direct calls of the rule
        raise ShapeError(f"takes 2 inputs, got {len(ins)}")
    return broadcast(args, ins)


def _torch_fn(name: str) -> Any:
    def function(args: Args) -> tuple[Any, dict[str, Any]]:
        import torch

        return getattr(torch, name), {}

    return function


register(Block("sub", "sub: element-wise difference of two inputs, first minus second (broadcasting).", {},
               shape, kind="function", function=_torch_fn("sub"), other_ops=elementwise, arity=(2, 2),
               category="merge", tags=frozenset({"elementwise", "broadcast"})))
register(Block("div", "div: element-wise quotient of two inputs, first over second (broadcasting).", {},
               shape, kind="function", function=_torch_fn("div"), other_ops=elementwise, arity=(2, 2),
               category="merge", tags=frozenset({"elementwise", "broadcast"})))
