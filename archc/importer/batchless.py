"""Rewrites for values with no batch dimension (MaxViT's attention), run between ``sizes``/``aliases`` and
``parameters`` (see rewrite.py).

- ``einsums``: ``torch.einsum`` of the two batched-matmul patterns (``...ID,...JD->...IJ`` and
  ``...IJ,...JD->...ID``, any letters, spaces allowed) becomes ``matmul`` (after a ``transpose`` of the second
  operand for the first); any other equation is left for emit to refuse by name.
- ``batchless``: a parameter or a ``relative_position_index`` buffer read in the forward and shaped by
  view/reshape, an index by another such value, permute and unsqueeze before it meets a batched value in
  add/mul/sub/div. In archc the parameter is a ``parameter`` node (``batch_dim: false``) and the buffer a
  ``buffer`` node, both returned per sample, so every torch dim on the way shifts by one: ``t[idx]`` is
  ``index_select`` along dim 1, ``permute(2, 0, 1)`` is ``permute: [0, 3, 1, 2]``, view and unsqueeze are
  ``reshape`` to the per-sample shape. torch broadcasts the batch-less value from the right, archc the per-sample
  ones after the batch: the same when they have one rank (a leading 1 of one rank more is dropped, a smaller
  rank gets leading 1s). A chain with anything else is left whole for emit to refuse.
"""

from __future__ import annotations

import operator
import re
from typing import Any

import torch
import torch.fx as fx

from archc.blocks.buffer import _position_index
from archc.importer.markers import FULL_SHAPE_KEY, ROOT_KEY, SHAPE_KEY, op_node, parameter_node

Args = dict[str, Any]
_BINARY = {operator.add, operator.mul, operator.sub, operator.truediv, torch.add, torch.mul, torch.sub,
           "add", "mul", "sub", "div"}


def _matmul_form(eq: str) -> str | None:
    """'t' (a @ b^T), 'n' (a @ b) or None for an einsum equation."""
    m = re.fullmatch(r"(\w*),(\w*)->(\w*)", eq.replace(" ", ""))
    if m is None:
        return None
    a, b, out = str(m[1]), str(m[2]), str(m[3])
    if len(a) < 2 or len(a) != len(b) or len(a) != len(out) or a[:-2] != b[:-2] or a[:-2] != out[:-2] \
            or len(set(a[-2:] + b[-2:])) != 3:
        return None
    i, d, j, e, oi, oj = a[-2], a[-1], b[-2], b[-1], out[-2], out[-1]
    if d == e and (oi, oj) == (i, j) and len({i, j, d}) == 3:
        return "t"
    if d == j and (oi, oj) == (i, e) and len({i, d, e}) == 3:
        return "n"
    return None


def einsums(gm: fx.GraphModule) -> None:
    """See the module docstring."""
    for n in list(gm.graph.nodes):
        if n.op != "call_function" or n.target is not torch.einsum or len(n.args) != 3 or n.kwargs:
            continue
        eq, a, b = n.args
        form = _matmul_form(eq) if isinstance(eq, str) else None
        if form is None:
            continue
        with gm.graph.inserting_before(n):
            if form == "t":
                b = gm.graph.call_function(torch.transpose, (b, -2, -1))
                b.meta = dict(n.meta)
            mm = gm.graph.call_function(torch.matmul, (a, b))
        mm.meta = dict(n.meta)
        n.replace_all_uses_with(mm)
        gm.graph.erase_node(n)


def _root(gm: fx.GraphModule, n: fx.Node) -> tuple[str, str, Args] | None:
    """(state_dict name, op, arguments) of a get_attr read as a batch-less value, or None. fx reads a buffer as
    a constant (``_tensor_constantK``, already viewed): it is the buffer of the module that uses it with the same
    values."""
    name = str(n.target)
    try:
        value = gm.get_parameter(name)
        return name, "parameter", {"shape": list(value.shape), "batch_dim": False}
    except AttributeError:
        pass
    const = getattr(gm, name, None)
    if not isinstance(const, torch.Tensor) or not n.users:
        return None
    scope = list(next(iter(n.users)).meta.get("nn_module_stack", {}))
    owner = scope[-1] if scope else ""
    root = gm.meta.get(ROOT_KEY, gm)
    mods = dict(root.named_modules())
    for key, buf in mods[owner].named_buffers(recurse=False) if owner in mods else []:
        same = buf.shape == const.shape or buf.dim() == 2 and const.dim() == 1 and buf.numel() == const.numel()
        if same and torch.equal(buf.reshape(const.shape), const) and (window := _window(buf)) is not None:
            return f"{owner}.{key}" if owner else key, "buffer", {"table": "relative_position_index", "window": window,
                                                   "flatten": False}  # stored (N, N), as the buffer
    return None


