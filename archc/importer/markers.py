"""The markers the rewrites (rewrite.py, batchless.py) leave in the fx graph for emit.py, and the meta keys
the trace and the rewrites record: one module below them all, so that none of them imports another in a cycle."""

from __future__ import annotations

from typing import Any

Args = dict[str, Any]
SIZE_KEY, BATCH_KEY, SHAPE_KEY = "archc_size", "archc_batch", "archc_shape"
FULL_SHAPE_KEY = "archc_full_shape"  # with the first dim: what a value with no batch (batchless.py) has
ROOT_KEY = "archc_root"  # the traced module, in the GraphModule's meta: batchless.py reads the buffers fx inlined


def parameter_node(x: Any, *, name: str, op: str, args: Args) -> Any:  # pragma: no cover - a marker, never run
    """Marks a parameter combined with ``x`` (built by ``parameters``); emit maps it to ``op``."""
    raise NotImplementedError


def op_node(x: Any, *more: Any, op: str, args: Args) -> Any:  # pragma: no cover - a marker, never run
    """Marks a node already mapped to an archc op (made by the rewrites); emit takes it as it is."""
    raise NotImplementedError
