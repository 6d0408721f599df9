"""linear: fully connected layer on the last axis; any leading axes are positions."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {"out_features": Param("int", min=1), "bias": Param("bool", True)}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if not ins[0]:
        raise ShapeError("linear needs at least a 1-D input")
    if len(ins[0]) == 3 and ins[0][1:] == (1, 1):
        raise ShapeError(f"linear applies to the last axis, which has size 1 in {ins[0]}",
                         hint="add `flatten` after the pooling so the channels become the features")
    return (*ins[0][:-1], args["out_features"])


def count_params(args: Args, ins: Sequence[Shape]) -> int:
    return ins[0][-1] * args["out_features"] + (args["out_features"] if args["bias"] else 0)


def macs(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return prod(ins[0]) * args["out_features"]


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.Linear(ins[0][-1], args["out_features"], args["bias"])


# mixes the last dim into new features (tag "projects"), every other dim's positions kept apart
register(Block("linear", __doc__ or "", PARAMS, shape, build=build, count_params=count_params, macs=macs,
               category="linear", mixes=lambda a, rank: (rank - 1,), tags=frozenset({"projects"})))
