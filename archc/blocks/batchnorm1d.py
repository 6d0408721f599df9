"""batchnorm1d: batch normalisation over the channels of a (C,) vector or a (C, L) sequence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Shape, elementwise
from archc.blocks.batchnorm2d import PARAMS, count_params  # same arguments and affine parameters
from archc.blocks.registry import register
from archc.errors import ShapeError


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if len(ins[0]) not in (1, 2):
        raise ShapeError(f"batchnorm1d expects a (C,) or (C, L) input but got {ins[0]}",
                         hint="use batchnorm2d on a (C, H, W) map; shapes here leave out the batch dimension")
    return ins[0]


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.BatchNorm1d(ins[0][0], args["eps"], args["momentum"], args["affine"], args["track_running_stats"])


register(Block("batchnorm1d", __doc__ or "", PARAMS, shape, build=build, count_params=count_params,
               other_ops=elementwise, category="norm", tags=frozenset({"norm"})))
