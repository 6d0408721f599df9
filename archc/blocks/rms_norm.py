"""rms_norm: root-mean-square normalisation over the last `dims` dims (torch.nn.RMSNorm), e.g. the channels of
(L, D) tokens (dims 1); `elementwise_affine` learns a scale of that shape; eps null is torch's default (the
dtype's machine epsilon)."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, elementwise
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {
    "dims": Param("int", 1, min=1, doc="how many trailing dims are normalised (their sizes: normalized_shape)"),
    "eps": Param("float|none", None, min=0),
    "elementwise_affine": Param("bool", True),
}


def _normalized(args: Args, ins: Sequence[Shape]) -> Shape:
    return tuple(ins[0][-args["dims"]:])


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if args["dims"] > len(ins[0]):
        raise ShapeError(f"rms_norm over the last {args['dims']} dims of a {len(ins[0])}-D sample {ins[0]}",
                         hint="the batch is never normalised over: dims is at most the sample's rank")
    return ins[0]


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.RMSNorm(_normalized(args, ins), args["eps"], args["elementwise_affine"])


def _mixes(args: Args, rank: int) -> tuple[int, ...]:
    return tuple(range(max(rank - args["dims"], 0), rank))  # the normalised dims


def scratch(args: Args, ins: Sequence[Shape], out: Shape, batch: int, size: int) -> Any:
    """x.pow(2), its mean per row and the rsqrt; affine: x * rsqrt before the weight multiplies it."""
    rows = prod(out[:len(out) - args["dims"]])
    return batch * (prod(out) + rows if args["elementwise_affine"] else 2 * rows) * size


register(Block("rms_norm", "rms_norm: x / sqrt(mean(x^2) + eps) over the last `dims` dims, times a learned scale "
               "(torch.nn.RMSNorm).", PARAMS, shape, build=build,
               count_params=lambda a, s: prod(_normalized(a, s)) if a["elementwise_affine"] else 0,
               other_ops=elementwise, category="norm", mixes=_mixes, scratch=scratch))
