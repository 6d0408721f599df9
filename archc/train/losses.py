"""Losses and segmentation metrics for `archc train`: cross-entropy, Dice (on softmax probabilities,
per class, then the mean) or both summed (`--loss ce|dice|ce+dice`); per-class IoU and Dice from a
confusion matrix."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from archc.errors import UsageError

__all__ = ["LOSSES", "DiceLoss", "class_dice", "class_iou", "make_loss", "mean_present"]

LOSSES = ("ce", "dice", "ce+dice")


class DiceLoss(nn.Module):
    """``1 - mean_c dice_c``, with ``dice_c = (2 sum p_c t_c + s) / (sum p_c + sum t_c + s)`` over the
    batch's pixels (``p``: softmax probabilities, ``t``: one-hot labels, ``s``: smoothing, so a class
    neither present nor predicted counts as matched)."""

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        self.smooth = smooth

    def forward(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        probs = scores.float().softmax(1)
        onehot = F.one_hot(labels, scores.shape[1]).movedim(-1, 1).to(probs.dtype)
        dims = [0, *range(2, probs.dim())]  # all but the class axis
        inter = (probs * onehot).sum(dims)
        total = probs.sum(dims) + onehot.sum(dims)
        return 1 - ((2 * inter + self.smooth) / (total + self.smooth)).mean()


class _Sum(nn.Module):
    """Cross-entropy plus Dice, equally weighted."""

    def __init__(self, ce: nn.Module, dice: nn.Module) -> None:
        super().__init__()
        self.ce, self.dice = ce, dice

    def forward(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.ce(scores, labels) + self.dice(scores, labels)


def make_loss(name: str, task: str, label_smoothing: float = 0.0) -> nn.Module:
    """The training loss for ``--loss``; Dice needs masks (segmentation)."""
    if name not in LOSSES:
        raise UsageError(f"--loss {name}: unknown loss", hint=f"one of {', '.join(LOSSES)}")
    if name != "ce" and task != "segmentation":
        raise UsageError(f"--loss {name}: Dice compares masks, but this run is {task}",
                         hint="use --loss ce (the default) for classification")
    ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    return ce if name == "ce" else DiceLoss() if name == "dice" else _Sum(ce, DiceLoss())


def class_iou(confusion: torch.Tensor) -> list[float]:
    """Intersection over union per class (rows: true, columns: predicted); NaN for a class neither in
    the labels nor predicted."""
    hits = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - hits
    return (hits / union).tolist()  # 0/0 is NaN


def class_dice(confusion: torch.Tensor) -> list[float]:
    """Dice (F1) per class, ``2 TP / (2 TP + FP + FN)``; NaN for a class neither in the labels nor predicted."""
    return (2 * confusion.diag() / (confusion.sum(0) + confusion.sum(1))).tolist()


def mean_present(values: list[float]) -> float:
    """The mean over the classes that have a value (not NaN)."""
    present = [v for v in values if not math.isnan(v)]
    return sum(present) / max(len(present), 1)
