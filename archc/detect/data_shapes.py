"""`--data shapes` for detection: the twin of segmentation's `shapes` (archc/train/data.py). Each image has 1
to 4 circles, rectangles and triangles (classes 0, 1, 2) of random size, colour and texture over a textured,
noisy background; later shapes may hide part of earlier ones (each keeps at least half of its pixels in
sight), and a box is the extent of the visible pixels. Image ``i`` of a split depends only on (seed, split,
i): any size, any channel count, made in any order."""

from __future__ import annotations

import math

import numpy as np

from archc.train.shapes import SHAPE_NAMES
from archc.train.shapes import inside as shape_inside

__all__ = ["SHAPE_NAMES", "shapes_sample", "shapes_rng"]

MIN_VISIBLE = 0.5  # an occluded shape keeps at least this share of its pixels


def shapes_rng(seed: int, split: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, split, index, 0x5EA])


def _texture(c: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field plus stripes: (h, w, c) around 0."""
    from PIL import Image

    ch, cw = max(h // 8, 2), max(w // 8, 2)
    coarse = rng.random((c, ch, cw), dtype=np.float32) - 0.5
    smooth = np.stack([np.asarray(Image.fromarray(coarse[k], "F").resize((w, h), Image.Resampling.BILINEAR))
                       for k in range(c)], axis=-1)
    angle, freq = rng.random() * math.pi, 0.2 + 0.6 * rng.random()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    stripes = 0.15 * np.sin(freq * (xx * math.cos(angle) + yy * math.sin(angle)))
    return 0.6 * smooth + stripes[:, :, None]


def _place(h: int, w: int, rng: np.random.Generator, owner: np.ndarray, areas: list[int], visible: list[int]
           ) -> tuple[int, tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """A shape that leaves every earlier one at least MIN_VISIBLE of its pixels in sight: (kind, its window, its
    pixel mask inside the window, pixels it hides of each earlier shape), or None."""
    side = min(h, w)
    for _ in range(8):
        kind = int(rng.integers(0, 3))
        r = side * (0.07 + 0.16 * rng.random())
        cy, cx = r * 0.5 + rng.random() * (h - r), r * 0.5 + rng.random() * (w - r)
        turn = rng.random() * 2 * math.pi
        y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, h)
        x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, w)
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
        inside = shape_inside(kind, yy - cy, xx - cx, r, turn)
        if inside.sum() < 12:
            continue
        under = owner[y0:y1, x0:x1][inside]
        hidden = np.bincount(under[under >= 0], minlength=len(areas))
        if all(visible[k] - hidden[k] >= MIN_VISIBLE * areas[k] for k in range(len(areas))):
            return kind, (slice(y0, y1), slice(x0, x1)), inside, hidden
    return None


def shapes_sample(c: int, h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image uint8 (h, w, c), its boxes (n, 4) x1, y1, x2, y2 in pixels and classes (n,)."""
    base = 0.2 + 0.6 * rng.random(c).astype(np.float32)
    image = base + 0.5 * _texture(c, h, w, rng)
    owner = np.full((h, w), -1, np.int64)
    kinds: list[int] = []
    areas: list[int] = []
    visible: list[int] = []
    for _ in range(int(rng.integers(1, 5))):
        placed = _place(h, w, rng, owner, areas, visible)
        if placed is None:
            continue
        kind, win, inside, hidden = placed
        sign = 1.0 if rng.random() > 0.5 else -1.0
        contrast = (0.25 + 0.35 * rng.random(c).astype(np.float32)) * sign
        fill = base + contrast + 0.25 * _texture(c, inside.shape[0], inside.shape[1], rng)
        image[win] = np.where(inside[:, :, None], fill, image[win])
        owner[win][inside] = len(kinds)
        visible = [v - int(hidden[k]) for k, v in enumerate(visible)] + [int(inside.sum())]
        kinds.append(kind)
        areas.append(int(inside.sum()))
    image = image + 0.08 * rng.standard_normal((h, w, c), dtype=np.float32)
    pixels = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    boxes = np.zeros((len(kinds), 4), np.float32)
    for k in range(len(kinds)):
        ys, xs = np.nonzero(owner == k)
        boxes[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return pixels, boxes, np.asarray(kinds, np.int64)
