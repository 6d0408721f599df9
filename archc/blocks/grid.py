"""grid: the (x, y) coordinates of every cell of the map flowing in, a (2, H, W) constant.

Channel 0 is (column + offset) * scale, channel 1 (row + offset) * scale: with `offset: 0.5` the cell
centres in grid units (YOLOv8's anchor points), with `scale: 8` too in input pixels (CoordConv's
coordinates, position encodings). Only the input's size is read, never its values: the constant is
computed in the forward on the input's device and dtype (any input size), stored nowhere (no
state_dict key), and adds nothing to the receptive field beyond the map it is sized from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, need_rank
from archc.blocks.registry import register

PARAMS = {
    "offset": Param("float", 0.0, doc="added to the column and row index (0.5: cell centres)"),
    "scale": Param("float", 1.0, doc="multiplies the coordinates after the offset (a stride: input pixels)"),
}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 3, "grid")
    _, h, w = ins[0]
    return (2, h, w)


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    from archc.blocks.nn.modules import grid_coords

    return grid_coords, {"offset": float(args["offset"]), "scale": float(args["scale"])}


def other_ops(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return 2 * out[1] * out[2]  # one value per coordinate, computed once per sample


register(Block("grid", "grid: the (x, y) coordinates of each cell of a (C, H, W) map as a constant (2, H, W): "
               "(column + offset) * scale, (row + offset) * scale (anchor points, CoordConv).",
               PARAMS, shape, kind="function", function=function, other_ops=other_ops, category="constant"))
