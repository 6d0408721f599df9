"""layer_scale: multiply by a learned per-channel scale (ConvNeXt, CaiT); stored as the node's parameter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, elementwise
from archc.blocks.registry import register

PARAMS = {"init_value": Param("float", 1e-6), "channels": Param("str", "first", choices=("first", "last"))}


def _param_shape(args: Args, ins: Sequence[Shape]) -> tuple[int, ...]:
    s = ins[0]
    return (s[0], *[1] * (len(s) - 1)) if args["channels"] == "first" else (s[-1],)


def build(args: Args, ins: Sequence[Shape]) -> Any:
    import torch

    return torch.nn.Parameter(torch.ones(*_param_shape(args, ins)) * args["init_value"])


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    from archc.blocks.nn.modules import scale_by_param

    return scale_by_param, {}


register(Block("layer_scale", __doc__ or "", PARAMS, lambda a, s: s[0], kind="parameter", build=build,
               function=function, count_params=lambda a, s: _param_shape(a, s)[0], other_ops=elementwise,
               category="scale", tags=frozenset({"elementwise"})))
