"""Trace an nn.Module with torch.fx into a tree of archc nodes (one per module scope).

The modules that map to an archc op are fx leaves; everything else (Sequential, user classes) is
traced through, and torch.fx's ``nn_module_stack`` gives each node the module scope it ran in, so
node paths are the module's own attribute paths. The tree's nodes are plain dicts in spec form, with
``in`` always a list of names (emit drops the implicit ones) and ``_cls`` the Python class of a group.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import operator
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from archc.errors import UsageError

Args = dict[str, Any]


def _pair(v: Any) -> Any:
    """(3, 3) -> 3; (1, 2) -> [1, 2]; anything else unchanged."""
    if isinstance(v, (tuple, list)):
        return v[0] if len(set(v)) == 1 else list(v)
    return v


def _conv(m: nn.Conv2d) -> Args:
    padding = m.padding if isinstance(m.padding, str) else _pair(m.padding)
    return {"out_channels": m.out_channels, "kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride),
            "padding": padding, "dilation": _pair(m.dilation), "groups": m.groups, "bias": m.bias is not None,
            "padding_mode": m.padding_mode}


def _bn(m: nn.BatchNorm2d) -> Args:
    if m.momentum is None:
        raise ValueError("momentum=None (a cumulative average) has no archc argument")
    return {"eps": m.eps, "momentum": m.momentum, "affine": m.affine, "track_running_stats": m.track_running_stats}


def _pool(m: Any, keys: tuple[str, ...]) -> Args:
    return {k: _pair(getattr(m, k)) for k in keys}


def _ln(m: nn.LayerNorm) -> Args:
    if len(m.normalized_shape) != 1:
        raise ValueError(f"normalized_shape {tuple(m.normalized_shape)} spans several dims; layernorm takes one")
    return {"eps": m.eps, "elementwise_affine": m.elementwise_affine, "bias": m.bias is not None}


# Module class -> (archc op, arguments read from the instance).
MODULE_OPS: dict[type, tuple[str, Callable[[Any], Args]]] = {
    nn.Conv2d: ("conv2d", _conv),
    nn.BatchNorm2d: ("batchnorm2d", _bn),
    nn.Linear: ("linear", lambda m: {"out_features": m.out_features, "bias": m.bias is not None}),
    nn.ReLU: ("relu", lambda m: {"inplace": m.inplace}),
    nn.ReLU6: ("relu6", lambda m: {"inplace": m.inplace}),
    nn.SiLU: ("silu", lambda m: {"inplace": m.inplace}),
    nn.Hardswish: ("hardswish", lambda m: {"inplace": m.inplace}),
    nn.Hardsigmoid: ("hardsigmoid", lambda m: {"inplace": m.inplace}),
    nn.LeakyReLU: ("leaky_relu", lambda m: {"negative_slope": m.negative_slope, "inplace": m.inplace}),
    nn.Sigmoid: ("sigmoid", lambda m: {}),
    nn.Tanh: ("tanh", lambda m: {}),
    nn.GELU: ("gelu", lambda m: {"approximate": m.approximate}),
    nn.Identity: ("identity", lambda m: {}),
    nn.LayerNorm: ("layernorm", lambda m: {**_ln(m), "channels": "last"}),
    nn.Dropout: ("dropout", lambda m: {"p": m.p, "inplace": m.inplace}),
    nn.Flatten: ("flatten", lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim}),
    nn.MaxPool2d: ("max_pool2d", lambda m: _pool(m, ("kernel_size", "stride", "padding", "ceil_mode", "dilation"))),
    nn.AvgPool2d: ("avg_pool2d", lambda m: _pool(m, ("kernel_size", "stride", "padding", "ceil_mode",
                                                    "count_include_pad"))),
    nn.AdaptiveAvgPool2d: ("adaptive_avg_pool2d", lambda m: {"output_size": _pair(m.output_size)}),
    nn.AdaptiveMaxPool2d: ("adaptive_max_pool2d", lambda m: {"output_size": _pair(m.output_size)}),
}

def _mha(m: nn.MultiheadAttention) -> Args:
    if not m.batch_first or not m._qkv_same_embed_dim or m.bias_k is not None or m.add_zero_attn:
        raise ValueError("only batch-first self-attention without bias_k/v or zero attention maps to self_attention")
    return {"num_heads": m.num_heads, "dropout": m.dropout, "bias": m.in_proj_bias is not None}


MODULE_OPS[nn.MultiheadAttention] = ("self_attention", _mha)
MODULE_OPS[nn.GroupNorm] = ("groupnorm", lambda m: {"num_groups": m.num_groups, "eps": m.eps, "affine": m.affine})
MODULE_OPS[nn.Softmax] = ("softmax", lambda m: {"dim": m.dim})
MODULE_OPS[nn.ChannelShuffle] = ("channel_shuffle", lambda m: {"groups": m.groups})
MODULE_OPS[nn.Mish] = ("mish", lambda m: {"inplace": m.inplace})
MODULE_OPS[nn.ELU] = ("elu", lambda m: {"alpha": m.alpha, "inplace": m.inplace})
MODULE_OPS[nn.PReLU] = ("prelu", lambda m: {"num_parameters": m.num_parameters, "init": float(m.init)})
MODULE_OPS[nn.Softplus] = ("softplus", lambda m: {"beta": m.beta, "threshold": m.threshold})

# Modules mapped to one op at their own path followed by parameter-free children (timm's BatchNormAct2d:
# batchnorm2d, then its drop and act), each written as a sibling node NAME_CHILD.
MODULE_TAILS: dict[type, Callable[[Any], list[tuple[str, nn.Module]]]] = {}


def library_ops() -> None:
    """Register timm's modules with an archc op, once timm has been imported (archc never imports it itself)."""
    if "timm" not in sys.modules or "timm" in _REGISTERED:
        return
    _REGISTERED.add("timm")
    try:
        from timm.layers import norm, norm_act
    except ImportError:  # pragma: no cover - another timm layout
        return
    MODULE_OPS[norm.LayerNorm] = ("layernorm", lambda m: {**_ln(m), "channels": "last"})
    MODULE_OPS[norm.LayerNorm2d] = ("layernorm", lambda m: {**_ln(m), "channels": "first"})
    MODULE_OPS[norm.GroupNorm] = MODULE_OPS[nn.GroupNorm]
    MODULE_OPS[norm.GroupNorm1] = MODULE_OPS[nn.GroupNorm]
    MODULE_OPS[norm_act.BatchNormAct2d] = ("batchnorm2d", _bn)
    MODULE_TAILS[norm_act.BatchNormAct2d] = lambda m: [("drop", getattr(m, "drop", nn.Identity())), ("act", m.act)]


