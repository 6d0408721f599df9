"""Reductions over dims: mean, sum, amax, amin (torch.mean, ...), with `keepdim` as in torch.

`dim` is one torch dim or a list of them (0 is the batch and cannot be reduced, negatives count
from the end); reducing every non-batch dim gives one value per sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window, elementwise
from archc.blocks.registry import register
from archc.blocks.reshape import _axis
from archc.errors import ShapeError

PARAMS = {"dim": Param("int|ints", doc="dim or dims to reduce (1..rank; 0 is the batch)"),
          "keepdim": Param("bool", False)}


def sample_axis(d: int, rank: int, op: str) -> int:
    """Like reshape's ``_axis``, with its own message for the batch dim, which would mix samples."""
    if d in (0, -rank - 1):
        dims = "dim 1 (or -1)" if rank == 1 else f"dims 1..{rank} (or -1..-{rank} from the end)"
        raise ShapeError(f"{op} along dim {d}, the batch, would mix the samples of a batch",
                         hint=f"a {rank}-D sample has {dims}; shapes here leave out the batch")
    return _axis(d, rank, "dim")


def reduced_axes(dim: int | list[int], shape: Shape, op: str) -> list[int]:
    """Indices into the batch-less shape of the dims to reduce; duplicates and the batch refused."""
    dims = [dim] if isinstance(dim, int) else list(dim)
    if not dims:
        raise ShapeError("dim is an empty list: torch would reduce every dim, the batch included",
                         hint=f"list the dims to reduce, e.g. {list(range(1, len(shape) + 1))} for all but the batch")
    axes = [sample_axis(d, len(shape), op) for d in dims]
    if len(set(axes)) != len(axes):
        raise ShapeError(f"dim {dims} names the same dim twice")
    return axes


def _shape(op: str) -> Any:
    def shape(args: Args, ins: Sequence[Shape]) -> Shape:
        s = ins[0]
        axes = set(reduced_axes(args["dim"], s, op))
        if args["keepdim"]:
            return tuple(1 if i in axes else n for i, n in enumerate(s))
        return tuple(n for i, n in enumerate(s) if i not in axes)

    return shape


def window(args: Args, ins: Sequence[Shape], out: Shape) -> Window | None:
    """Reducing a spatial axis of a (C, H, W) map mixes the whole map; over channels it is pointwise."""
    if len(ins[0]) == 3 and set(reduced_axes(args["dim"], ins[0], "reducing")) - {0}:
        return None
    return Window()


def _torch_fn(name: str) -> Any:
    def function(args: Args) -> tuple[Any, dict[str, Any]]:
        import torch

        dim = args["dim"] if isinstance(args["dim"], int) else tuple(args["dim"])
        return getattr(torch, name), {"dim": dim, "keepdim": args["keepdim"]}

    return function


def _input_ops(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return elementwise(args, ins, ins[0])


# amax and amin find their gradient's positions by comparing input and output: autograd keeps both
for _name, _what in (("mean", "average"), ("sum", "sum"), ("amax", "maximum"), ("amin", "minimum")):
    register(Block(_name, f"{_name}: {_what} over dim (int or list; not the batch), keepdim as in torch.{_name}.",
                   PARAMS, _shape(_name), kind="function", function=_torch_fn(_name), other_ops=_input_ops,
                   window=window, category="pool",
                   tags=frozenset({"keeps_output"} if _name in ("amax", "amin") else set())))
