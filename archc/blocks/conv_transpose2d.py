"""conv_transpose2d: transposed 2-D convolution (learned upsampling).

Every output pixel must receive at least one input pixel: a stride wider than the kernel's taps
cover, or an output_padding past the padding, leaves outputs that hold the bias alone (torch
computes them without complaint); archc refuses those, as it refuses windows that read only padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window, need_rank, only_sizes, pair
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {
    "out_channels": Param("int", min=1),
    "kernel_size": Param("int2", min=1),
    "stride": Param("int2", 1, min=1),
    "padding": Param("int2", 0, min=0),
    "output_padding": Param("int2", 0, min=0),
    "groups": Param("int", 1, min=1),
    "bias": Param("bool", True),
    "dilation": Param("int2", 1, min=1),
}
_HINT = ("every output needs an input pixel (torch fills the others with the bias alone): use a kernel that spans "
         "the stride (kernel_size >= stride), and output_padding at most the padding")


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    need_rank(ins[0], 3, "conv_transpose2d")
    c, h, w = ins[0]
    g = args["groups"]
    if c % g or args["out_channels"] % g:
        raise ShapeError(f"groups={g} must divide input channels ({c}) and out_channels ({args['out_channels']})")
    k, s, p, op, d = (pair(args[n]) for n in ("kernel_size", "stride", "padding", "output_padding", "dilation"))
    for axis in range(2):
        if op[axis] >= max(s[axis], d[axis]):
            raise ShapeError(f"output_padding {op[axis]} must be smaller than the stride ({s[axis]}) or the "
                             f"dilation ({d[axis]})", hint="output_padding only picks among sizes a stride allows")
    size = [(n - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i, n in enumerate((h, w))]
    if any(n < 1 for n in size):
        raise ShapeError(f"output size {tuple(size)} is empty", hint="reduce padding")
    for i, (n, name) in enumerate(((h, "H"), (w, "W"))):
        _check_covered(n, k[i], s[i], p[i], op[i], d[i], name)
    return (args["out_channels"], size[0], size[1])


def _check_covered(n: Any, k: int, s: int, p: int, op: int, d: int, axis: str) -> None:
    """Refuse an output that no input pixel reaches; on a symbolic size, the sizes where one is."""
    if isinstance(n, int):
        y = _uncovered(n, k, s, p, op, d)
        if y is not None:
            raise ShapeError(f"output {y} along {axis} receives no input pixel (kernel {k}, stride {s}, dilation {d}, "
                             f"padding {p}, output_padding {op}, input size {n})", hint=_HINT)
        return

    def fits(v: int) -> bool:
        return (v - 1) * s - 2 * p + d * (k - 1) + op >= 0 and _uncovered(v, k, s, p, op, d) is None

    upto = (2 * p + d * (k - 1) + op) // s + 3  # from here on the answer no longer depends on the size
    only_sizes(n, fits, upto, fits(upto), why=lambda: ShapeError(
        f"at input size {n} along {axis} some output receives no input pixel", hint=_HINT))


def _uncovered(n: int, k: int, s: int, p: int, op: int, d: int) -> int | None:
    """The first output along one axis that no input pixel reaches, or None, in O(k) steps.

    Output y is position z = y + p of the unpadded result, which input i reaches through tap j
    when z = i·s + j·d: per residue of z modulo s, tap j covers [j·d, j·d + (n - 1)·s]."""
    lo, hi = p, (n - 1) * s + d * (k - 1) - p + op
    starts: dict[int, list[int]] = {}
    for j in range(k):
        starts.setdefault(j * d % s, []).append(j * d)
    first = None
    for z in range(lo, min(hi, lo + min(k, s - 1)) + 1):  # a residue no tap has: its first z lies in here
        if z % s not in starts:
            first = z
            break
    for r, taps in starts.items():
        z = lo + (r - lo) % s  # the first z with this residue not yet known to be covered
        for t in taps:
            if z < t:
                break
            z = max(z, t + n * s)
        if z <= hi and (first is None or z < first):
            first = z
    return None if first is None else first - lo


def count_params(args: Args, ins: Sequence[Shape]) -> int:
    kh, kw = pair(args["kernel_size"])
    c_out = args["out_channels"]
    return ins[0][0] * (c_out // args["groups"]) * kh * kw + (c_out if args["bias"] else 0)


def macs(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    kh, kw = pair(args["kernel_size"])
    c, h, w = ins[0]
    return c * h * w * (args["out_channels"] // args["groups"]) * kh * kw


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    return nn.ConvTranspose2d(ins[0][0], args["out_channels"], pair(args["kernel_size"]), pair(args["stride"]),
                              pair(args["padding"]), pair(args["output_padding"]), args["groups"], args["bias"],
                              pair(args["dilation"]))


def window(args: Args, ins: Sequence[Shape], out: Shape) -> Window:
    k, s = pair(args["kernel_size"])[0], pair(args["stride"])[0]
    return Window(Fraction(k - 1, s) + 1, Fraction(1, s), 0)


register(Block("conv_transpose2d", __doc__ or "", PARAMS, shape, build=build, count_params=count_params,
               macs=macs, window=window, category="conv", tags=frozenset({"map", "biased"})))
