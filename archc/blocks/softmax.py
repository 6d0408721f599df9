"""softmax: normalise to probabilities along one dim (torch.softmax; dim 0 is the batch and refused)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window, elementwise
from archc.blocks.reduce import sample_axis
from archc.blocks.registry import register


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    sample_axis(args["dim"], len(ins[0]), "softmax")
    return ins[0]


def window(args: Args, ins: Sequence[Shape], out: Shape) -> Window | None:
    """Along a spatial axis of a (C, H, W) map every output sees the whole axis; along channels, pointwise."""
    return None if len(ins[0]) == 3 and sample_axis(args["dim"], 3, "softmax") > 0 else Window()


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    import torch

    return torch.softmax, {"dim": args["dim"]}


# autograd computes softmax's gradient from its output (checked in analyze/inplace.py)
register(Block("softmax", __doc__ or "", {"dim": Param("int")}, shape, kind="function", function=function,
               other_ops=elementwise, window=window, category="act", tags=frozenset({"keeps_output"}),
               mixes=lambda a, rank: ((a["dim"] + rank + 1 if a["dim"] < 0 else a["dim"]) - 1,)))  # along `dim`
