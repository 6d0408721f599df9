"""Rewrites of the traced fx graph before the tree is built (stage 1b, between trace and emit).

- ``sizes``: the graph runs once on a batch of 1 (and once on 2 when it reads sizes); sizes that do not
  depend on the batch become constants (ViT's ``h // p``, ShuffleNet's ``x.size()``), sizes equal to the
  batch are marked (view/reshape/expand may name them first), and what only fed ``torch._assert`` goes.
- ``aliases``: ``x.contiguous()``, an ``nn.Identity`` and a concat of one tensor are their input; a module returning
  ``(out, None)`` (nn.MultiheadAttention with need_weights=False) is read through ``[0]``.
- ``parameters``: a parameter read in the forward (``get_attr``) and combined with one tensor becomes one
  node named after its attribute: ``layer_scale`` (x * p, p (C, 1, 1) or (C,)), ``pos_embedding``
  (x + p, p (1, *x)), ``class_token`` (cat([p.expand(B, -1, -1), x], 1)) or ``parameter``.
- ``einsums`` and ``batchless`` (batchless.py, after ``aliases``): einsum as matmul; values with no batch built
  from a parameter or a relative_position_index buffer (MaxViT's bias) as parameter/buffer nodes.
- ``dense_chains``: DenseNet's growing lists, ``cat([f0..fk])`` after ``cat([f0..fk-1])``, become
  ``cat(previous, fk)`` run at the end of the module that made ``fk``, so every module reads one value.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from archc.errors import UsageError
from archc.importer.batchless import batchless, einsums
from archc.importer.markers import BATCH_KEY, FULL_SHAPE_KEY, SHAPE_KEY, SIZE_KEY, Args, op_node, parameter_node


def _static(v: Any) -> bool:
    if isinstance(v, (bool, int, float, str, torch.Size)) or v is None:
        return True
    return isinstance(v, (tuple, list)) and all(_static(x) for x in v)


class _Record(fx.Interpreter):
    """Runs the graph, keeping the value of every node that is not a tensor, and every tensor's shape."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.values: dict[fx.Node, Any] = {}
        self.shapes: dict[fx.Node, tuple[int, ...]] = {}

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        if isinstance(out, torch.Tensor):
            self.shapes[n] = tuple(out.shape)
        elif _static(out):
            self.values[n] = tuple(out) if isinstance(out, torch.Size) else out
        return out


def _run(gm: fx.GraphModule, shape: tuple[int, ...], batch: int) -> _Record:
    rec = _Record(gm)
    try:
        with torch.no_grad():
            rec.run(torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0)))
    except Exception as e:  # the model's own code on this input size: report it, never a traceback
        raise UsageError(f"running the module on a {(batch, *shape)} input failed: {type(e).__name__}: {e}",
                         hint="give the input size the model expects (--input CxHxW)") from None
    return rec


def _replace_in_users(n: fx.Node, value: Any) -> None:
    for user in list(n.users):
        user.args = fx.node.map_arg(user.args, lambda a: value if a is n else a)  # type: ignore[arg-type]
        user.kwargs = fx.node.map_arg(user.kwargs, lambda a: value if a is n else a)  # type: ignore[arg-type]


def sizes(gm: fx.GraphModule, shape: tuple[int, ...]) -> None:
    """Fold the sizes the forward reads (see the module docstring); records each tensor's shape in meta."""
    one = _run(gm, shape, 1)
    for n, s in one.shapes.items():
        n.meta[SHAPE_KEY], n.meta[FULL_SHAPE_KEY] = s[1:], s
    calls = [n for n in gm.graph.nodes if n.op in ("call_function", "call_method") and n in one.values]
    if not calls:
        return
    two = _run(gm, shape, 2)
    for n in calls:
        a, b = one.values[n], two.values.get(n)
        if a is None and b is None:
            continue
        if a == b and type(a) is type(b):
            _replace_in_users(n, a)
        elif a == 1 and b == 2:
            n.meta[BATCH_KEY] = True
        n.meta[SIZE_KEY] = True  # read only as a size; emit refuses it anywhere else
    for n in reversed(list(gm.graph.nodes)):
        if n in one.values and not n.users and n.op in ("call_function", "call_method"):
            gm.graph.erase_node(n)


def _alias(n: fx.Node, to: fx.Node, graph: fx.Graph) -> None:
    n.replace_all_uses_with(to)
    graph.erase_node(n)


def _is_cat(n: fx.Node) -> bool:
    return n.op == "call_function" and n.target in (torch.cat, torch.concat)


def _cat_parts(n: fx.Node) -> tuple[list[Any], Any]:
    parts: Any = n.args[0]
    return list(parts), n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else 0)


