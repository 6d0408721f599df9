"""What every detection data source shares: the located data error, one image's record (its boxes in
original pixels), the per-image meta of a letterboxed sample, the counts of what was skipped, and
reading an image file as the model's channels."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archc.errors import Loc, UsageError

__all__ = ["DataError", "DataReport", "ImageMeta", "Record", "IMAGE_SUFFIXES", "check_image", "read_image",
           "pil_to_array"]

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp", ".dng", ".mpo", ".pfm")


class DataError(UsageError):
    """Bad detection data (a label row, a data.yaml key, an instances.json entry): exit status 2, located."""


def located(message: str, file: str | Path, line: int = 1, col: int = 1, hint: str | None = None) -> DataError:
    return DataError(message, Loc(str(file), line, col), hint=hint)


@dataclass(frozen=True)
class ImageMeta:
    """A sample's image: ``orig = (letterboxed - pad) / ratio`` maps its input pixels back to the file's."""

    image_id: int | str
    path: str
    orig_hw: tuple[int, int]
    ratio: float
    pad: tuple[float, float]  # (left, top) in input pixels


@dataclass
class Record:
    """One image of a split: boxes (n, 4) x1, y1, x2, y2 in the image's own pixels, classes (n,) 0..nc-1,
    ``crowd`` (n,) COCO's iscrowd (kept for evaluation, never trained on), ``area`` (n,) COCO's area."""

    path: str
    image_id: int
    hw: tuple[int, int]
    boxes: np.ndarray
    classes: np.ndarray
    crowd: np.ndarray
    area: np.ndarray

    @staticmethod
    def make(path: str, image_id: int, hw: tuple[int, int], boxes: list[list[float]] | np.ndarray,
             classes: list[int] | np.ndarray, crowd: list[bool] | np.ndarray | None = None,
             area: list[float] | np.ndarray | None = None) -> Record:
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        c = np.asarray(classes, dtype=np.int64).reshape(-1)
        cr = np.zeros(len(c), bool) if crowd is None else np.asarray(crowd, dtype=bool).reshape(-1)
        a = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) if area is None else np.asarray(area, np.float32).reshape(-1)
        return Record(path, image_id, hw, b, c, cr, a.astype(np.float32))

    def train_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """Boxes and classes to train on: crowd regions left out."""
        keep = ~self.crowd
        return self.boxes[keep], self.classes[keep]


@dataclass
class DataReport:
    """What reading a split skipped or changed: printed as one summary line, never fatal."""

    name: str
    images: int = 0
    backgrounds: int = 0
    boxes: int = 0
    skipped: list[str] = field(default_factory=list)  # 'path: why' of unreadable images
    dropped: int = 0  # zero-size boxes
    duplicates: int = 0
    clipped: int = 0  # boxes pulled inside the image (within the slack)
    crowd: int = 0

    def summary(self) -> str:
        parts = [f"{self.name}: {self.images} images ({self.backgrounds} without boxes), {self.boxes} boxes"]
        if self.crowd:
            parts.append(f"{self.crowd} crowd regions (evaluation only)")
        if self.skipped:
            shown = "; ".join(self.skipped[:3]) + ("; ..." if len(self.skipped) > 3 else "")
            parts.append(f"{len(self.skipped)} unreadable images skipped ({shown})")
        if self.dropped:
            parts.append(f"{self.dropped} zero-size boxes dropped")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate rows dropped")
        if self.clipped:
            parts.append(f"{self.clipped} boxes clipped to the image")
        return ", ".join(parts)

    def noteworthy(self) -> bool:
        return bool(self.skipped or self.dropped or self.duplicates)

    def warn(self) -> None:
        """The summary on stderr when something was skipped or dropped (rank 0 of a distributed run only)."""
        import os

        if self.noteworthy() and int(os.environ.get("RANK", "0")) == 0:
            print(f"warning: {self.summary()}", file=sys.stderr, flush=True)


def _exif_turned(image: Any) -> bool:
    try:
        return int(image.getexif().get(0x0112, 1)) in (5, 6, 7, 8)  # orientations that swap width and height
    except Exception:  # a broken EXIF block: the pixels may still be fine
        return False


def check_image(path: Path) -> tuple[int, int] | str:
    """The (height, width) of a readable image as it will be shown (EXIF rotation applied), or why not."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            fmt = im.format
            im.verify()  # checks the structure (PNG: every chunk's CRC) without decoding the pixels
        with Image.open(path) as im:  # verify leaves the image unusable: open it again for its EXIF
            turned = _exif_turned(im)
        if fmt == "JPEG":  # a truncated JPEG lacks its end-of-image marker
            with open(path, "rb") as f:
                f.seek(-2, 2)
                if f.read() != b"\xff\xd9":
                    return "truncated JPEG (no end-of-image marker)"
    except FileNotFoundError:
        return "no such file"
    except UnidentifiedImageError:
        return "not an image Pillow can read"
    except (OSError, SyntaxError, ValueError) as e:
        return f"corrupt image ({e})"
    if w < 1 or h < 1:
        return f"empty image ({w}x{h})"
    return (w, h) if turned else (h, w)


def pil_to_array(image: Any, channels: int) -> np.ndarray:
    """A Pillow image as uint8 (h, w, channels): grey repeated for 3-channel models, colour to grey for 1."""
    if image.mode not in ("L", "RGB"):
        if image.mode in ("RGBA", "LA", "P", "PA") and channels == 3:
            image = image.convert("RGBA").convert("RGB")  # transparent pixels keep their colour channels
        else:
            image = image.convert("RGB" if channels == 3 else "L")
    if channels == 1 and image.mode != "L":
        image = image.convert("L")
    arr = np.asarray(image, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] != channels:
        arr = np.repeat(arr[:, :, :1], channels, axis=2)
    return np.ascontiguousarray(arr)


def read_image(path: str, channels: int) -> np.ndarray:
    """An image file as uint8 (h, w, channels), EXIF rotation applied; a located error if it fails now."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as opened:
            return pil_to_array(ImageOps.exif_transpose(opened) or opened, channels)
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: cannot read the image ({e})", Loc(path, 1, 1),
                        hint="it passed the check when the data were read; was it changed since?") from None
