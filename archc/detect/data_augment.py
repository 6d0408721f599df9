"""Image geometry and training augmentations that move the boxes with the pixels, on uint8 (h, w, c) arrays
with Pillow doing the resampling (no OpenCV). Boxes are (n, 4) x1, y1, x2, y2 in continuous pixel
coordinates (pixel k spans [k, k + 1]). Every random choice comes from the numpy Generator passed in.

- ``letterbox``: scale to fit (aspect kept), centre on a grey (114) canvas;
- ``random_affine``: random scale (1 +- scale) and translation (+- translate of the output size) of a canvas
  into the output, boxes clipped, boxes that become tiny (under 2 px a side, or under 10% of their area
  kept) dropped;
- ``mosaic``: four images around a random centre of a 2S x 2S canvas, then ``random_affine`` down to S;
- ``hsv``: hue, saturation and value gains (1 +- hsv_h, hsv_s, hsv_v);
- ``hflip``."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["PAD", "fit", "pad_to", "letterbox", "random_affine", "mosaic", "hsv", "hflip", "keep_boxes",
           "to_pil", "from_pil"]

PAD = 114
MIN_SIDE = 2.0  # px: boxes thinner than this after augmentation are dropped
MIN_KEPT = 0.1  # share of a box's area that must stay inside the output


def to_pil(arr: np.ndarray) -> list[Any]:
    """Pillow images of an (h, w, c) uint8 array: one RGB image for 3 channels, else one L image per channel."""
    from PIL import Image

    if arr.shape[2] == 3:
        return [Image.fromarray(arr, "RGB")]
    return [Image.fromarray(np.ascontiguousarray(arr[:, :, k]), "L") for k in range(arr.shape[2])]


def from_pil(images: list[Any]) -> np.ndarray:
    if len(images) == 1 and images[0].mode == "RGB":
        return np.asarray(images[0], dtype=np.uint8)
    return np.stack([np.asarray(im, dtype=np.uint8) for im in images], axis=-1)


def fit(arr: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """``arr`` scaled (bilinear, aspect kept) to fit inside ``size`` (h, w) touching two sides: (array, ratio)."""
    from PIL import Image

    h, w = arr.shape[:2]
    ratio = min(size[0] / h, size[1] / w)
    nh, nw = min(max(round(h * ratio), 1), size[0]), min(max(round(w * ratio), 1), size[1])
    if (nh, nw) == (h, w):
        return arr, ratio
    return from_pil([im.resize((nw, nh), Image.Resampling.BILINEAR) for im in to_pil(arr)]), ratio


def pad_to(arr: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, tuple[float, float]]:
    """``arr`` (no larger than ``size``) centred on a grey (h, w) canvas: (array, (left, top))."""
    nh, nw = arr.shape[:2]
    top, left = (size[0] - nh) // 2, (size[1] - nw) // 2
    out = np.full((size[0], size[1], arr.shape[2]), PAD, np.uint8)
    out[top:top + nh, left:left + nw] = arr
    return out, (float(left), float(top))


def letterbox(arr: np.ndarray, size: tuple[int, int], boxes: np.ndarray | None = None
              ) -> tuple[np.ndarray, float, tuple[float, float], np.ndarray | None]:
    """``arr`` scaled to fit ``size`` (h, w) with its aspect kept and centred on grey:
    (array, ratio, (left, top) padding, boxes moved likewise)."""
    fitted, ratio = fit(arr, size)
    out, (left, top) = pad_to(fitted, size)
    moved = None if boxes is None else (boxes * ratio + np.array([left, top, left, top], np.float32)).astype(np.float32)
    return out, ratio, (left, top), moved


def keep_boxes(boxes: np.ndarray, classes: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to an (h, w) image; those left under MIN_SIDE a side or under MIN_KEPT of their area dropped."""
    clipped = boxes.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, size[1])
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, size[0])
    w, h = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    full = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
    keep = (w >= MIN_SIDE) & (h >= MIN_SIDE) & (w * h >= MIN_KEPT * full)
    return clipped[keep].astype(np.float32), classes[keep]


