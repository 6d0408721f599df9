"""Detection metrics (archc/detect/metrics.py) against pycocotools itself: perfect predictions score 1, a
shifted box loses what COCOeval says, the results file archc saves re-scores (from files, pycocotools'
own way) to the mAP archc returns, integer file stems are COCO image ids, COCO category ids map back,
crowd regions are ignored, and the confusion matrix and best-F1 precision/recall count what they say."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from archc.detect.data import DetectionDataset, FileSource, ImageMeta, Record, ShapesSource, make_detection_data
from archc.detect.data_common import DataReport
from archc.detect.metrics import evaluate, ground_truth, save_results_json

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def _dataset(records: list[Record], names: tuple[str, ...] = ("a", "b"), cats: list[int] | None = None
             ) -> DetectionDataset:
    return DetectionDataset(FileSource(records, list(names), cats, DataReport("t")), (64, 64), 3)


def _metas(ds: DetectionDataset) -> list[ImageMeta]:
    return [ImageMeta(ds.record(i).image_id, ds.record(i).path, ds.record(i).hw, 1.0, (0.0, 0.0))
            for i in range(len(ds))]


def _perfect(ds: DetectionDataset, score: float = 0.9) -> list[torch.Tensor]:
    out = []
    for i in range(len(ds)):
        rec = ds.record(i)
        keep = ~rec.crowd
        n = int(keep.sum())
        out.append(torch.cat([torch.from_numpy(rec.boxes[keep]), torch.full((n, 1), score),
                              torch.from_numpy(rec.classes[keep]).float()[:, None]], 1))
    return out


def _pycocotools(gt_file: Path, results_file: Path) -> list[float]:
    """COCOeval's 12 figures the way a user runs it: both files from disk, default parameters."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        ev = COCOeval(gt, gt.loadRes(str(results_file)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats]


def test_perfect_predictions_score_one() -> None:
    ds = DetectionDataset(ShapesSource(0, 1, 12, (64, 64), 3), (64, 64), 3)
    m = evaluate(ds, _metas(ds), _perfect(ds), ds.names)
    assert m.map == 1.0 and m.map50 == 1.0 and m.precision == 1.0 and m.recall == 1.0
    assert all(row["ap"] == 1.0 and row["ap50"] == 1.0 for row in m.per_class.values())
    boxes = sum(len(ds.record(i).boxes) for i in range(len(ds)))
    assert m.boxes == boxes and m.images == 12 and sum(r["boxes"] for r in m.per_class.values()) == boxes
    assert np.array_equal(np.diag(m.confusion)[:3], [m.per_class[n]["boxes"] for n in ds.names])
    assert m.confusion.sum() == boxes  # nothing off the diagonal
    assert all(p is not None and (p == 1.0).all() for p in m.pr_precision)
    assert m.f1_conf == pytest.approx(0.9)  # ties: the highest confidence with the best F1
    assert "internal" not in json.dumps(m.as_json())


def test_shifted_box_loses_what_cocoeval_says(tmp_path: Path) -> None:
    rec = Record.make("img/1.png", 1, (200, 200), [[50, 50, 150, 150]], [0])
    ds = _dataset([rec], ("a",))
    shifted = [torch.tensor([[60.0, 50, 160, 150, 0.9, 0]])]  # IoU 100*90 / (100*110) = 0.818
    m = evaluate(ds, _metas(ds) * 2, shifted * 2)  # an image given twice (a padded sampler) counts once
    assert len(m.results) == 1 and m.images == 1
    assert m.map50 == pytest.approx(1.0) and m.map == pytest.approx(0.7)  # matched at IoU 0.5 ... 0.8: 7 of 10
    (tmp_path / "gt.json").write_text(json.dumps(ground_truth(ds)))
    m.save_results_json(tmp_path / "results.json")
    assert _pycocotools(tmp_path / "gt.json", tmp_path / "results.json")[:2] == [m.map, m.map50]


def test_saved_results_rescore_to_the_reported_map(tmp_path: Path) -> None:
    _, val, names = make_detection_data("shapes", 3, 64, seed=4, train_size=0, val_size=16)
    g = torch.Generator().manual_seed(0)
    preds = []
    for p in _perfect(val):  # jittered boxes, shuffled scores, some wrong classes, some extra boxes
        noisy = p.clone()
        noisy[:, :4] += torch.randn(len(p), 4, generator=g) * 1.5
        noisy[:, 4] = torch.rand(len(p), generator=g)
        noisy[:, 5] = torch.where(torch.rand(len(p), generator=g) < 0.2, (noisy[:, 5] + 1) % 3, noisy[:, 5])
        extra = torch.cat([torch.rand(2, 2, generator=g) * 40, torch.rand(2, 2, generator=g) * 20 + 45,
                           torch.rand(2, 1, generator=g) * 0.5, torch.randint(0, 3, (2, 1), generator=g)], 1)
        preds.append(torch.cat([noisy, extra]))
    metas = [val[i][2] for i in range(len(val))]
    m = evaluate(val, metas, preds, names)
    assert 0.1 < m.map < m.map50 < 1.0
    (tmp_path / "gt.json").write_text(json.dumps(ground_truth(val)))
    save_results_json(tmp_path / "results.json", m.results)
    stats = _pycocotools(tmp_path / "gt.json", tmp_path / "results.json")
    assert stats[0] == m.map and stats[1] == m.map50 and stats == m.stats
    rows = json.loads((tmp_path / "results.json").read_text())
    assert set(rows[0]) == {"image_id", "category_id", "bbox", "score"} and len(rows) == sum(map(len, preds))
    # per-class AP averages to the overall mAP (every class has boxes)
    assert np.mean([r["ap"] for r in m.per_class.values()]) == pytest.approx(m.map)
    assert 0 < m.precision < 1 and 0 < m.recall < 1 and 0 < m.f1_conf < 1


