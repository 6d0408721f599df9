"""self_attention: multi-head self-attention over a (L, D) token sequence (torch.nn.MultiheadAttention)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, need_rank
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {"num_heads": Param("int", min=1), "dropout": Param("float", 0.0, min=0, max=1), "bias": Param("bool", True)}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 2, "self_attention")
    if ins[0][1] % args["num_heads"]:
        raise ShapeError(f"embedding size {ins[0][1]} is not divisible by num_heads={args['num_heads']}")
    return ins[0]


def count_params(args: Args, ins: Sequence[Shape]) -> int:
    d = ins[0][1]
    return 4 * d * d + (4 * d if args["bias"] else 0)


def macs(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    seq, d = ins[0]
    return 4 * seq * d * d + 2 * seq * seq * d  # q, k, v and output projections + QK^T and AV


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from archc.blocks.nn.modules import SelfAttention

    return SelfAttention(ins[0][1], args["num_heads"], dropout=args["dropout"], bias=args["bias"],
                         batch_first=True)


register(Block("self_attention", __doc__ or "", PARAMS, shape, build=build, count_params=count_params,
               macs=macs, category="attn"))
