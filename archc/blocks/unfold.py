"""unfold and fold (torch.nn.Unfold / nn.Fold): sliding blocks of a (C, H, W) map as columns, and back.

unfold gives (C * kh * kw, L), L the number of blocks (a convolution's output size per axis); a block
that reads only zero padding is refused, as for conv2d. fold sums columns (C * kh * kw, L) back into a
(C, H, W) map of `output_size`, or of the size of a second input (a map whose H and W it takes, so a
MobileViT-style unfold/fold pair works at any input size); L must be the number of blocks, and every
output pixel must receive a block (torch leaves the others 0), as conv_transpose2d refuses outputs that
no input reaches. Their receptive-field rules are those of a convolution and a transposed convolution.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from fractions import Fraction
from math import prod
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window, conv_size, need_rank, pair
from archc.blocks.conv_transpose2d import _uncovered
from archc.blocks.registry import register
from archc.errors import ShapeError

WINDOW = {
    "kernel_size": Param("int2", min=1),
    "dilation": Param("int2", 1, min=1),
    "padding": Param("int2", 0, min=0),
    "stride": Param("int2", 1, min=1),
}
_AXES = ("H", "W")
_COVER_HINT = ("every output pixel must receive a block (torch leaves the others 0): use a kernel that spans the "
               "stride, and an output size the blocks reach (e.g. a multiple of the patch size)")


def _geometry(args: Args) -> list[tuple[int, int, int, int]]:
    """(kernel, stride, padding, dilation) per axis."""
    return list(zip(*(pair(args[n]) for n in ("kernel_size", "stride", "padding", "dilation"))))


def unfold_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 3, "unfold")
    c, *hw = ins[0]
    geo = _geometry(args)
    blocks = [conv_size(n, k, s, p, d, what="window", axis=axis) for n, (k, s, p, d), axis in zip(hw, geo, _AXES)]
    return (c * geo[0][0] * geo[1][0], blocks[0] * blocks[1])


def _window(args: Args, ins: Sequence[Shape], out: Shape) -> Window:
    k, s, p, d = _geometry(args)[0]
    return Window(Fraction(d * (k - 1) + 1), Fraction(s), p)


def unfold_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    from torch.nn import functional

    return functional.unfold, {n: pair(args[n]) for n in WINDOW}


# ---- fold ------------------------------------------------------------------------------------------

def _fold_fits(v: int, k: int, s: int, p: int, d: int) -> bool:
    """Whether an output of size v along one axis has blocks and every pixel receives one. Blocks are a
    transposed convolution's inputs: nb of them, output_padding the remainder (conv_transpose2d)."""
    num = v + 2 * p - d * (k - 1) - 1
    if num < 0:
        return False
    nb = num // s + 1
    return _uncovered(nb, k, s, p, num - (nb - 1) * s, d) is None


def _check_fold_size(n: Any, k: int, s: int, p: int, d: int, axis: str) -> None:
    """Refuse an output size along ``axis`` that has no block or a pixel no block reaches. On a symbolic
    size: past ``base`` the answer depends on n % s only (both ends lie apart), so the guards are the
    bad residues and the few small sizes that differ from their residue's answer."""
    def fail() -> ShapeError:
        return ShapeError(f"fold output size {n} along {axis}: no blocks, or pixels that no block reaches "
                          f"(kernel {k}, stride {s}, padding {p}, dilation {d})", hint=_COVER_HINT)

    if isinstance(n, int):
        if not _fold_fits(n, k, s, p, d):
            raise fail()
        return
    base = 2 * p + d * (k - 1) + s * (d * k // s + 4)
    good = {r: _fold_fits(base + (r - base) % s, k, s, p, d) for r in range(s)}
    odd = [v for v in range(1, base) if _fold_fits(v, k, s, p, d) != good[v % s]]
    if len(odd) > 16:  # not a few exceptions: the analysis samples this node instead
        operator.index(n)
    for v in odd:
        if n == v:
            if good[v % s]:
                raise fail()
            return
    for r, fits in good.items():
        if not fits and n % s == r:
            raise fail()


def fold_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    x = ins[0]
    if len(x) != 2:
        raise ShapeError(f"fold expects columns (C * kh * kw, L) per sample, got {x}", hint="unfold gives them")
    if args["output_size"] is None:
        if len(ins) != 2:
            raise ShapeError("fold needs `output_size` or a second input (a map whose H and W it takes)",
                             hint="e.g. `in: [cols, x]` with x the map before unfold")
        need_rank(ins[1], 3, "fold's size input")
        out = tuple(ins[1][1:])
    else:
        if len(ins) != 1:
            raise ShapeError("fold takes `output_size` or a second input, not both",
                             hint="drop `output_size:` to take the second input's H and W")
        out = pair(args["output_size"])
    geo = _geometry(args)
    kk = geo[0][0] * geo[1][0]
    if x[0] % kk != 0:
        raise ShapeError(f"fold: {x[0]} rows are not a multiple of the kernel's {kk} positions",
                         hint="the columns hold C * kh * kw rows")
    blocks = []
    for n, (k, s, p, d), axis in zip(out, geo, _AXES):
        _check_fold_size(n, k, s, p, d, axis)
        blocks.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
    if x[1] != blocks[0] * blocks[1]:
        raise ShapeError(f"fold into {out} takes {blocks[0]} x {blocks[1]} blocks, but the columns hold {x[1]}",
                         hint="output_size, kernel, stride, padding and dilation must be unfold's")
    return (x[0] // kk, *out)


def _fold_window(args: Args, ins: Sequence[Shape], out: Shape) -> Window:
    k, s, _, d = _geometry(args)[0]
    return Window(Fraction(d * (k - 1), s) + 1, Fraction(1, s), 0)


def fold_to(x: Any, ref: Any, kernel_size: Any = 1, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> Any:
    """nn.Fold to the H and W of ``ref`` (self-contained: export copies it)."""
    from torch.nn import functional

    return functional.fold(x, ref.shape[-2:], kernel_size, dilation, padding, stride)


def fold_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    from torch.nn import functional

    window = {n: pair(args[n]) for n in WINDOW}
    if args["output_size"] is None:
        return fold_to, window
    return functional.fold, {"output_size": pair(args["output_size"]), **window}


register(Block("unfold", "unfold: the sliding kh x kw blocks of a (C, H, W) map as columns (C * kh * kw, L) "
               "(torch.nn.Unfold).", WINDOW, unfold_shape, kind="function", function=unfold_fn, window=_window,
               category="layout", tags=frozenset({"resized"})))
register(Block("fold", "fold: sum columns (C * kh * kw, L) back into a (C, H, W) map of output_size, or of a second "
               "input's H and W (torch.nn.Fold).",
               {**WINDOW, "output_size": Param("int2", None, choices=(None,), min=1)},
               fold_shape, kind="function", function=fold_fn, other_ops=lambda a, s, o: prod(s[0]), arity=(1, 2),
               window=_fold_window, category="layout", tags=frozenset({"resized"})))
