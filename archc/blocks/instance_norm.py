"""instance_norm: normalise each channel of each sample over its map (torch.nn.InstanceNorm2d on (C, H, W),
InstanceNorm1d on (C, L)); `affine` learns a scale and shift per channel, `track_running_stats` keeps
running statistics (buffers) that eval mode then uses.

torch refuses a map of a single element ("expected more than 1 spatial element"), even in eval mode
when it normalises by the sample's own statistics; archc refuses it always, since training would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape, elementwise
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {
    "eps": Param("float", 1e-5, min=0),
    "momentum": Param("float|none", 0.1, min=0, max=1, doc="running statistics' update (null: cumulative)"),
    "affine": Param("bool", False),
    "track_running_stats": Param("bool", False),
}


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    s = ins[0]
    if len(s) not in (2, 3):
        raise ShapeError(f"instance_norm expects a (C, H, W) map or (C, L) sequence, got {s}",
                         hint="shapes here leave out the batch dimension")
    if all(n == 1 for n in s[1:]):
        raise ShapeError(f"instance_norm of {s}: each channel holds a single value, nothing to normalise "
                         "(torch refuses it)", hint="normalise a larger map, or use layernorm over the channels")
    return s


def build(args: Args, ins: Sequence[Shape]) -> Any:
    from torch import nn

    cls = nn.InstanceNorm2d if len(ins[0]) == 3 else nn.InstanceNorm1d
    return cls(ins[0][0], args["eps"], args["momentum"], args["affine"], args["track_running_stats"])


STATS_BYTES = 4  # its statistics are fp32


def scratch(args: Args, ins: Sequence[Shape], out: Shape, batch: int, size: int) -> Any:
    """batch_norm over (1, B*C, ...): repeated weight/bias/running stats, save_mean/invstd when it uses the batch's."""
    stats = (2 * args["affine"] + 2 * args["track_running_stats"] + 2 * (not args["track_running_stats"]))
    return batch * out[0] * stats * STATS_BYTES


register(Block("instance_norm", "instance_norm: per-sample, per-channel normalisation over the map "
               "(torch.nn.InstanceNorm2d / InstanceNorm1d; affine and track_running_stats off by default).",
               PARAMS, shape, build=build, count_params=lambda a, s: 2 * s[0][0] if a["affine"] else 0,
               other_ops=elementwise, category="norm", scratch=scratch))
