"""Training losses for the three detection head kinds, written from the papers.

Every loss takes the model's raw output(s) and the batch's targets, an (N, 6) tensor of rows
(batch_index, class, x1, y1, x2, y2) in letterboxed input pixels, and returns ``(loss, parts)``:

- ``loss``: the per-image loss times the batch size, i.e. the sum over the batch's images. This is the
  common practice of the YOLO family (darknet sums over the batch; Ultralytics multiplies its per-batch
  mean by the batch size), so the learning rates of those recipes apply; divide by the batch size for a
  per-image figure.
- ``parts``: the per-image components (gains applied, detached, 0-d tensors so that logging them does
  not synchronise a GPU), ``loss == batch_size * sum(parts.values())``.

:class:`YoloV1Loss` (Redmon et al. 2016), :class:`AnchorLoss` (YOLOv3, Redmon & Farhadi 2018) and
:class:`AnchorFreeLoss` (YOLOv8/11: TOOD assignment, CIoU, GFL's distribution focal loss). Their docstrings
say where they follow the papers and where they choose.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from archc.detect.assign import pad_targets, task_aligned_assign
from archc.detect.boxes import (
    anchor_points,
    bbox2dist,
    box_iou_batched,
    cell_grid,
    ciou_loss,
    decode_offsets,
    dfl_expectation,
    dist2bbox,
    wh_iou,
    xywh2xyxy,
    xyxy2xywh,
)
from archc.errors import UsageError

__all__ = ["YoloV1Loss", "AnchorLoss", "AnchorFreeLoss", "dfl_loss", "normalize_anchors"]

Parts = dict[str, Tensor]


def _check(ok: bool, what: str, got: tuple[int, ...], expected: str, hint: str) -> None:
    if not ok:
        raise UsageError(f"{what}: the model's output has shape {tuple(got)}, the loss expects {expected}", hint=hint)


def _sqrt_signed(v: Tensor, eps: float = 1e-6) -> Tensor:
    """sqrt that keeps a gradient for the raw (possibly negative) widths a linear head emits."""
    return torch.sign(v) * torch.sqrt(v.abs() + eps)


# ---------------------------------------------------------------------------------------------- YOLOv1
class YoloV1Loss(nn.Module):
    """The YOLOv1 sum-squared error over an S x S grid of ``boxes`` predictors and ``classes`` scores.

    Output (B, S, S, boxes*5 + classes); box b of a cell is channels [5b:5b+5] = (x, y, w, h, conf): x, y
    the centre inside the cell in [0, 1], w, h relative to the image. The cell holding a target's centre
    is responsible for it; of its boxes the one with the highest IoU with the target is the responsible
    predictor. Per image (the paper's equation 3)::

        l_coord * sum_resp [(x - x^)^2 + (y - y^)^2 + (sqrt w - sqrt w^)^2 + (sqrt h - sqrt h^)^2]
      + sum_resp (C - IoU)^2 + l_noobj * sum_other_boxes C^2 + sum_object_cells sum_c (p(c) - p^(c))^2

    Choices the paper leaves open: the confidence target of the responsible box is its IoU with the
    target (the paper's definition, held constant); a predicted w, h below 0 enters as -sqrt(|w|), so a
    linear head keeps a gradient; a cell holds one object, and when several target centres fall into one
    cell the largest box is kept (one class vector per cell cannot describe two)."""

    def __init__(self, grid: int, boxes: int, classes: int, l_coord: float = 5.0, l_noobj: float = 0.5, *,
                 img_size: int) -> None:
        super().__init__()
        self.grid, self.boxes, self.classes = grid, boxes, classes
        self.l_coord, self.l_noobj, self.img_size = l_coord, l_noobj, img_size

    def _one_per_cell(self, cell: Tensor, area: Tensor) -> Tensor:
        """Indices of the targets kept: the largest in each cell (ties: the first row)."""
        by_area = torch.argsort(-area, stable=True)
        order = by_area[torch.argsort(cell[by_area], stable=True)]
        c = cell[order]
        first = torch.ones_like(c, dtype=torch.bool)
        first[1:] = c[1:] != c[:-1]
        return order[first]

    def forward(self, output: Tensor, targets: Tensor) -> tuple[Tensor, Parts]:
        s, nb, nc = self.grid, self.boxes, self.classes
        _check(output.dim() == 4 and tuple(output.shape[1:]) == (s, s, nb * 5 + nc), "YOLOv1 loss", output.shape,
               f"(B, {s}, {s}, {nb * 5 + nc})", "grid, boxes and classes must match the spec's params")
        bsz = output.shape[0]
        pred = output.float()
        box = pred[..., : nb * 5].unflatten(-1, (nb, 5))  # (B, S, S, nb, 5)
        cls = pred[..., nb * 5:]

        t = targets.to(output.device, torch.float32)
        t = t[((t[:, 4:6] - t[:, 2:4]) > 0).all(1)]
        xywh = xyxy2xywh(t[:, 2:6]) / self.img_size
        gxy = (xywh[:, :2] * s).long().clamp(0, s - 1)
        bi = t[:, 0].long()
        keep = self._one_per_cell((bi * s + gxy[:, 1]) * s + gxy[:, 0], xywh[:, 2] * xywh[:, 3])
        bi, gxy, xywh, labels = bi[keep], gxy[keep], xywh[keep], t[keep, 1].long()
        gx, gy = gxy[:, 0], gxy[:, 1]

        cell_boxes = box[bi, gy, gx]  # (K, nb, 5)
        with torch.no_grad():
            pxy = (cell_boxes[..., :2] + gxy[:, None].float()) / s
            pred_xyxy = xywh2xyxy(torch.cat((pxy, cell_boxes[..., 2:4].clamp(min=0)), -1))
            ious = box_iou_batched(pred_xyxy, xywh2xyxy(xywh)[:, None])[..., 0]  # (K, nb)
            resp = ious.argmax(1)
        k = torch.arange(len(resp), device=output.device)
        r = cell_boxes[k, resp]  # (K, 5), the responsible predictors
        offset = xywh[:, :2] * s - gxy.float()
        coord = ((r[:, :2] - offset) ** 2).sum() + ((_sqrt_signed(r[:, 2:4]) - xywh[:, 2:].sqrt()) ** 2).sum()
        obj = ((r[:, 4] - ious[k, resp]) ** 2).sum()
        responsible = torch.zeros(box.shape[:-1], dtype=torch.bool, device=output.device)
        responsible[bi, gy, gx, resp] = True
        noobj = (box[..., 4][~responsible] ** 2).sum()
        cls_loss = ((cls[bi, gy, gx] - F.one_hot(labels, nc).float()) ** 2).sum()

        parts = {"coord": self.l_coord * coord, "obj": obj, "noobj": self.l_noobj * noobj, "cls": cls_loss}
        total = sum(parts.values(), output.new_zeros(()).float())
        return total, {name: v.detach() / bsz for name, v in parts.items()}


# ------------------------------------------------------------------------------------------ YOLOv2/v3
def normalize_anchors(anchors: Sequence, levels: int) -> list[list[tuple[float, float]]]:
    """Anchors as a list per level of (w, h) pairs; one level may also be given as a flat list of pairs."""
    if levels == 1 and len(anchors) and isinstance(anchors[0][0], (int, float)):
        anchors = [anchors]
    out = [[(float(w), float(h)) for w, h in level] for level in anchors]
    if len(out) != levels:
        raise UsageError(f"anchor_sizes gives {len(out)} level(s) of anchors for {levels} stride(s)",
                         hint="one list of [w, h] pairs per output level, in the order of `strides`")
    return out


class AnchorLoss(nn.Module):
    """YOLOv3's loss for anchor heads, one or several levels of (B, A, H, W, 5 + C) raw outputs decoded as
    ``cx = (sigmoid(tx) + gx) * stride``, ``w = anchor_w * exp(tw)`` (anchors in input pixels).

    Assignment (YOLOv3): each target goes to the one anchor, over all levels, whose shape matches it
    best (IoU of w, h with a shared centre), in the cell holding the target's centre on that anchor's
    level. ``anchor_t=4.0`` also gives it every anchor whose sides are within a factor 4 of the target's
    (the rule of later YOLOs: more positives, faster early training); the default ``None`` is the paper.

    Terms, each averaged then weighted by its gain:
    - objectness: BCE over every cell and anchor, target 1 on assigned ones; a prediction that is not
      assigned but whose decoded box has IoU > ``ignore_thresh`` (0.5) with a target of its image is
      left out (YOLOv3). Averaged per level, then weighted by ``balance`` (default: 4.0, 1.0, 0.4 from
      the finest to the coarsest of three levels, so the many small cells of P3 do not swamp it;
      1.0 otherwise);
    - classes: BCE against one-hot labels at the assigned predictions (YOLOv3's independent logistic
      classifiers);
    - box: ``box_loss="ciou"`` (default): 1 - CIoU of the decoded box with the target (Zheng et al. 2020;
      it optimises the overlap mAP measures, scale-free), or ``"sse"``: the paper's squared error on the
      offsets (sigmoid(tx) vs the centre within the cell, tw vs log(w / anchor_w)), weighted by
      ``2 - w*h / image_area`` as darknet does.
    Gains default to YOLOv5's published ones (box 0.05, obj 1.0, cls 0.5)."""

    anchor_wh: Tensor  # (K, 2) every anchor, levels in order
    anchor_level: Tensor  # (K,) its level
    anchor_local: Tensor  # (K,) its index within the level

    def __init__(self, anchors: Sequence, strides: Sequence[float], classes: int, *, box: float = 0.05,
                 obj: float = 1.0, cls: float = 0.5, balance: Sequence[float] | None = None,
                 ignore_thresh: float = 0.5, anchor_t: float | None = None, box_loss: str = "ciou") -> None:
        super().__init__()
        if box_loss not in ("ciou", "sse"):
            raise UsageError(f"box_loss {box_loss!r}: unknown", hint="'ciou' or 'sse'")
        self.strides = [float(s) for s in strides]
        self.anchors = normalize_anchors(anchors, len(self.strides))
        self.classes = classes
        self.gains = {"box": box, "obj": obj, "cls": cls}
        if balance is None:
            rank = sorted(range(len(self.strides)), key=lambda i: self.strides[i])
            balance = [1.0] * len(self.strides)
            if len(self.strides) == 3:
                for r, i in enumerate(rank):
                    balance[i] = (4.0, 1.0, 0.4)[r]
        self.balance = list(balance)
        self.ignore_thresh, self.anchor_t, self.box_loss = ignore_thresh, anchor_t, box_loss
        wh = [torch.tensor(level) for level in self.anchors]
        self.register_buffer("anchor_wh", torch.cat(wh), persistent=False)  # (K, 2)
        self.register_buffer("anchor_level", torch.cat([torch.full((len(w),), i) for i, w in enumerate(wh)]),
                             persistent=False)
        self.register_buffer("anchor_local", torch.cat([torch.arange(len(w)) for w in wh]), persistent=False)

    def _levels(self, outputs: Tensor | Sequence[Tensor]) -> list[Tensor]:
        levels = [outputs] if isinstance(outputs, Tensor) else list(outputs)
        _check(len(levels) == len(self.strides), "anchor loss", (len(levels),), f"{len(self.strides)} level(s)",
               "one stride and one list of anchors per output level")
        for x, anchors in zip(levels, self.anchors):
            _check(x.dim() == 5 and x.shape[1] == len(anchors) and x.shape[-1] == 5 + self.classes, "anchor loss",
                   x.shape, f"(B, {len(anchors)}, H, W, {5 + self.classes})", "anchors and classes must match the head")
        return [x.float() for x in levels]

    def _match(self, wh: Tensor) -> tuple[Tensor, Tensor]:
        """(target, anchor) index pairs: the best anchor of each target, plus those within anchor_t."""
        iou = wh_iou(wh, self.anchor_wh)
        match = F.one_hot(iou.argmax(1), len(self.anchor_wh)).bool()
        if self.anchor_t is not None:
            r = wh[:, None] / self.anchor_wh[None]
            match |= torch.maximum(r, 1 / r).amax(-1) < self.anchor_t
        ti, ki = match.nonzero(as_tuple=True)
        return ti, ki

    def _ignore(self, x: Tensor, li: int, gt: Tensor, gt_mask: Tensor) -> Tensor:
        """(B, A, H, W): predictions whose box overlaps some target by more than ignore_thresh."""
        bsz, na, h, w, _ = x.shape
        if gt.shape[1] == 0:
            return torch.zeros(x.shape[:4], dtype=torch.bool, device=x.device)
        awh = self.anchor_wh[self.anchor_level == li].view(1, na, 1, 1, 2)
        boxes = xywh2xyxy(decode_offsets(x.detach(), cell_grid(h, w, x.device), awh, self.strides[li]))
        boxes = boxes.reshape(bsz, -1, 4)
        iou = box_iou_batched(boxes, gt) * gt_mask[:, None]  # (B, A*H*W, M)
        return (iou.amax(-1) > self.ignore_thresh).view(bsz, na, h, w)

    def forward(self, outputs: Tensor | Sequence[Tensor], targets: Tensor) -> tuple[Tensor, Parts]:
        levels = self._levels(outputs)
        bsz = levels[0].shape[0]
        t = targets.to(levels[0].device, torch.float32)
        t = t[((t[:, 4:6] - t[:, 2:4]) > 0).all(1)]
        xywh = xyxy2xywh(t[:, 2:6])
        ti, ki = self._match(xywh[:, 2:])
        padded = pad_targets(t, bsz)
        zero = levels[0].new_zeros(())
        box_sum, cls_sum, n_pos, obj = zero, zero, 0, zero
        for li, x in enumerate(levels):
            _, _, h, w, _ = x.shape
            stride = self.strides[li]
            on = self.anchor_level[ki] == li
            tl, kl = ti[on], ki[on]
            b, a = t[tl, 0].long(), self.anchor_local[kl]
            g = (xywh[tl, :2] / stride).long()
            gx, gy = g[:, 0].clamp(0, w - 1), g[:, 1].clamp(0, h - 1)
            p = x[b, a, gy, gx]  # (P, 5 + C)
            positive = torch.zeros(x.shape[:4], dtype=torch.bool, device=x.device)
            positive[b, a, gy, gx] = True
            counted = positive | ~self._ignore(x, li, padded.boxes, padded.mask)
            obj_bce = F.binary_cross_entropy_with_logits(x[..., 4], positive.float(), reduction="none")
            obj = obj + self.balance[li] * (obj_bce * counted).sum() / counted.sum().clamp(min=1)
            if len(p):
                box_sum = box_sum + self._box_term(p, torch.stack((gx, gy), -1).float(), self.anchor_wh[kl], stride,
                                                   xywh[tl], h * w * stride * stride).sum()
                onehot = F.one_hot(t[tl, 1].long(), self.classes).float()
                cls_sum = cls_sum + F.binary_cross_entropy_with_logits(p[:, 5:], onehot, reduction="sum")
                n_pos += len(p)
        parts = {"box": self.gains["box"] * box_sum / max(n_pos, 1), "obj": self.gains["obj"] * obj,
                 "cls": self.gains["cls"] * cls_sum / max(n_pos * self.classes, 1)}
        total = sum(parts.values(), zero)
        return total * bsz, {name: v.detach() for name, v in parts.items()}

    def _box_term(self, p: Tensor, grid_xy: Tensor, anchor_wh: Tensor, stride: float, target_xywh: Tensor,
                  image_area: float) -> Tensor:
        """Per positive: 1 - CIoU, or the paper's offset SSE."""
        if self.box_loss == "ciou":
            return ciou_loss(xywh2xyxy(decode_offsets(p, grid_xy, anchor_wh, stride)), xywh2xyxy(target_xywh))
        txy = target_xywh[:, :2] / stride - grid_xy
        twh = torch.log(target_xywh[:, 2:] / anchor_wh)
        sse = ((p[:, :2].sigmoid() - txy) ** 2).sum(-1) + ((p[:, 2:4] - twh) ** 2).sum(-1)
        return sse * (2.0 - target_xywh[:, 2] * target_xywh[:, 3] / image_area)


# ------------------------------------------------------------------------------------ YOLOv8 / YOLO11
def dfl_loss(dist: Tensor, target: Tensor) -> Tensor:
    """GFL's distribution focal loss (Li et al. 2020). ``dist`` (..., 4, n) logits over n bins per side,
    ``target`` (..., 4) distances in bins, within [0, n - 1). With y_i <= y < y_i+1 the two nearest bins:
    ``-((y_i+1 - y) log S_i + (y - y_i) log S_i+1)``, averaged over the 4 sides -> (...)."""
    left = target.long()
    w_left = (left + 1).to(target.dtype) - target
    logp = dist.log_softmax(-1)
    lp_left = logp.gather(-1, left[..., None])[..., 0]
    lp_right = logp.gather(-1, (left + 1)[..., None])[..., 0]
    return -(lp_left * w_left + lp_right * (1 - w_left)).mean(-1)


class AnchorFreeLoss(nn.Module):
    """The YOLOv8/YOLO11 loss on the raw level maps (B, 4*reg_max + nc, H, W), finest level first.

    Each map is read as ``reg_max`` bins per side (left, top, right, bottom; side-major) of distances
    from the cell centre in strides, then ``nc`` class logits. Anchors are assigned by TOOD's task-aligned
    assigner (:mod:`archc.detect.assign`: top-k 10, alpha 0.5, beta 6). Terms:
    - cls: BCE of every anchor's class logits against the IoU-aware soft targets (TOOD's normalised
      alignment on the assigned class, 0 elsewhere and on negatives), summed, over the sum of targets;
    - box: 1 - CIoU of the decoded box (DFL expectation) with its target, weighted by the anchor's target
      score, over the sum of targets;
    - dfl: GFL's distribution focal loss on the two bins around each target distance (clamped to
      ``reg_max - 1.01`` so the right bin exists), same weighting.
    Gains box 7.5, cls 0.5, dfl 1.5. ``min_side`` and ``overlap`` pass to the assigner (see there)."""

    def __init__(self, nc: int, reg_max: int = 16, strides: Sequence[float] = (8, 16, 32), box: float = 7.5,
                 cls: float = 0.5, dfl: float = 1.5, topk: int = 10, alpha: float = 0.5, beta: float = 6.0, *,
                 min_side: float = 16.0, overlap: str = "ciou") -> None:
        super().__init__()
        self.nc, self.reg_max, self.strides = nc, reg_max, [float(s) for s in strides]
        self.gains = {"box": box, "cls": cls, "dfl": dfl}
        self.topk, self.alpha, self.beta, self.min_side, self.overlap = topk, alpha, beta, min_side, overlap

    def forward(self, levels: Sequence[Tensor], targets: Tensor) -> tuple[Tensor, Parts]:
        levels = list(levels)
        no = 4 * self.reg_max + self.nc
        _check(len(levels) == len(self.strides), "anchor-free loss", (len(levels),), f"{len(self.strides)} levels",
               "one raw level map per stride")
        for x in levels:
            _check(x.dim() == 4 and x.shape[1] == no, "anchor-free loss", x.shape, f"(B, {no}, H, W)",
                   "4 * reg_max box bins, then the class logits")
        bsz = levels[0].shape[0]
        flat = torch.cat([x.float().flatten(2) for x in levels], 2).transpose(1, 2).contiguous()  # (B, A, no)
        dist, logits = flat.split((4 * self.reg_max, self.nc), -1)
        dist = dist.contiguous()  # softmax over its bins takes a fast path on contiguous rows
        points, stride = anchor_points([(x.shape[2], x.shape[3]) for x in levels], self.strides, device=flat.device)
        pred = dist2bbox(dfl_expectation(dist, self.reg_max), points)  # (B, A, 4) xyxy in strides

        padded = pad_targets(targets.to(flat.device), bsz)
        assigned = task_aligned_assign(logits.detach().sigmoid(), pred.detach() * stride, points * stride, padded,
                                       topk=self.topk, alpha=self.alpha, beta=self.beta, min_side=self.min_side,
                                       overlap=self.overlap)
        total_score = assigned.scores.sum().clamp(min=1)
        cls = F.binary_cross_entropy_with_logits(logits, assigned.scores, reduction="sum") / total_score

        fg = assigned.fg
        weight = assigned.scores.sum(-1)[fg]
        target = assigned.boxes[fg] / stride.expand(bsz, -1, -1)[fg]
        box = (ciou_loss(pred[fg], target) * weight).sum() / total_score
        ltrb = bbox2dist(points.expand(bsz, -1, -1)[fg], target, self.reg_max - 1.01)
        dfl = (dfl_loss(dist[fg].unflatten(-1, (4, self.reg_max)), ltrb) * weight).sum() / total_score

        parts = {"box": self.gains["box"] * box, "cls": self.gains["cls"] * cls, "dfl": self.gains["dfl"] * dfl}
        return sum(parts.values(), flat.new_zeros(())) * bsz, {k: v.detach() for k, v in parts.items()}

