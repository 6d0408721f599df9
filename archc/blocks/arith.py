"""sub and div: element-wise difference and quotient of exactly two inputs (broadcasting like `add`)."""

from __future__ import annotations

from typing import Any

from archc.blocks.base import Args, Block, elementwise
from archc.blocks.merge import broadcast
from archc.blocks.registry import register


def _torch_fn(name: str) -> Any:
    def function(args: Args) -> tuple[Any, dict[str, Any]]:
        import torch

        return getattr(torch, name), {}

    return function


register(Block("sub", "sub: element-wise difference of two inputs, first minus second (broadcasting).", {},
               broadcast, kind="function", function=_torch_fn("sub"), other_ops=elementwise, arity=(2, 2),
               category="merge"))
register(Block("div", "div: element-wise quotient of two inputs, first over second (broadcasting).", {},
               broadcast, kind="function", function=_torch_fn("div"), other_ops=elementwise, arity=(2, 2),
               category="merge"))
