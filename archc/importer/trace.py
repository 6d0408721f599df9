"""Trace an nn.Module with torch.fx, in eval mode, for emit.py's tree of archc nodes (one per module scope).

The modules that map to an archc op (module_ops.py) are fx leaves; everything else (Sequential, user classes)
is traced through, and torch.fx's ``nn_module_stack`` gives each node the module scope it ran in, so node paths
are the module's own attribute paths. Functions and methods map to ops in function_ops.py.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import torch.fx as fx
from torch import nn

from archc.errors import UsageError
from archc.importer.markers import ROOT_KEY
from archc.importer.module_ops import CONTAINERS, LIBRARY_FUNCTIONS, MODULE_OPS, library_ops


class ArchcTracer(fx.Tracer):
    """fx tracer whose leaves are the modules with an archc op, and torch's own modules without one
    (so they are reported by name instead of traced into)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, CONTAINERS):
            return False
        if type(m) in MODULE_OPS:
            return True
        return m.__module__.startswith("torch.nn")


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode (the spec's forward; running it changes no BatchNorm statistics), then each
    submodule's own mode back."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.train(training)


def _defaults(module: nn.Module) -> dict[str, Any] | None:
    """forward's arguments after the input, at their defaults (timm's ``attn_mask=None``): traced as constants."""
    params = list(inspect.signature(module.forward).parameters.values())[1:]
    extra = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    missing = [p.name for p in extra if p.default is inspect.Parameter.empty]
    if missing:
        raise UsageError(f"{type(module).__name__}.forward needs more than one input ({', '.join(missing)})",
                         hint="import a module whose forward takes one tensor")
    return {p.name: p.default for p in extra} or None


def trace(module: nn.Module) -> fx.GraphModule:
    """The fx graph of ``module`` (call it in ``eval_mode``); data-dependent control flow is a UsageError
    naming it."""
    library_ops()
    try:
        graph = ArchcTracer(autowrap_functions=tuple(LIBRARY_FUNCTIONS)).trace(module, concrete_args=_defaults(module))
    except Exception as e:  # fx raises TraceError, TypeError, ... on code it cannot follow
        raise UsageError(f"torch.fx cannot trace {type(module).__name__}: {type(e).__name__}: {e}",
                         hint="data-dependent control flow (an `if` on a tensor's values) cannot be imported; "
                              "make the branch a constructor argument") from None
    gm = fx.GraphModule(module, graph)
    gm.meta[ROOT_KEY] = module  # the buffers fx read as constants are looked up in it (batchless.py)
    return gm
