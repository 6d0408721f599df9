"""conv_transpose2d: transposed 2-D convolution (learned upsampling)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window, need_rank, pair
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {
    "out_channels": Param("int", min=1),
    "kernel_size": Param("int2", min=1),
    "stride": Param("int2", 1, min=1),
    "padding": Param("int2", 0, min=0),
    "output_padding": Param("int2", 0, min=0),
    "groups": Param("int", 1, min=1),
    "bias": Param("bool", True),
    "dilation": Param("int2", 1, min=1),
}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 3, "conv_transpose2d")
    c, h, w = ins[0]
    g = args["groups"]
    if c % g or args["out_channels"] % g:
        raise ShapeError(f"groups={g} must divide input channels ({c}) and out_channels ({args['out_channels']})")
    k, s, p, op, d = (pair(args[n]) for n in ("kernel_size", "stride", "padding", "output_padding", "dilation"))
    for axis in range(2):
        if op[axis] >= max(s[axis], d[axis]):
            raise ShapeError(f"output_padding {op[axis]} must be smaller than the stride ({s[axis]}) or the "
                             f"dilation ({d[axis]})", hint="output_padding only picks among sizes a stride allows")
    size = [(n - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i, n in enumerate((h, w))]
    if any(n < 1 for n in size):
        raise ShapeError(f"output size {tuple(size)} is empty", hint="reduce padding")
    return (args["out_channels"], size[0], size[1])


def count_params(args: Args, ins: Sequence[Shape]) -> int:
    kh, kw = pair(args["kernel_size"])
    c_out = args["out_channels"]
    return ins[0][0] * (c_out // args["groups"]) * kh * kw + (c_out if args["bias"] else 0)


def macs(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    kh, kw = pair(args["kernel_size"])
    c, h, w = ins[0]
    return c * h * w * (args["out_channels"] // args["groups"]) * kh * kw


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.ConvTranspose2d(ins[0][0], args["out_channels"], pair(args["kernel_size"]), pair(args["stride"]),
                              pair(args["padding"]), pair(args["output_padding"]), args["groups"], args["bias"],
                              pair(args["dilation"]))


def window(args: Args, ins: Sequence[Shape], out: Shape) -> Window:
    k, s = pair(args["kernel_size"])[0], pair(args["stride"])[0]
    return Window(Fraction(k - 1, s) + 1, Fraction(1, s), 0)


register(Block("conv_transpose2d", __doc__ or "", PARAMS, shape, build=build, count_params=count_params,
               macs=macs, window=window, category="conv"))
