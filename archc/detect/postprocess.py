"""Decoding of the three detection head kinds into one layout, and non-maximum suppression.

Every decoder returns ``(B, 4 + nc, A)``: per candidate box its centre x, centre y, width and height in
input pixels, then one score per class in [0, 1] (the layout of the anchor-free model's eval output), so
that :func:`nms` serves all three kinds:

- :func:`decode_v1`: YOLOv1 grid (B, S, S, nb*5 + C), candidates ordered (row, column, box); the score of
  class c is the paper's class-specific confidence ``Pr(class c | object) * conf``, both clamped to [0, 1]
  (the head is linear and trained by squared error);
- :func:`decode_anchor`: YOLOv3 anchor levels (B, A, H, W, 5 + C), levels in order then (anchor, row,
  column); score ``sigmoid(obj) * sigmoid(cls)``;
- :func:`decode_anchor_free`: YOLOv8/11 raw level maps (B, 4*reg_max + C, H, W); boxes from the DFL
  expectation around each cell centre, scores ``sigmoid(cls)``. The Python reference the spec's own
  (YAML) decoding is checked against.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.ops import batched_nms

from archc.detect.boxes import anchor_points, cell_grid, decode_offsets, dfl_expectation, dist2bbox, xywh2xyxy
from archc.detect.losses import normalize_anchors

__all__ = ["nms", "decode_v1", "decode_anchor", "decode_anchor_free"]


def nms(pred: Tensor, conf: float = 0.25, iou: float = 0.7, max_det: int = 300, agnostic: bool = False,
        multi_label: bool = False, max_candidates: int = 30000) -> list[Tensor]:
    """Per image of ``pred`` (B, 4 + nc, A) (xywh pixels + class scores): the boxes kept, an (n, 6) float
    tensor of rows (x1, y1, x2, y2, score, class), best score first, at most ``max_det``.

    A candidate keeps its best class (``multi_label=True``: every class scoring above ``conf``); scores
    must exceed ``conf``; at most ``max_candidates`` best-scoring ones enter NMS
    (``torchvision.ops.batched_nms`` at IoU ``iou``, per class unless ``agnostic``)."""
    out = []
    for x in pred.transpose(1, 2):  # (A, 4 + nc) per image
        boxes, scores = xywh2xyxy(x[:, :4].float()), x[:, 4:].float()
        if multi_label:
            idx, cls = (scores > conf).nonzero(as_tuple=True)
            score = scores[idx, cls]
            boxes = boxes[idx]
        else:
            score, cls = scores.max(1)
            keep = score > conf
            boxes, score, cls = boxes[keep], score[keep], cls[keep]
        if len(score) > max_candidates:
            top = score.topk(max_candidates).indices
            boxes, score, cls = boxes[top], score[top], cls[top]
        keep = batched_nms(boxes, score, torch.zeros_like(cls) if agnostic else cls, iou)[:max_det]
        out.append(torch.cat((boxes[keep], score[keep, None], cls[keep, None].to(boxes.dtype)), 1))
    return out


def decode_v1(output: Tensor, boxes: int, img_size: int) -> Tensor:
    """YOLOv1 grid output (B, S, S, boxes*5 + C) of a square ``img_size`` input -> (B, 4 + C, S*S*boxes)."""
    bsz, s = output.shape[:2]
    pred = output.float()
    box = pred[..., : boxes * 5].unflatten(-1, (boxes, 5))  # (B, S, S, nb, 5)
    cls = pred[..., boxes * 5:].clamp(0, 1)  # (B, S, S, C)
    grid = cell_grid(s, s, output.device)[:, :, None]  # (S, S, 1, 2)
    xy = (box[..., :2].clamp(0, 1) + grid) * (img_size / s)
    wh = box[..., 2:4].clamp(0, 1) * img_size
    scores = box[..., 4:5].clamp(0, 1) * cls[:, :, :, None]  # (B, S, S, nb, C)
    return torch.cat((xy, wh, scores), -1).reshape(bsz, s * s * boxes, -1).transpose(1, 2)


def decode_anchor(outputs: Tensor | Sequence[Tensor], anchors: Sequence, strides: Sequence[float]) -> Tensor:
    """YOLOv3 anchor levels (B, A, H, W, 5 + C), anchors per level in input pixels -> (B, 4 + C, total)."""
    levels = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    per_level = normalize_anchors(anchors, len(levels))
    decoded = []
    for x, level_anchors, stride in zip(levels, per_level, strides):
        bsz, na, h, w, _ = x.shape
        x = x.float()
        awh = torch.tensor(level_anchors, device=x.device, dtype=x.dtype).view(1, na, 1, 1, 2)
        xywh = decode_offsets(x[..., :4], cell_grid(h, w, x.device), awh, float(stride))
        scores = x[..., 4:5].sigmoid() * x[..., 5:].sigmoid()
        decoded.append(torch.cat((xywh, scores), -1).reshape(bsz, na * h * w, -1))
    return torch.cat(decoded, 1).transpose(1, 2)


def decode_anchor_free(levels: Sequence[Tensor], reg_max: int = 16, strides: Sequence[float] = (8, 16, 32)) -> Tensor:
    """YOLOv8/11 raw level maps (B, 4*reg_max + C, H, W) -> (B, 4 + C, sum H*W), boxes in input pixels."""
    flat = torch.cat([x.float().flatten(2) for x in levels], 2)  # (B, no, A)
    points, stride = anchor_points([(x.shape[2], x.shape[3]) for x in levels], strides, device=flat.device)
    dist = dfl_expectation(flat[:, : 4 * reg_max].transpose(1, 2), reg_max)  # (B, A, 4) in strides
    xywh = dist2bbox(dist, points, xywh=True) * stride
    return torch.cat((xywh.transpose(1, 2), flat[:, 4 * reg_max:].sigmoid()), 1)
