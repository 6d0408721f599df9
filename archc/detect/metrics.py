"""COCO evaluation of detections with pycocotools (the reference COCOeval, default parameters: IoU 0.50:0.95,
101-point interpolated precision, 100 detections per image, area 'all'), so that a results file archc saves
scores the same under pycocotools as archc reports.

- The ground truth is a COCO object built in memory from the dataset's records: image ids (COCO's own, or the
  integer file stem), original sizes, boxes in original pixels, crowd regions (``iscrowd``: COCOeval ignores
  detections on them), categories (COCO's ids for COCO data, class indices otherwise).
- Results rows: ``image_id``, ``category_id``, ``bbox`` [x, y, w, h] in original pixels (3 decimals),
  ``score`` (5 decimals): the rows saved are the rows scored.
- mAP50-95 and mAP50 are COCOeval's stats[0] and stats[1]; per class AP from its precision array.
- Precision and recall: at the confidence where the mean F1 over the classes with boxes is best (a grid of
  1001 confidences), from COCOeval's own matches at IoU 0.5; each class's P and R at that same confidence.
- The PR curve of each class is COCOeval's precision at IoU 0.5 over its 101 recall points.
- The confusion matrix (C + 1) x (C + 1), rows predicted, columns true, last row/column background, counts
  detections with confidence >= 0.25 matched one-to-one to true boxes at IoU > 0.45 (largest IoU first).
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archc.fileio import atomic_write

__all__ = ["DetectionMetrics", "evaluate", "ground_truth", "coco_ground_truth", "results_rows", "coco_eval",
           "confusion_matrix", "save_results_json"]

F1_GRID = 1001


@dataclass
class DetectionMetrics:
    map50: float
    map: float
    precision: float
    recall: float
    per_class: dict[str, dict[str, float]]  # name -> images, boxes, precision, recall, ap50, ap
    images: int = 0
    boxes: int = 0
    f1_conf: float = 0.0  # the confidence precision and recall are given at
    pr_recall: np.ndarray = field(default_factory=lambda: np.linspace(0, 1, 101))
    pr_precision: list[np.ndarray | None] = field(default_factory=list)  # per class (None: no true boxes)
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.int64))
    results: list[dict[str, Any]] = field(default_factory=list)  # COCO results rows
    stats: list[float] = field(default_factory=list)  # COCOeval's 12 summary figures (-1: undefined)

    def as_json(self) -> dict[str, Any]:
        return {"map50": self.map50, "map": self.map, "precision": self.precision, "recall": self.recall,
                "f1_conf": self.f1_conf, "images": self.images, "boxes": self.boxes, "per_class": self.per_class}

    def save_results_json(self, path: str | Path) -> None:
        save_results_json(path, self.results)


def save_results_json(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """A COCO results file (a list of image_id, category_id, bbox, score), written atomically."""
    atomic_write(path, json.dumps(rows))


def _records(dataset: Any) -> dict[Any, Any]:
    return {rec.image_id: rec for rec in (dataset.record(i) for i in range(len(dataset)))}


def ground_truth(dataset: Any, image_ids: list[Any] | None = None, records: dict[Any, Any] | None = None
                 ) -> dict[str, Any]:
    """The dataset's boxes as a COCO instances dict (only ``image_ids`` when given), in original pixels."""
    records = records if records is not None else _records(dataset)
    ids = list(records) if image_ids is None else list(dict.fromkeys(image_ids))
    cats = list(dataset.category_ids)
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for image_id in ids:
        rec = records[image_id]
        h, w = rec.hw
        images.append({"id": image_id, "width": int(w), "height": int(h), "file_name": Path(rec.path).name})
        for box, cls, crowd, area in zip(rec.boxes.tolist(), rec.classes.tolist(), rec.crowd.tolist(),
                                         rec.area.tolist()):
            x1, y1, x2, y2 = box
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cats[cls],
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": area, "iscrowd": int(crowd)})
    return {"images": images, "annotations": anns,
            "categories": [{"id": c, "name": n} for c, n in zip(cats, dataset.names)]}


def _quiet() -> contextlib.AbstractContextManager[Any]:
    return contextlib.redirect_stdout(io.StringIO())  # pycocotools prints its progress


