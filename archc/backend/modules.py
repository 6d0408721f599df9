"""The few torch modules and functions the block library needs beyond torch.nn itself."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["LayerNorm2d", "SelfAttention", "global_avg_pool", "reshape", "resize_to", "prepend_token",
           "add_param", "scale_by_param", "identity"]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map (same keys as torchvision's LayerNorm2d)."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # (B, C, H, W)


class SelfAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention used as self-attention on (B, L, D); returns only the output."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return super().forward(x, x, x, need_weights=False)[0]


def global_avg_pool(x: Tensor) -> Tensor:
    return x.mean(dim=(2, 3))  # (B, C, H, W) -> (B, C)


def reshape(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    return x.reshape(x.shape[0], *shape)


def resize_to(x: Tensor, ref: Tensor, mode: str = "nearest") -> Tensor:
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    return F.interpolate(x, size=ref.shape[-2:], mode=mode)


def prepend_token(x: Tensor, token: Tensor) -> Tensor:
    return torch.cat([token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + L, D)


def add_param(x: Tensor, p: Tensor) -> Tensor:
    return x + p


def scale_by_param(x: Tensor, p: Tensor) -> Tensor:
    return p * x


def identity(x: Tensor) -> Tensor:
    return x
