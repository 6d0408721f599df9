"""stochastic_depth: drop whole residual branches per sample (torchvision.ops.StochasticDepth)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.registry import register

PARAMS = {"p": Param("float", min=0, max=1), "mode": Param("str", "row", choices=("row", "batch"))}


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torchvision.ops import StochasticDepth

    return StochasticDepth(args["p"], args["mode"])


register(Block("stochastic_depth", __doc__ or "", PARAMS, lambda a, s: s[0], build=build, category="reg",
               tags=frozenset({"alias", "pass_through"})))  # p == 0 or eval mode: returns its input
