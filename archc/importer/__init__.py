"""`archc import`: a PyTorch module becomes an archc spec. Needs torch.

Four stages: ``trace`` (torch.fx, the modules with an archc op as leaves; ``module_ops`` and
``function_ops`` map modules, functions and methods to ops), ``emit`` (a tree of groups whose paths are the
module's attribute paths, after the ``rewrite`` passes), ``fold`` (same-class sub-trees become blocks with
arguments, nn.Sequential runs of one block become ``repeat:``) and ``spec_text`` (the tree written as a spec).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["from_module"]


def from_module(module: Any, example_input: Any, *, name: str | None = None, source: str | None = None) -> str:
    """The spec text of ``module``. ``example_input``: a tensor with its batch dimension, or the
    per-sample shape (``(3, 224, 224)``). Raises ``archc.errors.UsageError`` naming what has no archc op."""
    from archc.importer.emit import build_tree
    from archc.importer.fold import fold
    from archc.importer.spec_text import render

    shape = tuple(example_input.shape[1:]) if hasattr(example_input, "shape") else tuple(example_input)
    cls = type(module).__name__
    name = name or re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls).lower()
    tree = build_tree(module, shape)
    blocks = fold(tree)
    return render(tree, name, shape, source or f"{type(module).__module__}.{cls}", blocks)
