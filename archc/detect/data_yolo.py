"""Ultralytics' YOLO layout: a ``data.yaml`` (``path``, ``train``, ``val``, optional ``test``, ``names`` as a
list or an ``{id: name}`` mapping, optional ``nc``) and, beside each ``.../images/...`` file, a label file
``.../labels/....txt`` with rows ``class cx cy w h`` normalised to [0, 1] (a polygon ``class x1 y1 x2 y2 ...``
counts as its bounding box). No label file: a background image. Nothing is written next to the data."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archc.detect.data_common import IMAGE_SUFFIXES, DataError, DataReport, Record, check_image, located
from archc.errors import ArchcError

__all__ = ["YoloData", "read_data_yaml", "read_split", "read_labels", "label_path", "image_ids"]

SLACK = 1e-3  # normalised coordinates this far outside [0, 1] are clipped, not refused
MAX_ERRORS = 20  # bad rows gathered into one error before it is raised


@dataclass
class YoloData:
    file: Path
    root: Path
    names: list[str]
    splits: dict[str, list[str] | str]  # split -> the data.yaml value (folder, .txt list or a list of them)
    lines: dict[str, int]  # key -> its line in data.yaml


def _positions(text: str) -> dict[str, tuple[int, int]]:
    """(line, column) of each top-level key of a YAML mapping, 1-based."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): (k.start_mark.line + 1, k.start_mark.column + 1) for k, _ in node.value}


def _names(data: dict[str, Any], file: Path, pos: dict[str, tuple[int, int]]) -> list[str]:
    line = pos.get("names", pos.get("nc", (1, 1)))
    names = data.get("names")
    nc = data.get("nc")
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or nc < 1):
        raise located(f"nc must be a whole number >= 1, got {nc!r}", file, *pos.get("nc", (1, 1)))
    if names is None:
        if nc is None:
            raise located("data.yaml has no `names` (and no `nc`)", file, 1, 1,
                          hint="add `names: [cat, dog]` or `names: {0: cat, 1: dog}`")
        return [f"class{i}" for i in range(nc)]
    if isinstance(names, dict):
        names = {int(k) if isinstance(k, str) and k.isdigit() else k: v for k, v in names.items()}  # '0': cat
        keys = list(names)
        if any(isinstance(k, bool) or not isinstance(k, int) for k in keys) or sorted(keys) != list(range(len(keys))):
            raise located(f"names: the ids must be 0 to {len(keys) - 1}, each once; got {keys[:10]}", file, *line,
                          hint="number the classes from 0 without gaps, as the label files do")
        names = [names[i] for i in range(len(keys))]
    if not isinstance(names, list) or not names:
        raise located(f"names must be a list or an {{id: name}} mapping, got {type(names).__name__}", file, *line)
    if nc is not None and nc != len(names):
        raise located(f"nc is {nc} but names lists {len(names)} classes", file, *pos.get("nc", line),
                      hint="drop nc (names is enough) or make them agree")
    return [str(n) for n in names]


def read_data_yaml(path: Path) -> YoloData:
    """A data.yaml checked for its keys and folders (no image or label is read here)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise located(f"cannot read the data file ({e})", path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise located(f"invalid YAML: {getattr(e, 'problem', None) or e}", path,
                      mark.line + 1 if mark else 1, mark.column + 1 if mark else 1) from None
    pos = _positions(text)
    if not isinstance(data, dict):
        raise located("a data.yaml is a mapping with path, train, val and names", path)
    missing = [k for k in ("train", "val") if not data.get(k)]
    if missing:
        raise located(f"data.yaml has no `{'` or `'.join(missing)}`", path, 1, 1,
                      hint="train: and val: name image folders, .txt lists of images, or lists of them")
    names = _names(data, path, pos)
    root = _root(data.get("path"), path, pos)
    splits = {k: data[k] for k in ("train", "val", "test") if data.get(k)}
    for key, value in splits.items():
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, str):
                raise located(f"{key}: expected a folder or a .txt file, got {item!r}", path, *pos.get(key, (1, 1)))
            if key != "test" and not _resolve(root, item).exists():
                raise located(f"{key}: {_resolve(root, item)} does not exist", path, *pos.get(key, (1, 1)),
                              hint=f"paths are relative to `path` ({root})")
    return YoloData(path, root, names, splits, {k: v[0] for k, v in pos.items()})


def _root(value: Any, file: Path, pos: dict[str, tuple[int, int]]) -> Path:
    """``path``: absolute, or relative to the data.yaml's folder (else the working directory); default the folder."""
    if value in (None, ""):
        return file.parent.resolve()
    candidates = [Path(str(value)).expanduser()]
    if not candidates[0].is_absolute():
        candidates = [file.parent / candidates[0], Path.cwd() / candidates[0]]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    raise located(f"path: {value} is not a folder (looked at {', '.join(map(str, dict.fromkeys(candidates)))})",
                  file, *pos.get("path", (1, 1)))


