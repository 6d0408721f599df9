"""Element-wise pow, minimum and maximum (torch.pow, torch.minimum, torch.maximum), broadcasting like `add`.

pow raises its input to the constant `exponent`, or, with `exponent: null`, its first input to its second
(a negative base with a fractional exponent gives NaN, as in torch). autograd keeps pow's output for the
gradient of a tensor exponent, so an in-place op after pow is refused (with a constant exponent too:
the tag is per op). minimum and maximum of three or more inputs fold: min(min(a, b), c).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, elementwise
from archc.blocks.merge import broadcast
from archc.blocks.registry import register
from archc.errors import ShapeError


def pow_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if args["exponent"] is None and len(ins) != 2:
        raise ShapeError("pow needs `exponent` (a number) or a second input holding the exponents",
                         hint="e.g. `exponent: 2`, or `in: [base, exponents]`")
    if args["exponent"] is not None and len(ins) != 1:
        raise ShapeError(f"pow with `exponent: {args['exponent']}` takes one input, got {len(ins)}",
                         hint="drop `exponent:` to read the exponents from the second input")
    return broadcast(args, ins)


def pow_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    import torch

    return torch.pow, {} if args["exponent"] is None else {"exponent": float(args["exponent"])}


def _torch_fn(name: str) -> Any:
    def function(args: Args) -> tuple[Any, dict[str, Any]]:
        import torch

        return getattr(torch, name), {}

    return function


register(Block("pow", "pow: each element to the power `exponent`, or input 0 to the power input 1 (torch.pow, "
               "broadcasting).", {"exponent": Param("float|none", None)}, pow_shape, kind="function",
               function=pow_fn, other_ops=elementwise, arity=(1, 2), category="act",
               tags=frozenset({"elementwise", "keeps_output"})))
for _name, _what in (("minimum", "smaller"), ("maximum", "larger")):
    register(Block(_name, f"{_name}: the {_what} of two or more inputs, element by element (torch.{_name}, "
                   "broadcasting).", {}, broadcast, kind="function", function=_torch_fn(_name),
                   other_ops=elementwise, arity=(2, None), category="merge", tags=frozenset({"elementwise"})))