def aliases(gm: fx.GraphModule) -> None:
    """See the module docstring."""
    mods = dict(gm.named_modules())
    for n in list(gm.graph.nodes):
        if n.op == "call_method" and n.target == "contiguous" and len(n.args) == 1:
            _alias(n, n.args[0], gm.graph)
        elif _is_cat(n) and len(_cat_parts(n)[0]) == 1 and isinstance(_cat_parts(n)[0][0], fx.Node):
            _alias(n, _cat_parts(n)[0][0], gm.graph)
        elif n.op == "call_module" and type(mods.get(str(n.target))) is nn.Identity and len(n.args) == 1 \
                and isinstance(n.args[0], fx.Node) and not n.kwargs:
            _alias(n, n.args[0], gm.graph)  # nothing to keep: no state, no op (timm's empty norm and layer scale)
        elif n.op == "call_module" and isinstance(mods.get(str(n.target)), nn.MultiheadAttention):
            for user in list(n.users):
                if user.op == "call_function" and user.target is operator.getitem and user.args[1] == 0:
                    _alias(user, n, gm.graph)


def dense_chains(graph: fx.Graph) -> None:
    """See the module docstring."""
    cats = [n for n in graph.nodes if _is_cat(n) and all(isinstance(a, fx.Node) for a in _cat_parts(n)[0])]
    keys = {(tuple(_cat_parts(n)[0]), _cat_parts(n)[1]): n for n in cats}
    starts = {(k[0][:2], k[1]) for k in keys if len(k[0]) > 2}
    for n in cats:
        parts, dim = _cat_parts(n)
        prev = keys.get((tuple(parts[:-1]), dim)) if len(parts) > 2 else parts[0]
        if prev is None or (len(parts) == 2 and (tuple(parts), dim) not in starts):
            continue
        last = parts[-1]
        stack = dict(last.meta.get("nn_module_stack", {}))
        if last.op == "call_module" and stack:
            stack.popitem()  # the leaf module itself: its parent's scope
        n.args, n.kwargs = ([prev, last],), {"dim": dim}
        n.meta["nn_module_stack"] = stack


def _other(user: fx.Node, p: fx.Node) -> fx.Node | None:
    ops = [a for a in user.args if isinstance(a, fx.Node)]
    return next((a for a in ops if a is not p), None) if len(user.args) == 2 and len(ops) == 2 else None


def _param_kind(user: fx.Node, p: fx.Node, value: torch.Tensor) -> tuple[str, fx.Node, Args] | None:
    """(archc op, the tensor it reads, its arguments) for one use of parameter ``p``, or None."""
    add = {operator.add, torch.add, operator.iadd, "add"}
    mul = {operator.mul, torch.mul, operator.imul, "mul"}
    target = user.target if user.op == "call_function" else str(user.target)
    x = _other(user, p)
    if x is None or SHAPE_KEY not in x.meta:
        return None
    xs, ps = tuple(x.meta[SHAPE_KEY]), tuple(value.shape)
    if target in mul:
        if ps == (xs[0], *[1] * (len(xs) - 1)) and len(xs) > 1:
            return "layer_scale", x, {"channels": "first"}
        if ps == (xs[-1],):
            return "layer_scale", x, {"channels": "last"}
        return "parameter", x, _shape_args(ps, xs) | {"combine": "mul"}
    if target in add:
        if ps == (1, *xs):
            return "pos_embedding", x, {}
        return "parameter", x, _shape_args(ps, xs) | {"combine": "add"}
    return None


def _shape_args(ps: tuple[int, ...], xs: tuple[int, ...]) -> Args:
    if len(ps) == len(xs) + 1 and ps[0] == 1:
        return {"shape": list(ps[1:])}
    return {"shape": list(ps), "batch_dim": False}


def _prepend(p: fx.Node, value: torch.Tensor) -> tuple[fx.Node, str, fx.Node, Args] | None:
    """``cat([p.expand(B, -1, ...), x], dim)``: (the cat, op, x, arguments), or None."""
    users = list(p.users)
    if len(users) != 1 or users[0].op != "call_method" or users[0].target != "expand":
        return None
    ex = users[0]
    sizes = list(ex.args[1:])
    if not sizes or not ex.args[1:] or not isinstance(sizes[0], fx.Node) or not sizes[0].meta.get(BATCH_KEY) \
            or any(s != -1 for s in sizes[1:]) or value.shape[0] != 1 or len(ex.users) != 1:
        return None
    cat = next(iter(ex.users))
    if not _is_cat(cat):
        return None
    parts, dim = _cat_parts(cat)
    if len(parts) != 2 or ex not in parts or dim < 1:
        return None
    x = parts[1] if parts[0] is ex else parts[0]
    mode = "prepend" if parts[0] is ex else "append"
    if mode == "prepend" and dim == 1 and value.dim() == 3 and value.shape[1] == 1:
        return cat, "class_token", x, {}
    return cat, "parameter", x, {"shape": list(value.shape[1:]), "combine": mode, "dim": dim}


