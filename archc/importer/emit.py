"""Build the tree of groups and nodes from a traced module (spec_text.py writes it as spec text).

Each module scope becomes a group whose children are its own attribute names, so every node path
is the module's attribute path and the source state_dict loads strict=True. Internally every node
keeps its ``in`` as a full list of names; ``spec_text.render`` writes only the ones that are not implicit.
"""

from __future__ import annotations

import operator
from typing import Any

import torch.fx as fx
from torch import nn

from archc.errors import UsageError
from archc.importer.function_ops import function_op, is_batch_size
from archc.importer.markers import SIZE_KEY, op_node, parameter_node
from archc.importer.module_ops import MODULE_TAILS, module_op
from archc.importer.rewrite import rewrite
from archc.importer.trace import eval_mode, trace

Node = dict[str, Any]
Scope = tuple[str, ...]
MULTI_OUTPUT = ("chunk", "split")  # ops read as NAME[K]
CONTAINERS = ("torch.nn.modules.container.Sequential", "torch.nn.modules.container.ModuleList")


class _Builder:
    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.mods = dict(module.named_modules())
        self.groups: dict[Scope, Node] = {(): self._group(module)}
        self.where: dict[fx.Node, tuple[Scope, str]] = {}
        self.ext: dict[Scope, fx.Node] = {}
        self.multi: set[fx.Node] = set()  # multi-output nodes (their getitems are NAME[K] refs)

    def _group(self, m: nn.Module) -> Node:
        cls = type(m)
        seq = isinstance(m, nn.Sequential)
        return {"_cls": f"{cls.__module__}.{cls.__qualname__}", "_seq": seq, "nodes": {}, "in": []}

    def scope(self, keys: list[str]) -> Scope:
        """The group for a module stack, created (in order of first use) with its parents."""
        for k in range(1, len(keys) + 1):
            s = tuple(keys[:k])
            if s not in self.groups:
                parent, name = self.groups[s[:-1]], self.local(s)
                if "@" in s[-1]:
                    raise UsageError(f"module '{s[-1].split('@')[0]}' is called more than once",
                                     hint="a module run twice shares its weights; archc nodes run once")
                self.groups[s] = self._group(self.mods[s[-1]])
                parent["nodes"][name] = self.groups[s]
        return tuple(keys)

    @staticmethod
    def local(s: Scope) -> str:
        name = s[-1][len(s[-2]) + 1:] if len(s) > 1 else s[-1]
        if "." in name.split("@")[0]:
            raise UsageError(f"module '{s[-1]}' is called from '{s[-2] if len(s) > 1 else '<top>'}', not its parent",
                             hint="archc groups follow the module tree: call a submodule from its own parent")
        return name

    def add(self, n: fx.Node) -> None:
        keys = self.stack(list(n.meta.get("nn_module_stack", {})))
        if n.op == "call_module":
            path, call = str(n.target), keys[-1]
            m = self.mods[path]
            s = self.scope(keys[:-1])
            local = path[len(s[-1]) + 1:] if s else path
            if (s and not path.startswith(s[-1] + ".")) or "." in local:
                raise UsageError(f"module '{path}' is called from '{s[-1] if s else '<top>'}', not its parent",
                                 hint="archc groups follow the module tree: call a submodule from its own parent")
            reuse = call.partition("@")[2]
            if reuse and any(True for _ in m.parameters()):
                raise UsageError(f"module '{path}' ({type(m).__name__}) is called more than once",
                                 hint="a module run twice shares its weights; archc nodes run once")
            name = f"{local}_{reuse}" if reuse else local
            if not _one_input(m, n):
                raise UsageError(f"module '{path}' ({type(m).__name__}) is called with more than one tensor",
                                 hint="archc's op for it takes one input")
            op, args = module_op(m, path)
            inputs = [n.args[0]]
        elif n.target is parameter_node:
            s = self.scope(keys)
            owner, _, name = str(n.kwargs["name"]).rpartition(".")
            if owner != (s[-1] if s else ""):
                raise UsageError(f"parameter '{n.kwargs['name']}' is used in '{s[-1] if s else '<top>'}', not in "
                                 f"its own module", hint="archc stores a parameter at the node that uses it")
            op, inputs, args = str(n.kwargs["op"]), [n.args[0]], dict(_mapping(n.kwargs["args"]))
        elif n.target is op_node:
            s = self.scope(keys)
            op, inputs, args = str(n.kwargs["op"]), list(n.args), dict(_mapping(n.kwargs["args"]))
            name = self.fresh(s, op)
        elif n.target is operator.getitem and n.args[0] in self.multi:
            s, base = self.where[_node(n.args[0])]
            self.where[n] = (s, f"{base}[{n.args[1]}]")
            return
        else:
            s = self.scope(keys)
            op, inputs, args = function_op(n, ".".join(s[-1:]))
            name = self.fresh(s, op)
        self.groups[s]["nodes"][name] = {"op": op, **args, "in": inputs}
        self.where[n] = (s, name)
        if n.op == "call_module" and type(self.mods[str(n.target)]) in MODULE_TAILS:
            self.tails(n, s, name)
        if op in MULTI_OUTPUT:
            self.multi.add(n)

    def stack(self, keys: list[str]) -> list[str]:
        """The module stack with the parents a forward skipped (poolformer's ``self.head.fc(x)`` from the top:
        ``head`` is still the group of ``head.fc``)."""
        out: list[str] = []
        for k in keys:
            parts = k.split(".")
            for i in range(1, len(parts)):
                pre = ".".join(parts[:i])
                if "@" not in k and pre in self.mods and pre not in out:
                    out.append(pre)
            out.append(k)
        return out

    def tails(self, n: fx.Node, s: Scope, name: str) -> None:
        """The parameter-free children a library module runs after its own op (see trace.MODULE_TAILS)."""
        path = str(n.target)
        for suffix, child in MODULE_TAILS[type(self.mods[path])](self.mods[path]):
            if isinstance(child, nn.Identity):
                continue
            if any(True for _ in child.parameters()):
                raise UsageError(f"module '{path}.{suffix}' ({type(child).__name__}) has weights inside "
                                 f"{type(self.mods[path]).__name__}", hint="only parameter-free ones can be imported")
            op, args = module_op(child, f"{path}.{suffix}")
            prev, name = name, self.fresh(s, f"{name}_{suffix}")
            self.groups[s]["nodes"][name] = {"op": op, **args, "in": [prev]}
        self.where[n] = (s, name)

    def fresh(self, s: Scope, base: str) -> str:
        taken = set(self.groups[s]["nodes"]) | {k for k, _ in self.mods[s[-1]].named_children()} if s else \
            set(self.groups[s]["nodes"]) | {k for k, _ in self.module.named_children()}
        name, k = base, 1
        while name in taken or name == "input":
            name, k = f"{base}_{k}", k + 1
        return name

    def ref(self, p: fx.Node, s: Scope) -> str:
        """The name a node in scope ``s`` reads ``p`` by."""
        if p.op != "placeholder" and p not in self.where:
            raise UsageError(f"'{p.name}' (a tensor's size) is used as a value",
                             hint="sizes read in the forward can only name the batch of a view/reshape")
        ps, pname = self.where.get(p, ((), "input"))
        if p.op == "placeholder" and not s:
            return "input"
        if ps == s:
            return pname
        if p.op != "placeholder" and ps[:len(s)] == s:
            child = ps[:len(s) + 1]
            out = self.groups[child].setdefault("_out", p)
            if out is not p:
                raise UsageError(f"module '{child[-1]}' has several outputs", hint="archc groups give one value")
            return self.local(child)
        if self.ext.setdefault(s, p) is not p:
            raise UsageError(f"module '{s[-1]}' reads several values from outside",
                             hint="archc groups take one input")
        return "input"

    def finish(self, out: Any) -> Node:
        for s, g in list(self.groups.items()):
            for node in g["nodes"].values():
                if "op" in node:
                    node["in"] = [p if isinstance(p, str) else self.ref(p, s) for p in node["in"]]  # str: a tail's
        top = self.groups[()]
        if isinstance(out, list):  # the first output, then the training-only ones
            top["_outputs"] = [self.ref(o, ()) for o in out]
            out = out[0]
        if not isinstance(out, fx.Node):
            raise UsageError("the module returns several values", hint="import a module that returns one tensor")
        top["_out"] = self.ref(out, ())
        for s in sorted((s for s in self.groups if s), key=len, reverse=True):
            if s not in self.ext:
                raise UsageError(f"module '{s[-1]}' reads no input")
            self.groups[s]["in"] = [self.ref(self.ext[s], s[:-1])]
        for s, g in self.groups.items():
            last = list(g["nodes"])[-1]
            out_node = g.pop("_out", None)
            if s and out_node is not None:
                ps = self.where[out_node][0]
                out_name = self.where[out_node][1] if ps == s else self.local(ps[:len(s) + 1])
            else:
                out_name = out_node
            if out_name is not None and out_name != last and not (not s and g.get("_outputs")):
                raise UsageError(f"module '{s[-1] if s else '<top>'}' returns '{out_name}', not its last step '{last}'",
                                 hint="archc groups give their last node")
        return top