def test_image_ids_from_integer_stems(tmp_path: Path) -> None:
    from PIL import Image

    root = tmp_path / "ds"
    for stem in ("000000000139", "42", "cat", "000000000042"):  # 42 twice: neither keeps it
        (root / "images/val").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32)).save(root / f"images/val/{stem}.png")
        (root / "labels/val").mkdir(parents=True, exist_ok=True)
        (root / f"labels/val/{stem}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text("train: images/val\nval: images/val\nnames: [thing]\n")
    _, val, names = make_detection_data(str(root / "data.yaml"), 3, 32, val_only=True)
    ids = {Path(val.record(i).path).stem: val.record(i).image_id for i in range(len(val))}
    assert ids["000000000139"] == 139 and ids["cat"] not in (42, 139) and ids["42"] != ids["000000000042"]
    assert len(set(ids.values())) == 4
    metas = [val[i][2] for i in range(len(val))]
    m = evaluate(val, metas, _perfect(val), names)
    assert {r["image_id"] for r in m.results} == set(ids.values()) and m.map == 1.0
    assert {r["category_id"] for r in m.results} == {0}  # class indices for YOLO data


def test_coco_category_ids_and_crowd() -> None:
    rec = Record.make("img/5.png", 5, (100, 100), [[10, 10, 40, 40], [50, 50, 90, 90]], [1, 0], crowd=[False, True])
    ds = _dataset([rec], ("cat", "dog"), cats=[3, 7])
    # a true positive, and a confident box on the crowd region: COCOeval ignores it (no false positive)
    preds = [torch.tensor([[10.0, 10, 40, 40, 0.9, 1], [52, 52, 88, 88, 0.95, 0]])]
    m = evaluate(ds, _metas(ds), preds)
    assert {r["category_id"] for r in m.results} == {3, 7}
    assert m.per_class["dog"]["ap"] == pytest.approx(1.0) and m.map == pytest.approx(1.0)
    assert m.per_class["cat"]["boxes"] == 0 and m.per_class["cat"]["ap"] == 0.0
    assert m.pr_precision[0] is None  # no true cat boxes
    gt = ground_truth(ds)
    assert [c["id"] for c in gt["categories"]] == [3, 7] and [a["iscrowd"] for a in gt["annotations"]] == [0, 1]
    # the crowd box is left out of the confusion matrix; the box on it counts as background
    assert m.confusion.tolist() == [[0, 0, 1], [0, 1, 0], [0, 0, 0]]


def test_confusion_matrix_counts() -> None:
    rec = Record.make("img/1.png", 1, (100, 100), [[0, 0, 20, 20], [50, 50, 70, 70], [80, 0, 99, 20]], [0, 1, 1])
    ds = _dataset([rec])
    preds = [torch.tensor([[0.0, 0, 20, 20, 0.9, 1],  # right box, wrong class
                           [50, 50, 70, 70, 0.8, 1],  # right
                           [50, 50, 69, 70, 0.7, 1],  # a duplicate: background
                           [30, 30, 40, 40, 0.6, 0],  # nothing there: background
                           [80, 0, 99, 20, 0.1, 1]])]  # under confidence 0.25: the box counts as missed
    m = evaluate(ds, _metas(ds), preds)
    assert m.confusion.tolist() == [[0, 0, 1], [1, 1, 1], [0, 1, 0]]


def test_no_predictions_and_no_boxes() -> None:
    rec = Record.make("img/1.png", 1, (50, 50), [[5, 5, 20, 20]], [0])
    ds = _dataset([rec, Record.make("img/2.png", 2, (50, 50), [], [])])
    m = evaluate(ds, _metas(ds), [torch.zeros(0, 6), torch.zeros(0, 6)])
    assert m.map == 0.0 and m.map50 == 0.0 and m.results == [] and m.precision == 0.0
    assert m.per_class["a"]["ap"] == 0.0 and m.pr_precision[1] is None
    assert m.confusion.tolist() == [[0, 0, 0], [0, 0, 0], [1, 0, 0]]
    # a box on a background image only: a false positive
    m = evaluate(ds, _metas(ds), [torch.tensor([[5.0, 5, 20, 20, 0.9, 0]]), torch.tensor([[1.0, 1, 9, 9, 0.95, 0]])])
    assert m.map == pytest.approx(0.5) and m.recall == 1.0 and m.precision == 0.5


def test_only_wrong_boxes_give_precision_zero_not_one() -> None:
    """Boxes that all miss: no confidence has a true positive, so precision is 0 (not 1 at a confidence
    above every box, where nothing is predicted)."""
    rec = Record.make("img/1.png", 1, (50, 50), [[5, 5, 20, 20]], [0])
    ds = _dataset([rec])
    m = evaluate(ds, _metas(ds), [torch.tensor([[30.0, 30, 45, 45, 0.8, 0]])])
    assert m.map == 0.0 and m.precision == 0.0 and m.recall == 0.0
