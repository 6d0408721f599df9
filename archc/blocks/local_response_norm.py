"""local_response_norm: AlexNet's (2012) local response normalisation across channels, on (C, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, elementwise
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {"size": Param("int", min=1), "alpha": Param("float", 1e-4), "beta": Param("float", 0.75),
          "k": Param("float", 1.0)}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    """Any (C, ...) map, as torch: the window runs across channels only, zero-padded, and always
    holds the channel itself, so any size fits."""
    if len(ins[0]) < 2:
        raise ShapeError(f"local_response_norm expects a (C, ...) input with at least one dim after the channels "
                         f"but got {ins[0]}", hint="shapes here leave out the batch dimension")
    return ins[0]


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.LocalResponseNorm(args["size"], args["alpha"], args["beta"], args["k"])


register(Block("local_response_norm", __doc__ or "", PARAMS, shape, build=build, other_ops=elementwise,
               category="norm", tags=frozenset({"map"})))