def _mapping(v: Any) -> dict[str, Any]:
    """A rewrite marker's arguments (a dict fx stored as an argument)."""
    assert isinstance(v, dict)
    return v


def _node(v: Any) -> fx.Node:
    assert isinstance(v, fx.Node)
    return v


def _one_input(m: nn.Module, n: fx.Node) -> bool:
    """Called with one tensor (nn.MultiheadAttention: the same tensor three times, no weights or masks)."""
    if isinstance(m, nn.MultiheadAttention):
        extra = {k: v for k, v in n.kwargs.items() if v is not None}
        return len(n.args) == 3 and len(set(n.args)) == 1 and extra == {"need_weights": False}
    return len(n.args) == 1 and not n.kwargs and isinstance(n.args[0], fx.Node)


def is_shape(n: fx.Node) -> bool:
    """``x.shape`` read only for its batch size."""
    return (n.op == "call_function" and n.target is getattr and tuple(n.args[1:]) == ("shape",)
            and all(is_batch_size(u) for u in n.users))


def _outputs(graph: fx.Graph) -> list[Any]:
    """What the forward returns, a tuple or namedtuple (GoogLeNetOutputs) unpacked."""
    out = next(n for n in graph.nodes if n.op == "output").args[0]
    if isinstance(out, fx.Node) and out.op == "call_function" and isinstance(out.target, type) \
            and issubclass(out.target, tuple):
        return list(out.args)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _needed(graph: fx.Graph, roots: list[Any]) -> list[tuple[str, str]]:
    """(op, target) of every node the roots depend on, in graph order."""
    need: set[fx.Node] = set()
    stack = [r for r in roots if isinstance(r, fx.Node)]
    while stack:
        n = stack.pop()
        if n not in need:
            need.add(n)
            stack.extend(n.all_input_nodes)
    return [(n.op, str(n.target)) for n in graph.nodes if n in need]


