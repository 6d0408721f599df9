"""The few torch modules and functions the block library needs beyond torch.nn itself."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["Group", "LayerNorm2d", "SelfAttention", "global_avg_pool", "reshape", "resize_to", "prepend_token",
           "add_param", "scale_by_param", "identity", "TrainCalls", "train_only", "train_only_call", "pick",
           "mode_outputs"]


class Group(nn.Module):
    """A level of the model's hierarchy (block instance, repeat, seq): holds children by name and
    indexes like nn.Sequential (`model.layer4[-1]`, `len(model.features)`). It has no forward of its
    own: the model's generated forward calls the leaves directly."""

    def __getitem__(self, idx: int | str) -> nn.Module:
        if isinstance(idx, str):
            return self._modules[idx]  # type: ignore[return-value]
        children = list(self._modules.values())
        return children[idx]  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._modules.values())

    def forward(self, *args: object) -> None:
        raise TypeError("an archc group runs inside the compiled model's forward; to get intermediate "
                        "features use torchvision.models.feature_extraction.create_feature_extractor"
                        "(model, {'layer4': 'features'}) or compile a spec that ends at this node")


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


# Train-only nodes (read only by `train_only` outputs) run in training mode only; in eval mode they
# give None, which only other train-only nodes read. The generated forward passes `self.training`.

class TrainCalls:
    """The functions of a model's train-only function nodes, by index: a plain attribute of the model
    (not a module: no state_dict keys), because fx arguments cannot be functions."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any], bool]] = []  # (fn, kwargs, takes its inputs as one list)

    def add(self, fn: Any, kwargs: dict[str, Any], list_input: bool) -> int:
        self.calls.append((fn, kwargs, list_input))
        return len(self.calls) - 1


def train_only(training: bool, module: nn.Module, *args: Any) -> Any:
    """A train-only module node: the module's output in training mode, None in eval mode."""
    return module(*args) if training else None


def train_only_call(training: bool, table: TrainCalls, index: int, *args: Any) -> Any:
    """A train-only function node (entry ``index`` of ``table``): its value in training, None in eval."""
    if not training:
        return None
    fn, kwargs, list_input = table.calls[index]
    if list_input:
        return fn(list(args), **kwargs)
    out = fn(*args[:2], **kwargs)
    for extra in args[2:]:  # binary functions over three or more inputs fold left: (a + b) + c
        out = fn(out, extra, **kwargs)
    return out


def pick(value: Any, k: int) -> Any:
    """Output ``k`` of a multi-output train-only node (None in eval mode)."""
    return None if value is None else value[k]


def mode_outputs(training: bool, evals: tuple[Any, ...], trains: tuple[Any, ...]) -> Any:
    """The model's result: its outputs (one: the tensor itself), followed in training mode by the
    train-only ones as a plain tuple, as torchvision's Inception3 returns (logits, aux_logits)."""
    if training:
        return (*evals, *trains)
    return evals[0] if len(evals) == 1 else evals
