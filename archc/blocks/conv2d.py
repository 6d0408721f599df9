"""conv2d: 2-D convolution (grouped, depthwise, dilated, `same`/`valid` padding)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window, conv_size, need_rank, pair
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {
    "out_channels": Param("int", min=1),
    "kernel_size": Param("int2", min=1),
    "stride": Param("int2", 1, min=1),
    "padding": Param("int2", 0, choices=("same", "valid"), min=0),
    "dilation": Param("int2", 1, min=1),
    "groups": Param("int", 1, min=1),
    "bias": Param("bool", True),
    "padding_mode": Param("str", "zeros", choices=("zeros", "reflect", "replicate", "circular")),
}


def _padding(args: Args) -> tuple[int, int] | None:
    """Explicit padding per axis, or None for `same`."""
    pad = args["padding"]
    if pad == "same":
        return None
    return (0, 0) if pad == "valid" else pair(pad)


def _check_groups(c_in: int, args: Args) -> None:
    g, c_out = args["groups"], args["out_channels"]
    if c_in % g or c_out % g:
        raise ShapeError(f"groups={g} must divide both input channels ({c_in}) and out_channels ({c_out})",
                         hint="for a depthwise convolution use groups equal to the input channels")


def _check_padding_mode(args: Args, size: tuple[int, int]) -> None:
    """torch pads reflect/circular inputs itself, and refuses paddings the input cannot supply."""
    mode = args["padding_mode"]
    if mode in ("zeros", "replicate") or args["padding"] == "valid":
        return
    if args["padding"] == "same":  # torch puts the extra pixel of an even span on the right
        spans = [d * (k - 1) for k, d in zip(pair(args["kernel_size"]), pair(args["dilation"]))]
        pads = [s - s // 2 for s in spans]
    else:
        pads = list(pair(args["padding"]))
    for axis, p, n in zip("HW", pads, size):
        if (p >= n) if mode == "reflect" else (p > n):
            limit = "smaller than" if mode == "reflect" else "at most"
            raise ShapeError(f"{mode} padding {p} along {axis} must be {limit} the input size {n}",
                             hint="use padding_mode: zeros, a smaller padding, or a larger input")


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 3, "conv2d")
    c, h, w = ins[0]
    _check_groups(c, args)
    _check_padding_mode(args, (h, w))
    pad = _padding(args)
    if pad is None and pair(args["stride"]) != (1, 1):
        raise ShapeError("padding='same' needs stride 1", hint="use an explicit padding with strides")
    k, s, d = pair(args["kernel_size"]), pair(args["stride"]), pair(args["dilation"])
    taps = args["padding_mode"] == "zeros"  # the other modes pad with input values
    sizes = []
    for i, (n, axis) in enumerate(((h, "H"), (w, "W"))):
        left, right = _sides(k[i], d[i], pad, i)
        sizes.append(conv_size(n, k[i], s[i], left, d[i], what="kernel", pad_right=right, taps=taps, axis=axis))
    return (args["out_channels"], *sizes)


def _sides(k: int, d: int, pad: tuple[int, int] | None, i: int) -> tuple[int, int]:
    """(left, right) padding along axis i; `same` puts the extra element of an even span on the right."""
    if pad is not None:
        return pad[i], pad[i]
    reach = d * (k - 1)
    return reach // 2, reach - reach // 2


def count_params(args: Args, ins: Sequence[Shape]) -> int:
    kh, kw = pair(args["kernel_size"])
    c_out = args["out_channels"]
    return c_out * (ins[0][0] // args["groups"]) * kh * kw + (c_out if args["bias"] else 0)


def macs(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    kh, kw = pair(args["kernel_size"])
    return out[0] * out[1] * out[2] * (ins[0][0] // args["groups"]) * kh * kw


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.Conv2d(ins[0][0], args["out_channels"], pair(args["kernel_size"]), pair(args["stride"]),
                     args["padding"] if isinstance(args["padding"], str) else pair(args["padding"]),
                     pair(args["dilation"]), args["groups"], args["bias"], args["padding_mode"])


def window(args: Args, ins: Sequence[Shape], out: Shape) -> Window:
    k, s, d = pair(args["kernel_size"])[0], pair(args["stride"])[0], pair(args["dilation"])[0]
    pad = _padding(args)
    return Window(Fraction(d * (k - 1) + 1), Fraction(s), (d * (k - 1)) // 2 if pad is None else pad[0])


register(Block("conv2d", __doc__ or "", PARAMS, shape, build=build, count_params=count_params,
               macs=macs, window=window, category="conv", tags=frozenset({"map", "strided", "biased"})))