_REGISTERED: set[str] = set()
LIBRARY_FUNCTIONS: list[Any] = []  # library functions traced as one call (fx autowrap), mapped in FUNCTION_OPS

try:  # torchvision's own modules with an archc op (torchvision comes with torch in archc[torch])
    from torchvision.models import swin_transformer as _swin
    from torchvision.models.convnext import LayerNorm2d
    from torchvision.models.shufflenetv2 import channel_shuffle as _tv_channel_shuffle
    from torchvision.ops import StochasticDepth

    def _swin_attention(m: Any) -> Args:
        return {"window_size": _pair(m.window_size), "shift_size": _pair(m.shift_size), "num_heads": m.num_heads,
                "attention_dropout": m.attention_dropout, "dropout": m.dropout, "qkv_bias": m.qkv.bias is not None,
                "proj_bias": m.proj.bias is not None,
                "version": 2 if isinstance(m, _swin.ShiftedWindowAttentionV2) else 1}

    def _merging(m: Any) -> Args:
        if type(m.norm) is not nn.LayerNorm or m.norm.eps != 1e-5:
            raise ValueError("patch_merging builds torchvision's default norm (nn.LayerNorm, eps 1e-5)")
        return {"version": 2 if isinstance(m, _swin.PatchMergingV2) else 1}

    for _cls in (_swin.ShiftedWindowAttention, _swin.ShiftedWindowAttentionV2):
        MODULE_OPS[_cls] = ("shifted_window_attention", _swin_attention)
    for _cls in (_swin.PatchMerging, _swin.PatchMergingV2):
        MODULE_OPS[_cls] = ("patch_merging", _merging)
    MODULE_OPS[StochasticDepth] = ("stochastic_depth", lambda m: {"p": m.p, "mode": m.mode})
    MODULE_OPS[LayerNorm2d] = ("layernorm", lambda m: {**_ln(m), "channels": "first"})
    LIBRARY_FUNCTIONS.append(_tv_channel_shuffle)
except ImportError:  # pragma: no cover - torchvision missing
    pass


# Modules traced through (their forward is followed), whatever library they come from.
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


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


def op_names() -> list[str]:
    """Every archc op name (for the nearest-op hint)."""
    from archc.blocks.registry import names

    return names()


# Python names whose nearest archc op difflib would not find.
NEAREST = {"upsample": "interpolate", "upsamplingnearest2d": "interpolate", "upsamplingbilinear2d": "interpolate",
           "multiheadattention": "self_attention", "convtranspose2d": "conv_transpose2d", "cumsum": "sum",
           "zeropad2d": "pad", "constantpad2d": "pad", "reflectionpad2d": "pad", "embedding": "linear",
           "lstm": "linear", "gru": "linear", "einsum": "matmul"}


def nearest(name: str) -> str:
    """The archc op nearest to a Python name (difflib), for hints."""
    key = name.lower()
    if key in NEAREST:
        return NEAREST[key]
    close = difflib.get_close_matches(key, op_names(), n=1, cutoff=0.0)
    return close[0] if close else "?"


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


ROOT_KEY = "archc_root"


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


def unmapped(what: str, path: str, name: str) -> UsageError:
    """The error for a module or function with no archc op."""
    return UsageError(f"{what} at '{path or '<top>'}' has no archc op (nearest: {nearest(name)})",
                      hint="`archc blocks` lists the ops; add one to archc/blocks or rewrite the module with them")


def module_op(m: nn.Module, path: str) -> tuple[str, Args]:
    """The archc op and arguments of a leaf module."""
    entry = MODULE_OPS.get(type(m))
    if entry is None:
        raise unmapped(f"module {type(m).__module__}.{type(m).__qualname__}", path, type(m).__name__)
    try:
        return entry[0], entry[1](m)
    except ValueError as e:
        raise UsageError(f"module {type(m).__qualname__} at '{path}': {e}") from None


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