def _unreached(module: nn.Module, graph: fx.Graph, scopes: set[str]) -> list[tuple[str, nn.Module]]:
    """Modules with weights that no node of ``graph`` runs (``scopes``: the module paths traced through)."""
    leaves = {str(n.target) for n in graph.nodes if n.op == "call_module"}
    out = []
    for path, m in module.named_modules():
        has_state = any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False))
        inside_leaf = any(path == leaf or path.startswith(leaf + ".") for leaf in leaves)
        if path and has_state and path not in scopes and not inside_leaf:
            out.append((path, m))
    return out


def _scopes(graph: fx.Graph) -> set[str]:
    return {k for n in graph.nodes for k in n.meta.get("nn_module_stack", {})}


def _traced(module: nn.Module, shape: tuple[int, ...]) -> tuple[fx.GraphModule, int]:
    """The graph to import and how many of its outputs run in training only. Modules with weights that the
    eval forward skips (GoogLeNet's and Inception-v3's auxiliary heads) come from a training-mode trace,
    used only when its first output needs exactly the eval graph's nodes."""
    with eval_mode(module):
        gm = trace(module)
    if _unreached(module, gm.graph, _scopes(gm.graph)):
        modes = {m: m.training for m in module.modules()}
        module.train()
        try:
            gt = trace(module)
        finally:
            for m, training in modes.items():
                m.train(training)
        outs = _outputs(gt.graph)
        if len(outs) > 1 and _needed(gt.graph, outs[:1]) == _needed(gm.graph, _outputs(gm.graph)) \
                and not _unreached(module, gt.graph, _scopes(gt.graph)):
            gm = gt
    with eval_mode(module):
        rewrite(gm, shape)
    return gm, len(_outputs(gm.graph)) - 1


def build_tree(module: nn.Module, shape: tuple[int, ...]) -> Node:
    """The tree of ``module`` (input ``shape`` without the batch): the top group, its children in the order
    they run."""
    gm, train_only = _traced(module, shape)
    graph = gm.graph
    b = _Builder(module)
    outs = _outputs(graph)
    for n in graph.nodes:
        if n.meta.get(SIZE_KEY) or is_batch_size(n) or is_shape(n):
            continue  # read by view/reshape as the batch; any other reader is refused in ``ref``
        if n.op == "call_function" and isinstance(n.target, type) and issubclass(n.target, tuple) and train_only:
            continue  # the namedtuple of outputs
        if n.op in ("call_module", "call_function", "call_method"):
            b.add(n)
        elif n.op == "get_attr":
            raise UsageError(f"'{n.target}' is a parameter or buffer used directly in a forward",
                             hint="only modules and functions with an archc op can be imported")
    reached = {p for s in b.groups for p in ([s[-1]] if s else [])}
    for path, m in _unreached(module, graph, reached):
        raise UsageError(f"module '{path}' ({type(m).__name__}) has weights but its forward never runs it",
                         hint="its state_dict keys would have no node")
    return b.finish(outs if train_only else outs[0])
