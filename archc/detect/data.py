"""Detection data for `archc train/val/predict`: ``--data shapes`` (synthetic boxes), a ``data.yaml`` in
Ultralytics' YOLO layout, or a COCO ``instances.json`` with its images (data_shapes.py, data_yolo.py,
data_coco.py). Every source becomes records (boxes in the image's own pixels) and a `DetectionDataset`
that letterboxes to the model's input, augments for training (mosaic, random scale/translate, HSV, flip:
data_augment.py) and gives ``(image uint8 (C, H, W), targets (n, 5) = class, x1, y1, x2, y2 in input pixels,
ImageMeta)``; `collate` makes a batch ``(images float (B, C, H, W) in [0, 1], targets (N, 6) with the batch
index first, metas)``. Sample ``i`` of epoch ``e`` depends only on (seed, e, i), never on global random state.

Bad data stops before training with a located `DataError` (file:line:column); unreadable images are
skipped, and what was skipped or dropped is printed as one summary line. User data are only read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from archc.detect import data_augment as aug
from archc.detect.data_common import DataError, DataReport, ImageMeta, Record, read_image
from archc.detect.data_shapes import SHAPE_NAMES, shapes_rng, shapes_sample
from archc.errors import UsageError

__all__ = ["DataError", "ImageMeta", "Record", "DetectionDataset", "Source", "FileSource", "ShapesSource",
           "SHAPE_NAMES", "make_detection_data", "collate", "letterbox", "letterbox_image", "unletterbox_boxes"]

CACHE_BYTES = 512 * 2**20  # fitted images kept in memory (per process) when a split's total is under this
VAL_SHARE = 0.2  # a single COCO json: the share held out for validation


class Source:
    """A split's images: ``record(i)`` its boxes in original pixels, ``load(i)`` its pixels (h, w, channels)."""

    names: list[str]
    category_ids: list[int]  # class index -> the id COCO results use (the source's own ids for COCO)
    report: DataReport

    def __len__(self) -> int:
        raise NotImplementedError

    def record(self, i: int) -> Record:
        raise NotImplementedError

    def load(self, i: int, channels: int) -> np.ndarray:
        raise NotImplementedError


class FileSource(Source):
    def __init__(self, records: list[Record], names: list[str], category_ids: list[int] | None,
                 report: DataReport) -> None:
        self.records, self.names, self.report = records, names, report
        self.category_ids = category_ids if category_ids is not None else list(range(len(names)))

    def __len__(self) -> int:
        return len(self.records)

    def record(self, i: int) -> Record:
        return self.records[i]

    def load(self, i: int, channels: int) -> np.ndarray:
        return read_image(self.records[i].path, channels)


class ShapesSource(Source):
    """``count`` synthetic images of ``size`` (h, w); image i depends on (seed, split, i) only."""

    def __init__(self, seed: int, split: int, count: int, size: tuple[int, int], channels: int) -> None:
        self.seed, self.split, self.count, self.size, self.channels = seed, split, count, size, channels
        self.names, self.category_ids = list(SHAPE_NAMES), list(range(len(SHAPE_NAMES)))
        self.report = DataReport(f"shapes {('train', 'val')[split] if split < 2 else split}", images=count)
        self._records: dict[int, Record] = {}

    def __len__(self) -> int:
        return self.count

    def _make(self, i: int) -> np.ndarray:
        if not 0 <= i < self.count:
            raise IndexError(i)
        pixels, boxes, classes = shapes_sample(self.channels, *self.size, shapes_rng(self.seed, self.split, i))
        self._records[i] = Record.make(f"shapes:{self.report.name.split()[-1]}/{i}", i, self.size, boxes, classes)
        return pixels

    def record(self, i: int) -> Record:
        if i not in self._records:
            self._make(i)
        return self._records[i]

    def load(self, i: int, channels: int) -> np.ndarray:
        return self._make(i)


