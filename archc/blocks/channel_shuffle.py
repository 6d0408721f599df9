"""channel_shuffle: interleave the channels of `groups` groups (ShuffleNet; torch.nn.functional.channel_shuffle)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.registry import register
from archc.errors import ShapeError


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    s, g = ins[0], args["groups"]
    if len(s) < 2:
        raise ShapeError(f"channel_shuffle expects a (C, L) or (C, H, W) input but got {s}",
                         hint="torch's channel_shuffle needs a dim after the channels")
    if s[0] % g:
        raise ShapeError(f"channels ({s[0]}) are not divisible by groups={g}")
    return s


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    from torch.nn import functional

    return functional.channel_shuffle, {"groups": args["groups"]}


register(Block("channel_shuffle", __doc__ or "", {"groups": Param("int", min=1)}, shape, kind="function",
               function=function, category="layout", tags=frozenset({"map"})))
