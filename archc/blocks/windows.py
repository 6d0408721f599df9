"""Windows of a channels-last (H, W, C) map: window_partition, window_reverse, window_attention_mask.

`window_partition(size, mode)` regroups the positions into (G, sh*sw, C): with `mode: window` each group is
an sh x sw block of neighbours (Swin's windows, MaxViT's block attention), groups and positions row-major;
with `mode: grid` each group is an sh x sw grid of positions H/sh rows and W/sw columns apart (MaxViT's grid
attention), one group per offset inside an (H/sh) x (W/sw) block. The map must divide by `size`: pad it first.
`window_reverse(size, mode)` puts such groups back: `in: [map, groups]`, the map (its H and W only, never its
values) first, so the output has the map's layout and the groups' channels.
`window_attention_mask(size, shift, value)` is Swin's mask for a map rolled by -shift: (G, N, N), `value`
(-100) where two positions of a window come from different regions of the unrolled map, else 0; computed
in the forward from the map's size (torchvision computes it there too: no state_dict key).

Receptive field: partition and the mask move nothing; window_reverse gives each output its whole group (an
attention between them mixes the group): a window of span sh along H, a grid `size` taps H/sh apart, global
when one group holds the map (torchvision's own rule, as the blocks these replace).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window, channels_last, pair
from archc.blocks.registry import register
from archc.errors import ShapeError

_SIZE = Param("int2", min=1, doc="the window (sh, sw); grid mode: the groups' size")
_MODE = Param("str", "window", choices=("window", "grid"), doc="window: blocks of neighbours; grid: spread")
PARAMS = {"size": _SIZE, "mode": _MODE}
MASK_PARAMS = {"size": _SIZE, "shift": Param("int2", 0, min=0, doc="the roll (-shift) the map went through"),
               "value": Param("float", -100.0, doc="added where two positions may not attend (torchvision: -100)")}


def _groups(args: Args, s: Shape, what: str) -> tuple[Any, int]:
    """The number of groups and the positions per group of a map that divides by `size`."""
    if args.get("mode", "window") not in ("window", "grid"):
        raise ShapeError(f"{what}: mode {args['mode']!r} is neither window nor grid",
                         hint="window: blocks of neighbours (Swin); grid: positions spread over the map (MaxViT)")
    h, w, _ = channels_last(s, what)
    sh, sw = pair(args["size"])
    if h % sh or w % sw:
        raise ShapeError(f"{what}: the map {h}x{w} does not divide into {sh}x{sw} {args.get('mode', 'window')}s",
                         hint="pad the map to a multiple of the size first ({op: pad, pad: [0, 0, 0, right, 0, "
                              "bottom]}), or change the input size")
    return (h // sh) * (w // sw), sh * sw


def partition_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    g, n = _groups(args, ins[0], "window_partition")
    return (g, n, ins[0][2])


def reverse_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    if len(ins) != 2:  # resolve checks the arity first; this guards direct calls of the rule
        raise ShapeError(f"window_reverse takes 2 inputs (the map, the groups), got {len(ins)}")
    g, n = _groups(args, ins[0], "window_reverse")
    x = ins[1]
    if len(x) != 3 or x[0] != g or x[1] != n:
        raise ShapeError(f"window_reverse: the groups {x} do not fit the map {ins[0]} (expected ({g}, {n}, C))",
                         hint="`in: [map, groups]`: the map the groups were partitioned from comes first")
    return (ins[0][0], ins[0][1], x[2])


def mask_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    g, n = _groups(args, ins[0], "window_attention_mask")
    if any(s >= w for s, w in zip(pair(args["shift"]), pair(args["size"]))):
        raise ShapeError(f"shift {args['shift']} must be smaller than the window {args['size']}",
                         hint="Swin shifts every other block by half a window")
    return (g, n, n)


def reverse_window(args: Args, ins: Sequence[Shape], out: Shape) -> Window | None:
    h, w, _ = ins[0]
    sh, sw = pair(args["size"])
    if args["mode"] == "window":
        return None if sh >= h and sw >= w else Window(Fraction(sh))
    step = h // sh  # grid: sh taps, step rows apart
    return None if step == 1 and w // sw == 1 else Window(Fraction((sh - 1) * step + 1))


def partition(x: Any, size: tuple[int, int], grid: bool = False) -> Any:
    """(B, H, W, C) -> (B, G, sh*sw, C) (self-contained: export copies it)."""
    b, h, w, c = x.shape
    sh, sw = size
    if grid:  # (B, sh, H/sh, sw, W/sw, C): one group per offset inside an (H/sh) x (W/sw) block
        x = x.reshape(b, sh, h // sh, sw, w // sw, c).permute(0, 2, 4, 1, 3, 5)
    else:  # (B, H/sh, sh, W/sw, sw, C): one group per block of neighbours
        x = x.reshape(b, h // sh, sh, w // sw, sw, c).permute(0, 1, 3, 2, 4, 5)
    return _copy(x).reshape(b, -1, sh * sw, c)


def _copy(x: Any) -> Any:
    """One fresh contiguous copy, also where the regrouping needs none (a 1-wide window): the output never
    shares its input's storage (the memory model counts it as new)."""
    import torch

    return x.clone(memory_format=torch.contiguous_format)


