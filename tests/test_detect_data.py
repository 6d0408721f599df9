"""Detection data (archc/detect/data*.py): a YOLO-layout data.yaml (background and corrupt images, one located
error per kind of bad data), a COCO instances.json, `shapes`, letterbox round trips, augmentations that keep
boxes on the drawn objects, channel handling and determinism. Tiny images; one thread."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archc.detect import data_augment as aug
from archc.detect.data import (
    DataError,
    DetectionDataset,
    FileSource,
    ImageMeta,
    Record,
    ShapesSource,
    collate,
    letterbox,
    letterbox_image,
    make_detection_data,
    unletterbox_boxes,
)
from archc.detect.data_common import DataReport
from archc.detect.data_shapes import shapes_rng, shapes_sample
from archc.detect.data_yolo import label_path
from archc.errors import UsageError, format_error

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

RED = (255, 0, 0)


def _image(path: Path, size: tuple[int, int] = (64, 48), boxes: tuple[tuple[int, int, int, int], ...] = (),
           mode: str = "RGB") -> None:
    """A black (w, h) image with red filled boxes (x1, y1, x2, y2, pixels [x1, x2) x [y1, y2))."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    for x1, y1, x2, y2 in boxes:
        arr[y1:y2, x1:x2] = RED
    Image.fromarray(arr).convert(mode).save(path)


def _yolo(root: Path, labels: dict[str, str] | None = None, yaml_text: str | None = None) -> Path:
    """A YOLO-layout data set: train 0001 (two boxes), 0002 (background: no label file), bad (corrupt bytes);
    val 0003 (one box). ``labels`` replaces label files' text by image stem."""
    _image(root / "images/train/0001.png", boxes=((8, 8, 24, 32), (40, 10, 56, 20)))
    _image(root / "images/train/0002.png")
    (root / "images/train/bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    _image(root / "images/val/0003.png", boxes=((16, 16, 48, 40),))
    texts = {"0001": "0 0.25 0.416667 0.25 0.5\n\n1 0.75 0.3125 0.25 0.208333\n", "0003": "1 0.5 0.583333 0.5 0.5\n"}
    texts.update(labels or {})
    for stem, text in texts.items():
        split = "val" if stem == "0003" else "train"
        (root / f"labels/{split}/{stem}.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / f"labels/{split}/{stem}.txt").write_text(text)
    data = root / "data.yaml"
    data.write_text(yaml_text if yaml_text is not None else
                    "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: cat\n  1: dog\n")
    return data


def test_yolo_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _yolo(tmp_path / "ds")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "ds").rglob("*")}
    train, val, names = make_detection_data(str(data), 3, 64, seed=0)
    assert names == ["cat", "dog"]
    assert len(train) == 2 and len(val) == 1  # the corrupt image skipped, the background kept
    recs = {Path(train.record(i).path).name: train.record(i) for i in range(len(train))}
    np.testing.assert_allclose(recs["0001.png"].boxes, [[8, 8, 24, 32], [40, 10, 56, 20]], atol=1e-3)
    assert recs["0001.png"].classes.tolist() == [0, 1] and recs["0001.png"].hw == (48, 64)
    assert len(recs["0002.png"].boxes) == 0 and recs["0001.png"].image_id == 1  # the integer stem
    err = capsys.readouterr().err
    assert "1 unreadable images skipped" in err and "bad.png" in err and "1 without boxes" in err
    assert train.report.skipped and train.report.backgrounds == 1
    # letterboxed: 64x48 -> 64x48 on a 64x64 canvas, 8 px grey above
    image, target, meta = val[0]
    assert image.shape == (3, 64, 64) and image.dtype == torch.uint8 and int(image[0, 0, 0]) == 114
    assert meta == ImageMeta(3, str(tmp_path / "ds/images/val/0003.png"), (48, 64), 1.0, (0.0, 8.0))
    np.testing.assert_allclose(target.numpy(), [[1, 16, 24, 48, 48]], atol=1e-3)
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "ds").rglob("*")}  # nothing written


