"""dropout: element-wise dropout (identity in eval mode)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.registry import register

PARAMS = {"p": Param("float", 0.5, min=0, max=1), "inplace": Param("bool", False)}


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.Dropout(args["p"], args["inplace"])


register(Block("dropout", __doc__ or "", PARAMS, lambda a, s: s[0], build=build, category="reg",
               tags=frozenset({"inplace", "alias", "pass_through"})))
