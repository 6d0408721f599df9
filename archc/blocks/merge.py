"""Multi-input ops: add and mul (with broadcasting), concat along a dim."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, common_size, elementwise
from archc.blocks.registry import register
from archc.blocks.reshape import _axis
from archc.errors import ShapeError


def _rank_hint(ins: Sequence[Shape]) -> str:
    """Why operands of different rank are refused, and what to write instead."""
    small, big = min(ins, key=len), max(ins, key=len)
    if len(small) == 1 and len(big) == 3 and small[0] == big[0]:
        return (f"{small} is a per-channel vector: keep it ({small[0]}, 1, 1) so it scales the channels "
                "(adaptive_avg_pool2d without flatten, or `unflatten` with sizes [-1, 1, 1])")
    return (f"give both the same rank, e.g. {small} as {(*small, *[1] * (len(big) - len(small)))} "
            "(`unflatten` or `reshape`)")


def broadcast(args: Args, ins: Sequence[Shape]) -> Shape:
    """Torch's broadcasting with the batch dimension in front of every operand.

    Operands of different rank are refused: torch would align the smaller one's batch with a
    feature axis of the other and mix samples (or crash at another batch size).
    """
    rank = len(ins[0])
    if any(len(s) != rank for s in ins):
        raise ShapeError(f"cannot combine shapes {' and '.join(str(s) for s in ins)} of different rank: "
                         "with the batch in front, torch would align the batch with a feature axis",
                         hint=_rank_hint(ins))
    out = []
    for i in range(rank):
        size = common_size([s[i] for s in ins])
        if size is None:
            shapes = " and ".join(str(s) for s in ins)
            hint = None
            if i == 0 and rank == 3:
                hint = (f"the inputs have {' and '.join(str(s[0]) for s in ins)} channels: "
                        "add a downsample (1x1 conv + batchnorm) on the skip, or match out_channels?")
            elif rank == 3:
                hint = "the spatial sizes differ: check the strides of both branches"
            raise ShapeError(f"cannot combine shapes {shapes}", hint=hint)
        out.append(size)
    return tuple(out)


def concat_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    rank = len(ins[0])
    if any(len(s) != rank for s in ins):
        raise ShapeError(f"concat needs inputs of equal rank, got {', '.join(map(str, ins))}")
    a = _axis(args["dim"], rank, "dim")
    for s in ins[1:]:
        if any(s[i] != ins[0][i] for i in range(rank) if i != a):
            raise ShapeError(f"concat along dim {args['dim']}: shapes {ins[0]} and {s} differ on another axis",
                             hint="resize one input (e.g. `resize_to`) or fix the padding/strides")
    return (*ins[0][:a], sum(s[a] for s in ins), *ins[0][a + 1:])


def _binary(fn: Any) -> Any:
    def function(args: Args) -> tuple[Any, dict[str, Any]]:
        return fn, {}

    return function


def _concat(args: Args) -> tuple[Any, dict[str, Any]]:
    import torch

    return torch.cat, {"dim": args["dim"]}


register(Block("add", "add: element-wise sum of two or more inputs (broadcasting).", {}, broadcast,
               kind="function", function=_binary(operator.add), other_ops=elementwise, arity=(2, None),
               category="merge", tags=frozenset({"elementwise", "broadcast"})))
register(Block("mul", "mul: element-wise product of two or more inputs (broadcasting, e.g. attention gates).", {},
               broadcast, kind="function", function=_binary(operator.mul), other_ops=elementwise,
               arity=(2, None), category="merge",
               tags=frozenset({"elementwise", "broadcast"})))
register(Block("concat", "concat: join inputs along dim (default 1, the channels).", {"dim": Param("int", 1)},
               concat_shape, kind="function", function=_concat, arity=(2, None), category="merge",
               tags=frozenset({"list_input"})))


def _identity(args: Args) -> tuple[Any, dict[str, Any]]:
    from archc.blocks.nn.modules import identity

    return identity, {}


register(Block("identity", "identity: pass the input through unchanged (a named tap point).", {},
               lambda a, s: s[0], kind="function", function=_identity, category="layout",
               tags=frozenset({"alias", "view", "pass_through"})))
