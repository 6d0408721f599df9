"""Target assignment for the anchor-free head: TOOD's task-aligned assigner (Feng et al. 2021).

For each ground-truth box g and anchor point a, the alignment metric is ``t = s^alpha * u^beta``: ``s`` the
predicted probability of g's class at a, ``u`` the overlap of a's predicted box with g. The candidates of
g are the anchors whose centre lies inside g; the ``topk`` candidates with the largest ``t`` (and ``t > 0``)
are g's positives, every other anchor is a negative. An anchor that is a positive of several boxes keeps
the one it overlaps most. The classification target of a positive is ``t`` normalised per box, so that
the box's best-aligned anchor gets the box's largest overlap among its positives (TOOD's ``t_hat``); the
class target is that value on g's class and 0 elsewhere.

Choices beyond the paper, each an argument:
- ``overlap="ciou"``: ``u`` is CIoU clamped at 0 (YOLOv8/11 practice); ``"iou"`` is the paper's IoU.
- ``min_side=16``: for the *candidate test only*, a box side shorter than ``min_side`` pixels is grown
  to it about the box centre. A box smaller than a stride-8 cell may otherwise contain no anchor centre
  and never get a positive. ``min_side=0`` is the paper's rule; 16 (one P4 cell) is what Ultralytics 8.4
  does by default.

Targets arrive as the contract's (N, 6) rows and are padded per image to (B, M, ...) with a mask, so the
assignment is a handful of batched tensor ops, no loop over boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from archc.detect.boxes import box_iou_batched, ciou, xywh2xyxy, xyxy2xywh

__all__ = ["Assignment", "PaddedTargets", "pad_targets", "task_aligned_assign"]


@dataclass(frozen=True)
class PaddedTargets:
    """Targets per image: ``labels`` (B, M) long, ``boxes`` (B, M, 4) xyxy pixels, ``mask`` (B, M) bool
    (False on padding and on boxes without area)."""

    labels: Tensor
    boxes: Tensor
    mask: Tensor


def pad_targets(targets: Tensor, batch_size: int) -> PaddedTargets:
    """(N, 6) rows (batch_index, class, x1, y1, x2, y2) -> per-image padded tensors (M = most boxes in an
    image). Rows keep their order within an image."""
    device = targets.device
    n = targets.shape[0]
    bidx = targets[:, 0].long()
    counts = torch.bincount(bidx, minlength=batch_size) if n else torch.zeros(batch_size, dtype=torch.long,
                                                                              device=device)
    m = int(counts.max()) if n else 0
    labels = torch.zeros(batch_size, m, dtype=torch.long, device=device)
    boxes = torch.zeros(batch_size, m, 4, dtype=torch.float32, device=device)
    mask = torch.zeros(batch_size, m, dtype=torch.bool, device=device)
    if n:
        order = torch.argsort(bidx, stable=True)
        bidx = bidx[order]
        starts = torch.cumsum(counts, 0) - counts  # first row of each image in the sorted order
        slot = torch.arange(n, device=device) - starts[bidx]
        labels[bidx, slot] = targets[order, 1].long()
        boxes[bidx, slot] = targets[order, 2:6].float()
        wh = boxes[..., 2:] - boxes[..., :2]
        mask[bidx, slot] = True
        mask &= (wh > 0).all(-1)
    return PaddedTargets(labels, boxes, mask)


@dataclass(frozen=True)
class Assignment:
    """Per anchor: ``fg`` (B, A) positive or not, ``gt_index`` (B, A) the box it learns (0 on negatives),
    ``boxes`` (B, A, 4) that box (xyxy pixels), ``scores`` (B, A, C) the soft class targets (0 on
    negatives)."""

    fg: Tensor
    gt_index: Tensor
    boxes: Tensor
    scores: Tensor


def _inside(points: Tensor, boxes: Tensor, min_side: float, eps: float = 1e-9) -> Tensor:
    """(A, 2) points strictly inside (B, M, 4) xyxy boxes, sides grown to at least ``min_side``: (B, M, A)."""
    if min_side > 0:
        xywh = xyxy2xywh(boxes)
        boxes = xywh2xyxy(torch.cat((xywh[..., :2], xywh[..., 2:].clamp(min=min_side)), -1))
    inside = ((points - boxes[..., None, :2]) > eps).all(-1)  # (B, M, A)
    return inside & ((boxes[..., None, 2:] - points) > eps).all(-1)

def _pair_overlaps(gt: Tensor, pred: Tensor, pairs: tuple[Tensor, ...], overlap: str) -> Tensor:
    """Overlap of gt[b, m] with pred[b, a] for each (b, m, a) in ``pairs``."""
    b, m, a = pairs
    g, p = gt[b, m], pred[b, a]
    if overlap == "ciou":
        return ciou(g, p).clamp(min=0)
    return box_iou_batched(g[:, None], p[:, None])[:, 0, 0]


@torch.no_grad()
def task_aligned_assign(scores: Tensor, pred_boxes: Tensor, points: Tensor, targets: PaddedTargets, *,
                        topk: int = 10, alpha: float = 0.5, beta: float = 6.0, min_side: float = 16.0,
                        overlap: str = "ciou", eps: float = 1e-9) -> Assignment:
    """Assign anchors to boxes. ``scores`` (B, A, C) class probabilities, ``pred_boxes`` (B, A, 4) xyxy and
    ``points`` (A, 2) anchor centres, both in input pixels; ``targets`` from :func:`pad_targets`."""
    if overlap not in ("ciou", "iou"):
        raise ValueError(f"overlap must be 'ciou' or 'iou', not {overlap!r}")
    bsz, n_anchors, nc = scores.shape
    m = targets.labels.shape[1]
    device = scores.device
    if m == 0:
        return Assignment(torch.zeros(bsz, n_anchors, dtype=torch.bool, device=device),
                          torch.zeros(bsz, n_anchors, dtype=torch.long, device=device),
                          pred_boxes.new_zeros(bsz, n_anchors, 4), scores.new_zeros(bsz, n_anchors, nc))
    candidates = _inside(points, targets.boxes, min_side) & targets.mask[..., None]  # (B, M, A)
    pairs = candidates.nonzero(as_tuple=True)
    overlaps = scores.new_zeros(bsz, m, n_anchors)
    metric = scores.new_zeros(bsz, m, n_anchors)
    u = _pair_overlaps(targets.boxes, pred_boxes, pairs, overlap).to(scores.dtype)
    s = scores[pairs[0], pairs[2], targets.labels[pairs[0], pairs[1]]]
    overlaps[pairs] = u
    metric[pairs] = s.pow(alpha) * u.pow(beta)

    top = metric.topk(min(topk, n_anchors), dim=-1).indices
    pos = torch.zeros_like(candidates).scatter_(-1, top, True) & candidates & (metric > 0)

    # an anchor chosen by several boxes keeps the box it overlaps most (among those that chose it)
    best = torch.where(pos, overlaps, -1.0).argmax(1)  # (B, A)
    fg = pos.any(1)
    pos &= torch.arange(m, device=device)[:, None] == best[:, None]  # one box per anchor
    gt_index = best * fg
    # TOOD's normalisation: per box, t * (largest overlap of its positives) / (largest t of its positives)
    metric = metric * pos
    norm = metric * (overlaps * pos).amax(-1, keepdim=True) / (metric.amax(-1, keepdim=True) + eps)
    norm = norm.amax(1)  # (B, A): one box per anchor now
    labels = targets.labels.gather(1, gt_index)
    cls_targets = F.one_hot(labels, nc).to(scores.dtype) * (norm * fg)[..., None]
    boxes = targets.boxes.gather(1, gt_index[..., None].expand(-1, -1, 4))
    return Assignment(fg, gt_index, boxes, cls_targets)
