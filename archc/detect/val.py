"""Validation of a detector: decode, NMS, boxes back to original pixels, COCO mAP from pycocotools.

`validate` serves the training loop (every epoch, on the EMA weights); `validate_run` is `archc val`:
it rebuilds a run's model from its spec, params and best weights, and can write the COCO results file
that pycocotools scores to the same figures."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archc.detect.head import Head

__all__ = ["ValReport", "decode", "validate", "validate_run", "load_run_model"]


@dataclass
class ValReport:
    map50: float
    map: float
    precision: float
    recall: float
    per_class: dict[str, dict[str, float]]
    images: int = 0
    boxes: int = 0
    pr_recall: Any = None  # recall axis of the PR curves (101 points, COCO's)
    pr_precision: list[Any] = field(default_factory=list)  # per class: precision at IoU 0.5, or None
    confusion: Any = None  # (C + 1) x (C + 1): rows predicted, columns true; last: background
    samples: list[tuple[Any, Any, Any]] = field(default_factory=list)  # (PIL image, predictions, truths)
    results: list[dict[str, Any]] = field(default_factory=list)  # COCO results rows

    def as_json(self) -> dict[str, Any]:
        return {"map50": self.map50, "map": self.map, "precision": self.precision, "recall": self.recall,
                "images": self.images, "boxes": self.boxes, "per_class": self.per_class}


def decode(head: Head, result: Any) -> torch.Tensor:
    """The model's eval result as (B, 4 + C, N): boxes (cx, cy, w, h) in input pixels, class scores."""
    from archc.detect.postprocess import decode_anchor, decode_v1

    outs = result if isinstance(result, tuple) else (result,)
    if head.kind == "anchor_free":
        return outs[0].float()
    if head.kind == "anchor":
        return decode_anchor([o.float() for o in outs[:len(head.levels)]], head.anchors, head.strides)
    return decode_v1(outs[0].float(), head.boxes, head.size[0])


@torch.no_grad()
def predictions(model: nn.Module, head: Head, imgs: torch.Tensor, conf: float, iou: float, max_det: int
                ) -> list[torch.Tensor]:
    """Per image, rows (x1, y1, x2, y2, score, class) in letterboxed input pixels (``model`` in eval mode:
    switching modes walks every module, a fifth of a small model's predict time)."""
    from archc.detect.postprocess import nms

    return nms(decode(head, model(imgs)), conf=conf, iou=iou, max_det=max_det)


@torch.no_grad()
def validate(model: nn.Module, head: Head, loader: Any, dataset: Any, names: list[str], device: torch.device,
             conf: float = 0.001, iou: float = 0.7, max_det: int = 300, samples: int = 16) -> ValReport:
    """mAP of ``model`` on a validation loader (batches of images, targets, metas)."""
    from archc.detect.data import unletterbox_boxes
    from archc.detect.metrics import evaluate

    model.eval()
    preds_orig: list[torch.Tensor] = []
    metas_all: list[Any] = []
    shown: list[tuple[Any, Any, Any]] = []
    for imgs, targets, metas in loader:
        preds = predictions(model, head, imgs.to(device), conf, iou, max_det)
        for k, (p, meta) in enumerate(zip(preds, metas)):
            p = p.cpu()
            if len(shown) < samples:
                truth = targets[targets[:, 0] == k][:, [2, 3, 4, 5, 1]].tolist()
                shown.append((_pil(imgs[k]), p[p[:, 4] >= 0.25].tolist(), truth))
            boxes = unletterbox_boxes(p[:, :4], meta)
            preds_orig.append(torch.cat([boxes, p[:, 4:]], 1))
            metas_all.append(meta)
    result = evaluate(dataset, metas_all, preds_orig, names)
    return ValReport(result.map50, result.map, result.precision, result.recall, result.per_class,
                     images=len(metas_all), boxes=result.boxes, pr_recall=result.pr_recall,
                     pr_precision=result.pr_precision, confusion=result.confusion, samples=shown,
                     results=result.results)


