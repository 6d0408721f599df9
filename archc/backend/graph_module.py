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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from torch import fx, nn
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

    # builder.unpickle, set when the builder is imported (it imports this module, not the other way round)
    rebuild: ClassVar[Callable[..., nn.Module] | None] = None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as fx pickles a GraphModule (its generated code and attributes) plus the spec graph it was
        built from, so that it loads back as an ArchcModule (spec paths when re-traced, input errors) with
        these tensors; see builder.unpickle."""
        plain, args = super().__reduce__()
        graph = getattr(self, "archc_graph", None)
        if graph is None or ArchcModule.rebuild is None:
            return (plain, args)
        return (ArchcModule.rebuild, (plain, args, graph))

    def __deepcopy__(self, memo: dict[int, Any]) -> ArchcModule:
        """fx's deepcopy, keeping the attributes its constructor drops (archc_graph: the input errors)."""
        res = super().__deepcopy__(memo)
        copy_attributes(self, res, lambda v: copy.deepcopy(v, memo))
        return res  # type: ignore[return-value]

    def __prepare_scriptable__(self) -> fx.GraphModule:
        """torch.jit.script compiles the plain generated forward (a GraphModule sharing these weights): the
        wrapper is Python that TorchScript need not see."""
        return fx.GraphModule(self, copy.deepcopy(self.graph), class_name=type(self).__name__)


def copy_attributes(src: nn.Module, dst: nn.Module, clone: Callable[[Any], Any]) -> None:
    """The public plain attributes (archc_graph, ...) that GraphModule's constructor does not copy."""
    for name, value in vars(src).items():
        if not name.startswith("_") and name not in vars(dst) and not hasattr(type(dst), name):
            setattr(dst, name, clone(value))


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
        elif node.op == "get_attr":
            env[node] = _attribute(tracer, gm, node.target)
        elif node.op == "call_module":
            env[node] = _module(tracer, gm, node.target, load(node.args), load(node.kwargs))
        elif node.op == "call_function":
            env[node] = _function(tracer, node, load(node.args), load(node.kwargs))
        elif node.op == "output":
            return load(node.args[0])
    return None


def _module(tracer: Any, gm: fx.GraphModule, target: str, args: Any, kwargs: Any) -> Any:
    """A module call. One that stands for a torch.nn module (``fx_leaf``: SelfAttention for
    nn.MultiheadAttention) is one node at its path, as fx makes of a torch.nn module; others go through the
    tracer, which decides."""
    module = gm.get_submodule(target)
    if not getattr(module, "fx_leaf", False):
        return module(*args, **kwargs)
    with _scope(tracer, target):
        return tracer.create_proxy("call_module", target, args, kwargs)


def _attribute(tracer: Any, gm: fx.GraphModule, target: str) -> Any:
    """A parameter or buffer. torchvision's NodePathTracer gets it as ``PATH.tensor`` (the spec's node at
    PATH, which reads it, keeps the name PATH: its default ``encoder_pos_embedding`` is matched by the
    unescaped pattern it makes of ``encoder.pos_embedding`` and breaks its renumbering); other tracers get
    it from their own getattr."""
    owner, _, name = target.rpartition(".")
    holder = gm.get_submodule(owner)
    tensor = name in holder._parameters or name in holder._buffers
    if not hasattr(tracer, "current_module_qualname") or not tensor:  # the tracer's getattr: a proxy, or a value
        return functools.reduce(getattr, target.split("."), gm)
    with _scope(tracer, target):
        return tracer.create_proxy("get_attr", target, (), {}, name="tensor")


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
    try:
        with _scope(tracer, scope):
            return tracer.create_proxy("call_function", node.target, args, kwargs, name=name)
    except NotImplementedError:  # an argument fx cannot write (modules.TrainCalls): run it on the proxies,
        with _scope(tracer, ".".join(p for p in (scope, leaf) if p)):  # its nodes under the node's path
            return node.target(*args, **kwargs)  # type: ignore[operator]  # (aux_flat.flatten)


@contextmanager
def _scope(tracer: Any, qualname: str) -> Iterator[None]:
    """Run under ``qualname`` as torchvision's NodePathTracer's own call_module does (its
    ``current_module_qualname``, put back after); nothing for a tracer without one."""
    if not hasattr(tracer, "current_module_qualname"):
        yield
        return
    old = tracer.current_module_qualname
    tracer.current_module_qualname = qualname
    try:
        yield
    finally:
        tracer.current_module_qualname = old


