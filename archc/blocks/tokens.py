"""class_token (prepend a learned token) and pos_embedding (add a learned position table) for ViTs.

Both store their parameter under the node's own name (``class_token``, ``encoder.pos_embedding``),
as torchvision does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, need_rank
from archc.blocks.registry import register


def cls_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 2, "class_token")
    return (ins[0][0] + 1, ins[0][1])


def cls_build(args: Args, ins: Sequence[Shape]) -> Any:
    import torch

    return torch.nn.Parameter(torch.zeros(1, 1, ins[0][1]))


def pos_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 2, "pos_embedding")
    return ins[0]


def pos_build(args: Args, ins: Sequence[Shape]) -> Any:
    import torch

    return torch.nn.Parameter(torch.empty(1, *ins[0]).normal_(std=args["init_std"]))


def _fn(name: str) -> Any:
    def function(args: Args) -> tuple[Any, dict[str, Any]]:
        from archc.blocks.nn import modules

        return getattr(modules, name), {}

    return function


register(Block("class_token", "class_token: prepend a learned (1, D) token to a (L, D) sequence.", {}, cls_shape,
               kind="parameter", build=cls_build, function=_fn("prepend_token"),
               count_params=lambda a, s: s[0][1], category="embed"))
register(Block("pos_embedding", "pos_embedding: add a learned (L, D) position table.",
               {"init_std": Param("float", 0.02, min=0)}, pos_shape, kind="parameter", build=pos_build,
               function=_fn("add_param"), count_params=lambda a, s: s[0][0] * s[0][1], category="embed",
               tags=frozenset({"elementwise"})))
