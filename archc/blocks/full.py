"""full: a constant of the input's shape (with `channels` channels when given), every element `value`.

YOLOv8's stride tensor is `{op: full, in: p3, channels: 1, value: 8}`: a (1, H, W) map of 8s beside the
level's anchor points. Only the input's size is read (see grid.py): computed in the forward on the
input's device and dtype, stored nowhere, any input size.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {
    "value": Param("float", doc="every element's value"),
    "channels": Param("int", -1, min=-1, doc="the size of dim 1 (default -1: the input's)"),
}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    channels = args["channels"]
    if channels == 0:
        raise ShapeError("channels 0 makes the constant empty", hint="a positive size, or -1 for the input's")
    return (ins[0][0] if channels == -1 else channels, *ins[0][1:])


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    from archc.blocks.nn.modules import full_like

    channels = args["channels"]
    return full_like, {"value": float(args["value"]), "channels": None if channels == -1 else channels}


def other_ops(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return prod(out)


register(Block("full", "full: a constant shaped like the input (with `channels` channels unless -1), every element "
               "`value` (e.g. a stride per anchor).", PARAMS, shape, kind="function", function=function,
               other_ops=other_ops, category="constant"))
