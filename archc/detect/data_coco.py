"""A COCO ``instances.json`` and its image folder: ``images`` (id, file_name, width, height), ``annotations``
(image_id, category_id, ``bbox`` = x, y, w, h in pixels, ``iscrowd``, ``area``) and ``categories`` (id, name).
Category ids become contiguous classes 0..nc-1 (sorted by id) and map back for COCO results; crowd regions
are kept for evaluation (COCOeval ignores detections on them) and never trained on. An error names the
file and the line of the entry (found by a second, position-keeping parse only when there is an error)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archc.detect.data_common import DataError, DataReport, Record, check_image, located

__all__ = ["CocoData", "read_coco", "sibling_split"]

MAX_BYTES = 2_000_000_000


@dataclass
class CocoData:
    file: Path
    folder: Path
    names: list[str]
    category_ids: list[int]  # class index -> COCO category id
    records: list[Record]
    report: DataReport


def entry_position(text: str, section: str, index: int) -> tuple[int, int]:
    """(line, column) of ``data[section][index]`` in a JSON text, by a parse that keeps where objects start."""
    import json.decoder
    import json.scanner

    starts: dict[int, int] = {}
    kept: list[Any] = []

    class _Tracking(json.JSONDecoder):
        def __init__(self) -> None:
            super().__init__()

            def parse_object(s_and_end: tuple[str, int], *args: Any) -> tuple[Any, int]:
                obj, end = json.decoder.JSONObject(s_and_end, *args)  # type: ignore[attr-defined]
                starts[id(obj)] = s_and_end[1] - 1
                kept.append(obj)  # alive until the lookup, so ids stay unique
                return obj, end

            self.parse_object = parse_object  # type: ignore[assignment]
            self.scan_once = json.scanner.py_make_scanner(self)  # type: ignore[attr-defined]

    try:
        offset = starts[id(_Tracking().decode(text)[section][index])]
    except (KeyError, IndexError, TypeError, ValueError):
        return 1, 1
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


class _Locator:
    """Errors at an entry of the json: the position is looked up only when one is raised."""

    def __init__(self, file: Path, text: str) -> None:
        self.file, self.text = file, text

    def error(self, section: str, index: int, message: str, hint: str | None = None) -> DataError:
        line, col = entry_position(self.text, section, index)
        return located(f"{section}[{index}]: {message}", self.file, line, col, hint=hint)


def _load(path: Path) -> tuple[dict[str, Any], str]:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise located(f"larger than {MAX_BYTES} bytes", path)
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise located("an instances.json is UTF-8 text", path) from None
    except OSError as e:
        raise located(f"cannot read it ({e.strerror})", path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise located(f"invalid JSON: {e.msg}", path, e.lineno, e.colno) from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("categories"), list):
        raise located("a COCO instances file is an object with `images`, `annotations` and `categories` lists",
                      path, hint="the detection annotations are instances_*.json, not captions or keypoints")
    return data, text


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _categories(data: dict[str, Any], loc: _Locator) -> tuple[list[str], list[int]]:
    seen: dict[int, str] = {}
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or not _int(cat.get("id")):
            raise loc.error("categories", i, "a category needs an integer `id` (and a `name`)")
        if cat["id"] in seen:
            raise loc.error("categories", i, f"category id {cat['id']} appears twice")
        seen[cat["id"]] = str(cat.get("name", cat["id"]))
    if not seen:
        raise located("`categories` is empty", loc.file, hint="list the classes as {id, name}")
    ids = sorted(seen)
    return [seen[i] for i in ids], ids


def _images(data: dict[str, Any], loc: _Locator) -> dict[int, tuple[int, dict[str, Any]]]:
    images: dict[int, tuple[int, dict[str, Any]]] = {}
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or not _int(im.get("id")) or not isinstance(im.get("file_name"), str):
            raise loc.error("images", i, "an image needs an integer `id` and a `file_name`")
        if not all(_int(im.get(k)) and im[k] > 0 for k in ("width", "height")):
            raise loc.error("images", i, f"width and height must be whole numbers > 0, got {im.get('width')!r} x "
                                         f"{im.get('height')!r}")
        if im["id"] in images:
            raise loc.error("images", i, f"image id {im['id']} appears twice")
        images[im["id"]] = (i, im)
    return images


def _folder(file: Path, names: list[str], given: Path | None) -> Path:
    """The folder the file_names are relative to: given, or found beside the json (COCO's layouts:
    ``annotations/instances_val2017.json`` with ``val2017/`` or ``images/val2017/`` next to ``annotations/``)."""
    if given is not None:
        return given
    split = file.stem.split("_", 1)[1] if file.stem.startswith("instances_") else file.stem
    tried: list[Path] = []
    for base in (file.parent, file.parent.parent):
        for sub in ("", split, "images", f"images/{split}"):
            folder = base / sub if sub else base
            if folder not in tried:
                tried.append(folder)
            if any((folder / n).is_file() for n in names[:5]):
                return folder
    raise located(f"cannot find the images (e.g. {names[0]}); looked in {', '.join(map(str, tried))}", file,
                  hint="put the images in a folder named after the split (val2017/) beside the json's folder")


def _box(ann: dict[str, Any], im: dict[str, Any]) -> list[float] | str:
    """x1, y1, x2, y2 clipped to the image, or what is wrong with the bbox."""
    b = ann.get("bbox")
    if not isinstance(b, list) or len(b) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                         and math.isfinite(v) for v in b):
        return f"bbox must be 4 numbers [x, y, w, h] in pixels, got {b!r}"
    x, y, w, h = (float(v) for v in b)
    W, H = im["width"], im["height"]
    sx, sy = max(1.0, 1e-3 * W), max(1.0, 1e-3 * H)  # COCO's own boxes overshoot by a fraction of a pixel
    if w < 0 or h < 0 or x < -sx or y < -sy or x + w > W + sx or y + h > H + sy:
        return f"bbox {b} is outside the {W}x{H} image"
    return [min(max(x, 0.0), W), min(max(y, 0.0), H), min(max(x + w, 0.0), W), min(max(y + h, 0.0), H)]


def read_coco(file: Path, folder: Path | None = None) -> CocoData:
    """Every image of an instances.json with its boxes; unreadable images are skipped and counted."""
    data, text = _load(file)
    loc = _Locator(file, text)
    names, cat_ids = _categories(data, loc)
    cls_of = {c: k for k, c in enumerate(cat_ids)}
    images = _images(data, loc)
    if not images:
        raise located("`images` is empty: an empty split", file)
    root = _folder(file, [im["file_name"] for _, im in images.values()], folder)
    per_image: dict[int, list[tuple[list[float], int, bool, float]]] = {i: [] for i in images}
    report = DataReport(file.name)
    anns = data.get("annotations") or []
    if not isinstance(anns, list):
        raise located("`annotations` must be a list", file)
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict) or ann.get("image_id") not in images:
            raise loc.error("annotations", i, f"image_id {ann.get('image_id') if isinstance(ann, dict) else ann!r} "
                                              "is not among the images")
        if ann.get("category_id") not in cls_of:
            raise loc.error("annotations", i, f"category_id {ann.get('category_id')!r} is not among the categories "
                                              f"({', '.join(map(str, cat_ids[:10]))})")
        box = _box(ann, images[ann["image_id"]][1])
        if isinstance(box, str):
            raise loc.error("annotations", i, box)
        if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
            report.dropped += 1
            continue
        crowd = bool(ann.get("iscrowd", 0))
        area = ann.get("area")
        area = float(area) if isinstance(area, (int, float)) and math.isfinite(area) else \
            (box[2] - box[0]) * (box[3] - box[1])
        per_image[ann["image_id"]].append((box, cls_of[ann["category_id"]], crowd, area))
    records = []
    for image_id, (i, im) in images.items():
        path = root / im["file_name"]
        hw = check_image(path)
        if isinstance(hw, str):
            report.skipped.append(f"{path}: {hw}")
            continue
        if hw != (im["height"], im["width"]):
            raise loc.error("images", i, f"{path} is {hw[1]}x{hw[0]} but the json says {im['width']}x{im['height']}")
        rows = per_image[image_id]
        records.append(Record.make(str(path), image_id, hw, [r[0] for r in rows], [r[1] for r in rows],
                                   [r[2] for r in rows], [r[3] for r in rows]))
        report.boxes += sum(not r[2] for r in rows)
        report.crowd += sum(r[2] for r in rows)
        report.backgrounds += not rows
    if not records:
        raise located(f"none of the {len(images)} images can be read ({report.skipped[0]})", file)
    report.images = len(records)
    return CocoData(file, root, names, cat_ids, records, report)


def sibling_split(file: Path) -> tuple[Path, Path] | None:
    """(train json, val json) when ``file`` is one of a pair named ``*train*`` / ``*val*`` in one folder."""
    name = file.name
    for a, b in (("train", "val"), ("val", "train")):
        if a in name:
            other = file.with_name(name.replace(a, b, 1))
            if other.is_file():
                return (file, other) if a == "train" else (other, file)
    return None


def check_same_classes(train: CocoData, val: CocoData) -> None:
    if train.category_ids != val.category_ids:
        raise DataError(f"{train.file} and {val.file} list different categories "
                        f"({len(train.category_ids)} and {len(val.category_ids)})", None,
                        hint="both splits need the same `categories`")