class DetectionDataset(Dataset[Any]):
    """Letterboxed samples of a source at ``size`` (h, w); with ``augment`` (training): mosaic with probability
    ``mosaic`` (while `set_epoch` leaves it on), else letterbox then random scale/translate; then HSV gains and
    a horizontal flip. The ImageMeta of a training sample is its image's plain letterbox."""

    def __init__(self, source: Source, size: tuple[int, int], channels: int, augment: bool = False, seed: int = 0,
                 mosaic: float = 1.0, scale: float = 0.5, translate: float = 0.1,
                 hsv: tuple[float, float, float] = (0.015, 0.7, 0.4), flip: float = 0.5) -> None:
        self.source, self.size, self.channels, self.augment, self.seed = source, size, channels, augment, seed
        self.mosaic, self.scale, self.translate, self.hsv, self.flip = mosaic, scale, translate, hsv, flip
        self.epoch, self.mosaic_on = 0, True
        self._cache: dict[int, tuple[np.ndarray, float]] | None = \
            {} if len(source) * size[0] * size[1] * channels <= CACHE_BYTES else None

    @property
    def names(self) -> list[str]:
        return self.source.names

    @property
    def category_ids(self) -> list[int]:
        return self.source.category_ids

    @property
    def report(self) -> DataReport:
        return self.source.report

    def record(self, i: int) -> Record:
        return self.source.record(i)

    def set_epoch(self, epoch: int, mosaic: bool | None = None) -> None:
        """The epoch the next samples belong to; ``mosaic=False`` switches mosaic off (close_mosaic)."""
        self.epoch = epoch
        if mosaic is not None:
            self.mosaic_on = mosaic

    def __len__(self) -> int:
        return len(self.source)

    def _fit(self, i: int) -> tuple[np.ndarray, float]:
        """Image i scaled to fit the input (cached when the split is small)."""
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        fitted = aug.fit(self.source.load(i, self.channels), self.size)
        if self._cache is not None:
            self._cache[i] = fitted
        return fitted

    def _fitted(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        arr, ratio = self._fit(i)
        boxes, classes = self.source.record(i).train_targets()
        return arr, (boxes * ratio).astype(np.float32), classes, ratio

    def rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch, i])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, ImageMeta]:
        arr, boxes, classes, ratio = self._fitted(i)
        rec = self.source.record(i)
        canvas, pad = aug.pad_to(arr, self.size)
        meta = ImageMeta(rec.image_id, rec.path, rec.hw, ratio, pad)
        boxes = boxes + np.array([pad[0], pad[1], pad[0], pad[1]], np.float32)
        if self.augment:
            canvas, boxes, classes = self._augment(i, canvas, boxes, classes)
        target = np.concatenate([classes[:, None].astype(np.float32), boxes.reshape(-1, 4)], 1)
        image = torch.from_numpy(np.ascontiguousarray(canvas.transpose(2, 0, 1)))
        return image, torch.from_numpy(target.astype(np.float32)).reshape(-1, 5), meta

    def _augment(self, i: int, canvas: np.ndarray, boxes: np.ndarray, classes: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = self.rng(i)
        if self.mosaic_on and self.mosaic > 0 and rng.random() < self.mosaic:
            others = rng.integers(0, len(self), 3).tolist()
            parts = [(a, b, c) for a, b, c, _ in (self._fitted(j) for j in [i, *others])]
            canvas, boxes, classes = aug.mosaic(parts, self.size, rng)
        canvas, boxes, classes = aug.random_affine(canvas, boxes, classes, self.size, rng, self.scale, self.translate)
        if any(self.hsv):
            canvas = aug.hsv(canvas, rng, self.hsv)
        if rng.random() < self.flip:
            canvas, boxes = aug.hflip(canvas, boxes)
        return canvas, boxes, classes


def collate(batch: list[tuple[torch.Tensor, torch.Tensor, ImageMeta]]
            ) -> tuple[torch.Tensor, torch.Tensor, list[ImageMeta]]:
    """(images float (B, C, H, W) in [0, 1], targets (N, 6) = batch index, class, x1, y1, x2, y2, metas)."""
    images = torch.stack([b[0] for b in batch]).float().div_(255)
    targets = torch.cat([torch.cat([torch.full((len(b[1]), 1), float(k)), b[1]], 1) for k, b in enumerate(batch)])
    return images, targets.reshape(-1, 6), [b[2] for b in batch]


def letterbox(arr: np.ndarray, size: int | tuple[int, int], boxes: np.ndarray | None = None
              ) -> tuple[np.ndarray, float, tuple[float, float], np.ndarray | None]:
    """uint8 (h, w, c) scaled to fit ``size`` (aspect kept) on grey 114: (array, ratio, (left, top), boxes)."""
    return aug.letterbox(arr, _hw(size), boxes)


def letterbox_image(image: Any, size: int | tuple[int, int], channels: int, image_id: int | str = ""
                    ) -> tuple[torch.Tensor, ImageMeta]:
    """A Pillow image as the model sees it, float (channels, H, W) in [0, 1], and its ImageMeta."""
    from archc.detect.data_common import pil_to_array

    arr = pil_to_array(image, channels)
    out, ratio, pad, _ = aug.letterbox(arr, _hw(size))
    meta = ImageMeta(image_id, str(getattr(image, "filename", "") or ""), arr.shape[:2], ratio, pad)
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1))).float().div_(255), meta


def unletterbox_boxes(boxes: torch.Tensor, meta: ImageMeta) -> torch.Tensor:
    """Boxes (n, 4) x1, y1, x2, y2 in input pixels back to the original image's pixels, clipped to it."""
    left, top = meta.pad
    shift = torch.tensor([left, top, left, top], dtype=boxes.dtype, device=boxes.device)
    out = (boxes[:, :4] - shift) / meta.ratio
    h, w = meta.orig_hw
    out[:, 0::2] = out[:, 0::2].clamp(0, w)
    out[:, 1::2] = out[:, 1::2].clamp(0, h)
    return out


