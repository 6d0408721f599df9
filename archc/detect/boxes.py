"""Box geometry for the detection losses and decoders.

Boxes are float tensors whose last axis holds 4 numbers: ``xyxy`` (x1, y1, x2, y2) or ``xywh`` (centre x,
centre y, width, height). IoU, CIoU and box conversions come from ``torchvision.ops``; this module adds
only what torchvision lacks: CIoU and IoU over broadcast batches, anchor points for a list of feature
maps, and the distance form of a box used by anchor-free heads (GFL's ``ltrb`` distances from an anchor
point, and the DFL expectation that turns ``reg_max`` bins per side into a distance).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.ops import box_convert, complete_box_iou_loss

__all__ = ["xywh2xyxy", "xyxy2xywh", "ciou", "ciou_loss", "box_iou_batched", "anchor_points",
           "dfl_expectation", "dist2bbox", "bbox2dist", "wh_iou", "cell_grid", "decode_offsets"]


def xywh2xyxy(boxes: Tensor) -> Tensor:
    """(cx, cy, w, h) -> (x1, y1, x2, y2), any leading shape."""
    return box_convert(boxes, "cxcywh", "xyxy")


def xyxy2xywh(boxes: Tensor) -> Tensor:
    """(x1, y1, x2, y2) -> (cx, cy, w, h), any leading shape."""
    return box_convert(boxes, "xyxy", "cxcywh")


def ciou_loss(pred: Tensor, target: Tensor, eps: float = 1e-7) -> Tensor:
    """``1 - CIoU`` per pair of xyxy boxes (Zheng et al. 2020), broadcasting the leading axes.

    torchvision's ``complete_box_iou_loss`` (element-wise, ``alpha`` held constant in the gradient as
    the paper prescribes) wants equal shapes, so both sides are broadcast first. Boxes need positive
    width and height (a zero-height box gives ``atan(0/0)``)."""
    pred, target = torch.broadcast_tensors(pred, target)
    if pred.numel() == 0:
        return pred.new_zeros(pred.shape[:-1])
    return complete_box_iou_loss(pred, target, reduction="none", eps=eps)


def ciou(a: Tensor, b: Tensor, eps: float = 1e-7) -> Tensor:
    """Complete IoU of xyxy boxes, element-wise over broadcast leading axes (in [-1.5, 1])."""
    return 1.0 - ciou_loss(a, b, eps)


def box_iou_batched(a: Tensor, b: Tensor) -> Tensor:
    """Plain IoU of every box in ``a`` (..., N, 4) with every box in ``b`` (..., M, 4) -> (..., N, M).

    ``torchvision.ops.box_iou`` is the 2-D case; this keeps a batch axis so that each image's
    predictions meet only its own targets."""
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    union = area_a[..., :, None] + area_b[..., None, :] - inter
    return inter / union.clamp(min=1e-9)


def wh_iou(wh1: Tensor, wh2: Tensor) -> Tensor:
    """IoU of boxes that share a centre, from widths and heights: (N, 2) x (K, 2) -> (N, K).

    The anchor match of YOLOv2/v3 (a prior is compared to a target by shape only)."""
    inter = torch.minimum(wh1[:, None], wh2[None]).prod(-1)
    return inter / (wh1.prod(-1)[:, None] + wh2.prod(-1)[None] - inter).clamp(min=1e-9)


def anchor_points(sizes: Sequence[tuple[int, int]], strides: Sequence[float], offset: float = 0.5,
                  device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Cell centres of feature maps of ``sizes`` [(H, W), ...] in *grid units* of each level, and the
    stride of each point: ((A, 2) as (x, y), (A, 1)), levels in order, each row-major. Multiply the
    points by the strides for input pixels."""
    points, stride = [], []
    for (h, w), s in zip(sizes, strides):
        ys = torch.arange(h, device=device, dtype=dtype) + offset
        xs = torch.arange(w, device=device, dtype=dtype) + offset
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((gx, gy), -1).reshape(-1, 2))
        stride.append(torch.full((h * w, 1), float(s), device=device, dtype=dtype))
    return torch.cat(points), torch.cat(stride)


def cell_grid(h: int, w: int, device: torch.device | None = None) -> Tensor:
    """(H, W, 2) float (x, y) index of every cell: the ``(gx, gy)`` that YOLOv2/v3 offsets are added to."""
    gy, gx = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack((gx, gy), -1).float()


def decode_offsets(t: Tensor, grid_xy: Tensor, anchor_wh: Tensor, stride: float) -> Tensor:
    """YOLOv2/v3 box from raw (tx, ty, tw, th) -> xywh in input pixels (broadcasting):
    ``cx = (sigmoid(tx) + gx) * stride``, ``w = anchor_w * exp(tw)`` with anchors in input pixels.
    ``tw`` is capped at 8 (e^8 ~ 3000 anchor widths) so a wild logit gives a huge box, not inf."""
    xy = (t[..., :2].sigmoid() + grid_xy) * stride
    wh = anchor_wh * t[..., 2:4].clamp(max=8.0).exp()
    return torch.cat((xy, wh), -1)


def dfl_expectation(dist: Tensor, reg_max: int) -> Tensor:
    """GFL's general distribution read out as a distance: ``(..., 4 * reg_max)`` logits, side-major
    (left, top, right, bottom; ``reg_max`` bins each) -> ``(..., 4)`` expected bin index
    ``sum_i softmax_i * i``."""
    probs = dist.unflatten(-1, (4, reg_max)).softmax(-1)
    return probs @ torch.arange(reg_max, device=dist.device, dtype=probs.dtype)


def dist2bbox(dist: Tensor, points: Tensor, xywh: bool = False) -> Tensor:
    """Distances (left, top, right, bottom) from ``points`` (..., 2) -> boxes (xyxy, or xywh)."""
    lt, rb = dist.chunk(2, -1)
    x1y1, x2y2 = points - lt, points + rb
    if xywh:
        return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), -1)
    return torch.cat((x1y1, x2y2), -1)


def bbox2dist(points: Tensor, boxes: Tensor, max_dist: float | None = None) -> Tensor:
    """xyxy boxes -> distances (left, top, right, bottom) from ``points``, clamped to [0, max_dist]."""
    x1y1, x2y2 = boxes.chunk(2, -1)
    dist = torch.cat((points - x1y1, x2y2 - points), -1)
    return dist.clamp(0, max_dist) if max_dist is not None else dist
