"""Element-wise math: exp, log, sqrt, abs and clamp(min, max) (torch.exp, ..., torch.clamp)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, elementwise
from archc.blocks.registry import register
from archc.errors import ShapeError

# autograd computes the gradients of exp and sqrt from their output (checked in analyze/inplace.py)
_TABLE = {
    "exp": ("e to the power of each element", frozenset({"keeps_output"})),
    "log": ("natural logarithm (NaN below 0, -inf at 0)", frozenset()),
    "sqrt": ("square root (NaN below 0)", frozenset({"keeps_output"})),
    "abs": ("absolute value", frozenset()),
}


def _same(args: Args, ins: Sequence[Shape]) -> Shape:
    return ins[0]


def _torch_fn(name: str) -> Any:
    def function(args: Args) -> tuple[Any, dict[str, Any]]:
        import torch

        return getattr(torch, name), {}

    return function


def clamp_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if args["min"] is None and args["max"] is None:
        raise ShapeError("clamp needs min, max or both", hint="give at least one bound, e.g. `min: 0`")
    return ins[0]


def clamp_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    import torch

    bounds = {k: None if args[k] is None else float(args[k]) for k in ("min", "max")}  # ONNX: int with float fails
    return torch.clamp, bounds


for _name, (_what, _tags) in _TABLE.items():
    register(Block(_name, f"{_name}: element-wise {_what} (torch.{_name}).", {}, _same, kind="function",
                   function=_torch_fn(_name), other_ops=elementwise, category="act", tags=_tags | {"elementwise"}))
register(Block("clamp", "clamp: limit each element to [min, max]; either bound may be null (torch.clamp).",
               {"min": Param("float|none", None), "max": Param("float|none", None)}, clamp_shape,
               kind="function", function=clamp_fn, other_ops=elementwise, category="act",
               tags=frozenset({"elementwise"})))