def random_affine(arr: np.ndarray, boxes: np.ndarray, classes: np.ndarray, out: tuple[int, int],
                  rng: np.random.Generator, scale: float = 0.5, translate: float = 0.1
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The canvas ``arr`` scaled by s in [1 - scale, 1 + scale] about its centre, placed at the output's centre
    moved by up to ``translate`` of its size, cut to ``out`` (h, w); boxes follow (p' = s p + t)."""
    from PIL import Image

    h, w = arr.shape[:2]
    s = float(rng.uniform(1 - scale, 1 + scale))
    tx = out[1] / 2 + float(rng.uniform(-translate, translate)) * out[1] - s * w / 2
    ty = out[0] / 2 + float(rng.uniform(-translate, translate)) * out[0] - s * h / 2
    inverse = (1 / s, 0.0, -tx / s, 0.0, 1 / s, -ty / s)  # Pillow maps each output pixel back to the input
    images = [im.transform((out[1], out[0]), Image.Transform.AFFINE, inverse, Image.Resampling.BILINEAR,
                           fillcolor=(PAD,) * 3 if im.mode == "RGB" else PAD) for im in to_pil(arr)]
    moved = boxes * s + np.array([tx, ty, tx, ty], np.float32)
    kept, cls = keep_boxes(moved, classes, out)
    return from_pil(images), kept, cls


def mosaic(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], size: tuple[int, int], rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four (image, boxes, classes), each already scaled to fit ``size``, around a random centre of a
    (2h, 2w) grey canvas: top-left, top-right, bottom-left, bottom-right, each cut by the canvas edge."""
    h, w = size
    c = parts[0][0].shape[2]
    canvas = np.full((2 * h, 2 * w, c), PAD, np.uint8)
    yc, xc = int(rng.uniform(0.5 * h, 1.5 * h)), int(rng.uniform(0.5 * w, 1.5 * w))
    all_boxes, all_classes = [], []
    for k, (img, boxes, classes) in enumerate(parts):
        ih, iw = img.shape[:2]
        x0 = xc - iw if k in (0, 2) else xc  # where the image's top-left corner lands
        y0 = yc - ih if k in (0, 1) else yc
        cx1, cy1 = max(x0, 0), max(y0, 0)
        cx2, cy2 = min(x0 + iw, 2 * w), min(y0 + ih, 2 * h)
        canvas[cy1:cy2, cx1:cx2] = img[cy1 - y0:cy2 - y0, cx1 - x0:cx2 - x0]
        if len(boxes):
            moved = boxes + np.array([x0, y0, x0, y0], np.float32)
            cut = moved.copy()  # the part of a box outside its image's piece is cut off with the piece
            cut[:, [0, 2]] = cut[:, [0, 2]].clip(cx1, cx2)
            cut[:, [1, 3]] = cut[:, [1, 3]].clip(cy1, cy2)
            area = (cut[:, 2] - cut[:, 0]) * (cut[:, 3] - cut[:, 1])
            full = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
            keep = (cut[:, 2] > cut[:, 0]) & (cut[:, 3] > cut[:, 1]) & (area >= MIN_KEPT * full)
            all_boxes.append(cut[keep])
            all_classes.append(classes[keep])
    boxes = np.concatenate(all_boxes) if all_boxes else np.zeros((0, 4), np.float32)
    classes = np.concatenate(all_classes) if all_classes else np.zeros(0, np.int64)
    return canvas, boxes.astype(np.float32), classes


def hsv(arr: np.ndarray, rng: np.random.Generator, gains: tuple[float, float, float] = (0.015, 0.7, 0.4)
        ) -> np.ndarray:
    """Random gains 1 +- (hue, saturation, value) on each pixel's hue, saturation and value (RGB, through
    Pillow's 8-bit HSV; hue is a fraction of the colour circle); grey and other channel counts get the value
    gain only."""
    from PIL import Image

    gh, gs, gv = rng.uniform(-1, 1, 3) * np.asarray(gains) + 1
    x = np.arange(256, dtype=np.float64)
    value = np.clip(np.rint(x * gv), 0, 255)
    if arr.shape[2] != 3:
        return value.astype(np.uint8)[arr]
    luts = np.concatenate([np.rint(x * gh) % 256, np.clip(np.rint(x * gs), 0, 255), value]).astype(np.uint8)
    image = Image.fromarray(arr, "RGB").convert("HSV").point(luts.tolist())
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def hflip(arr: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = arr.shape[1]
    flipped = boxes.copy()
    flipped[:, 0], flipped[:, 2] = w - boxes[:, 2], w - boxes[:, 0]
    return np.ascontiguousarray(arr[:, ::-1]), flipped
