"""Layout ops: flatten, reshape, permute, transpose, select. Dimension numbers follow torch (0 = batch)."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.registry import register
from archc.errors import ShapeError


def _axis(d: int, rank: int, what: str) -> int:
    """Map a torch dim (batch = 0, negatives allowed) to an index into our batch-less shape."""
    full = d + rank + 1 if d < 0 else d
    if not 1 <= full <= rank:
        raise ShapeError(f"{what} {d} is out of range for a {rank}-D sample (dims 1..{rank}; 0 is the batch)")
    return full - 1


def flatten_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    s = ins[0]
    a, b = _axis(args["start_dim"], len(s), "start_dim"), _axis(args["end_dim"], len(s), "end_dim")
    if a > b:
        raise ShapeError("start_dim comes after end_dim")
    return (*s[:a], prod(s[a:b + 1]), *s[b + 1:])


def reshape_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    target, total = list(args["shape"]), prod(ins[0])
    if target.count(-1) > 1 or any(t == 0 or t < -1 for t in target):
        raise ShapeError(f"bad target shape {target}", hint="use positive sizes and at most one -1")
    known = prod(t for t in target if t != -1)
    if -1 in target:
        if total % known:
            raise ShapeError(f"cannot reshape {ins[0]} ({total} values) into {target}")
        target[target.index(-1)] = total // known
    if prod(target) != total:
        raise ShapeError(f"cannot reshape {ins[0]} ({total} values) into {tuple(target)} ({prod(target)} values)")
    return tuple(target)


def permute_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    dims, rank = list(args["dims"]), len(ins[0])
    if sorted(dims) != list(range(rank + 1)) or dims[0] != 0:
        raise ShapeError(f"dims {dims} must be a permutation of 0..{rank} that keeps the batch (0) first")
    return tuple(ins[0][d - 1] for d in dims[1:])


def transpose_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    s = list(ins[0])
    a, b = _axis(args["dim0"], len(s), "dim0"), _axis(args["dim1"], len(s), "dim1")
    s[a], s[b] = s[b], s[a]
    return tuple(s)


def select_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    s = ins[0]
    a = _axis(args["dim"], len(s), "dim")
    if not -s[a] <= args["index"] < s[a]:
        raise ShapeError(f"index {args['index']} is out of range for size {s[a]}")
    return (*s[:a], *s[a + 1:])


def unflatten_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    s = ins[0]
    a = _axis(args["dim"], len(s), "dim")
    sizes = list(args["sizes"])
    known = prod(n for n in sizes if n != -1)
    if sizes.count(-1) > 1 or any(n == 0 or n < -1 for n in sizes) or s[a] % known:
        raise ShapeError(f"cannot split size {s[a]} into {sizes}")
    if -1 in sizes:
        sizes[sizes.index(-1)] = s[a] // known
    if prod(sizes) != s[a]:
        raise ShapeError(f"cannot split size {s[a]} into {sizes} ({prod(sizes)} values)")
    return (*s[:a], *sizes, *s[a + 1:])


def _fn(name: str) -> Any:
    def function(args: Args) -> tuple[Any, dict[str, Any]]:
        import torch

        from archc.blocks.nn import modules

        table: dict[str, tuple[Any, dict[str, Any]]] = {
                 "flatten": (torch.flatten, {"start_dim": args.get("start_dim"), "end_dim": args.get("end_dim")}),
                 "reshape": (modules.reshape, {"shape": tuple(args.get("shape", ()))}),
                 "permute": (torch.permute, {"dims": tuple(args.get("dims", ()))}),
                 "transpose": (torch.transpose, {"dim0": args.get("dim0"), "dim1": args.get("dim1")}),
                 "select": (torch.select, {"dim": args.get("dim"), "index": args.get("index")}),
                 "unflatten": (torch.unflatten, {"dim": args.get("dim"), "sizes": tuple(args.get("sizes", ()))})}
        return table[name]

    return function


for _name, _params, _shape, _doc in (
    ("flatten", {"start_dim": Param("int", 1), "end_dim": Param("int", -1)}, flatten_shape,
     "flatten: merge dims start_dim..end_dim (torch.flatten)."),
    ("reshape", {"shape": Param("ints")}, reshape_shape, "reshape: view each sample as `shape` (batch kept)."),
    ("permute", {"dims": Param("ints")}, permute_shape, "permute: reorder dims; dims[0] must be 0 (batch)."),
    ("transpose", {"dim0": Param("int"), "dim1": Param("int")}, transpose_shape, "transpose: swap two dims."),
    ("unflatten", {"dim": Param("int"), "sizes": Param("ints")}, unflatten_shape,
     "unflatten: split one dim into several, e.g. channels into (anchors, 5 + classes)."),
    ("select", {"dim": Param("int"), "index": Param("int")}, select_shape,
     "select: take one index along dim, dropping it (e.g. the class token)."),
):
    register(Block(_name, _doc, _params, _shape, kind="function", function=_fn(_name), category="layout",
                   tags=frozenset({"alias", "view"})))  # views share their input's storage
