"""interpolate (resize by size or scale_factor), resize_to (resize input 0 to input 1's H, W), identity."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from math import floor
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window, need_rank, pair
from archc.blocks.registry import register
from archc.errors import ShapeError

MODES = ("nearest", "bilinear", "bicubic", "area", "nearest-exact")
INTERPOLATING = ("bilinear", "bicubic")  # the modes torch takes align_corners with
PARAMS = {
    "size": Param("int2|none", None, min=1),
    "scale_factor": Param("float2|none", None, min=0),
    "mode": Param("str", "nearest", choices=MODES),
    "align_corners": Param("bool", None, choices=(None,)),
}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 3, "interpolate")
    c, h, w = ins[0]
    if (args["size"] is None) == (args["scale_factor"] is None):
        raise ShapeError("give exactly one of size and scale_factor")
    if args["align_corners"] is not None and args["mode"] not in INTERPOLATING:
        raise ShapeError(f"align_corners is for the interpolating modes (bilinear, bicubic), not {args['mode']}",
                         hint="drop align_corners, or use mode: bilinear (torch refuses it at run time)")
    if args["size"] is not None:
        return (c, *pair(args["size"]))
    sf = args["scale_factor"]
    fh, fw = (sf, sf) if not isinstance(sf, list) else sf
    out = (c, floor(h * fh), floor(w * fw))  # torch floors (sizes are positive)
    if any(n < 1 for n in out[1:]):
        raise ShapeError(f"scale_factor {sf} makes the {h}x{w} input empty", hint="use a larger input or scale")
    return out


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    from torch.nn import functional as F

    size = pair(args["size"]) if args["size"] is not None else None
    sf = args["scale_factor"]
    return F.interpolate, {"size": size, "scale_factor": tuple(sf) if isinstance(sf, list) else sf,
                           "mode": args["mode"], "align_corners": args["align_corners"]}


def resize_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 3, "resize_to")
    need_rank(ins[1], 3, "resize_to (reference)")
    return (ins[0][0], ins[1][1], ins[1][2])


def resize_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    from archc.blocks.nn.modules import resize_to

    return resize_to, {"mode": args["mode"]}


def window(args: Args, ins: Sequence[Shape], out: Shape) -> Window:
    return Window(stride=Fraction(ins[0][1], out[1]))


register(Block("interpolate", "interpolate: resize a (C, H, W) map to `size` or by `scale_factor` "
               "(torch.nn.functional.interpolate); align_corners only with bilinear and bicubic.", PARAMS,
               shape, kind="function", function=function,
               window=window, category="resize", tags=frozenset({"map"})))
register(Block("resize_to", "resize_to: resize input 0 to the H, W of input 1 when they differ (U-Net skips).",
               {"mode": Param("str", "nearest", choices=MODES)}, resize_shape, kind="function",
               function=resize_fn, arity=(2, 2), window=window, category="resize",
               tags=frozenset({"alias", "pass_through", "map"})))  # returns input 0 itself when sizes already match
