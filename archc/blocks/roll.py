"""roll: shift elements circularly along dims (torch.roll); dims is required (torch would roll the
flattened tensor, batch included, without it) and cannot name the batch (0)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.reduce import sample_axis
from archc.blocks.registry import register
from archc.errors import ShapeError


def _as_list(v: int | list[int]) -> list[int]:
    return [v] if isinstance(v, int) else list(v)


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    shifts, dims = _as_list(args["shifts"]), _as_list(args["dims"])
    if not dims or len(shifts) != len(dims):
        raise ShapeError(f"shifts {args['shifts']} and dims {args['dims']} must have the same, non-zero length",
                         hint="one shift per dim, e.g. shifts: [1, -1], dims: [2, 3]")
    for d in dims:
        sample_axis(d, len(ins[0]), "roll")
    return ins[0]


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    import torch

    return torch.roll, {"shifts": tuple(_as_list(args["shifts"])), "dims": tuple(_as_list(args["dims"]))}


register(Block("roll", "roll: shift circularly by `shifts` along `dims` (torch.roll; the batch stays put).",
               {"shifts": Param("int|ints"), "dims": Param("int|ints")}, shape, kind="function", function=function,
               category="layout"))
