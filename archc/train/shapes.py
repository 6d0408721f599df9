"""The geometry `--data shapes` draws for segmentation (archc/train/data.py, torch) and detection
(archc/detect/data_shapes.py, numpy): which pixels a circle, a rotated rectangle or a triangle covers. The
arithmetic is written once and runs on torch tensors and numpy arrays alike (both keep float32 with Python floats)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["SHAPE_NAMES", "inside"]

SHAPE_NAMES = ("circle", "rectangle", "triangle")  # kinds 0, 1, 2


def inside(kind: int, dy: Any, dx: Any, r: float, turn: float) -> Any:
    """A boolean array/tensor: the points at offsets (dy, dx) from the centre that a circle (kind 0), a rectangle
    (1, 2r x 1.2r) or an equilateral triangle (2, corners at radius r) of size r, turned by ``turn``, covers."""
    if kind == 0:
        return dy * dy + dx * dx <= r * r
    u = dx * math.cos(turn) + dy * math.sin(turn)
    v = -dx * math.sin(turn) + dy * math.cos(turn)
    if kind == 1:
        return (abs(u) <= r) & (abs(v) <= 0.6 * r)
    pts = [(r * math.cos(turn + k * 2 * math.pi / 3), r * math.sin(turn + k * 2 * math.pi / 3)) for k in range(3)]
    side = [(pts[(k + 1) % 3][0] - pts[k][0]) * (dy - pts[k][1]) - (pts[(k + 1) % 3][1] - pts[k][1]) * (dx - pts[k][0])
            for k in range(3)]
    return ((side[0] >= 0) & (side[1] >= 0) & (side[2] >= 0)) | ((side[0] <= 0) & (side[1] <= 0) & (side[2] <= 0))