def _window(buf: torch.Tensor) -> list[int] | None:
    """The window (wh, ww) whose relative_position_index ``buf`` (N, N) is, or None."""
    side = buf.shape[0] if buf.dim() == 2 and buf.shape[0] == buf.shape[1] else 0
    for wh in range(1, side + 1):
        if side % wh == 0 and torch.equal(_position_index(wh, side // wh).to(buf.dtype), buf):
            return [wh, side // wh]
    return None


def _dims(n: fx.Node) -> list[int]:
    rest = list(n.args[1:])
    dims = list(rest[0]) if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else rest
    return [int(d) for d in dims if isinstance(d, int)]


def _step(n: fx.Node, known: dict[fx.Node, Any]) -> tuple[str, list[Any], Args] | None:
    """The archc op for ``n``, every tensor input batch-less (``known``), or None."""
    shape = n.meta.get(FULL_SHAPE_KEY)
    if shape is None:
        return None
    target = n.target if n.op == "call_function" else str(n.target)
    x, idx = n.args[0], n.args[1] if len(n.args) > 1 else None
    if not isinstance(x, fx.Node) or x not in known:
        return None
    if target in ("view", "reshape", "unsqueeze") or target is torch.unsqueeze:
        return "reshape", [known[x]], {"shape": list(shape)}
    if target == "permute" or target is torch.permute:
        rank = len(shape)
        return "permute", [known[x]], {"dims": [0, *[d % rank + 1 for d in _dims(n)]]}
    if target is operator.getitem and isinstance(idx, fx.Node) and idx in known \
            and len(idx.meta.get(FULL_SHAPE_KEY, ())) == 1:
        return "index_select", [known[x], known[idx]], {"dim": 1}
    return None


def _rank_fits(mine: tuple[int, ...], rank: int) -> list[int] | None:
    """The per-sample shape a batch-less ``mine`` needs to broadcast with a batched value of per-sample rank
    ``rank`` in archc as torch broadcast them (``mine`` itself when unchanged), or None."""
    if len(mine) == rank:
        return list(mine)
    if len(mine) == rank + 1 and mine[0] == 1:
        return list(mine[1:])
    if len(mine) < rank:
        return [1] * (rank - len(mine)) + list(mine)
    return None


def _align(value: Any, mine: tuple[int, ...], rank: int, n: fx.Node, gm: fx.GraphModule) -> Any:
    """``value`` (per sample ``mine``) reshaped so archc broadcasts it with a batched value as torch did."""
    shape = _rank_fits(mine, rank)
    if shape is None or shape == list(mine):
        return value
    with gm.graph.inserting_before(n):
        new = gm.graph.call_function(op_node, (value,), {"op": "reshape", "args": {"shape": shape}})
    new.meta = dict(n.meta)
    return new


def batchless(gm: fx.GraphModule) -> None:
    """See the module docstring."""
    for root in [n for n in gm.graph.nodes if n.op == "get_attr"]:
        if root not in set(gm.graph.nodes):  # erased with an earlier root's chain
            continue
        _chain(gm, root)


def _chain(gm: fx.GraphModule, root: fx.Node) -> None:
    """Rewrite the batch-less values that ``root`` starts (with the other roots they meet) if all is known."""
    roots, steps, ends = {root}, [], []
    nodes = list(gm.graph.nodes)
    inside = {root}
    for n in nodes[nodes.index(root) + 1:]:
        srcs = n.all_input_nodes
        if not any(s in inside for s in srcs):
            continue
        if n.target in _BINARY or str(n.target) in _BINARY and n.op == "call_method":
            others = [s for s in srcs if s not in inside]
            if len(others) != 1 or len(srcs) != 2:
                return
            ends.append(n)
            continue
        for s in srcs:
            if s not in inside:
                if s.op != "get_attr" or _root(gm, s) is None:
                    return
                roots.add(s)
                inside.add(s)
        inside.add(n)
        steps.append(n)
    found = [_root(gm, r) if r.op == "get_attr" else None for r in roots]
    if not ends or any(f is None for f in found):
        return
    if all(f is not None and f[1] == "parameter" for f in found) and \
            all(str(n.target) in ("view", "reshape") for n in steps):
        return  # a parameter used as it is or viewed: ``parameters`` (rewrite.py) makes layer_scale, pos_embedding...
    for n in inside:
        if any(u not in inside and u not in ends for u in n.users):
            return
    _apply(gm, roots, steps, ends, inside)


def _apply(gm: fx.GraphModule, roots: set[fx.Node], steps: list[fx.Node], ends: list[fx.Node],
           inside: set[fx.Node]) -> None:
    first = ends[0]
    batched = next(s for s in first.all_input_nodes if s not in inside)
    known: dict[fx.Node, Any] = {}
    plan: list[tuple[fx.Node, tuple[str, list[Any], Args]]] = []
    for r in sorted(roots, key=list(gm.graph.nodes).index):
        known[r] = r  # placeholder until made
    for n in steps:
        step = _step(n, known)
        if step is None:
            return
        known[n] = n
        plan.append((n, step))
    for end in ends:
        other = next(s for s in end.all_input_nodes if s not in inside)
        if any(_rank_fits(tuple(s.meta[FULL_SHAPE_KEY]), len(other.meta[SHAPE_KEY])) is None
               for s in end.all_input_nodes if s in inside):
            return
    made: dict[fx.Node, Any] = {}
    with gm.graph.inserting_before(first):
        for r in sorted(roots, key=list(gm.graph.nodes).index):
            found = _root(gm, r)
            assert found is not None
            name, op, args = found
            made[r] = gm.graph.call_function(parameter_node, (batched,), {"name": name, "op": op,
                                                                           "args": args})
            made[r].meta = dict(first.meta)
            if op == "buffer" and len(r.meta[FULL_SHAPE_KEY]) == 1:  # fx's constant is the buffer viewed (N*N,)
                made[r] = gm.graph.call_function(op_node, (made[r],), {"op": "flatten", "args": {}})
                made[r].meta = dict(first.meta)
        for n, (op, ins, args) in plan:
            made[n] = gm.graph.call_function(op_node, tuple(made[i] for i in ins), {"op": op, "args": args})
            made[n].meta = dict(first.meta)
    for end in ends:
        other = next(s for s in end.all_input_nodes if s not in inside)
        for src in [s for s in end.all_input_nodes if s in inside]:
            value = _align(made[src], tuple(src.meta[FULL_SHAPE_KEY]), len(other.meta[SHAPE_KEY]), end, gm)
            end.args = fx.node.map_arg(end.args, lambda a, s=src, v=value: v if a is s else a)  # type: ignore
    for n in reversed([*roots, *steps]):
        if not n.users:
            gm.graph.erase_node(n)
