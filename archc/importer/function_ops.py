"""Functions and tensor methods with an archc op: each mapped to its op, its input nodes and its arguments
(`FUNCTION_OPS`, `METHOD_OPS`); `function_op` maps a call_function or call_method node of a trace."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from archc.errors import UsageError
from archc.importer.markers import Args
from archc.importer.module_ops import LIBRARY_FUNCTIONS, _pair
from archc.importer.nearest import unmapped


def _flatten(a: tuple[Any, ...], k: Args) -> tuple[list[Any], Args]:
    start = k.get("start_dim", a[1] if len(a) > 1 else 0)
    end = k.get("end_dim", a[2] if len(a) > 2 else -1)
    return [a[0]], {"start_dim": start, "end_dim": end}


def _binary(op: str, scalar: str) -> Callable[[tuple[Any, ...], Args], tuple[str, list[Any], Args]]:
    def f(a: tuple[Any, ...], k: Args) -> tuple[str, list[Any], Args]:
        x, y = a[0], a[1] if len(a) > 1 else k["other"]
        if isinstance(x, fx.Node) and isinstance(y, fx.Node):
            return op, [x, y], {}
        node, const = (x, y) if isinstance(x, fx.Node) else (y, x)
        if not isinstance(const, (int, float)) or (scalar in ("sub", "div") and node is y):
            raise ValueError(f"{op} of {x!r} and {y!r} has no archc op")
        return "scalar", [node], {"add": -const} if scalar == "sub" else {scalar: const}
    return f


def _simple(op: str, *names: str) -> Callable[[tuple[Any, ...], Args], tuple[str, list[Any], Args]]:
    """A function whose first argument is the tensor and whose next ones are ``names`` in order."""
    def f(a: tuple[Any, ...], k: Args) -> tuple[str, list[Any], Args]:
        args = {n: v for n, v in zip(names, a[1:], strict=False)}
        args.update({n: v for n, v in k.items() if n in names})
        return op, [a[0]], args
    return f


def _cat(a: tuple[Any, ...], k: Args) -> tuple[str, list[Any], Args]:
    return "concat", list(a[0]), {"dim": k.get("dim", a[1] if len(a) > 1 else 0)}


def _mean(a: tuple[Any, ...], k: Args) -> tuple[str, list[Any], Args]:
    dim = k.get("dim", a[1] if len(a) > 1 else None)
    if dim is None:
        raise ValueError("a mean over every dim, the batch included, has no archc op")
    return "mean", [a[0]], {"dim": list(dim) if isinstance(dim, tuple) else dim,
                            "keepdim": k.get("keepdim", a[2] if len(a) > 2 else False)}


def _pool_fn(op: str, keys: tuple[str, ...]) -> Handler:
    def f(a: tuple[Any, ...], k: Args) -> tuple[str, list[Any], Args]:
        args = {n: _pair(v) for n, v in zip(keys, a[1:], strict=False)}
        args.update({n: _pair(v) for n, v in k.items() if n in keys})
        if op == "max_pool2d" and k.get("return_indices"):
            raise ValueError("return_indices has no archc argument")
        return op, [a[0]], args
    return f


def _chunk(a: tuple[Any, ...], k: Args) -> tuple[str, list[Any], Args]:
    return "chunk", [a[0]], {"chunks": k.get("chunks", a[1] if len(a) > 1 else None),
                             "dim": k.get("dim", a[2] if len(a) > 2 else 0)}


def _split(a: tuple[Any, ...], k: Args) -> tuple[str, list[Any], Args]:
    sizes = k.get("split_size_or_sections", k.get("split_size", a[1] if len(a) > 1 else None))
    if not isinstance(sizes, (list, tuple)):
        raise ValueError("a split by one size has no archc op here (give the sizes as a list)")
    return "split", [a[0]], {"sizes": list(sizes), "dim": k.get("dim", a[2] if len(a) > 2 else 0)}


def _index(a: tuple[Any, ...], k: Args) -> tuple[str, list[Any], Args]:
    """x[:, 0] -> select; x[:, a:b:c] -> slice (one indexed dim; the batch whole)."""
    idx = a[1] if isinstance(a[1], tuple) else (a[1],)
    if not idx or idx[0] != slice(None):
        raise ValueError(f"index {a[1]!r} does not keep the batch whole (x[:, ...])")
    picked = [(d, s) for d, s in enumerate(idx[1:], 1) if s != slice(None)]
    if len(picked) != 1 or not isinstance(picked[0][1], (int, slice)):
        raise ValueError(f"index {a[1]!r}: only one indexed dim (an int or a slice) can be imported")
    d, s = picked[0]
    if isinstance(s, int):
        return "select", [a[0]], {"dim": d, "index": s}
    return "slice", [a[0]], {"dim": d, "start": s.start, "end": s.stop, "step": s.step or 1}


def _swap(a: tuple[Any, ...], k: Args) -> tuple[str, list[Any], Args]:
    """torch.swapaxes / swapdims (MaxViT's SwapAxes): transpose."""
    names = ("axis0", "axis1") if "axis0" in k else ("dim0", "dim1")
    dims = [k.get(n, a[i + 1] if len(a) > i + 1 else None) for i, n in enumerate(names)]
    return "transpose", [a[0]], {"dim0": dims[0], "dim1": dims[1]}


def _dims(a: tuple[Any, ...], k: Args, key: str = "dims") -> list[Any]:
    return list(a[1] if len(a) == 2 and isinstance(a[1], (tuple, list)) else a[1:]) or list(k.get(key, ()))


def _adaptive(op: str) -> Callable[[tuple[Any, ...], Args], tuple[str, list[Any], Args]]:
    def f(a: tuple[Any, ...], k: Args) -> tuple[str, list[Any], Args]:
        return op, [a[0]], {"output_size": _pair(k.get("output_size", a[1] if len(a) > 1 else None))}
    return f


Handler = Callable[[tuple[Any, ...], Args], tuple[str, list[Any], Args]]
_ACT = {"inplace": False}
FUNCTION_OPS: dict[Any, tuple[str, Handler]] = {
    operator.add: ("add", _binary("add", "add")), operator.iadd: ("add", _binary("add", "add")),
    torch.add: ("add", _binary("add", "add")), operator.mul: ("mul", _binary("mul", "mul")),
    operator.imul: ("mul", _binary("mul", "mul")), torch.mul: ("mul", _binary("mul", "mul")),
    operator.sub: ("sub", _binary("sub", "sub")), torch.cat: ("concat", _cat), torch.concat: ("concat", _cat),
    torch.flatten: ("flatten", lambda a, k: ("flatten", *_flatten(a, k))),
    torch.relu: ("relu", _simple("relu")), nn.functional.relu: ("relu", _simple("relu", "inplace")),
    nn.functional.relu6: ("relu6", _simple("relu6", "inplace")), torch.sigmoid: ("sigmoid", _simple("sigmoid")),
    nn.functional.silu: ("silu", _simple("silu", "inplace")), torch.tanh: ("tanh", _simple("tanh")),
    nn.functional.hardswish: ("hardswish", _simple("hardswish", "inplace")),
    nn.functional.hardsigmoid: ("hardsigmoid", _simple("hardsigmoid", "inplace")),
    nn.functional.gelu: ("gelu", _simple("gelu", "approximate")),
    nn.functional.adaptive_avg_pool2d: ("adaptive_avg_pool2d", _adaptive("adaptive_avg_pool2d")),
    nn.functional.adaptive_max_pool2d: ("adaptive_max_pool2d", _adaptive("adaptive_max_pool2d")),
    torch.mean: ("mean", _mean),
    nn.functional.avg_pool2d: ("avg_pool2d", _pool_fn("avg_pool2d", (
        "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"))),
    nn.functional.max_pool2d: ("max_pool2d", _pool_fn("max_pool2d", (
        "kernel_size", "stride", "padding", "dilation", "ceil_mode"))),
    nn.functional.dropout: ("dropout", _simple("dropout", "p")),
    torch.chunk: ("chunk", _chunk), torch.split: ("split", _split),
    torch.transpose: ("transpose", _simple("transpose", "dim0", "dim1")),
    torch.swapaxes: ("transpose", _swap), torch.swapdims: ("transpose", _swap),
    torch.permute: ("permute", lambda a, k: ("permute", [a[0]], {"dims": _dims(a, k)})),
    torch.softmax: ("softmax", _simple("softmax", "dim")),
    nn.functional.softmax: ("softmax", _simple("softmax", "dim")),
    torch.matmul: ("matmul", lambda a, k: ("matmul", [a[0], a[1]], {})),
    operator.matmul: ("matmul", lambda a, k: ("matmul", [a[0], a[1]], {})),
    operator.truediv: ("div", _binary("div", "div")),
    operator.getitem: ("select", _index),
    nn.functional.layer_norm: ("layernorm", lambda a, k: _no("F.layer_norm with weights read in the forward")),
}
for _fn in LIBRARY_FUNCTIONS:  # torchvision's channel_shuffle(x, groups)
    FUNCTION_OPS[_fn] = ("channel_shuffle", _simple("channel_shuffle", "groups"))


def _sdpa(a: tuple[Any, ...], k: Args) -> tuple[str, list[Any], Args]:
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
    got = {**dict(zip(names, a, strict=False)), **k}
    if got.get("attn_mask") is not None or got.get("enable_gqa"):
        raise ValueError("an attention mask or grouped-query attention has no archc argument")
    return "scaled_dot_product_attention", [got["query"], got["key"], got["value"]], {
        "is_causal": bool(got.get("is_causal", False)), "scale": got.get("scale"),
        "dropout_p": float(got.get("dropout_p", 0.0))}


FUNCTION_OPS[nn.functional.scaled_dot_product_attention] = ("scaled_dot_product_attention", _sdpa)


def _no(why: str) -> tuple[str, list[Any], Args]:
    raise ValueError(why)

def is_batch_size(n: Any) -> bool:
    """``x.size(0)`` or ``x.shape[0]``: the batch size, which view/reshape may name and nothing else may read."""
    if not isinstance(n, fx.Node):
        return False
    if n.meta.get("archc_batch"):
        return True
    if n.op == "call_method" and n.target == "size":
        return tuple(n.args[1:]) == (0,) or dict(n.kwargs) == {"dim": 0}
    return (n.op == "call_function" and n.target is operator.getitem and tuple(n.args[1:]) == (0,)
            and isinstance(n.args[0], fx.Node) and n.args[0].op == "call_function"
            and n.args[0].target is getattr and tuple(n.args[0].args[1:]) == ("shape",))


def _view(a: tuple[Any, ...], k: Args) -> tuple[str, list[Any], Args]:
    shape = list(a[1] if len(a) == 2 and isinstance(a[1], (tuple, list)) else a[1:]) or list(k.get("shape", ()))
    if not shape or not is_batch_size(shape[0]):
        raise ValueError("the first size must be the batch, x.size(0) (a fixed batch size has no archc op)")
    rest = shape[1:]
    if not all(isinstance(d, int) for d in rest):
        raise ValueError("sizes after the batch must be constants")
    return ("flatten", [a[0]], {}) if rest == [-1] else ("reshape", [a[0]], {"shape": rest})


METHOD_OPS: dict[str, tuple[str, Handler]] = {
    "view": ("reshape", _view), "reshape": ("reshape", _view),
    "flatten": ("flatten", lambda a, k: ("flatten", *_flatten(a, k))), "mean": ("mean", _mean),
    "relu": ("relu", _simple("relu")), "sigmoid": ("sigmoid", _simple("sigmoid")),
    "add": ("add", _binary("add", "add")), "mul": ("mul", _binary("mul", "mul")),
    "permute": ("permute", lambda a, k: ("permute", [a[0]], {"dims": _dims(a, k)})),
    "chunk": ("chunk", _chunk), "split": ("split", _split),
    "transpose": ("transpose", _simple("transpose", "dim0", "dim1")),
    "softmax": ("softmax", _simple("softmax", "dim")), "sub": ("sub", _binary("sub", "sub")),
    "div": ("div", _binary("div", "div")), "expand": ("expand", lambda a, k: _expand(a)),
}


def _expand(a: tuple[Any, ...]) -> tuple[str, list[Any], Args]:
    sizes = _dims(a, {}, "size")
    if not sizes or not is_batch_size(sizes[0]) and sizes[0] != -1:
        raise ValueError("the first size must be the batch (x.size(0) or -1)")
    if not all(isinstance(d, int) for d in sizes[1:]):
        raise ValueError("sizes after the batch must be constants")
    return "expand", [a[0]], {"sizes": sizes[1:]}


def function_op(node: fx.Node, path: str) -> tuple[str, list[Any], Args]:
    """The archc op, input nodes and arguments of a call_function or call_method node."""
    if node.op == "call_method":
        entry = METHOD_OPS.get(str(node.target))
        label = f"method Tensor.{node.target}"
    else:
        entry = FUNCTION_OPS.get(node.target)
        label = f"function {getattr(node.target, '__module__', '')}.{getattr(node.target, '__name__', node.target)}"
    if entry is None:
        raise unmapped(label, path, str(getattr(node.target, "__name__", node.target)))
    try:
        op, inputs, args = entry[1](tuple(node.args), dict(node.kwargs))
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise UsageError(f"{label} at '{path}': {e}") from None
    if not all(isinstance(x, fx.Node) for x in inputs) or any(isinstance(v, fx.Node) for v in args.values()):
        raise UsageError(f"{label} at '{path}' takes a computed value as an argument",
                         hint="only constant arguments can be imported")
    return op, inputs, args
