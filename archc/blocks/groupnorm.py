"""groupnorm: group normalisation of a (C, H, W) map."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, elementwise
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {"num_groups": Param("int", min=1), "eps": Param("float", 1e-5, min=0), "affine": Param("bool", True)}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if ins[0][0] % args["num_groups"]:
        raise ShapeError(f"num_groups={args['num_groups']} does not divide the {ins[0][0]} channels")
    if ins[0][0] // args["num_groups"] * prod(ins[0][1:]) == 1:  # torch refuses it at batch 1, even in eval
        raise ShapeError(f"each of the {args['num_groups']} groups of {ins[0]} holds a single value: nothing to "
                         "normalise", hint="use fewer groups or normalise a larger map")
    return ins[0]


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.GroupNorm(args["num_groups"], ins[0][0], args["eps"], args["affine"])


register(Block("groupnorm", __doc__ or "", PARAMS, shape, build=build,
               count_params=lambda a, s: 2 * s[0][0] if a["affine"] else 0, other_ops=elementwise,
               category="norm", tags=frozenset({"map"})))
