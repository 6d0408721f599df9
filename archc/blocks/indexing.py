"""Indexing: slice (narrow with a step), index_select, gather, masked_fill and where.

Dims are torch dim numbers (0 = the batch, refused). archc's values are floating tensors, so an index
input holds integers in floating point (the constants `arange`, `full`, ... give them): it is converted
with `.long()` in the forward, the size of the output (tag `indices`: memory counts it). Its values
are not known statically: out-of-range ones are refused by torch when the model runs. A mask or
condition input is true where it is non-zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from math import prod
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window, elementwise
from archc.blocks.merge import broadcast
from archc.blocks.reduce import sample_axis
from archc.blocks.registry import register
from archc.errors import ShapeError


def _inputs(ins: Sequence[Shape], n: int, op: str) -> None:
    if len(ins) != n:  # resolve checks the arity first; this guards direct calls of the rule
        raise ShapeError(f"{op} takes {n} inputs here, got {len(ins)}")


def _spatial(args: Args, ins: Sequence[Shape], op: str) -> bool:
    """Whether dim is H or W of a (C, H, W) map."""
    return len(ins[0]) == 3 and sample_axis(args["dim"], 3, op) > 0


# ---- slice -----------------------------------------------------------------------------------------

def _clamp(v: int | None, n: Any, default: Any) -> Any:
    """A slice bound as torch reads it: negatives count from the end, then clamped to [0, n]."""
    if v is None:
        return default
    if v < 0:
        v = v + n
        return v if v > 0 else 0
    return v if v < n else n


def slice_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    s = ins[0]
    a = sample_axis(args["dim"], len(s), "slice")
    n, step = s[a], args["step"]
    start, end = _clamp(args["start"], n, 0), _clamp(args["end"], n, n)
    if end <= start:
        raise ShapeError(f"slice [{args['start']}:{args['end']}:{step}] of a size-{n} dim is empty",
                         hint="start must come before end (negative values count from the end)")
    return (*s[:a], (end - start + step - 1) // step, *s[a + 1:])


def slice_window(args: Args, ins: Sequence[Shape], out: Shape) -> Window:
    """A step along H moves the field's jump like a stride (W and the channels: pointwise)."""
    if len(ins[0]) == 3 and sample_axis(args["dim"], 3, "slice") == 1:
        return Window(stride=Fraction(args["step"]))
    return Window()


def slice_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    import torch

    return torch.slice_copy, {"dim": args["dim"], "start": args["start"], "end": args["end"], "step": args["step"]}


# ---- index_select ----------------------------------------------------------------------------------

def index_select_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    s, index = ins[0], args["index"]
    a = sample_axis(args["dim"], len(s), "index_select")
    if index is None:
        if len(ins) != 2:
            raise ShapeError("index_select needs `index` (a list) or a second input holding the indices",
                             hint="e.g. `index: [2, 0, 1]`, or `in: [x, idx]` with idx a (K,) vector per sample")
        if len(ins[1]) != 1:
            raise ShapeError(f"the index input must be a vector (K,) per sample, got {ins[1]}",
                             hint="flatten it first (`flatten`)")
        k = ins[1][0]
    else:
        if len(ins) != 1:
            raise ShapeError("index_select takes `index` or a second input, not both",
                             hint="drop `index:` to read the indices from the second input")
        if not index:
            raise ShapeError("index [] selects nothing", hint="list at least one index")
        bad = [i for i in index if i < 0 or i >= s[a]]
        if bad:
            raise ShapeError(f"index {bad[0]} is out of range for size {s[a]} along dim {args['dim']}",
                             hint="indices run from 0 to size - 1 (torch.index_select takes no negative ones)")
        k = len(index)
    return (*s[:a], k, *s[a + 1:])


def index_select_by(x: Any, index: Any = None, dim: int = 1, values: list[int] | None = None) -> Any:
    """x.index_select per sample: the (B, K) index input (or the list `values`), as int64 of the output's
    size, then gather (self-contained: export copies it)."""
    import torch

    d = dim % x.dim()
    k = len(values) if values is not None else index.shape[1]
    out = [x.shape[i] if i != d else k for i in range(x.dim())]
    if values is None:
        view = [1] * x.dim()
        view[0], view[d] = x.shape[0], k
        return torch.gather(x, d, index.reshape(view).expand(out).long())
    full = torch.empty(out, dtype=torch.long, device=x.device)
    for j, v in enumerate(values):  # one slice at a time: no list-sized tensor beside the output-sized one
        full.narrow(d, j, 1).fill_(v)
    return torch.gather(x, d, full)


def index_select_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    if args["index"] is None:
        return index_select_by, {"dim": args["dim"]}
    return index_select_by, {"dim": args["dim"], "values": list(args["index"])}