def _hw(size: int | tuple[int, ...] | list[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    s = tuple(int(v) for v in size)
    return (s[-2], s[-1])


# ---- sources -------------------------------------------------------------------------------------

def _yolo(path: Path, val_only: bool) -> tuple[Source | None, Source]:
    from archc.detect.data_yolo import read_data_yaml, read_split

    data = read_data_yaml(path)
    val_records, val_report = read_split(data, "val")
    val = FileSource(val_records, data.names, None, val_report)
    if val_only:
        return None, val
    train_records, train_report = read_split(data, "train")
    return FileSource(train_records, data.names, None, train_report), val


def _coco(path: Path, seed: int, val_only: bool) -> tuple[Source | None, Source]:
    from archc.detect.data_coco import check_same_classes, read_coco, sibling_split

    pair = None if val_only else sibling_split(path)
    if pair is not None:
        train, val = read_coco(pair[0]), read_coco(pair[1])
        check_same_classes(train, val)
        return (FileSource(train.records, train.names, train.category_ids, train.report),
                FileSource(val.records, val.names, val.category_ids, val.report))
    whole = read_coco(path)
    if val_only:  # validate the file given, whole
        return None, FileSource(whole.records, whole.names, whole.category_ids, whole.report)
    if len(whole.records) < 2:
        raise DataError(f"{path}: {len(whole.records)} readable image; at least 2 are needed to keep one for "
                        "validation", None, hint="give instances_train*.json with an instances_val*.json beside it")
    order = np.random.default_rng([seed & 0xFFFFFFFF, 7]).permutation(len(whole.records)).tolist()
    cut = len(order) - max(round(len(order) * VAL_SHARE), 1)
    parts = []
    for name, idx in (("train", order[:cut]), ("val", order[cut:])):
        recs = [whole.records[k] for k in sorted(idx)]
        report = DataReport(f"{path.name} {name} ({len(recs)} of {len(whole.records)})", images=len(recs),
                            backgrounds=sum(not (~r.crowd).any() for r in recs),
                            boxes=sum(int((~r.crowd).sum()) for r in recs))
        if name == "train":  # what was skipped while reading, said once
            report.skipped, report.dropped = whole.report.skipped, whole.report.dropped
        parts.append(FileSource(recs, whole.names, whole.category_ids, report))
    return parts[0], parts[1]


def _sources(data: str, channels: int, size: tuple[int, int], seed: int, train_size: int, val_size: int,
             val_only: bool) -> tuple[Source | None, Source]:
    if data == "shapes":
        if val_size < 1 or train_size < 0:
            raise UsageError(f"--data shapes needs at least 1 validation image (got {val_size})")
        return (None if val_only else ShapesSource(seed, 0, train_size, size, channels),
                ShapesSource(seed, 1, val_size, size, channels))
    path = Path(data)
    if path.is_dir() and (path / "data.yaml").is_file():
        path = path / "data.yaml"
    if channels not in (1, 3):
        raise UsageError(f"the model takes {channels}-channel images; image files give 1 (grey) or 3 (RGB)",
                         hint="use --data shapes, which makes any channel count")
    if path.suffix.lower() in (".yaml", ".yml") and path.is_file():
        return _yolo(path, val_only)
    if path.suffix.lower() == ".json" and path.is_file():
        return _coco(path, seed, val_only)
    raise UsageError(f"--data {data}: expected 'shapes', a data.yaml (YOLO layout) or a COCO instances .json"
                     + ("" if path.exists() else " (no such file)"),
                     hint="data.yaml: path, train, val, names; images/ beside labels/ with class cx cy w h rows")


def make_detection_data(data: str, channels: int, size: int | tuple[int, ...], seed: int = 0, train_size: int = 400,
                        val_size: int = 100, mosaic: float = 1.0, val_only: bool = False
                        ) -> tuple[DetectionDataset, DetectionDataset, list[str]]:
    """(training set, validation set, class names) for ``--data``; ``train_size``/``val_size`` count shapes'
    images. ``val_only``: read the validation split only (the training set is then empty); a single COCO
    json is then validated whole (for training it is split 80/20 by the seed)."""
    hw = _hw(size)
    train_src, val_src = _sources(data, channels, hw, seed, train_size, val_size, val_only)
    if train_src is None:  # val_only: an empty training set with the same classes
        train_src = FileSource([], val_src.names, val_src.category_ids, DataReport("train (not read)"))
    if train_src.names != val_src.names:
        raise DataError(f"--data {data}: the training and validation splits name different classes", None)
    for src in (train_src, val_src):
        src.report.warn()
    train = DetectionDataset(train_src, hw, channels, augment=True, seed=seed, mosaic=mosaic)
    val = DetectionDataset(val_src, hw, channels, augment=False, seed=seed)
    return train, val, list(val_src.names)
