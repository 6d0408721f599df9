"""`archc import`: a PyTorch module becomes an archc spec. Needs torch.

Three stages: ``trace`` (torch.fx, the modules with an archc op as leaves), ``emit`` (a tree of
groups whose paths are the module's attribute paths, written as spec text) and ``fold`` (same-class
sub-trees become blocks with arguments, nn.Sequential runs of one block become ``repeat:``).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["from_module"]


def from_module(module: Any, example_input: Any, *, name: str | None = None, source: str | None = None) -> str:
    """The spec text of ``module``. ``example_input``: a tensor with its batch dimension, or the
    per-sample shape (``(3, 224, 224)``). Raises ``archc.errors.UsageError`` naming what has no archc op."""
    from archc.importer.emit import build_tree, render
    from archc.importer.fold import fold

    shape = tuple(example_input.shape[1:]) if hasattr(example_input, "shape") else tuple(example_input)
    cls = type(module).__name__
    name = name or re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls).lower()
    tree = build_tree(module, shape)
    blocks = fold(tree)
    return render(tree, name, shape, source or f"{type(module).__module__}.{cls}", blocks)