def reverse(like: Any, x: Any, size: tuple[int, int], grid: bool = False) -> Any:
    """(B, G, sh*sw, C) -> (B, H, W, C), H and W those of `like` (self-contained)."""
    b, h, w = like.shape[:3]
    sh, sw = size
    c = x.shape[-1]
    if grid:
        x = x.reshape(b, h // sh, w // sw, sh, sw, c).permute(0, 3, 1, 4, 2, 5)
    else:
        x = x.reshape(b, h // sh, w // sw, sh, sw, c).permute(0, 1, 3, 2, 4, 5)
    return _copy(x).reshape(b, h, w, c)


def attention_mask(x: Any, size: tuple[int, int], shift: tuple[int, int], value: float = -100.0) -> Any:
    """Swin's shifted-window mask for the map x (B, H, W, C), as torchvision builds it (self-contained)."""
    import torch

    _, h, w, _ = x.shape
    (sh, sw), (dh, dw) = size, shift
    region = torch.zeros((h, w), dtype=x.dtype, device=x.device)
    count = 0
    for r in ((0, -sh), (-sh, -dh), (-dh, None)):
        for c in ((0, -sw), (-sw, -dw), (-dw, None)):
            region[r[0]:r[1], c[0]:c[1]] = count
            count += 1
    labels = partition(region.reshape(1, h, w, 1), size)[0, :, :, 0]  # (G, N)
    diff = labels.unsqueeze(1) - labels.unsqueeze(2)
    mask = torch.zeros_like(diff).masked_fill(diff != 0, value)
    return mask.unsqueeze(0).expand(x.shape[0], *mask.shape).clone()


def partition_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    return partition, {"size": pair(args["size"]), "grid": args["mode"] == "grid"}


def reverse_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    return reverse, {"size": pair(args["size"]), "grid": args["mode"] == "grid"}


def mask_fn(args: Args) -> tuple[Any, dict[str, Any]]:
    return attention_mask, {"size": pair(args["size"]), "shift": pair(args["shift"]), "value": float(args["value"])}


register(Block("window_partition", "window_partition: a channels-last (H, W, C) map as (G, sh*sw, C) groups: "
               "sh x sw blocks of neighbours (`mode: window`, Swin) or grids spread over the map (`mode: grid`, "
               "MaxViT); the map must divide by `size`.", PARAMS, partition_shape, kind="function",
               function=partition_fn, category="layout"))
register(Block("window_reverse", "window_reverse: `in: [map, groups]`: (G, sh*sw, C) groups back into the map's "
               "(H, W) layout (the inverse of window_partition; the map gives only its size).", PARAMS,
               reverse_shape, kind="function", function=reverse_fn, arity=(2, 2), window=reverse_window,
               category="layout"))
register(Block("window_attention_mask", "window_attention_mask: Swin's (G, N, N) mask for a channels-last map "
               "rolled by -shift: `value` (-100) between positions from different regions, else 0; computed in "
               "the forward from the map's size.", MASK_PARAMS, mask_shape, kind="function", function=mask_fn,
               other_ops=lambda a, s, o: o[0] * o[1] * o[2], category="constant"))
