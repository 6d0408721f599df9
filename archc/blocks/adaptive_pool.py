"""adaptive_avg_pool2d / adaptive_max_pool2d to a fixed output size; global_avg_pool to a (C,) vector."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window, elementwise, need_rank, pair
from archc.blocks.registry import register

PARAMS = {"output_size": Param("int2", 1, min=1)}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 3, "adaptive pooling")
    return (ins[0][0], *pair(args["output_size"]))


def window(args: Args, ins: Sequence[Shape], out: Shape) -> Window | None:
    """Global when pooling to 1x1; the identity when sizes match; else the equivalent window."""
    size, target = ins[0][1], out[1]
    if target == 1:
        return None
    return Window(Fraction(-(-size // target)), Fraction(size // target)) if size != target else Window()


def _global(args: Args, ins: Sequence[Shape], out: Shape) -> None:
    return None


def _builder(cls: str) -> Any:
    def build(args: Args, ins: Sequence[Shape]) -> Any:
        from torch import nn

        return getattr(nn, cls)(pair(args["output_size"]))

    return build


def global_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 3, "global_avg_pool")
    return (ins[0][0],)


def global_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    from archc.blocks.nn.modules import global_avg_pool

    return global_avg_pool, {}


def _input_ops(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return elementwise(args, ins, ins[0])


register(Block("adaptive_avg_pool2d", "adaptive_avg_pool2d: average pooling to output_size.", PARAMS, shape,
               build=_builder("AdaptiveAvgPool2d"), other_ops=_input_ops, window=window, category="pool",
               tags=frozenset({"map"})))
register(Block("adaptive_max_pool2d", "adaptive_max_pool2d: max pooling to output_size.", PARAMS, shape,
               build=_builder("AdaptiveMaxPool2d"), other_ops=_input_ops, window=window, category="pool",
               tags=frozenset({"indices", "map"})))
register(Block("global_avg_pool", "global_avg_pool: mean over H and W, giving a (C,) vector.", {}, global_shape,
               kind="function", function=global_fn, other_ops=_input_ops, window=_global, category="pool"))
