"""normalize: divide by the p-norm along one dim, x / max(||x||_p, eps) (torch.nn.functional.normalize):
unit query and key vectors for Swin V2's cosine attention, CLIP's embeddings. Along H or W of a (C, H, W)
map every output sees the whole axis; along the channels it is pointwise."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window
from archc.blocks.reduce import sample_axis
from archc.blocks.registry import register

PARAMS = {"p": Param("float", 2.0, min=0, doc="the norm's exponent (2: Euclidean)"),
          "dim": Param("int", -1, doc="the torch dim normalised along (not the batch)"),
          "eps": Param("float", 1e-12, min=0, doc="the smallest divisor")}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    sample_axis(args["dim"], len(ins[0]), "normalize")
    return ins[0]


def window(args: Args, ins: Sequence[Shape], out: Shape) -> Window | None:
    return None if len(ins[0]) == 3 and sample_axis(args["dim"], 3, "normalize") > 0 else Window()


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    from torch.nn import functional

    return functional.normalize, {"p": float(args["p"]), "dim": args["dim"], "eps": float(args["eps"])}


register(Block("normalize", "normalize: x / max(||x||_p, eps) along `dim` (torch.nn.functional.normalize; cosine "
               "attention's unit queries and keys).", PARAMS, shape, kind="function", function=function,
               other_ops=lambda a, s, o: 3 * prod(o), window=window, category="norm"))
