"""The compiled model's class: an fx.GraphModule whose forward is fx's generated code, behind a thin wrapper.

The wrapper costs one Python call and does two things the flat generated code cannot:

- Re-traced by torch.fx (``fx.symbolic_trace``, torchvision's ``create_feature_extractor`` and
  ``get_graph_node_names``), it replays the graph so that every spec node keeps its spec path: modules are
  called at their paths as always, and a function node (add, concat, flatten, ...) becomes one node named
  after its path, inside its block's scope for torchvision's NodePathTracer (``layer1.0.add``), its full path
  with ``_`` for other tracers (``layer1_0_add``). Function nodes stay single nodes (their helpers are not
  traced through), so helpers that branch on sizes trace too.
- Run on an input the spec does not take, it turns torch's failure into an ``InputShapeError`` naming the
  spec's input, what it expects and what came (:mod:`archc.backend.inputs`). Inputs that run are never
  checked: a numeric spec runs at any size its layers accept, as the torch model it twins does.

torch.jit.script compiles the generated code alone (``__prepare_scriptable__``); torch.jit.trace, torch.export, ONNX and
torch.compile call through the wrapper, which is plain Python on tensors.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from typing import Any

from torch import fx
from torch.fx import Proxy
from torch.utils._pytree import tree_leaves

from archc.backend.inputs import input_error

__all__ = ["ArchcModule"]


class ArchcModule(fx.GraphModule):
    """An fx.GraphModule whose forward keeps spec paths when re-traced and explains wrong inputs."""

    def recompile(self) -> Any:
        code = super().recompile()
        cls = type(self)
        cls.forward = _wrap(cls.forward)  # type: ignore[method-assign]
        return code

    def __prepare_scriptable__(self) -> fx.GraphModule:
        """torch.jit.script compiles the plain generated forward (a GraphModule sharing these weights): the
        wrapper is Python that TorchScript need not see."""
        return fx.GraphModule(self, copy.deepcopy(self.graph), class_name=type(self).__name__)


def _wrap(generated: Callable[..., Any]) -> Callable[..., Any]:
    def forward(self: fx.GraphModule, *args: Any, **kwargs: Any) -> Any:
        for a in args:  # a loop, not any(...): about 0.5 us a call in all
            if isinstance(a, Proxy):
                return _replay(self, args, kwargs)
        if kwargs and any(isinstance(a, Proxy) for a in kwargs.values()):
            return _replay(self, args, kwargs)
        try:
            return generated(self, *args, **kwargs)
        except Exception as e:  # torch's own message: explained when the input is not what the spec takes
            error = input_error(self, args, kwargs, e)
            if error is None:
                raise
            raise error from e

    return functools.update_wrapper(forward, generated)  # __wrapped__: fx and inspect read the code's signature


_ITEM = re.compile(r"^(.*)\[(\d+)\]$")  # NAME[K]: output K of a multi-output node


def _kept(leaf: str) -> bool:
    """A name fx keeps (an identifier) and torchvision does not renumber (no `_N` ending)."""
    return re.fullmatch(r"[A-Za-z_]\w*", leaf) is not None and re.search(r"_\d+$", leaf) is None


def _replay(gm: fx.GraphModule, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run the graph on fx proxies, one traced node per graph node, named by spec path."""
    tracer = next(a for a in (*args, *kwargs.values()) if isinstance(a, fx.Proxy)).tracer
    env: dict[fx.Node, Any] = {}
    positional = iter(args)

    def load(a: Any) -> Any:
        return fx.node.map_arg(a, lambda n: env[n])

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            env[node] = kwargs[node.target] if node.target in kwargs else next(positional)
        elif node.op == "get_attr":  # parameters and buffers come back as proxies from the tracer's getattr
            env[node] = functools.reduce(getattr, node.target.split("."), gm)
        elif node.op == "call_module":
            env[node] = gm.get_submodule(node.target)(*load(node.args), **load(node.kwargs))
        elif node.op == "call_function":
            env[node] = _function(tracer, node, load(node.args), load(node.kwargs))
        elif node.op == "output":
            return load(node.args[0])
    return None


def _function(tracer: Any, node: fx.Node, args: Any, kwargs: Any) -> Any:
    """One function node: a proxy named after its spec path (a constant when no proxy flows in)."""
    if not any(isinstance(a, fx.Proxy) for a in tree_leaves((args, kwargs))):
        return node.target(*args, **kwargs)  # type: ignore[operator]
    path = node.meta.get("archc_path")
    if not isinstance(path, str) or not path:
        return _create(tracer, node, args, kwargs, "", None)
    item = _ITEM.match(path)
    if item is not None:  # output K of node P: P.getitem, P.getitem_1, ... (torchvision's naming)
        return _create(tracer, node, args, kwargs, item.group(1), "getitem")
    scope, _, leaf = path.rpartition(".")
    if not _kept(leaf):  # `head.0`: fx renames `0`, torchvision drops `_N`: head.0.flatten
        return _create(tracer, node, args, kwargs, path, None)
    return _create(tracer, node, args, kwargs, scope, leaf)


def _create(tracer: Any, node: fx.Node, args: Any, kwargs: Any, scope: str, leaf: str | None) -> Any:
    """create_proxy under ``scope``: torchvision's NodePathTracer prefixes a node's name with the
    ``current_module_qualname`` it keeps (set here as its call_module sets it); other tracers get the
    whole path in the name. Arguments fx cannot record (the train-only call table) are traced through."""
    scoped = hasattr(tracer, "current_module_qualname")
    name = leaf if scoped or leaf is None else "_".join(p for p in (scope, leaf) if p)
    old = getattr(tracer, "current_module_qualname", None)
    if scoped:
        tracer.current_module_qualname = scope  # type: ignore[attr-defined]
    try:
        return tracer.create_proxy("call_function", node.target, args, kwargs, name=name)
    except NotImplementedError:  # an argument fx cannot write (modules.TrainCalls): run it on the proxies,
        if scoped:  # its nodes under the node's path (aux_flat.flatten)
            tracer.current_module_qualname = ".".join(p for p in (scope, leaf) if p)
        return node.target(*args, **kwargs)  # type: ignore[operator]
    finally:
        if scoped:
            tracer.current_module_qualname = old  # type: ignore[attr-defined]


