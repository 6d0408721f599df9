"""The model's own modules and functions: `Group`, a level of its hierarchy, and the calls of train-only nodes.

The torch modules and functions the blocks' builders construct live beside the builders
(archc/blocks/nn/modules.py); they are re-exported here, so this one namespace holds every helper a generated
forward calls (export/python_source.py reads it) and models pickled before they moved still load."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archc.blocks.nn.modules import (
    LayerNorm2d,
    SelfAttention,
    add_param,
    arange_like,
    full_like,
    global_avg_pool,
    grid_coords,
    identity,
    prepend_token,
    reshape,
    reshape_as,
    resize_to,
    scalar_arith,
    scale_by_param,
)

__all__ = ["Group", "LayerNorm2d", "SelfAttention", "global_avg_pool", "reshape", "resize_to", "prepend_token",
           "add_param", "scale_by_param", "identity", "TrainCalls", "train_only", "train_only_call", "pick",
           "mode_outputs", "grid_coords", "full_like", "arange_like", "scalar_arith", "reshape_as"]


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

    @torch.jit.unused  # TorchScript compiles the model's forward, which calls the leaves, never this
    def forward(self, *args: object) -> None:
        raise TypeError("an archc group runs inside the compiled model's forward; to get intermediate "
                        "features use torchvision.models.feature_extraction.create_feature_extractor"
                        "(model, {'layer4': 'features'}) or compile a spec that ends at this node")


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