def _picks_window(op: str) -> Any:
    def window(args: Args, ins: Sequence[Shape], out: Shape) -> Window | None:
        """Indices pick any position: along H or W every output may see the whole axis."""
        return None if _spatial(args, ins, op) else Window()

    return window


# ---- gather ----------------------------------------------------------------------------------------

def gather_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    _inputs(ins, 2, "gather")
    s, index = ins
    a = sample_axis(args["dim"], len(s), "gather")
    if len(index) != len(s):
        raise ShapeError(f"gather's index {index} must have the input's rank ({len(s)}-D like {s})",
                         hint="torch.gather needs an index of the input's rank: unflatten or reshape it")
    for i, (m, n) in enumerate(zip(index, s)):
        if i != a and m > n:
            raise ShapeError(f"gather's index {index} is larger than the input {s} on dim {i + 1}",
                             hint="apart from dim, the index may be at most the input's size")
    return tuple(index)


def gather_by(x: Any, index: Any, dim: int) -> Any:
    """torch.gather with a floating index input (self-contained: export copies it)."""
    import torch

    return torch.gather(x, dim, index.long())


def gather_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    return gather_by, {"dim": args["dim"]}


# ---- masked_fill, where ----------------------------------------------------------------------------

def masked_fill_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    _inputs(ins, 2, "masked_fill")
    return broadcast(args, ins)


def masked_fill_by(x: Any, mask: Any, value: float) -> Any:
    """x with `value` where mask is non-zero (self-contained: export copies it)."""
    return x.masked_fill(mask != 0, value)


def where_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if args["other"] is None and len(ins) != 3:
        raise ShapeError(f"where takes (condition, input, other) or `other:` as a number, got {len(ins)} inputs",
                         hint="give a third input, or `other: 0.0`")
    if args["other"] is not None and len(ins) != 2:
        raise ShapeError(f"where with `other: {args['other']}` takes (condition, input), got {len(ins)} inputs",
                         hint="drop `other:` to read it from a third input")
    return broadcast(args, ins)


def where_by(inputs: list[Any], value: float = 0.0) -> Any:
    """torch.where(condition != 0, x, other), other the third input or `value` (self-contained: export
    copies it); the inputs come as one list (tag list_input), as the builder folds other functions."""
    import torch

    return torch.where(inputs[0] != 0, inputs[1], inputs[2] if len(inputs) > 2 else value)


def where_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    return (where_by, {} if args["other"] is None else {"value": float(args["other"])})


def masked_fill_scratch(args: Args, ins: Sequence[Shape], out: Shape, batch: int, size: int) -> Any:
    return batch * prod(ins[1])  # mask != 0 (bool)


def where_scratch(args: Args, ins: Sequence[Shape], out: Shape, batch: int, size: int) -> Any:
    return batch * prod(ins[0]) + (size if len(ins) < 3 else 0)  # condition != 0, and `other` as a 0-dim tensor


_DIM = {"dim": Param("int", doc="the torch dim (not the batch)")}

register(Block("slice", "slice: x[start:end:step] along dim (torch.narrow with a step; negatives count from the end; "
               "a copy).", {**_DIM, "start": Param("int", None, choices=(None,)),
                            "end": Param("int", None, choices=(None,)), "step": Param("int", 1, min=1)},
               slice_shape, kind="function", function=slice_fn, window=slice_window, category="layout"))
register(Block("index_select", "index_select: the positions `index` (a list) or a second input (K,) holds, "
               "along dim (torch.index_select per sample).",
               {**_DIM, "index": Param("ints", None, choices=(None,), doc="constant indices; null: input 1")},
               index_select_shape, kind="function", function=index_select_fn, arity=(1, 2),
               window=_picks_window("index_select"), category="layout", tags=frozenset({"indices"})))
register(Block("gather", "gather: torch.gather(input, dim, index) with the index from a second input of the "
               "input's rank.", dict(_DIM), gather_shape, kind="function", function=gather_fn, arity=(2, 2),
               window=_picks_window("gather"), category="layout", tags=frozenset({"indices"})))
register(Block("masked_fill", "masked_fill: the input with `value` where the second input (the mask) is non-zero "
               "(broadcasting like add).", {"value": Param("float")}, masked_fill_shape, kind="function",
               function=lambda a: (masked_fill_by, {"value": float(a["value"])}), other_ops=elementwise,
               arity=(2, 2), category="merge", tags=frozenset({"elementwise"}), scratch=masked_fill_scratch))
register(Block("where", "where: input 1 where input 0 (the condition) is non-zero, else input 2 or the number "
               "`other` (torch.where, broadcasting).", {"other": Param("float|none", None)}, where_shape,
               kind="function", function=where_fn, other_ops=elementwise, arity=(2, 3), category="merge",
               tags=frozenset({"elementwise", "list_input"}), scratch=where_scratch))