def coco_ground_truth(data: dict[str, Any]) -> Any:
    """A pycocotools COCO object from an instances dict, without a file."""
    from pycocotools.coco import COCO

    with _quiet():
        gt = COCO()
        gt.dataset = data
        gt.createIndex()
    return gt


def results_rows(metas: list[Any], preds: list[torch.Tensor], category_ids: list[int]) -> list[dict[str, Any]]:
    """COCO results rows from per-image predictions (n, 6) x1, y1, x2, y2, score, class in original pixels."""
    rows = []
    for meta, p in zip(metas, preds):
        p = p.detach().float().cpu()
        for x1, y1, x2, y2, score, cls in p[p[:, 4].argsort(descending=True, stable=True)].tolist():
            rows.append({"image_id": meta.image_id, "category_id": category_ids[int(cls)],
                         "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                         "score": round(score, 5)})
    return rows


def coco_eval(gt: Any, rows: list[dict[str, Any]]) -> Any:
    """COCOeval (bbox, default parameters) run on ``rows``; None when there are no rows."""
    from pycocotools.cocoeval import COCOeval

    if not rows:
        return None
    with _quiet():
        dt = gt.loadRes([dict(r) for r in rows])  # loadRes adds keys to the rows it is given
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _matches(ev: Any, k: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Class k's detections (scores, true positive at IoU 0.5) over all images, and its true boxes."""
    n_img, n_area = len(ev.params.imgIds), len(ev.params.areaRng)
    scores, tps = [], []
    npig = 0
    for i in range(n_img):
        e = ev.evalImgs[k * n_area * n_img + i]  # area range 0: 'all'
        if e is None:
            continue
        keep = ~e["dtIgnore"][0].astype(bool)
        scores.append(np.asarray(e["dtScores"], np.float64)[keep])
        tps.append((e["dtMatches"][0] > 0)[keep])
        npig += int((np.asarray(e["gtIgnore"]) == 0).sum())
    if not scores:
        return np.zeros(0), np.zeros(0, bool), npig
    return np.concatenate(scores), np.concatenate(tps), npig


def _pr_at(scores: np.ndarray, tp: np.ndarray, npig: int, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of the detections with score >= each confidence in ``grid``."""
    order = np.argsort(-scores, kind="stable")
    s, cum = scores[order], np.cumsum(tp[order])
    n = np.searchsorted(-s, -grid, side="right")  # detections at or above each confidence
    hits = np.where(n > 0, cum[np.maximum(n - 1, 0)] if len(cum) else 0, 0)
    precision = np.where(n > 0, hits / np.maximum(n, 1), 1.0)
    return precision, hits / max(npig, 1)


def _best_f1(ev: Any, classes: int, has_boxes: list[bool]) -> tuple[float, np.ndarray, np.ndarray]:
    """The confidence of the best mean F1 and every class's precision and recall there."""
    grid = np.linspace(0, 1, F1_GRID)
    p, r = np.zeros((classes, F1_GRID)), np.zeros((classes, F1_GRID))
    for k in range(classes):
        if has_boxes[k]:
            scores, tp, npig = _matches(ev, k)
            p[k], r[k] = _pr_at(scores, tp, npig, grid)
    rows = np.asarray(has_boxes)
    f1 = 2 * p[rows] * r[rows] / np.maximum(p[rows] + r[rows], 1e-16)
    mean = f1.mean(0) if rows.any() else np.zeros(F1_GRID)
    if mean.max() <= 0:  # no true positive at any confidence: nothing was found (not "precision 1, recall 0")
        return 0.0, np.zeros(classes), np.zeros(classes)
    best = int(np.flatnonzero(mean >= mean.max() - 1e-12)[-1])  # ties: the highest such confidence
    return float(grid[best]), p[:, best], r[:, best]


def confusion_matrix(records: list[Any], preds: list[torch.Tensor], classes: int, iou: float = 0.45,
                     conf: float = 0.25) -> np.ndarray:
    """(C + 1) x (C + 1) counts, rows predicted, columns true, index C background (see the module's doc)."""
    from torchvision.ops import box_iou

    m = np.zeros((classes + 1, classes + 1), np.int64)
    for rec, p in zip(records, preds):
        p = p.detach().float().cpu()
        p = p[p[:, 4] >= conf]
        keep = ~rec.crowd
        gt_boxes, gt_cls = torch.from_numpy(rec.boxes[keep]).float(), rec.classes[keep]
        pred_cls = p[:, 5].long().tolist()
        used_p, used_g = set(), set()
        if len(p) and len(gt_boxes):
            ious = box_iou(gt_boxes, p[:, :4])
            pairs = (ious > iou).nonzero().tolist()
            for g, q in sorted(pairs, key=lambda gq: -float(ious[gq[0], gq[1]])):
                if g not in used_g and q not in used_p:
                    used_g.add(g)
                    used_p.add(q)
                    m[pred_cls[q], gt_cls[g]] += 1
        for g in range(len(gt_cls)):
            if g not in used_g:
                m[classes, gt_cls[g]] += 1  # missed: predicted background
        for q in range(len(p)):
            if q not in used_p:
                m[pred_cls[q], classes] += 1  # a box where there is none
    return m


def evaluate(dataset: Any, metas: list[Any], preds: list[torch.Tensor], names: list[str] | None = None,
             iou_matrix: float = 0.45, conf_matrix: float = 0.25) -> DetectionMetrics:
    """COCO metrics of per-image predictions (n, 6) x1, y1, x2, y2, score, class in each image's original pixels;
    ``metas[i].image_id`` says whose. The images scored are those in ``metas`` (each once: a sampler that pads
    a split by repeating images does not count them twice)."""
    names = list(names if names is not None else dataset.names)
    classes = len(names)
    first = {m.image_id: k for k, m in reversed(list(enumerate(metas)))}  # an image seen twice counts once
    metas, preds = [metas[k] for k in sorted(first.values())], [preds[k] for k in sorted(first.values())]
    ids = [m.image_id for m in metas]
    records = _records(dataset)
    gt = coco_ground_truth(ground_truth(dataset, ids, records))
    rows = results_rows(metas, preds, list(dataset.category_ids))
    ev = coco_eval(gt, rows)
    recs = [records[i] for i in ids]
    boxes = np.zeros(classes, np.int64)
    images = np.zeros(classes, np.int64)
    for rec in recs:
        present = rec.classes[~rec.crowd]
        boxes += np.bincount(present, minlength=classes)[:classes]
        images += np.bincount(np.unique(present), minlength=classes)[:classes]
    has_boxes = [bool(b) for b in boxes]
    if ev is None:
        precision_arr = np.full((10, 101, classes, 4, 3), -1.0)
        precision_arr[:, :, np.asarray(has_boxes, bool)] = 0.0
        stats = [0.0] * 12
        f1_conf, p, r = 0.0, np.zeros(classes), np.zeros(classes)
    else:
        precision_arr, stats = ev.eval["precision"], [float(s) for s in ev.stats]
        f1_conf, p, r = _best_f1(ev, classes, has_boxes)
    pr_precision: list[np.ndarray | None] = []
    per_class: dict[str, dict[str, float]] = {}
    for k, name in enumerate(names):
        all_t, at_50 = precision_arr[:, :, k, 0, -1], precision_arr[0, :, k, 0, -1]
        per_class[name] = {"images": int(images[k]), "boxes": int(boxes[k]), "precision": float(p[k]),
                           "recall": float(r[k]), "ap50": _mean(at_50), "ap": _mean(all_t)}
        pr_precision.append(np.clip(at_50, 0, 1) if has_boxes[k] else None)
    with_boxes = [k for k in range(classes) if has_boxes[k]]
    return DetectionMetrics(
        map50=max(stats[1], 0.0), map=max(stats[0], 0.0),
        precision=float(np.mean(p[with_boxes])) if with_boxes else 0.0,
        recall=float(np.mean(r[with_boxes])) if with_boxes else 0.0,
        per_class=per_class, images=len(ids), boxes=int(boxes.sum()), f1_conf=f1_conf,
        pr_precision=pr_precision, confusion=confusion_matrix(recs, preds, classes, iou_matrix, conf_matrix),
        results=rows, stats=stats)


def _mean(values: np.ndarray) -> float:
    v = values[values > -1]
    return float(v.mean()) if v.size else 0.0
