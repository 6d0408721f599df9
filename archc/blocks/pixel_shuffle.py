"""pixel_shuffle / pixel_unshuffle: trade channels for resolution (torch.nn.functional.pixel_shuffle).

pixel_shuffle(r) maps (C*r*r, H, W) to (C, H*r, W*r): each output pixel is one input pixel, so the
receptive field keeps its size and the jump shrinks r times, like an upsampling. pixel_unshuffle(r)
maps (C, H, W) to (C*r*r, H/r, W/r): each output pixel gathers an r x r block, a window of span and
stride r (like a kernel-r, stride-r convolution).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window
from archc.blocks.registry import register
from archc.errors import ShapeError


def _need_image(s: Shape, what: str) -> None:
    if len(s) < 3:
        raise ShapeError(f"{what} expects a (C, H, W) input but got {s}",
                         hint="shapes here leave out the batch dimension")


def shuffle_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    s, r = ins[0], args["upscale_factor"]
    _need_image(s, "pixel_shuffle")
    *lead, c, h, w = s
    if c % (r * r):
        raise ShapeError(f"channels ({c}) are not divisible by upscale_factor**2 ({r * r})")
    return (*lead, c // (r * r), h * r, w * r)


def unshuffle_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    s, r = ins[0], args["downscale_factor"]
    _need_image(s, "pixel_unshuffle")
    *lead, c, h, w = s
    if h % r or w % r:
        raise ShapeError(f"height and width ({h}, {w}) are not divisible by downscale_factor={r}",
                         hint="resize or pad the map to a multiple of the factor first")
    return (*lead, c * r * r, h // r, w // r)


def _function(name: str, key: str) -> Any:
    def function(args: Args) -> tuple[Any, dict[str, Any]]:
        from torch.nn import functional

        return getattr(functional, name), {key: args[key]}

    return function


register(Block("pixel_shuffle", "pixel_shuffle: (C*r*r, H, W) -> (C, H*r, W*r) with r = upscale_factor.",
               {"upscale_factor": Param("int", min=1)}, shuffle_shape, kind="function",
               function=_function("pixel_shuffle", "upscale_factor"),
               window=lambda a, s, o: Window(stride=Fraction(1, a["upscale_factor"])), category="layout",
               tags=frozenset({"map"})))
register(Block("pixel_unshuffle", "pixel_unshuffle: (C, H, W) -> (C*r*r, H/r, W/r) with r = downscale_factor.",
               {"downscale_factor": Param("int", min=1)}, unshuffle_shape, kind="function",
               function=_function("pixel_unshuffle", "downscale_factor"),
               window=lambda a, s, o: Window(Fraction(a["downscale_factor"]), Fraction(a["downscale_factor"])),
               category="layout", tags=frozenset({"map"})))
