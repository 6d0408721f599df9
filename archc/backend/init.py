"""Apply a spec's `init:` rules (archc.resolve.init_rules) to a built module, like torchvision's
constructors do: nodes in execution order, each parameter set by the first rule that names it.

Draws come from torch's global generator, so `torch.manual_seed` makes them repeatable. Tensors on
the meta device are skipped (there is nothing to fill). The methods by name are the blocks' (archc/blocks/nn/init.py).
"""

from __future__ import annotations

import torch
from torch import nn

from archc import blocks as library
from archc.blocks.nn.init import METHODS, NEEDS_2D
from archc.errors import ResolveError
from archc.ir import Graph
from archc.resolve.init_rules import InitRule, InitSetting

__all__ = ["apply_init"]


def _parameter(owner: nn.Module, name: str, setting: InitSetting, path: str) -> torch.Tensor | None:
    """The module's parameter NAME (dotted for a submodule's), None where it is switched off (bias=False)."""
    *sub, leaf = name.split(".")
    try:
        mod = owner.get_submodule(".".join(sub)) if sub else owner
    except AttributeError:
        mod = None
    if mod is None or not (leaf in mod._parameters or leaf in mod._buffers):  # bias=False registers None
        have = ", ".join(n for n, _ in owner.named_parameters()) or "none"
        raise ResolveError(f"init: node '{path}' has no parameter '{name}'", setting.loc,
                           hint=f"its parameters: {have}")
    value = getattr(mod, leaf)
    return value if isinstance(value, torch.Tensor) else None


def _fill(tensor: torch.Tensor, setting: InitSetting, path: str, name: str) -> None:
    if setting.method in NEEDS_2D and tensor.dim() < 2:
        raise ResolveError(f"init: {setting.method} needs a weight of 2 or more dimensions; "
                           f"'{path}.{name}' has shape {tuple(tensor.shape)}", setting.loc,
                           hint="use normal, uniform, trunc_normal, zeros, ones or constant for biases and norms")
    args = {("val" if k == "value" else k): v for k, v in setting.args.items()}  # constant_(tensor, val)
    METHODS[setting.method](tensor, **args)


def _targets(module: nn.Module, graph: Graph) -> list[tuple[str, str, nn.Module, str | None]]:
    """(path, op, owner, tensor) of every node with weights, in execution order: a module node owns its
    parameters (tensor None: the rule names them); a parameter node (parameter, class_token, layer_scale)
    is the tensor of its parent module named as the node. A node that shares another's weights (`share:`)
    is filled through that node."""
    out: list[tuple[str, str, nn.Module, str | None]] = []
    for node in graph.nodes:
        kind = library.get(node.op).kind
        if node.shares is not None:
            continue
        if kind == "module":
            out.append((node.path, node.op, module.get_submodule(node.path), None))
        elif kind == "parameter":
            parent, _, leaf = node.path.rpartition(".")
            out.append((node.path, node.op, module.get_submodule(parent) if parent else module, leaf))
    return out


def _own_name(name: str, tensor: str, setting: InitSetting, path: str) -> None:
    """A rule that matches a parameter node names its tensor as the node (it has no weight or bias)."""
    if name != tensor:
        raise ResolveError(f"init: node '{path}' is a parameter node: it has no '{name}'", setting.loc,
                           hint=f"its tensor is named after the node: write `{tensor}: ...` in this rule "
                                "(or give the node its own `init:` argument)")


def apply_init(module: nn.Module, graph: Graph) -> None:
    """Initialise the module's parameters by the graph's `init:` rules (no rules: PyTorch's defaults)."""
    rules: tuple[InitRule, ...] = tuple(graph.meta.get("init", ()))
    if not rules:
        return
    for path, op, owner, own in _targets(module, graph):
        done: set[str] = set()
        for rule in rules:
            if not rule.matches(op, path):
                continue
            for name, setting in rule.params:
                if name in done:
                    continue
                done.add(name)
                if own is not None:
                    _own_name(name, own, setting, path)
                tensor = _parameter(owner, name, setting, path)
                if tensor is not None and not tensor.is_meta:
                    _fill(tensor, setting, path, name)
