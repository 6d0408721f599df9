"""conv1d: 1-D convolution over a (C, L) sequence (grouped, depthwise, dilated, `same`/`valid` padding)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window, conv_size
from archc.blocks.conv2d import _check_groups
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {
    "out_channels": Param("int", min=1),
    "kernel_size": Param("int", min=1),
    "stride": Param("int", 1, min=1),
    "padding": Param("int", 0, choices=("same", "valid"), min=0),
    "dilation": Param("int", 1, min=1),
    "groups": Param("int", 1, min=1),
    "bias": Param("bool", True),
    "padding_mode": Param("str", "zeros", choices=("zeros", "reflect", "replicate", "circular")),
}


def _left_right(args: Args) -> tuple[int, int]:
    """Padding on each side; `same` puts the extra element of an even span on the right, as torch does."""
    pad = args["padding"]
    if pad == "same":
        span = args["dilation"] * (args["kernel_size"] - 1)
        return span // 2, span - span // 2
    return (0, 0) if pad == "valid" else (pad, pad)


def _check(args: Args, c_in: int, length: int) -> None:
    _check_groups(c_in, args)
    mode = args["padding_mode"]
    if mode in ("reflect", "circular"):
        p = max(_left_right(args))
        if (p >= length) if mode == "reflect" else (p > length):
            limit = "smaller than" if mode == "reflect" else "at most"
            raise ShapeError(f"{mode} padding {p} must be {limit} the input length {length}",
                             hint="use padding_mode: zeros, a smaller padding, or a longer input")
    if args["padding"] == "same" and args["stride"] != 1:
        raise ShapeError("padding='same' needs stride 1", hint="use an explicit padding with strides")


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if len(ins[0]) != 2:
        raise ShapeError(f"conv1d expects a 2-D input (C, L) but got {ins[0]}",
                         hint="shapes here leave out the batch dimension")
    c, length = ins[0]
    _check(args, c, length)
    left, right = _left_right(args)
    return (args["out_channels"], conv_size(length, args["kernel_size"], args["stride"], left, args["dilation"],
                                            what="kernel", pad_right=right, taps=args["padding_mode"] == "zeros",
                                            axis="L"))


def count_params(args: Args, ins: Sequence[Shape]) -> int:
    c_out = args["out_channels"]
    return c_out * (ins[0][0] // args["groups"]) * args["kernel_size"] + (c_out if args["bias"] else 0)


def macs(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return out[0] * out[1] * (ins[0][0] // args["groups"]) * args["kernel_size"]


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.Conv1d(ins[0][0], args["out_channels"], args["kernel_size"], args["stride"], args["padding"],
                     args["dilation"], args["groups"], args["bias"], args["padding_mode"])


def window(args: Args, ins: Sequence[Shape], out: Shape) -> Window:
    k, d = args["kernel_size"], args["dilation"]
    return Window(Fraction(d * (k - 1) + 1), Fraction(args["stride"]), _left_right(args)[0])


register(Block("conv1d", __doc__ or "", PARAMS, shape, build=build, count_params=count_params, macs=macs,
               window=window, category="conv", tags=frozenset({"biased"})))
