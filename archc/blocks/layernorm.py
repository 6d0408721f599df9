"""layernorm: layer normalisation over the channel axis, channels-last (L, D) or channels-first (C, H, W)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, elementwise, need_rank
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {
    "eps": Param("float", 1e-5, min=0),
    "elementwise_affine": Param("bool", True),
    "bias": Param("bool", True),
    "channels": Param("str", "last", choices=("last", "first")),
}


def _dim(args: Args, ins: Sequence[Shape]) -> int:
    return ins[0][0] if args["channels"] == "first" else ins[0][-1]


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if args["channels"] == "first":
        need_rank(ins[0], 3, "layernorm with channels: first")
    elif not ins[0]:
        raise ShapeError("layernorm needs at least a 1-D input")
    return ins[0]


def count_params(args: Args, ins: Sequence[Shape]) -> int:
    if not args["elementwise_affine"]:
        return 0
    return _dim(args, ins) * (2 if args["bias"] else 1)


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    from archc.blocks.nn.modules import LayerNorm2d

    cls = LayerNorm2d if args["channels"] == "first" else nn.LayerNorm
    return cls(_dim(args, ins), eps=args["eps"], elementwise_affine=args["elementwise_affine"], bias=args["bias"])


def _mixes(args: Args, rank: int) -> tuple[int, ...]:
    return (0,) if args.get("channels") == "first" else (rank - 1,)  # the normalised dim


register(Block("layernorm", __doc__ or "", PARAMS, shape, build=build, count_params=count_params,
               other_ops=elementwise, category="norm", mixes=_mixes))
