"""scalar: element-wise arithmetic with constants, ((x * mul) / div) + add; each step is skipped where it
changes nothing (x / 2 is `{op: scalar, div: 2}`, 1 - x is `{op: scalar, mul: -1, add: 1}`, an
attention scale `{op: scalar, mul: "${d ** -0.5}"}`).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {"mul": Param("float", 1.0), "div": Param("float", 1.0), "add": Param("float", 0.0)}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if args["div"] == 0:
        raise ShapeError("scalar: div 0 divides by zero", hint="use mul for a factor, or a non-zero div")
    return ins[0]


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    from archc.blocks.nn.modules import scalar_arith

    return scalar_arith, {k: float(args[k]) for k in ("mul", "div", "add")}


def other_ops(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    steps = (args["mul"] != 1) + (args["div"] != 1) + (args["add"] != 0)
    return steps * prod(out)


register(Block("scalar", "scalar: ((x * mul) / div) + add with constants, element-wise (x / 2, 1 - x, a scale).",
               PARAMS, shape, kind="function", function=function, other_ops=other_ops, category="act",
               tags=frozenset({"elementwise"})))  # a new tensor even when every step is skipped (a copy)
