"""local_response_norm: AlexNet's (2012) local response normalisation across channels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, elementwise, need_rank
from archc.blocks.registry import register

PARAMS = {"size": Param("int", min=1), "alpha": Param("float", 1e-4), "beta": Param("float", 0.75),
          "k": Param("float", 1.0)}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 3, "local_response_norm")
    return ins[0]


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.LocalResponseNorm(args["size"], args["alpha"], args["beta"], args["k"])


register(Block("local_response_norm", __doc__ or "", PARAMS, shape, build=build, other_ops=elementwise,
               category="norm"))
