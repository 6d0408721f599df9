"""Swin Transformer blocks on channels-last (H, W, C) maps, built from torchvision's own modules.

The zoo's Swin specs no longer use these blocks: they are written from primitives (buffer,
window_partition, window_reverse, window_attention_mask, normalize; specs/swin_t.yaml). These stay
for users' specs that name them.

`shifted_window_attention`: multi-head self-attention inside ws x ws windows with a relative position
bias; the map is padded to a multiple of the window, cyclically shifted by `shift_size` with an
attention mask (torchvision.models.swin_transformer.ShiftedWindowAttention; `version: 2` is V2's
scaled cosine attention with a continuous position bias MLP, ShiftedWindowAttentionV2).
`patch_merging`: concatenate each 2x2 neighbourhood (odd sizes padded), layernorm, linear 4C -> 2C
(`version: 2`: linear, then layernorm of 2C) (PatchMerging, PatchMergingV2).

Building torchvision's modules keeps state_dict keys (`qkv`, `proj`, `relative_position_bias_table`,
`relative_position_index`, `cpb_mlp`, `logit_scale`, `reduction`, `norm`) and numerics exact.
MACs are what torch's FlopCounterMode counts / 2, on the padded map: the qkv and output projections
and QK^T and AV for every window, plus V2's position-bias MLP over the (2ws-1)^2 relative offsets.
Receptive field: a window of span ws along H (an output sees its own window); global when one
window covers the whole map (torchvision then skips the shift).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window, channels_last, pair
from archc.blocks.registry import register
from archc.errors import ShapeError

CPB_HIDDEN = 512  # width of V2's continuous position bias MLP (fixed in torchvision)
_VERSION = Param("int", 1, min=1, max=2, doc="1: Swin, 2: Swin V2")

ATTN_PARAMS = {
    "window_size": Param("int2", min=1),
    "shift_size": Param("int2", 0, min=0),
    "num_heads": Param("int", min=1),
    "attention_dropout": Param("float", 0.0, min=0, max=1),
    "dropout": Param("float", 0.0, min=0, max=1),
    "qkv_bias": Param("bool", True),
    "proj_bias": Param("bool", True),
    "version": _VERSION,
}
MERGE_PARAMS = {"version": _VERSION}


def _padded(size: int, window: int) -> int:
    return -(-size // window) * window


def attn_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    _, _, c = channels_last(ins[0], "shifted_window_attention")
    window, shift = pair(args["window_size"]), pair(args["shift_size"])
    if c % args["num_heads"]:
        raise ShapeError(f"{c} channels are not divisible by num_heads={args['num_heads']}",
                         hint="the channels (last axis) are split evenly between the heads")
    if any(s >= w for s, w in zip(shift, window)):
        raise ShapeError(f"shift_size {list(shift)} must be smaller than window_size {list(window)}",
                         hint="Swin shifts every other block by half a window: window_size // 2")
    if args["version"] == 2 and min(window) < 2:
        raise ShapeError("version 2 needs windows of at least 2 (its position table divides by window - 1)")
    return ins[0]


def _table(args: Args) -> int:
    """Relative offsets inside a window: (2 wh - 1)(2 ww - 1)."""
    wh, ww = pair(args["window_size"])
    return (2 * wh - 1) * (2 * ww - 1)


def attn_params(args: Args, ins: Sequence[Shape]) -> int:
    c, heads = ins[0][2], args["num_heads"]
    linear = 4 * c * c + (3 * c if args["qkv_bias"] else 0) + (c if args["proj_bias"] else 0)
    if args["version"] == 2:  # logit_scale + cpb_mlp (Linear(2, 512), ReLU, Linear(512, heads, bias=False))
        return linear + heads + 2 * CPB_HIDDEN + CPB_HIDDEN + CPB_HIDDEN * heads
    return linear + _table(args) * heads


def _scores(args: Args, ins: Sequence[Shape]) -> tuple[int, int, int]:
    """Padded positions, positions per window, channels."""
    h, w, c = ins[0]
    wh, ww = pair(args["window_size"])
    return _padded(h, wh) * _padded(w, ww), wh * ww, c


def attn_macs(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    positions, n, c = _scores(args, ins)
    macs = positions * 4 * c * c + 2 * positions * n * c  # qkv, proj; QK^T and AV over every window
    if args["version"] == 2:
        macs += _table(args) * (2 * CPB_HIDDEN + CPB_HIDDEN * args["num_heads"])
    return macs


def attn_other_ops(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    positions, n, _ = _scores(args, ins)
    return positions * n * args["num_heads"]  # one softmax over every score


def attn_window(args: Args, ins: Sequence[Shape], out: Shape) -> Window | None:
    h, w, _ = ins[0]
    wh, ww = pair(args["window_size"])
    if wh >= h and ww >= w:
        return None  # one window holds the whole map
    return Window(Fraction(wh))


def attn_build(args: Args, ins: Sequence[Shape]) -> Any:
    from torchvision.models.swin_transformer import ShiftedWindowAttention, ShiftedWindowAttentionV2

    cls = ShiftedWindowAttentionV2 if args["version"] == 2 else ShiftedWindowAttention
    return cls(ins[0][2], list(pair(args["window_size"])), list(pair(args["shift_size"])), args["num_heads"],
               qkv_bias=args["qkv_bias"], proj_bias=args["proj_bias"],
               attention_dropout=args["attention_dropout"], dropout=args["dropout"])


def merge_shape(args: Args, ins: Sequence[Shape]) -> Shape:
    h, w, c = channels_last(ins[0], "patch_merging")
    return ((h + 1) // 2, (w + 1) // 2, 2 * c)


def merge_params(args: Args, ins: Sequence[Shape]) -> int:
    c = ins[0][2]
    return 8 * c * c + 2 * (2 * c if args["version"] == 2 else 4 * c)  # reduction (no bias) + norm


def merge_macs(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return out[0] * out[1] * 4 * ins[0][2] * out[2]


def merge_other_ops(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return out[0] * out[1] * (out[2] if args["version"] == 2 else 2 * out[2])  # the layernorm


def merge_build(args: Args, ins: Sequence[Shape]) -> Any:
    from torchvision.models.swin_transformer import PatchMerging, PatchMergingV2

    return (PatchMergingV2 if args["version"] == 2 else PatchMerging)(ins[0][2])


ATTN_DOC = ("shifted_window_attention: multi-head self-attention inside ws x ws windows with a relative "
            "position bias, on a channels-last (H, W, C) map padded to the window and cyclically shifted by "
            "`shift_size` with a mask (torchvision's ShiftedWindowAttention; `version: 2`: V2).")
MERGE_DOC = ("patch_merging: concatenate each 2x2 neighbourhood of a channels-last (H, W, C) map (odd sizes "
             "padded), layernorm, linear 4C -> 2C (torchvision's PatchMerging; `version: 2`: PatchMergingV2).")

register(Block("shifted_window_attention", ATTN_DOC, ATTN_PARAMS, attn_shape, build=attn_build,
               count_params=attn_params, macs=attn_macs, other_ops=attn_other_ops, window=attn_window,
               category="attn"))
register(Block("patch_merging", MERGE_DOC, MERGE_PARAMS, merge_shape, build=merge_build,
               count_params=merge_params, macs=merge_macs, other_ops=merge_other_ops,
               window=lambda a, s, o: Window(Fraction(2), Fraction(2)), category="linear"))
