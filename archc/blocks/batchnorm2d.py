"""batchnorm2d: batch normalisation over the channels of a (C, H, W) map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, elementwise, need_rank
from archc.blocks.registry import register

PARAMS = {
    "eps": Param("float", 1e-5, min=0),
    "momentum": Param("float|none", 0.1),
    "affine": Param("bool", True),
    "track_running_stats": Param("bool", True),
}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 3, "batchnorm2d")
    return ins[0]


def count_params(args: Args, ins: Sequence[Shape]) -> int:
    return 2 * ins[0][0] if args["affine"] else 0


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.BatchNorm2d(ins[0][0], args["eps"], args["momentum"], args["affine"], args["track_running_stats"])


register(Block("batchnorm2d", __doc__ or "", PARAMS, shape, build=build,
               count_params=count_params,
               other_ops=elementwise, category="norm", tags=frozenset({"map", "norm"})))