def test_yolo_txt_lists_and_name_lists(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _yolo(root)
    (root / "train.txt").write_text("./images/train/0001.png\n\nimages/train/0002.png\n")
    data = root / "other.yaml"
    data.write_text(f"path: {root}\ntrain: train.txt\nval: [images/val]\nnames: {{'0': cat, 1: dog}}\nnc: 2\n")
    train, val, names = make_detection_data(str(data), 3, 64)
    assert names == ["cat", "dog"] and len(train) == 2 and len(val) == 1
    assert label_path("/d/images/x/images/a.b.jpg") == "/d/images/x/labels/a.b.txt"
    assert label_path("/d/pics/a.jpg") == "/d/pics/a.txt"


def _message(err: DataError) -> str:
    return format_error(err, with_source=False)


@pytest.mark.parametrize(("row", "col", "words"), [
    ("2 0.5 0.5 0.2 0.2", 1, "class id 2 but the data has 2 classes"),
    ("0 1.2 0.5 0.2 0.2", 3, "cx = 1.2 is outside [0, 1]"),
    ("0 0.5 -0.01 0.2 0.2", 7, "cy = -0.01 is outside [0, 1]"),
    ("0 0.5 0.5 0.2", 1, "5 fields (class cx cy w h), this one has 4"),
    ("0 0.5 0.5 0.2 0.2 0.3", 1, "this one has 6"),
    ("0 0.5 abc 0.2 0.2", 7, "cy 'abc' is not a number"),
    ("cat 0.5 0.5 0.2 0.2", 1, "class id 'cat' is not a number"),
    ("1.5 0.5 0.5 0.2 0.2", 1, "class id '1.5' is not a whole number"),
    ("0 0.5 nan 0.2 0.2", 7, "not a finite number"),
])
def test_bad_label_rows_name_file_line_column(tmp_path: Path, row: str, col: int, words: str) -> None:
    data = _yolo(tmp_path / "ds", {"0001": f"0 0.25 0.4 0.25 0.5\n\n{row}\n"})
    with pytest.raises(DataError) as e:
        make_detection_data(str(data), 3, 64)
    label = tmp_path / "ds/labels/train/0001.txt"
    assert _message(e.value).startswith(f"{label}:3:{col}: error: ")
    assert words in _message(e.value)
    assert isinstance(e.value, UsageError)  # the CLI prints it without a traceback (exit 2)
    assert format_error(e.value).splitlines()[1].strip() == row  # the row shown under the message


def test_several_bad_rows_in_one_error(tmp_path: Path) -> None:
    data = _yolo(tmp_path / "ds", {"0001": "5 0.5 0.5 0.2 0.2\n0 0.5\n0 0.5 0.5 0.2 0.2\n"})
    with pytest.raises(DataError) as e:
        make_detection_data(str(data), 3, 64)
    text = _message(e.value)
    assert "0001.txt:1:1:" in text and "0001.txt:2:1:" in text and "0001.txt:3" not in text


def test_slack_clipping_zero_size_and_duplicates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = "0 1.0005 0.5 0.2 0.2\n1 0.5 0.5 0 0.3\n0 0.25 0.5 0.25 0.5\n0 0.25 0.5 0.25 0.5\n"
    data = _yolo(tmp_path / "ds", {"0001": rows})
    train, _, _ = make_detection_data(str(data), 3, 64)
    rec = next(train.record(i) for i in range(len(train)) if train.record(i).path.endswith("0001.png"))
    # cx clipped to 1: the box reaches past the right edge and is cut there
    np.testing.assert_allclose(rec.boxes, [[57.6, 19.2, 64, 28.8], [8, 12, 24, 36]], atol=1e-3)
    assert train.report.dropped == 1 and train.report.duplicates == 1
    err = capsys.readouterr().err
    assert "1 zero-size boxes dropped" in err and "1 duplicate rows dropped" in err


@pytest.mark.parametrize(("yaml_text", "line", "words"), [
    ("path: .\ntrain: images/train\nnames: [cat, dog]\n", 1, "data.yaml has no `val`"),
    ("path: .\ntrain: images/train\nval: images/nope\nnames: [cat, dog]\n", 3, "images/nope does not exist"),
    ("path: .\ntrain: images/train\nval: images/val\n", 1, "no `names`"),
    ("path: .\ntrain: images/train\nval: images/val\nnames: [cat, dog]\nnc: 3\n", 5, "nc is 3 but names lists 2"),
    ("path: .\ntrain: images/train\nval: images/val\nnames: {0: cat, 2: dog}\n", 4, "the ids must be 0 to 1"),
    ("path: nowhere\ntrain: images/train\nval: images/val\nnames: [a]\n", 1, "path: nowhere is not a folder"),
    ("path: .\ntrain: images/train\nval: [images/val\n", 4, "invalid YAML"),
    ("path: .\ntrain: images/train\nval: images/empty\nnames: [cat, dog]\n", 3, "val: no images found"),
])
def test_bad_data_yaml(tmp_path: Path, yaml_text: str, line: int, words: str) -> None:
    data = _yolo(tmp_path / "ds", yaml_text=yaml_text)
    (tmp_path / "ds/images/empty").mkdir()
    with pytest.raises(DataError) as e:
        make_detection_data(str(data), 3, 64)
    assert _message(e.value).startswith(f"{data}:{line}:") and words in _message(e.value)


def test_all_images_unreadable_is_an_empty_split(tmp_path: Path) -> None:
    data = _yolo(tmp_path / "ds")
    (tmp_path / "ds/images/val/0003.png").write_bytes(b"GIF89a truncated")
    with pytest.raises(DataError) as e:
        make_detection_data(str(data), 3, 64)
    assert f"{data}:3:" in _message(e.value) and "no images found" in _message(e.value)
    assert "0003.png" in _message(e.value)  # and why


def test_unknown_data(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="expected 'shapes', a data.yaml"):
        make_detection_data(str(tmp_path / "nothing.yaml"), 3, 64)
    with pytest.raises(UsageError, match="image files give 1 .grey. or 3"):
        make_detection_data(str(_yolo(tmp_path / "ds")), 4, 64)


# ---- COCO ------------------------------------------------------------------------------------------

def _coco(root: Path, anns: list[dict] | None = None) -> Path:
    """annotations/instances_val2017.json with val2017/ beside it; categories 3 (cat) and 7 (dog)."""
    _image(root / "val2017/000000000139.png", boxes=((8, 8, 24, 32),))
    _image(root / "val2017/000000000285.png", size=(40, 40))
    file = root / "annotations/instances_val2017.json"
    file.parent.mkdir(parents=True)
    data = {"images": [{"id": 139, "file_name": "000000000139.png", "width": 64, "height": 48},
                       {"id": 285, "file_name": "000000000285.png", "width": 40, "height": 40}],
            "annotations": anns if anns is not None else [
                {"id": 1, "image_id": 139, "category_id": 7, "bbox": [8, 8, 16, 24], "area": 300.0, "iscrowd": 0},
                {"id": 2, "image_id": 139, "category_id": 3, "bbox": [30, 20, 10, 10], "area": 90.0, "iscrowd": 1},
                {"id": 3, "image_id": 285, "category_id": 3, "bbox": [5, 5, 0, 10], "area": 0.0, "iscrowd": 0}],
            "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}]}
    file.write_text(json.dumps(data, indent=1))
    return file


def test_coco_instances(tmp_path: Path) -> None:
    file = _coco(tmp_path)
    _, val, names = make_detection_data(str(file), 3, 64, val_only=True)
    assert names == ["cat", "dog"] and val.category_ids == [3, 7]  # sorted by id, mapped back for results
    rec = val.record(0)
    assert rec.image_id == 139 and rec.classes.tolist() == [1, 0] and rec.crowd.tolist() == [False, True]
    np.testing.assert_allclose(rec.boxes, [[8, 8, 24, 32], [30, 20, 40, 30]])
    assert rec.area.tolist() == [300.0, 90.0]
    assert val.report.dropped == 1 and val.report.crowd == 1 and val.report.backgrounds == 1
    _, target, _ = val[0]
    assert target[:, 0].tolist() == [1.0]  # the crowd region is not trained on
    train, val, _ = make_detection_data(str(file), 3, 64)  # one json, no sibling: split for training
    assert len(train) + len(val) == 2 and len(val) == 1


@pytest.mark.parametrize(("ann", "words"), [
    ({"image_id": 139, "category_id": 5, "bbox": [1, 1, 2, 2]}, "category_id 5 is not among the categories"),
    ({"image_id": 9, "category_id": 3, "bbox": [1, 1, 2, 2]}, "image_id 9 is not among the images"),
    ({"image_id": 139, "category_id": 3, "bbox": [1, 1, 2]}, "bbox must be 4 numbers"),
    ({"image_id": 139, "category_id": 3, "bbox": [60, 1, 20, 2]}, "is outside the 64x48 image"),
])
def test_bad_coco_annotation_names_file_and_line(tmp_path: Path, ann: dict, words: str) -> None:
    good = {"id": 1, "image_id": 139, "category_id": 7, "bbox": [8, 8, 16, 24]}
    file = _coco(tmp_path, [good, ann])
    with pytest.raises(DataError) as e:
        make_detection_data(str(file), 3, 64, val_only=True)
    lines = file.read_text().splitlines()
    start = next(n for n, text in enumerate(lines) if '"annotations"' in text)
    line = [n for n, text in enumerate(lines, 1) if n > start and text.strip() == "{"][1]  # the second entry's
    assert _message(e.value).startswith(f"{file}:{line}:") and "annotations[1]" in _message(e.value)
    assert words in _message(e.value)


def test_bad_coco_json(tmp_path: Path) -> None:
    file = tmp_path / "instances.json"
    file.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(DataError, match=r"instances.json:2:\d+: error: invalid JSON"):
        make_detection_data(str(file), 3, 64)
    file.write_text('{"images": [], "categories": [{"id": 1, "name": "a"}]}')
    with pytest.raises(DataError, match="an empty split"):
        make_detection_data(str(file), 3, 64)


# ---- shapes ------------------------------------------------------------------------------------------

def test_shapes_any_size_and_channels_deterministic() -> None:
    for c, h, w in ((3, 64, 64), (1, 40, 72), (4, 72, 40)):
        a = shapes_sample(c, h, w, shapes_rng(5, 0, 3))
        b = shapes_sample(c, h, w, shapes_rng(5, 0, 3))
        assert a[0].shape == (h, w, c) and a[0].dtype == np.uint8
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
    counts, classes = [], set()
    for i in range(40):
        pixels, boxes, kinds = shapes_sample(3, 64, 64, shapes_rng(0, 0, i))
        counts.append(len(boxes))
        classes |= set(kinds.tolist())
        assert ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all()
        assert boxes.min() >= 0 and boxes.max() <= 64
    assert min(counts) >= 1 and max(counts) == 4 and classes == {0, 1, 2}
    assert not np.array_equal(shapes_sample(3, 64, 64, shapes_rng(0, 0, 1))[0],
                              shapes_sample(3, 64, 64, shapes_rng(1, 0, 1))[0])
    train, val, names = make_detection_data("shapes", 3, (48, 64), seed=2, train_size=8, val_size=4)
    assert names == ["circle", "rectangle", "triangle"] and (len(train), len(val)) == (8, 4)
    assert val[0][0].shape == (3, 48, 64)


# ---- letterbox -----------------------------------------------------------------------------------------

def test_letterbox_round_trip() -> None:
    rng = np.random.default_rng(0)
    for h, w in ((48, 64), (100, 30), (640, 480), (17, 17)):
        xy = rng.uniform(0, 1, (6, 2)) * [w, h]
        boxes = np.concatenate([xy, xy + rng.uniform(1, 10, (6, 2))], 1).clip(0, [w, h, w, h]).astype(np.float32)
        out, ratio, pad, moved = letterbox(np.zeros((h, w, 3), np.uint8), 64, boxes)
        assert out.shape == (64, 64, 3) and max(round(h * ratio), round(w * ratio)) == 64
        meta = ImageMeta(0, "", (h, w), ratio, pad)
        back = unletterbox_boxes(torch.from_numpy(moved), meta)
        np.testing.assert_allclose(back.numpy(), boxes, atol=1e-3)
    meta = ImageMeta(0, "", (48, 64), 1.0, (0.0, 8.0))  # clipped to the image
    back = unletterbox_boxes(torch.tensor([[-5.0, 0.0, 70.0, 64.0]]), meta)
    assert back.tolist() == [[0.0, 0.0, 64.0, 48.0]]


def test_letterbox_image_channels(tmp_path: Path) -> None:
    _image(tmp_path / "g.png", (30, 60), ((5, 5, 10, 10),), mode="L")
    with Image.open(tmp_path / "g.png") as im:
        x, meta = letterbox_image(im, 32, 3)
    assert x.shape == (3, 32, 32) and torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    assert meta.orig_hw == (60, 30) and meta.ratio == pytest.approx(32 / 60) and meta.pad == (8.0, 0.0)
    _image(tmp_path / "c.png", (32, 32), ((0, 0, 32, 32),))
    with Image.open(tmp_path / "c.png") as im:
        x, _ = letterbox_image(im, 32, 1)
    assert x.shape == (1, 32, 32) and abs(float(x.mean()) - 76 / 255) < 0.01  # red as grey (Pillow's L)


def test_grey_and_rgb_files_fit_the_model(tmp_path: Path) -> None:
    data = _yolo(tmp_path / "ds")
    _image(tmp_path / "ds/images/val/0003.png", boxes=((16, 16, 48, 40),), mode="L")
    _, val, _ = make_detection_data(str(data), 3, 64, val_only=True)
    image = val[0][0]
    assert image.shape == (3, 64, 64) and torch.equal(image[0], image[2])
    train, _, _ = make_detection_data(str(data), 1, 64)
    assert train[0][0].shape == (1, 64, 64)


# ---- augmentation ----------------------------------------------------------------------------------------

class _Boxes(FileSource):
    """Black images of assorted sizes, each with one or two red filled boxes away from its edges."""

    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(1)
        self.images = []
        records = []
        for i in range(n):
            h, w = (int(v) for v in rng.integers(40, 90, 2))
            arr = np.zeros((h, w, 3), np.uint8)
            boxes = []
            for x0 in ((0.15, 0.55) if i % 2 else (0.3,)):
                bx1, by1 = int(w * x0), int(h * rng.uniform(0.15, 0.4))
                bx2, by2 = bx1 + int(w * 0.28), by1 + int(h * rng.uniform(0.2, 0.4))
                arr[by1:by2, bx1:bx2] = RED
                boxes.append([bx1, by1, bx2, by2])
            self.images.append(arr)
            records.append(Record.make(f"img{i}", i, (h, w), boxes, [i % 2] * len(boxes)))
        super().__init__(records, ["a", "b"], None, DataReport("boxes"))

    def load(self, i: int, channels: int) -> np.ndarray:
        return self.images[i]


def _red(image: torch.Tensor) -> np.ndarray:
    x = image.numpy().astype(int)
    return (x[0] - np.maximum(x[1], x[2])) > 60  # red stays red under the HSV gains; grey pad and black do not


def test_augmentations_keep_boxes_on_the_drawn_pixels() -> None:
    ds = DetectionDataset(_Boxes(12), (64, 64), 3, augment=True, seed=3, mosaic=0.5)
    outside = total = boxes = 0
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            image, target, _ = ds[i]
            red = _red(image)
            near = np.zeros_like(red)
            for _, x1, y1, x2, y2 in target.tolist():
                boxes += 1
                assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64
                inner = red[int(np.ceil(y1 + 1)):int(y2 - 1), int(np.ceil(x1 + 1)):int(x2 - 1)]
                assert inner.size == 0 or inner.mean() > 0.9, (epoch, i, x1, y1, x2, y2)
                a, b, c, d = int(max(x1 - 2, 0)), int(max(y1 - 2, 0)), int(x2 + 3), int(y2 + 3)
                ys, xs = np.nonzero(red[b:d, a:c])  # the drawn pixels around the box fill it to its edges
                if len(xs) > 8:
                    assert abs(a + xs.min() - x1) <= 1.5 and abs(a + xs.max() + 1 - x2) <= 1.5
                    assert abs(b + ys.min() - y1) <= 1.5 and abs(b + ys.max() + 1 - y2) <= 1.5
                near[b:d, a:c] = True
            outside += int((red & ~near).sum())
            total += int(red.sum())
    assert boxes > 40 and outside < 0.05 * total  # only slivers of boxes dropped as too small are left


def test_flip_hsv_and_affine_pieces() -> None:
    arr = np.zeros((20, 30, 3), np.uint8)
    arr[2:6, 3:9] = RED
    flipped, fb = aug.hflip(arr, np.array([[3, 2, 9, 6]], np.float32))
    assert fb.tolist() == [[21, 2, 27, 6]] and (flipped[2:6, 21:27] == RED).all()
    same = aug.hsv(arr, np.random.default_rng(0), (0.0, 0.0, 0.0))
    assert np.array_equal(same, arr)
    grey = aug.hsv(np.full((4, 4, 1), 100, np.uint8), np.random.default_rng(0), (0.015, 0.7, 0.4))
    assert grey.shape == (4, 4, 1) and len(np.unique(grey)) == 1
    kept, cls = aug.keep_boxes(np.array([[-10, 0, 1.5, 30], [-30, 0, 2.5, 30], [5, 5, 15, 15]], np.float32),
                               np.array([0, 1, 2]), (20, 20))
    assert cls.tolist() == [2]  # under 2 px wide, and 2.5 of 32.5 px kept: both dropped


def test_close_mosaic_and_determinism() -> None:
    ds = DetectionDataset(_Boxes(8), (64, 64), 3, augment=True, seed=7, mosaic=1.0)
    first = [ds[i] for i in (5, 2)]
    ds.set_epoch(0)
    again = [ds[i] for i in (2, 5)][::-1]  # another order, same samples
    for (a, ta, _), (b, tb, _) in zip(first, again):
        assert torch.equal(a, b) and torch.equal(ta, tb)
    other = DetectionDataset(_Boxes(8), (64, 64), 3, augment=True, seed=7, mosaic=1.0)
    assert torch.equal(other[5][0], first[0][0])  # a fresh dataset, same seed
    ds.set_epoch(1)
    assert not torch.equal(ds[5][0], first[0][0])
    many = sum(len(ds[i][1]) > 2 for i in range(8))  # mosaic: boxes of several images
    ds.set_epoch(1, mosaic=False)
    assert many > 0 and all(len(ds[i][1]) <= 2 for i in range(8))


def test_collate_and_val_samples() -> None:
    src = ShapesSource(0, 1, 3, (32, 48), 3)
    ds = DetectionDataset(src, (32, 48), 3)
    images, targets, metas = collate([ds[i] for i in range(3)])
    assert images.shape == (3, 3, 32, 48) and images.dtype == torch.float32 and float(images.max()) <= 1.0
    assert targets.shape[1] == 6 and targets[:, 0].tolist() == sorted(targets[:, 0].tolist())
    for k in range(3):
        rows = targets[targets[:, 0] == k][:, 2:].numpy()
        np.testing.assert_allclose(rows, src.record(k).boxes)  # unaugmented, same size: the record's boxes
    assert [m.image_id for m in metas] == [0, 1, 2]
    empty = collate([(torch.zeros(3, 4, 4, dtype=torch.uint8), torch.zeros(0, 5), metas[0])])
    assert empty[1].shape == (0, 6)
