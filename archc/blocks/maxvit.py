"""MaxViT's multi-axis attention on channels-last (H, W, C) maps, built on torchvision's own module.

specs/maxvit_t.yaml no longer uses this block (it is written from primitives: window_partition with
window or grid, a relative position bias gathered by a buffer index); it stays for users' specs.

`partition_attention`: multi-head self-attention with a relative position bias inside groups of
size x size positions. `partition: window` groups each size x size block of neighbours (MaxViT's
block attention); `partition: grid` groups the positions that lie H/size rows and W/size columns
apart, a size x size grid spread over the whole map (grid attention). Heads have `head_dim`
channels; the map is cut into groups, attended and put back, so the output has the input's shape.

The module is torchvision.models.maxvit.RelativePositionalMultiHeadAttention (keys `to_qkv`,
`merge`, `relative_position_bias_table`, `relative_position_index`; its scale C^-0.5 over all
channels, not per head, is torchvision's) with the partitioning of PartitionAttentionLayer around
it. That layer's LayerNorms, MLP, dropout and residuals are per position, so a spec composes them
around this block on the (H, W, C) map (specs/maxvit_t.yaml): only the regrouping needs a block, and
keeping the map spatial keeps receptive fields meaningful. Unlike torchvision, which fixes the grid
when it is built, the groups follow the map flowing in (equal at the size the model was built for).

MACs (= torch's FlopCounterMode / 2): to_qkv and merge, 4 C^2 per position, and QK^T and AV over
each group, 2 size^2 C per position. Receptive field: a window spans `size` pixels (global when it
covers the map); a grid is a size-tap window dilated by H/size (global when that step is 1, i.e. one
group holds the whole map).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from functools import cache
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, Window, channels_last
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {
    "partition": Param("str", choices=("window", "grid"), doc="window: size x size neighbours; grid: spread"),
    "partition_size": Param("int", min=1, doc="positions per group along each axis"),
    "head_dim": Param("int", min=1, doc="channels per attention head"),
}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    h, w, c = channels_last(ins[0], "partition_attention")
    size, head_dim = args["partition_size"], args["head_dim"]
    if c % head_dim:
        raise ShapeError(f"{c} channels are not divisible by head_dim={head_dim}",
                         hint="the channels (last axis) are split into heads of head_dim channels")
    if h % size or w % size:
        raise ShapeError(f"the map {h}x{w} is not divisible by partition_size={size}",
                         hint="MaxViT needs every stage's map to divide into partition_size groups "
                              "(maxvit_t at 224: 56, 28, 14, 7 with partition_size 7); change the input size")
    return ins[0]


def _heads(args: Args, ins: Sequence[Shape]) -> int:
    return ins[0][2] // args["head_dim"]


def count_params(args: Args, ins: Sequence[Shape]) -> int:
    c, size = ins[0][2], args["partition_size"]
    return 4 * c * c + 4 * c + (2 * size - 1) ** 2 * _heads(args, ins)  # to_qkv, merge, bias table


def macs(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    h, w, c = ins[0]
    group = args["partition_size"] ** 2
    return h * w * (4 * c * c + 2 * group * c)


def other_ops(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    h, w, c = ins[0]
    scores = h * w * args["partition_size"] ** 2 * _heads(args, ins)
    return h * w * c + 2 * scores  # scaling the keys; the bias added to and the softmax over every score


def window(args: Args, ins: Sequence[Shape], out: Shape) -> Window | None:
    h, w, _ = ins[0]
    size = args["partition_size"]
    if args["partition"] == "window":
        return None if size >= h and size >= w else Window(Fraction(size))
    step = h // size  # grid: size taps, step rows apart
    return None if step == 1 and w // size == 1 else Window(Fraction((size - 1) * step + 1))


@cache
def _module_class() -> Any:
    """torchvision's attention with the partitioning of its PartitionAttentionLayer around it."""
    import torch
    from torchvision.models.maxvit import RelativePositionalMultiHeadAttention

    class PartitionAttention(RelativePositionalMultiHeadAttention):  # type: ignore[misc]
        def __init__(self, channels: int, head_dim: int, size: int, grid: bool) -> None:
            super().__init__(channels, head_dim, size * size)
            self.partition_size, self.grid = size, grid

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, h, w, c = x.shape
            s = self.partition_size
            if self.grid:  # (B, s, H/s, s, W/s, C): one group per offset inside an H/s x W/s block
                x = x.reshape(b, s, h // s, s, w // s, c).permute(0, 2, 4, 1, 3, 5)
            else:  # (B, H/s, s, W/s, s, C): one group per s x s window
                x = x.reshape(b, h // s, s, w // s, s, c).permute(0, 1, 3, 2, 4, 5)
            groups = x.shape[1:3]
            x = super().forward(x.reshape(b, groups[0] * groups[1], s * s, c))
            x = x.reshape(b, *groups, s, s, c)
            x = x.permute(0, 3, 1, 4, 2, 5) if self.grid else x.permute(0, 1, 3, 2, 4, 5)
            return x.reshape(b, h, w, c)

    return PartitionAttention


def build(args: Args, ins: Sequence[Shape]) -> Any:
    return _module_class()(ins[0][2], args["head_dim"], args["partition_size"], args["partition"] == "grid")


DOC = ("partition_attention: MaxViT's block (`window`) or grid attention with a relative position bias on a "
       "channels-last (H, W, C) map (torchvision's module).")
register(Block("partition_attention", DOC, PARAMS, shape, build=build, count_params=count_params,
               macs=macs, other_ops=other_ops, window=window, category="attn"))