def _viewed_parameter(gm: fx.GraphModule, p: fx.Node, value: torch.Tensor) -> None:
    """``x * p.view(C, 1, 1)`` (timm's Scale): a ``parameter`` node per sample, reshaped, then the op."""
    chain = [p]
    while len(chain[-1].users) == 1:
        user = next(iter(chain[-1].users))
        if user.op != "call_method" or user.target not in ("view", "reshape") or \
                not all(isinstance(a, int) for a in _sizes(user)):
            break
        chain.append(user)
    if len(chain[-1].users) != 1:
        return
    end = next(iter(chain[-1].users))
    x = next((a for a in end.all_input_nodes if a is not chain[-1] and SHAPE_KEY in a.meta), None)
    if x is None:
        return
    shape = tuple(value.shape)
    with gm.graph.inserting_before(end):
        new = gm.graph.call_function(parameter_node, (x,), {"name": str(p.target), "op": "parameter", "args": {
            "shape": list(shape), "batch_dim": False}})
        new.meta = dict(end.meta)
        for view in chain[1:]:
            shape = tuple(torch.empty(shape, device="meta").reshape(_sizes(view)).shape)
            new = gm.graph.call_function(op_node, (new,), {"op": "reshape", "args": {"shape": list(shape)}})
            new.meta = dict(end.meta)
    chain[-1].replace_all_uses_with(new)
    for n in reversed(chain):
        gm.graph.erase_node(n)


def _sizes(view: fx.Node) -> list[Any]:
    rest = list(view.args[1:])
    return list(rest[0]) if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else rest


def splits(gm: fx.GraphModule) -> None:
    """``x.split(size, dim)`` by one size: the sizes as a list, read from x's shape."""
    for n in gm.graph.nodes:
        if not ((n.op == "call_method" and n.target == "split") or n.target is torch.split):
            continue
        x, size = n.args[0], n.kwargs.get("split_size", n.kwargs.get("split_size_or_sections",
                                                                      n.args[1] if len(n.args) > 1 else None))
        dim = n.kwargs.get("dim", n.args[2] if len(n.args) > 2 else 0)
        if not isinstance(size, int) or not isinstance(x, fx.Node) or SHAPE_KEY not in x.meta or dim == 0:
            continue
        total = x.meta[SHAPE_KEY][dim - 1 if dim > 0 else dim]
        n.args, n.kwargs = (x, [size] * (total // size) + ([total % size] if total % size else []), dim), {}


def unbinds(gm: fx.GraphModule) -> None:
    """``x.unbind(d)`` read by index: one ``select`` per item. timm's attention unbinds the dim its permute
    moved in front of the batch (``permute(2, 0, 3, 1, 4).unbind(0)``): the permute keeps the batch first
    instead, and the items are selected along dim 1."""
    for u in list(gm.graph.nodes):
        if not (u.op == "call_method" and u.target == "unbind") and u.target is not torch.unbind:
            continue
        src, dim = u.args[0], u.kwargs.get("dim", u.args[1] if len(u.args) > 1 else 0)
        if not all(us.op == "call_function" and us.target is operator.getitem for us in u.users):
            continue
        if dim == 0:
            if not (isinstance(src, fx.Node) and src.op == "call_method" and src.target == "permute"
                    and len(src.users) == 1):
                continue
            dims = _sizes(src)
            rest = [d for d in dims if d != dims[0]]
            if not rest or rest[0] != 0:
                continue
            src.args = (src.args[0], 0, dims[0], *rest[1:])
            dim = 1
        for g in list(u.users):
            with gm.graph.inserting_before(g):
                sel = gm.graph.call_function(op_node, (src,), {"op": "select",
                                                                "args": {"dim": dim, "index": g.args[1]}})
            sel.meta = dict(g.meta)
            _alias(g, sel, gm.graph)
        gm.graph.erase_node(u)


def parameters(gm: fx.GraphModule) -> None:
    """See the module docstring; a parameter read any other way is left for emit to refuse, by name."""
    for p in list(gm.graph.nodes):
        if p.op != "get_attr":
            continue
        try:
            value = gm.get_parameter(str(p.target))
        except AttributeError:
            continue
        users = list(p.users)
        found: tuple[fx.Node, str, fx.Node, Args] | None = None
        if len(users) == 1:
            kind = _param_kind(users[0], p, value)
            found = (users[0], *kind) if kind else _prepend(p, value)
        if found is None:
            _viewed_parameter(gm, p, value)
            continue
        user, op, x, args = found
        with gm.graph.inserting_before(user):
            new = gm.graph.call_function(parameter_node, (x,), {"name": str(p.target), "op": op, "args": args})
        new.meta = dict(user.meta)
        user.replace_all_uses_with(new)
        dead = [user, *[a for a in user.all_input_nodes if a is not x and a is not p]]
        for d in dead:
            if not d.users:
                gm.graph.erase_node(d)
        if not p.users:
            gm.graph.erase_node(p)


def rewrite(gm: fx.GraphModule, shape: tuple[int, ...]) -> None:
    """Every rewrite, in order."""

    sizes(gm, shape)
    aliases(gm)
    einsums(gm)
    batchless(gm)
    splits(gm)
    unbinds(gm)
    parameters(gm)
    dense_chains(gm.graph)
    gm.graph.lint()
