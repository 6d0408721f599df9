"""prelu: leaky ReLU with a learned slope, one for all channels or one per channel (torch.nn.PReLU).

The channels are dim 1 of the batch, as torch reads them: C of a (C, H, W) map, L of (L, D) tokens, D
of a (D,) vector. `num_parameters: channels` learns one slope per channel without writing the width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, elementwise
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {
    "num_parameters": Param("int", 1, choices=("channels",), min=1,
                            doc="1 (one slope) or the input's channels (write `channels`)"),
    "init": Param("float", 0.25, doc="the slopes' initial value"),
}


def _count(args: Args, ins: Sequence[Shape]) -> Any:
    n = args["num_parameters"]
    return ins[0][0] if n == "channels" else n


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    n, c = args["num_parameters"], ins[0][0]
    if n != "channels" and n != 1 and n != c:
        raise ShapeError(f"prelu: num_parameters {n} is neither 1 nor the {c} channels of {ins[0]}",
                         hint="write `num_parameters: channels` for one slope per channel")
    return ins[0]


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.PReLU(_count(args, ins), float(args["init"]))


register(Block("prelu", "prelu: leaky ReLU whose negative slope is learned, one or one per channel "
               "(torch.nn.PReLU).", PARAMS, shape, build=build, count_params=_count, other_ops=elementwise,
               category="act", tags=frozenset({"elementwise"})))
