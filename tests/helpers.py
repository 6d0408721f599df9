"""Helpers for running compiled models node by node."""

from __future__ import annotations

from typing import Any

import torch
from torch import fx


def observed_shapes(module: fx.GraphModule, *inputs: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Run the model and record each spec node's output shape, batch dimension dropped."""
    seen: dict[str, tuple[int, ...]] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            out = super().run_node(n)
            path = n.meta.get("archc_path")
            if path is not None and isinstance(out, torch.Tensor):
                seen[path] = tuple(out.shape[1:])
            return out

    with torch.no_grad():
        Recorder(module).run(*inputs)
    return seen
