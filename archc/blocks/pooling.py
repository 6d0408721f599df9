"""max_pool2d and avg_pool2d: sliding-window pooling over (C, H, W)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window, conv_size, need_rank, pair
from archc.blocks.registry import register
from archc.errors import ShapeError

_COMMON = {
    "kernel_size": Param("int2", min=1),
    "stride": Param("int2|none", None, min=1),
    "padding": Param("int2", 0, min=0),
    "ceil_mode": Param("bool", False),
}
MAX_PARAMS = {**_COMMON, "dilation": Param("int2", 1, min=1)}
AVG_PARAMS = {**_COMMON, "count_include_pad": Param("bool", True)}


def _stride(args: Args) -> tuple[int, int]:
    return pair(args["stride"] if args["stride"] is not None else args["kernel_size"])


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 3, "pooling")
    c, h, w = ins[0]
    k, s, p, d = pair(args["kernel_size"]), _stride(args), pair(args["padding"]), pair(args.get("dilation", 1))
    if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
        raise ShapeError(f"padding {p} must be at most half the kernel {k}")
    return (c, conv_size(h, k[0], s[0], p[0], d[0], args["ceil_mode"], axis="H"),
            conv_size(w, k[1], s[1], p[1], d[1], args["ceil_mode"], axis="W"))


def window_ops(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    kh, kw = pair(args["kernel_size"])
    return out[0] * out[1] * out[2] * kh * kw


def window(args: Args, ins: Sequence[Shape], out: Shape) -> Window:
    k, d = pair(args["kernel_size"])[0], pair(args.get("dilation", 1))[0]
    return Window(Fraction(d * (k - 1) + 1), Fraction(_stride(args)[0]), pair(args["padding"])[0])


def build_max(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.MaxPool2d(pair(args["kernel_size"]), _stride(args), pair(args["padding"]), pair(args["dilation"]),
                        ceil_mode=args["ceil_mode"])


def build_avg(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.AvgPool2d(pair(args["kernel_size"]), _stride(args), pair(args["padding"]), args["ceil_mode"],
                        args["count_include_pad"])


register(Block("max_pool2d", "max_pool2d: max pooling (stride defaults to kernel_size).", MAX_PARAMS, shape,
               build=build_max, other_ops=window_ops, window=window, category="pool",
               tags=frozenset({"indices", "map", "strided"})))
register(Block("avg_pool2d", "avg_pool2d: average pooling (stride defaults to kernel_size).", AVG_PARAMS, shape,
               build=build_avg, other_ops=window_ops, window=window, category="pool",
               tags=frozenset({"map", "strided"})))
