"""Element-wise activations: relu, relu6, gelu (approximate: none|tanh), silu, tanh, sigmoid, leaky_relu, hardswish,
hardsigmoid, elu, mish, softplus (prelu, which learns its slope, is prelu.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, elementwise
from archc.blocks.registry import register
from archc.errors import ShapeError

_INPLACE = {"inplace": Param("bool", False)}
# op name -> (torch.nn class name, its parameters)
_TABLE: dict[str, tuple[str, dict[str, Param]]] = {
    "relu": ("ReLU", _INPLACE),
    "relu6": ("ReLU6", _INPLACE),
    "silu": ("SiLU", _INPLACE),
    "hardswish": ("Hardswish", _INPLACE),
    "hardsigmoid": ("Hardsigmoid", _INPLACE),
    "leaky_relu": ("LeakyReLU", {"negative_slope": Param("float", 0.01), **_INPLACE}),
    "gelu": ("GELU", {"approximate": Param("str", "none", choices=("none", "tanh"))}),
    "tanh": ("Tanh", {}),
    "sigmoid": ("Sigmoid", {}),
    "elu": ("ELU", {"alpha": Param("float", 1.0), **_INPLACE}),
    "mish": ("Mish", _INPLACE),
    "softplus": ("Softplus", {"beta": Param("float", 1.0), "threshold": Param("float", 20.0)}),
}


# autograd computes these gradients from the output (leaky_relu only in its in-place form): an
# in-place op must not overwrite it (checked in analyze/inplace.py)
_KEEPS_OUTPUT = {"relu": "keeps_output", "sigmoid": "keeps_output", "tanh": "keeps_output",
                 "leaky_relu": "keeps_output_inplace", "elu": "keeps_output_inplace"}


def _same(args: Args, ins: Sequence[Shape]) -> Shape:
    return ins[0]


def _softplus(args: Args, ins: Sequence[Shape]) -> Shape:
    if args["beta"] == 0:  # log(1 + exp(0 * x)) / 0: torch returns inf everywhere
        raise ShapeError("softplus with beta 0 divides by zero (every output is inf)",
                         hint="beta scales the input: 1 is torch's default")
    return ins[0]


def _builder(cls_name: str) -> Any:
    def build(args: Args, ins: Sequence[Shape]) -> Any:
        from torch import nn

        return getattr(nn, cls_name)(**args)

    return build


for _name, (_cls, _params) in _TABLE.items():
    register(Block(_name, f"{_name}: element-wise activation (torch.nn.{_cls}).", _params,
                   _softplus if _name == "softplus" else _same,
                   build=_builder(_cls), other_ops=elementwise, category="act",
                   tags=frozenset({"elementwise", "inplace"} if "inplace" in _params else {"elementwise"})
                   | frozenset({_KEEPS_OUTPUT[_name]} if _name in _KEEPS_OUTPUT else set())))
