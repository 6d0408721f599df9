"""arange: a constant vector (N,), torch.arange(start, end, step); without `end`, N is the size of the
input's dim `dim` (any input size, symbolic too) and the values are start + k * step.

Only the input's size is read (see grid.py): computed in the forward in the input's floating dtype,
stored nowhere. Its length is known before anything is allocated: one over the activation limit
(`--max-activation`) is a located error, like any other tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.reduce import sample_axis
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {
    "end": Param("float|none", None, doc="exclusive end, as torch.arange; null: the size of the input's dim"),
    "start": Param("float", 0.0),
    "step": Param("float", 1.0),
    "dim": Param("int", -1, doc="without end: the input dim (torch numbering, not the batch) giving N"),
}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    start, step, end = args["start"], args["step"], args["end"]
    if step == 0:
        raise ShapeError("arange with step 0 never ends", hint="a positive or negative step")
    if end is None:
        return (ins[0][sample_axis(args["dim"], len(ins[0]), "arange")],)
    n = ceil((end - start) / step)  # torch's length (computed in double, as here)
    if n < 1:
        raise ShapeError(f"arange({start}, {end}, {step}) is empty",
                         hint="end must lie after start in the direction of step")
    return (n,)


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    from archc.blocks.nn.modules import arange_like

    end = args["end"]
    return arange_like, {"start": float(args["start"]), "step": float(args["step"]),
                         "end": None if end is None else float(end), "dim": args["dim"]}


def other_ops(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return out[0]


register(Block("arange", "arange: a constant (N,) = torch.arange(start, end, step); with end null, N = the input's "
               "size along dim and the values start + k * step.", PARAMS, shape, kind="function",
               function=function, other_ops=other_ops, category="constant"))