def _resolve(root: Path, item: str) -> Path:
    p = Path(item).expanduser()
    return p if p.is_absolute() else root / p


def _list_file(txt: Path, root: Path) -> list[tuple[str, str]]:
    """(image path, where it was listed) for each line of a .txt list; './x' is relative to the list's folder."""
    out = []
    for n, line in enumerate(txt.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        item = line.strip()
        if not item:
            continue
        p = Path(item)
        if not p.is_absolute():
            p = txt.parent / item if item.startswith("./") or (txt.parent / item).exists() else root / item
        out.append((str(p), f"{txt}:{n}"))
    return out


def _split_images(data: YoloData, split: str) -> list[tuple[str, str]]:
    value = data.splits.get(split)
    if value is None:
        raise located(f"data.yaml has no `{split}`", data.file)
    found: list[tuple[str, str]] = []
    for item in value if isinstance(value, list) else [value]:
        p = _resolve(data.root, item)
        if p.is_dir():
            found += [(str(q), str(q)) for q in sorted(p.rglob("*")) if q.suffix.lower() in IMAGE_SUFFIXES]
        elif p.is_file() and p.suffix.lower() == ".txt":
            found += _list_file(p, data.root)
        elif p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            found.append((str(p), str(p)))
        else:
            raise located(f"{split}: {p} is neither a folder of images nor a .txt list", data.file,
                          data.lines.get(split, 1))
    return list(dict.fromkeys(found))


def label_path(image: str) -> str:
    """The label file of an image: the last ``/images/`` becomes ``/labels/``, the suffix ``.txt``."""
    a, b = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    swapped = b.join(image.rsplit(a, 1)) if a in image else image
    return os.path.splitext(swapped)[0] + ".txt"


def _number(text: str, file: str, line: int, col: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise located(f"{what} '{text}' is not a number", file, line, col) from None
    if not math.isfinite(value):
        raise located(f"{what} '{text}' is not a finite number", file, line, col)
    return value


def _columns(raw: str) -> list[tuple[str, int]]:
    """The fields of a row with their 1-based columns."""
    out, i = [], 0
    for field in raw.split():
        i = raw.index(field, i)
        out.append((field, i + 1))
        i += len(field)
    return out


def _row(raw: str, file: str, line: int, nc: int) -> tuple[int, list[float]] | None:
    """One label row as (class, [cx, cy, w, h]) clipped to [0, 1]; None for an empty line."""
    fields = _columns(raw)
    if not fields:
        return None
    if len(fields) != 5 and (len(fields) < 7 or len(fields) % 2 == 0):
        raise located(f"a label row has 5 fields (class cx cy w h), this one has {len(fields)}", file, line,
                      fields[0][1], hint="one box per line: class id, then centre x, centre y, width, height in [0, 1]")
    cls_text, cls_col = fields[0]
    cls = _number(cls_text, file, line, cls_col, "class id")
    if cls != int(cls) or cls < 0:
        raise located(f"class id '{cls_text}' is not a whole number >= 0", file, line, cls_col)
    if int(cls) >= nc:
        raise located(f"class id {int(cls)} but the data has {nc} classes (0 to {nc - 1})", file, line, cls_col,
                      hint="add the class to names in data.yaml, or fix the label")
    what = ("cx", "cy", "w", "h") if len(fields) == 5 else tuple(f"{'xy'[k % 2]}{k // 2 + 1}"
                                                                   for k in range(len(fields) - 1))
    values = []
    for (text, col), name in zip(fields[1:], what):
        v = _number(text, file, line, col, name)
        if v < -SLACK or v > 1 + SLACK:
            raise located(f"{name} = {text} is outside [0, 1]: label coordinates are fractions of the image size",
                          file, line, col, hint="divide pixel coordinates by the image's width and height")
        values.append(min(max(v, 0.0), 1.0))
    if len(fields) > 5:  # a polygon: its bounding box
        xs, ys = values[0::2], values[1::2]
        values = [(min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(xs) - min(xs), max(ys) - min(ys)]
    return int(cls), values


def read_labels(file: str, nc: int, hw: tuple[int, int], report: DataReport) -> tuple[list[list[float]], list[int]]:
    """Boxes (x1, y1, x2, y2 in pixels, clipped) and classes of one label file; bad rows raise one
    error naming each (file:line:column), zero-size boxes and repeated rows are dropped and counted."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise located("a label file is UTF-8 text", file) from None
    except OSError as e:
        raise located(f"cannot read the label file ({e.strerror})", file) from None
    h, w = hw
    boxes: list[list[float]] = []
    classes: list[int] = []
    seen: set[tuple[int, tuple[float, ...]]] = set()
    errors: list[ArchcError] = []
    for n, raw in enumerate(text.splitlines(), 1):
        try:
            row = _row(raw, file, n, nc)
        except DataError as e:
            errors.append(e)
            if len(errors) >= MAX_ERRORS:
                break
            continue
        if row is None:
            continue
        cls, (cx, cy, bw, bh) = row
        key = (cls, (cx, cy, bw, bh))
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        x1, y1 = max(cx - bw / 2, 0.0) * w, max(cy - bh / 2, 0.0) * h
        x2, y2 = min(cx + bw / 2, 1.0) * w, min(cy + bh / 2, 1.0) * h
        if cx - bw / 2 < -SLACK or cy - bh / 2 < -SLACK or cx + bw / 2 > 1 + SLACK or cy + bh / 2 > 1 + SLACK:
            report.clipped += 1  # the box reached past the border: kept, cut at the image's edge
        if x2 - x1 <= 0 or y2 - y1 <= 0:
            report.dropped += 1
            continue
        boxes.append([x1, y1, x2, y2])
        classes.append(cls)
    if errors:
        first = errors[0]
        first.others = list(errors[1:])
        raise first
    return boxes, classes


def image_ids(paths: list[str]) -> list[int]:
    """COCO's image ids: the file stem where it is an integer (``000000000139.jpg`` -> 139) and unique;
    the rest numbered after the largest of those."""
    stems = [Path(p).stem for p in paths]
    ints = [int(s) if s.isdigit() and len(s) < 19 else None for s in stems]
    counts: dict[int, int] = {}
    for i in ints:
        if i is not None:
            counts[i] = counts.get(i, 0) + 1
    ids: list[int] = []
    nxt = max([i for i in ints if i is not None], default=-1) + 1
    for i in ints:
        if i is not None and counts[i] == 1:
            ids.append(i)
        else:
            ids.append(nxt)
            nxt += 1
    return ids


def read_split(data: YoloData, split: str) -> tuple[list[Record], DataReport]:
    """The records of one split: each image checked (unreadable ones skipped and counted), its labels read."""
    report = DataReport(f"{data.file.name} {split}")
    listed = _split_images(data, split)
    kept: list[tuple[str, tuple[int, int]]] = []
    for path, where in listed:
        hw = check_image(Path(path))
        if isinstance(hw, str):
            report.skipped.append(f"{where}: {hw}" if where != path else f"{path}: {hw}")
            continue
        kept.append((path, hw))
    if not kept:
        why = f" ({len(report.skipped)} unreadable: {report.skipped[0]})" if report.skipped else ""
        raise located(f"{split}: no images found in {data.splits[split]}{why}", data.file, data.lines.get(split, 1),
                      hint=f"image files end in {', '.join(IMAGE_SUFFIXES[:6])}, ...")
    records = []
    for (path, hw), image_id in zip(kept, image_ids([p for p, _ in kept])):
        lab = label_path(path)
        boxes, classes = read_labels(lab, len(data.names), hw, report) if os.path.isfile(lab) else ([], [])
        records.append(Record.make(path, image_id, hw, boxes, classes))
        report.backgrounds += not classes
        report.boxes += len(classes)
    report.images = len(records)
    return records, report