def _pil(img: torch.Tensor) -> Any:
    from PIL import Image

    arr = (img.clamp(0, 1) * 255).round().byte().cpu()
    if arr.shape[0] == 1:
        return Image.fromarray(arr[0].numpy(), "L")
    return Image.fromarray(arr[:3].permute(1, 2, 0).contiguous().numpy(), "RGB")


def run_head(run: str | Path) -> tuple[Head, dict[str, Any]]:
    """A detection run's head (static analysis of its spec and params, nothing built) and its run.json."""
    import archc
    from archc.detect.head import detection_head
    from archc.errors import UsageError

    info_path = Path(run) / "run.json"
    if not info_path.is_file():
        raise UsageError(f"{run}: no run.json there", hint="give a run directory written by `archc train`")
    info = json.loads(info_path.read_text())
    if info.get("task") != "detection":
        raise UsageError(f"{run} is a {info.get('task', 'classification')} run, not a detection run")
    return detection_head(archc.check(Path(run) / "spec.yaml", info.get("params", {}), info.get("input"))), info


def load_run_model(run: str | Path, weights: str | None = None, device: str = "cpu", fuse: bool = True
                   ) -> tuple[nn.Module, Head, dict[str, Any]]:
    """A detection run's model for inference (its spec and params, the best weights unless ``weights``, each
    BatchNorm folded into its conv), head and run.json."""
    import archc
    from archc.backend.fuse import fuse_conv_bn
    from archc.backend.weights import load_weights

    run = Path(run)
    head, info = run_head(run)
    model = archc.compile(run / "spec.yaml", input_shape=info.get("input"), **info.get("params", {}))
    model = model.to(device).eval()
    path = Path(weights) if weights else run / "best.safetensors"
    if not path.is_file():
        path = run / "last.safetensors"
    load_weights(model, path, strict=True)
    return (fuse_conv_bn(model) if fuse else model), head, info  # folded BatchNorm: inference only


def _validation_set(info: dict[str, Any], head: Head, data: str | None) -> tuple[Any, list[str]]:
    """The validation split a run was scored on (``data`` overrides the run's), without augmentation."""
    from archc.detect.data import make_detection_data

    _, val_set, names = make_detection_data(data or info["data"], head.channels, head.size, int(info.get("seed", 0)),
                                            int(info.get("train_size", 0)), int(info.get("val_size", 100)),
                                            mosaic=0.0, val_only=True)
    return val_set, names


def validate_run(run: str | Path, data: str | None = None, weights: str | None = None, conf: float = 0.001,
                 iou: float = 0.7, max_det: int = 300, batch_size: int = 32, device: str = "cpu",
                 save_json: str | None = None) -> ValReport:
    from torch.utils.data import DataLoader

    from archc.detect.data import collate
    from archc.errors import UsageError
    from archc.fileio import atomic_write

    model, head, info = load_run_model(run, weights, device)
    val_set, names = _validation_set(info, head, data)
    if len(names) != head.classes:
        raise UsageError(f"--data {data or info['data']} has {len(names)} classes; "
                         f"the run's model scores {head.classes}")
    loader = DataLoader(val_set, batch_size, collate_fn=collate)
    report = validate(model, head, loader, val_set, names, torch.device(device), conf, iou, max_det)
    if save_json:
        atomic_write(save_json, json.dumps(report.results))
    return report


def rescore(run: str | Path, results_file: str | Path, data: str | None = None) -> dict[str, float]:
    """pycocotools' mAP of a saved results file against the run's validation ground truth: the check that
    `archc val --save-json` saves what it scores."""
    from archc.detect.metrics import coco_eval, coco_ground_truth, ground_truth

    head, info = run_head(run)  # the ground truth needs no model
    val_set, _ = _validation_set(info, head, data)
    rows = json.loads(Path(results_file).read_text())
    ev = coco_eval(coco_ground_truth(ground_truth(val_set)), rows)
    return {"map": max(float(ev.stats[0]), 0.0), "map50": max(float(ev.stats[1]), 0.0)}
