"""pad: pad (or, with negative amounts, crop) the last dims as torch.nn.functional.pad does.

`pad` lists (left, right) pairs starting from the last dim: [1, 1] pads the last dim, [l, r, t, b]
the last two. Modes: constant (with `value`), reflect, replicate, circular. torch pads the last 1-3
dims in the non-constant modes, and only as many as the sample has (k or k - 1 sample dims for k
padded ones). Negative pads crop, in every mode, and every mode needs a non-empty result. Beyond
that, as torch (its refusals and its silent garbage, swept in tests/test_windows.py): constant
crops at most the size; replicate clamps indices into the input, so any crop works; reflect
mirrors the input, each pad below its size; circular crops first and wraps what is left, which
must be non-empty and at least each pad.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {"pad": Param("ints", doc="(left, right) pairs, last dim first"),
          "mode": Param("str", "constant", choices=("constant", "reflect", "replicate", "circular")),
          "value": Param("float|none", None, doc="fill value of the constant mode (default 0)")}


def _check_mode(args: Args, k: int, rank: int) -> None:
    mode = args["mode"]
    if mode == "constant":
        if k > rank:
            raise ShapeError(f"pad {args['pad']} pads {k} dims but a sample has only {rank}",
                             hint="the batch dim cannot be padded: give at most 2 values per sample dim")
        return
    if args["value"]:
        raise ShapeError(f"mode {mode} takes no value (torch refuses it)", hint="drop `value` or use mode: constant")
    valid = [n for n in (rank - 1, rank) if 1 <= n <= 3]
    if k not in valid:
        hint = f"pad {' or '.join(map(str, valid))} dims here" if valid else "use mode: constant"
        raise ShapeError(f"{mode} padding of {k} dims is not supported on a {rank}-D sample (torch pads the "
                         "last 1-3 dims: all the sample's dims or all but the first)", hint=hint)


def _axis_size(n: int, left: int, right: int, mode: str, dim: int) -> int:
    crop = -min(left, 0) - min(right, 0)
    if (crop >= n) if mode == "circular" else (crop > n and mode == "constant"):
        raise ShapeError(f"pads ({left}, {right}) crop {crop} of size {n} along dim {dim}, leaving nothing"
                         + (" to wrap around" if mode == "circular" else ""))
    if n + left + right < 1:
        raise ShapeError(f"pads ({left}, {right}) leave nothing of size {n} along dim {dim}")
    kept = n - crop if mode == "circular" else n  # circular wraps what the crop leaves
    for p in (left, right):
        if (mode == "reflect" and p >= n) or (mode == "circular" and p > kept):
            limit = "smaller than" if mode == "reflect" else "at most"
            what = f"the size {n}" if mode == "reflect" or not crop else f"the size left after cropping ({kept})"
            raise ShapeError(f"{mode} pad {p} along dim {dim} must be {limit} {what}",
                             hint="use a smaller pad, mode replicate or constant, or a larger input")
    return n + left + right


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    s, pad = list(ins[0]), list(args["pad"])
    if not pad or len(pad) % 2:
        raise ShapeError(f"pad {pad} must hold (left, right) pairs: an even, non-zero count of integers")
    k = len(pad) // 2
    _check_mode(args, k, len(s))
    for i in range(k):
        axis = len(s) - 1 - i
        s[axis] = _axis_size(s[axis], pad[2 * i], pad[2 * i + 1], args["mode"], axis + 1)
    return tuple(s)


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    from torch.nn import functional

    kwargs: dict[str, Any] = {"pad": tuple(args["pad"]), "mode": args["mode"]}
    if args["mode"] == "constant" and args["value"] is not None:
        kwargs["value"] = float(args["value"])
    return functional.pad, kwargs


register(Block("pad", "pad: pad (or crop, negative) the last dims; modes constant/reflect/replicate/circular.",
               PARAMS, shape, kind="function", function=function, category="layout"))
