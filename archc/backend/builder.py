"""Generate the model as one torch.fx graph: leaf modules called by path, functions inline.

The forward is fx-generated straight-line code (no graph walking or dict lookups per call), so
it costs what a hand-written module costs, and works with torch.compile and torch.export.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from torch import fx, nn

from archc import blocks as library
from archc.analyze import Analysis
from archc.analyze.inplace import adds_in_place
from archc.backend import modules as helpers
from archc.backend.graph_module import ArchcModule, copy_attributes
from archc.backend.init import apply_init
from archc.backend.modules import Group
from archc.ir import Graph

__all__ = ["build_module"]


def _class_name(name: str) -> str:
    parts = re.split(r"[^A-Za-z0-9]+", name)
    cls = "".join(p[:1].upper() + p[1:] for p in parts if p)
    return cls if cls[:1].isalpha() else f"Model{cls}"


def _attach(root: nn.Module, path: str, value: Any) -> None:
    """Place a module, parameter or buffer (a plain tensor: persistent) at a dotted path, creating plain
    container modules on the way."""
    *parents, leaf = path.split(".")
    mod = root
    for name in parents:
        child = mod._modules.get(name)
        if child is None:
            child = nn.Module()
            mod.add_module(name, child)
        mod = child
    if isinstance(value, nn.Parameter):
        mod.register_parameter(leaf, value)
    elif isinstance(value, torch.Tensor):
        mod.register_buffer(leaf, value)
    else:
        mod.add_module(leaf, value)


def _fold(g: fx.Graph, fn: Any, args: list[fx.Node], kwargs: dict[str, Any]) -> fx.Node:
    """Call fn on the inputs; binary functions (add, mul) over three or more fold left: (a + b) + c."""
    if len(args) <= 2:
        return g.call_function(fn, tuple(args), kwargs)
    out = g.call_function(fn, (args[0], args[1]), kwargs)
    for extra in args[2:]:
        out = g.call_function(fn, (out, extra), kwargs)
    return out


TRAIN_CALLS = "_archc_train_calls"  # the model attribute holding train-only functions (modules.TrainCalls)


def _train_only_node(g: fx.Graph, root: nn.Module, node: Any, block: Any, args: list[fx.Node], info: Any,
                     training: fx.Node) -> fx.Node:
    """A node that runs in training mode only (``modules.train_only``): its module or parameter is
    attached at its path as usual, so state_dict keys do not depend on the mode."""
    if node.op == "identity":
        return args[0]
    if block.kind in ("module", "parameter") and node.shares is None:  # `share:`: the other node's
        _attach(root, node.path, block.build(node.args, info.in_shapes))
    if block.kind == "module":
        return _call(g, helpers.train_only, (training, g.get_attr(node.shares or node.path), *args), node.path)
    fn, kwargs = block.function(node.args)
    if block.kind in ("parameter", "buffer"):
        args = [args[0], g.get_attr(node.shares or node.path)]
    table = root.__dict__.setdefault(TRAIN_CALLS, helpers.TrainCalls())
    index = table.add(fn, kwargs, "list_input" in block.tags)
    return _call(g, helpers.train_only_call, (training, g.get_attr(TRAIN_CALLS), index, *args), node.path)


def _call(g: fx.Graph, fn: Any, args: tuple[Any, ...], path: str) -> fx.Node:
    """A call_function node named after the spec node (readable generated code)."""
    return g.create_node("call_function", fn, args, name=re.sub(r"\W", "_", path))


def _result(g: fx.Graph, graph: Graph, env: dict[str, fx.Node], training: fx.Node | None) -> None:
    """The graph's output: the outputs (one: the tensor itself); with train-only outputs,
    ``modules.mode_outputs`` adds them after the others in training mode."""
    outs = tuple(env[o] for o in graph.outputs)
    if training is None:
        g.output(outs[0] if len(outs) == 1 else outs)
        return
    trains = tuple(env[o] for o in graph.train_outputs)
    g.output(g.call_function(helpers.mode_outputs, (training, outs, trains)))


def build_module(graph: Graph, analysis: Analysis, device: str | torch.device | None = None) -> fx.GraphModule:
    """Build the torch module for an analysed, error-free graph."""
    root = nn.Module()
    g = fx.Graph()
    env: dict[str, fx.Node] = {name: g.placeholder(name) for name, _ in graph.inputs}
    inplace_adds = adds_in_place(graph, analysis.shapes)
    train_only = graph.train_only()
    training = g.get_attr("training") if graph.train_outputs else None  # the generated forward reads self.training
    with torch.device(device) if device is not None else nullcontext():
        for node in graph.nodes:
            block = library.get(node.op)
            info = analysis.info[node.path]
            args = [env[s] for s in node.inputs]
            if node.path in train_only:
                assert training is not None
                env[node.path] = _train_only_node(g, root, node, block, args, info, training)
                for k in range(len(info.outputs)):
                    env[f"{node.path}[{k}]"] = g.call_function(helpers.pick, (env[node.path], k))
                continue
            if node.op == "identity":
                env[node.path] = args[0]
            elif block.kind == "module":
                assert block.build is not None
                if node.shares is None:  # `share:` calls the module built at the other node's path
                    _attach(root, node.path, block.build(node.args, info.in_shapes))
                    env[node.path] = g.call_module(node.path, tuple(args))
                else:
                    env[node.path] = g.create_node("call_module", node.shares, tuple(args),
                                                   name=re.sub(r"\W", "_", node.path))
            elif block.kind in ("parameter", "buffer"):
                assert block.build is not None and block.function is not None
                if node.shares is None:
                    _attach(root, node.path, block.build(node.args, info.in_shapes))
                fn, kwargs = block.function(node.args)
                env[node.path] = g.call_function(fn, (args[0], g.get_attr(node.shares or node.path)), kwargs)
            else:
                assert block.function is not None
                fn, kwargs = block.function(node.args)
                if node.path in inplace_adds:  # `a += b`, as torchvision's residual adds (analyze/inplace.py)
                    fn = operator.iadd
                if "list_input" in block.tags:
                    env[node.path] = g.call_function(fn, (args,), kwargs)
                else:
                    env[node.path] = _fold(g, fn, args, kwargs)
            for k in range(len(info.outputs)):  # a multi-output node's outputs, read as NAME[K]
                env[f"{node.path}[{k}]"] = g.call_function(operator.getitem, (env[node.path], k))
        for name, value in env.items():
            value.meta.setdefault("archc_path", name)
    _result(g, graph, env, training)
    module = ArchcModule(root, g, class_name=_class_name(graph.name))  # graph_module.py: spec paths, input errors
    _groups_indexable(module)
    for path in graph.meta.get("frozen", ()):
        target = module.get_submodule(path) if path in dict(module.named_modules()) else None
        params = target.parameters() if target is not None else [module.get_parameter(path)]
        for p in params:
            p.requires_grad_(False)
    apply_init(module, graph)  # the spec's `init:` rules (none: PyTorch's per-layer defaults)
    module.archc_graph = graph  # type: ignore[assignment]  # the input errors read it; pickling rebuilds from it
    return module


def unpickle(plain: Callable[..., fx.GraphModule], args: tuple[Any, ...], graph: Graph) -> nn.Module:
    """A pickled ArchcModule: built again from its spec graph, holding the pickled tensors (devices and
    requires_grad kept) and public attributes. fx's own rebuild (``plain``, which re-traces the generated code
    and so cannot rebuild every model) only for a module whose weights no longer fit the graph (a layer
    replaced after compiling): it comes back as a plain GraphModule, as any pickled GraphModule does."""
    from archc.analyze import analyze

    old = nn.Module()
    old.__dict__ = dict(args[0])  # the pickled module's attributes: its submodules, tensors, hooks, flags
    state = old.state_dict(keep_vars=True)
    flags = {name: p.requires_grad for name, p in old.named_parameters()}  # before load_state_dict resets them
    device = next((t.device for t in state.values()), None)
    try:
        module = build_module(graph, analyze(graph), device)
        module.load_state_dict(state, strict=True, assign=True)
    except (RuntimeError, ValueError, KeyError):
        return plain(*args)
    for name, p in module.named_parameters():
        p.requires_grad_(flags[name])
    copy_attributes(old, module, lambda v: v)
    return module.train(old.training)


ArchcModule.rebuild = unpickle


def _groups_indexable(module: nn.Module) -> None:
    """fx fills the hierarchy with plain nn.Module containers; make them indexable Groups."""
    for name, child in list(module.named_children()):
        if type(child) is nn.Module:
            group = Group()
            group._modules, group._parameters, group._buffers = child._modules, child._parameters, child._buffers
            setattr(module, name, group)
        _groups_indexable(child)
