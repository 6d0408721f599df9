"""Modules with an archc op: torch's, torchvision's and (once timm is imported) timm's, each mapped to its op
and the arguments read from the instance (`MODULE_OPS`); `module_op` maps a leaf module of a trace."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from torch import nn

from archc.errors import UsageError
from archc.importer.markers import Args
from archc.importer.nearest import unmapped


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


def module_op(m: nn.Module, path: str) -> tuple[str, Args]:
    """The archc op and arguments of a leaf module."""
    entry = MODULE_OPS.get(type(m))
    if entry is None:
        raise unmapped(f"module {type(m).__module__}.{type(m).__qualname__}", path, type(m).__name__)
    try:
        return entry[0], entry[1](m)
    except ValueError as e:
        raise UsageError(f"module {type(m).__qualname__} at '{path}': {e}") from None
