"""Layout ops: flatten, reshape, permute, transpose, select. Dimension numbers follow torch (0 = batch)."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

from archc.blocks.base import Args, Block, Layout, Param, Shape, Strides, positional
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


# -- facts (blocks/README.md): a view's output strides (batch first, as torch computes them) and where a layout
# op moves the positions of a map's rows and columns (batch-less dims, for the summary's receptive fields)
def _dim(d: int, rank: int) -> int:
    """A torch dim (negatives from the end) as an index into a batch-first shape of ``rank`` dims."""
    return d + rank if d < 0 else d


def _at(d: int, rank: int) -> int:
    """A torch dim (0 = batch, negatives from the end) as an index into a batch-less layout of ``rank`` dims."""
    return (d + rank + 1 if d < 0 else d) - 1


def _reshaped(args: Args, strides: Strides, sizes: Shape, out: Shape) -> Strides | None:
    return None  # torch's view rule: a view where the strides allow one, else a copy


def _flatten_view(args: Args, strides: Strides, sizes: Shape, out: Shape) -> Strides | None:
    same = _dim(args["start_dim"], len(strides)) == _dim(args["end_dim"], len(strides))
    return strides if same else None  # torch.flatten of one dim returns its input


def _permute_view(args: Args, strides: Strides, sizes: Shape, out: Shape) -> Strides | None:
    return tuple(strides[d] for d in args["dims"])


def _transpose_view(args: Args, strides: Strides, sizes: Shape, out: Shape) -> Strides | None:
    a, b = _dim(args["dim0"], len(strides)), _dim(args["dim1"], len(strides))
    swapped = list(strides)
    swapped[a], swapped[b] = strides[b], strides[a]
    return tuple(swapped)


def _select_view(args: Args, strides: Strides, sizes: Shape, out: Shape) -> Strides | None:
    a = _dim(args["dim"], len(strides))
    return strides[:a] + strides[a + 1:]


def regroup(parts: list[tuple[str, int]], sizes: Shape) -> Layout | None:
    """Consecutive parts grouped into dims of ``sizes`` (a channel part may split); None where a row or column
    axis would be cut (the elements' positions no longer follow the layout)."""
    todo = [p for p in parts if p[1] != 1]
    out: list[tuple[tuple[str, int], ...]] = []
    for size in sizes:
        dim: list[tuple[str, int]] = []
        n = 1
        while n < size:
            if not todo:
                return None
            axis, m = todo[0]
            if size % (n * m) == 0:
                dim.append(todo.pop(0))
                n *= m
            elif axis == "c" and size % n == 0 and m % (size // n) == 0:
                dim.append(("c", size // n))
                todo[0] = ("c", m // (size // n))
                n = size
            else:
                return None
        out.append(tuple(dim))
    return tuple(out) if not todo else None


def _flatten_layout(args: Args, dims: Layout, out: Shape) -> Layout | None:
    a, b = _at(args["start_dim"], len(dims)), _at(args["end_dim"], len(dims))
    return (*dims[:a], tuple(p for d in dims[a:b + 1] for p in d), *dims[b + 1:])


def _unflatten_layout(args: Args, dims: Layout, out: Shape) -> Layout | None:
    a = _at(args["dim"], len(dims))
    k = len(args["sizes"])
    inner = regroup(list(dims[a]), out[a:a + k])
    return None if inner is None else (*dims[:a], *inner, *dims[a + 1:])


def _select_layout(args: Args, dims: Layout, out: Shape) -> Layout | None:
    a = _at(args["dim"], len(dims))  # one index of a dim that holds no position
    return None if positional(dims[a]) else (*dims[:a], *dims[a + 1:])


def _permute_layout(args: Args, dims: Layout, out: Shape) -> Layout | None:
    return tuple(dims[d - 1] for d in args["dims"][1:])


def _transpose_layout(args: Args, dims: Layout, out: Shape) -> Layout | None:
    a, b = _at(args["dim0"], len(dims)), _at(args["dim1"], len(dims))
    swapped = list(dims)
    swapped[a], swapped[b] = swapped[b], swapped[a]
    return tuple(swapped)


def _reshape_layout(args: Args, dims: Layout, out: Shape) -> Layout | None:
    return regroup([p for d in dims for p in d], out)


for _name, _params, _shape, _doc, _view, _layout in (
    ("flatten", {"start_dim": Param("int", 1), "end_dim": Param("int", -1)}, flatten_shape,
     "flatten: merge dims start_dim..end_dim (torch.flatten).", _flatten_view, _flatten_layout),
    ("reshape", {"shape": Param("ints")}, reshape_shape, "reshape: view each sample as `shape` (batch kept).",
     _reshaped, _reshape_layout),
    ("permute", {"dims": Param("ints")}, permute_shape, "permute: reorder dims; dims[0] must be 0 (batch).",
     _permute_view, _permute_layout),
    ("transpose", {"dim0": Param("int"), "dim1": Param("int")}, transpose_shape, "transpose: swap two dims.",
     _transpose_view, _transpose_layout),
    ("unflatten", {"dim": Param("int"), "sizes": Param("ints")}, unflatten_shape,
     "unflatten: split one dim into several, e.g. channels into (anchors, 5 + classes).", _reshaped, _unflatten_layout),
    ("select", {"dim": Param("int"), "index": Param("int")}, select_shape,
     "select: take one index along dim, dropping it (e.g. the class token).", _select_view, _select_layout),
):
    register(Block(_name, _doc, _params, _shape, kind="function", function=_fn(_name), category="layout",
                   tags=frozenset({"alias", "view"}), view=_view, layout=_layout))  # views share their input's storage
