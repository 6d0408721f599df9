"""The init methods of a spec's `init:` rules and of a parameter node's `init:` argument, by name: torch.nn.init's,
plus `arange` (start, start + step, ... in element order: YOLOv8's frozen DFL weight). backend/init.py applies
the rules with them; the parameter block fills its tensor with them, so both fill alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["METHODS", "NEEDS_2D"]


def _arange_(tensor: torch.Tensor, start: float = 0.0, step: float = 1.0) -> torch.Tensor:
    """start, start + step, ... over the tensor's elements in order (YOLOv8's DFL weight: arange(reg_max))."""
    with torch.no_grad():
        values = torch.arange(tensor.numel(), dtype=torch.float64) * step + start
        return tensor.copy_(values.view(tensor.shape))


METHODS: dict[str, Callable[..., Any]] = {
    "kaiming_normal": nn.init.kaiming_normal_,
    "kaiming_uniform": nn.init.kaiming_uniform_,
    "trunc_normal": nn.init.trunc_normal_,
    "normal": nn.init.normal_,
    "uniform": nn.init.uniform_,
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "zeros": nn.init.zeros_,
    "ones": nn.init.ones_,
    "constant": nn.init.constant_,
    "arange": _arange_,
}
# methods that need a weight of 2 or more dimensions (fan in and fan out)
NEEDS_2D = {"kaiming_normal", "kaiming_uniform", "xavier_uniform", "xavier_normal"}
