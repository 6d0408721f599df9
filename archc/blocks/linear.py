"""linear: fully connected layer on the last axis; any leading axes are positions."""

from __future__ import annotations

from math import prod
from typing import Any, Sequence

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {"out_features": Param("int", min=1), "bias": Param("bool", True)}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if not ins[0]:
        raise ShapeError("linear needs at least a 1-D input")
    return (*ins[0][:-1], args["out_features"])


def count_params(args: Args, ins: Sequence[Shape]) -> int:
    return ins[0][-1] * args["out_features"] + (args["out_features"] if args["bias"] else 0)


def macs(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return prod(ins[0]) * args["out_features"]


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.Linear(ins[0][-1], args["out_features"], args["bias"])


register(Block("linear", __doc__ or "", PARAMS, shape, build=build, count_params=count_params, macs=macs,
               category="linear"))
