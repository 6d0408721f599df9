"""A Hypothesis generator of valid-looking specs that covers every registered op.

Each op has an argument strategy given the shape flowing in; the generator keeps an op only
when archc's own shape rule accepts it (that is not circular: the tests compare the rule with
what torch really builds and runs). `OP_ARGS` must name every registered op (tested), so a new
block cannot escape the fuzzer.
"""

from __future__ import annotations

from collections.abc import Callable
from math import prod
from typing import Any

from hypothesis import strategies as st

from archc import blocks as library
from archc.blocks.base import REQUIRED
from archc.errors import ShapeError

Shape = tuple[int, ...]
ArgDraw = Callable[[st.DrawFn, Shape], dict[str, Any] | None]  # None: not applicable to this shape

MAX_ELEMENTS = 3000  # per-sample activation size the generator stays under (fast CPU runs)


class Expr:
    """An argument written as a `${...}` expression (e.g. over in_shape) with its known value."""

    def __init__(self, text: str, value: Any) -> None:
        self.text, self.value = text, value


def _width(draw: st.DrawFn, s: Shape, axis: int, value: int) -> Any:
    """A width, sometimes written as an expression of the shape flowing in."""
    if draw(st.integers(0, 3)) == 0 and value % s[axis] == 0:
        return Expr(f"${{in_shape[{axis}] * {value // s[axis]}}}", value)
    return value


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _conv(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    if len(s) != 3:
        return None
    k = draw(st.integers(1, 3))
    groups = draw(st.sampled_from(_divisors(s[0])[:3]))
    args: dict[str, Any] = {"out_channels": _width(draw, s, 0, groups * draw(st.integers(1, 4))), "kernel_size": k,
                            "groups": groups, "bias": draw(st.booleans())}
    if draw(st.integers(0, 4)) == 0:
        args["padding"] = draw(st.sampled_from(["same", "valid"]))
    else:
        args["padding"] = draw(st.integers(0, k // 2 + 1))
        args["stride"] = draw(st.integers(1, 2))
    args["dilation"] = draw(st.integers(1, 2))
    if args["padding"] == "same" and args["dilation"] * (k - 1) % 2:  # torch warns (once a process) that it pads a
        args["dilation"] = 2  # copy; pytest makes that warning an error in whichever test meets it first
    if isinstance(args["padding"], int):  # zero padding past the kernel's reach leaves outputs that read no input
        args["padding"] = min(args["padding"], args["dilation"] * (k - 1))
    args["padding_mode"] = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    return args


def _conv_t(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    if len(s) != 3:
        return None
    groups = draw(st.sampled_from(_divisors(s[0])[:2]))
    # every output must receive an input pixel: the taps cover the stride (kernel >= stride, dilation 1
    # under stride 2) and output_padding stays within the padding
    stride = draw(st.integers(1, 2))
    dilation = 1 if stride == 2 else draw(st.integers(1, 2))
    padding = draw(st.integers(0, 1))
    return {"out_channels": groups * draw(st.integers(1, 3)), "kernel_size": draw(st.integers(stride, 3)),
            "stride": stride, "padding": padding, "output_padding": draw(st.integers(0, min(padding, stride - 1))),
            "dilation": dilation, "groups": groups, "bias": draw(st.booleans())}


def _pool(dilation: bool) -> ArgDraw:
    def draw_args(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
        if len(s) != 3:
            return None
        k = draw(st.integers(1, 3))
        args = {"kernel_size": k, "stride": draw(st.sampled_from([None, 1, 2])),
                "padding": draw(st.integers(0, k // 2)), "ceil_mode": draw(st.booleans())}
        if dilation:  # dilated taps can straddle a small map: archc refuses those (the node is skipped)
            args["dilation"] = draw(st.integers(1, 3))
        else:
            args["count_include_pad"] = draw(st.booleans())
        return args

    return draw_args


def _rank(*ranks: int, extra: Callable[[st.DrawFn, Shape], dict[str, Any]] | None = None) -> ArgDraw:
    def draw_args(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
        if len(s) not in ranks:
            return None
        return extra(draw, s) if extra else {}

    return draw_args


_SOMETIMES = st.sampled_from([False, False, False, True])  # in-place: often refused (correctly), so rarer


def _inplace(draw: st.DrawFn, s: Shape) -> dict[str, Any]:
    return {"inplace": draw(_SOMETIMES)}


def _dim(draw: st.DrawFn, s: Shape) -> int:
    """A torch dim of a sample of shape s: 1..rank or its negative form."""
    d = draw(st.integers(1, len(s)))
    return d - len(s) - 1 if draw(st.booleans()) else d


def _flatten(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    a = draw(st.integers(1, len(s)))
    return {"start_dim": a, "end_dim": draw(st.integers(a, len(s)))}


def _reshape(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    n = prod(s)
    d = draw(st.sampled_from(_divisors(n)))
    return {"shape": draw(st.sampled_from([[-1], [d, -1], [-1, d], [n // d, d]]))}


def _permute(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    return {"dims": [0, *draw(st.permutations(list(range(1, len(s) + 1))))]}


def _select(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    if len(s) < 2:
        return None
    d = draw(st.integers(1, len(s)))
    return {"dim": d, "index": draw(st.integers(-s[d - 1], s[d - 1] - 1))}


def _unflatten(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    d = draw(st.integers(1, len(s)))
    k = draw(st.sampled_from(_divisors(s[d - 1])))
    return {"dim": d, "sizes": draw(st.sampled_from([[k, -1], [-1, k], [k, s[d - 1] // k]]))}


def _split(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    d = draw(st.integers(1, len(s)))
    n = s[d - 1]
    if n < 2:
        return None
    cut = draw(st.integers(1, n - 1))
    return {"sizes": [cut, n - cut], "dim": d}


def _chunk(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    d = draw(st.integers(1, len(s)))
    return {"chunks": draw(st.integers(2, 3)), "dim": d}


def _interpolate(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    if len(s) != 3:
        return None
    mode = draw(st.sampled_from(["nearest", "bilinear", "bicubic", "area", "nearest-exact"]))
    args: dict[str, Any] = {"mode": mode}
    if draw(st.booleans()):
        args["size"] = draw(st.sampled_from([1, 3, [2, 5]]))
    else:
        args["scale_factor"] = draw(st.sampled_from([0.5, 1, 2, 1.5, [2, 1]]))
    if mode in ("bilinear", "bicubic") and draw(st.booleans()):
        args["align_corners"] = draw(st.booleans())
    return args


def _norm_groups(draw: st.DrawFn, s: Shape) -> dict[str, Any]:
    return {"num_groups": draw(st.sampled_from(_divisors(s[0]))), "affine": draw(st.booleans())}


# ---- issue 26's vocabulary: learned tensors, indexing, tiling, unfold/fold, activations, norms ----
def _parameter(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    mode = draw(st.sampled_from(["none", "add", "mul", "prepend", "append"]))
    args: dict[str, Any] = {"combine": mode, "batch_dim": draw(st.booleans()), **draw(st.sampled_from([
        {}, {"init": "normal", "std": 0.5}, {"init": "trunc_normal", "std": 0.02, "a": -0.04, "b": 0.04},
        {"init": "uniform", "a": -1, "b": 1}, {"init": "constant", "value": 0.5}, {"init": "ones"}]))}
    if mode == "none":
        args["shape"] = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    elif mode in ("add", "mul"):
        args["shape"] = [n if draw(st.booleans()) else 1 for n in s]
    else:
        args["dim"] = _dim(draw, s)
        shape = list(s)
        shape[args["dim"] - 1 if args["dim"] > 0 else args["dim"]] = draw(st.integers(1, 3))
        args["shape"] = shape
    return args


def _slice(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    d = _dim(draw, s)
    n = s[d - 1 if d > 0 else d]
    bound = st.one_of(st.none(), st.integers(-n - 1, n + 1))
    return {"dim": d, "start": draw(bound), "end": draw(bound), "step": draw(st.integers(1, 3))}


def _index_select(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    d = _dim(draw, s)
    n = s[d - 1 if d > 0 else d]
    if draw(st.booleans()):  # indices from a second input (an arange written by _index_input)
        return {"dim": d}
    return {"dim": d, "index": draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4))}


def _fold(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    """On columns (A, L): a kernel whose positions divide A, blocks nb_h x nb_w = L, strides the kernel spans
    (every pixel receives a block). The unfold/fold pair of a map is drawn by _fold_inputs."""
    k = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    stride = [draw(st.integers(1, k[0])), draw(st.integers(1, k[1]))]
    args: dict[str, Any] = {"kernel_size": k, "stride": stride}
    if len(s) != 2 or s[0] % (k[0] * k[1]):
        return args if len(s) == 3 else None  # a map: _fold_inputs unfolds it first
    nb_h = draw(st.sampled_from(_divisors(s[1])))
    args["output_size"] = [(nb_h - 1) * stride[0] + k[0], (s[1] // nb_h - 1) * stride[1] + k[1]]
    return args


def _unfold(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    if len(s) != 3:
        return None
    k = draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 2))
    return {"kernel_size": k, "stride": draw(st.integers(1, 2)), "dilation": dilation,
            "padding": draw(st.integers(0, dilation * (k - 1)))}


def _index_input(draw: st.DrawFn, args: dict[str, Any], cur: str, shapes: dict[str, Shape], lines: list[str],
                 i: int) -> list[str]:
    """index_select's index: the list in `index`, or an arange of valid positions written before it."""
    if "index" in args:
        return [cur]
    s, d = shapes[cur], args["dim"]
    n = s[d - 1 if d > 0 else d]
    spec = draw(st.sampled_from([f"dim: {d}", f"dim: {d}, start: {n - 1}, step: -1", f"end: {min(n, 2)}"]))
    lines.append(f"  k{i}: {{op: arange, {spec}, in: [{_yaml_name(cur)}]}}")
    shapes[f"k{i}"] = (n if "dim" in spec else min(n, 2),)
    return [cur, f"k{i}"]


def _gather_input(draw: st.DrawFn, args: dict[str, Any], cur: str, shapes: dict[str, Shape], lines: list[str],
                  i: int) -> list[str]:
    """gather's index: a `full` constant of valid positions, of the input's rank and at most its size."""
    s, d = shapes[cur], args["dim"]
    axis = d - 1 if d > 0 else d + len(s)
    channels = draw(st.integers(1, 4 if axis == 0 else s[0]))
    lines.append(f"  k{i}: {{op: full, value: {draw(st.integers(0, s[axis] - 1))}, channels: {channels}, "
                 f"in: [{_yaml_name(cur)}]}}")
    shapes[f"k{i}"] = (channels, *s[1:])
    return [cur, f"k{i}"]


def _fold_inputs(draw: st.DrawFn, args: dict[str, Any], cur: str, shapes: dict[str, Shape], lines: list[str],
                 i: int) -> list[str]:
    """Columns with output_size fold alone; a map is unfolded first and folded back to its size."""
    if len(shapes[cur]) == 2:
        return [cur]
    window = f"kernel_size: {_yaml(args['kernel_size'])}, stride: {_yaml(args['stride'])}"
    lines.append(f"  u{i}: {{op: unfold, {window}, in: [{_yaml_name(cur)}]}}")
    try:
        shapes[f"u{i}"] = library.get("unfold").shape(_full("unfold", args), [shapes[cur]])
    except ShapeError:
        shapes[f"u{i}"] = (1, 1)  # refused there: the fold's rule refuses it too, so the node is skipped
    return [f"u{i}", cur]


def _windows(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    """A window (or grid) size that divides a channels-last (H, W, C) map."""
    return {"size": [draw(st.sampled_from(_divisors(s[0])[:3])), draw(st.sampled_from(_divisors(s[1])[:3]))],
            "mode": draw(st.sampled_from(["window", "grid"]))} if len(s) == 3 else None


def _window_mask(draw: st.DrawFn, s: Shape) -> dict[str, Any] | None:
    args = _windows(draw, s)
    if args is None:
        return None
    size = args.pop("size")
    return {"size": size, "shift": [draw(st.integers(0, k - 1)) for k in size], "value": -100.0}


def _window_groups(draw: st.DrawFn, args: dict[str, Any], cur: str, shapes: dict[str, Shape], lines: list[str],
                   i: int) -> list[str]:
    """window_reverse's groups: the map partitioned alike, written before it (the map comes first)."""
    lines.append(f"  g{i}: {{op: window_partition, size: {_yaml(args['size'])}, mode: {args['mode']}, "
                 f"in: [{_yaml_name(cur)}]}}")
    shapes[f"g{i}"] = library.get("window_partition").shape(_full("window_partition", args), [shapes[cur]])
    return [cur, f"g{i}"]


# ops whose extra inputs must hold valid indices or sizes: written before the node (spec_text)
INPUTS: dict[str, Callable[..., list[str]]] = {
    "index_select": _index_input, "gather": _gather_input, "fold": _fold_inputs, "window_reverse": _window_groups,
    "pow": lambda draw, args, cur, shapes, lines, i: [cur] if "exponent" in args else [
        cur, draw(st.sampled_from([n for n, t in shapes.items() if t == shapes[cur]]))],
}


OP_ARGS: dict[str, ArgDraw] = {
    "conv2d": _conv,
    "conv_transpose2d": _conv_t,
    "max_pool2d": _pool(dilation=True),
    "avg_pool2d": _pool(dilation=False),
    "adaptive_avg_pool2d": _rank(3, extra=lambda d, s: {"output_size": d(st.sampled_from([1, 2, [1, 3]]))}),
    "adaptive_max_pool2d": _rank(3, extra=lambda d, s: {"output_size": d(st.sampled_from([1, 2, [2, 1]]))}),
    "global_avg_pool": _rank(3),
    "batchnorm2d": _rank(3, extra=lambda d, s: {"affine": d(st.booleans()), "momentum": d(st.sampled_from(
        [0.1, None]))}),
    "groupnorm": _rank(2, 3, extra=_norm_groups),
    "layernorm": lambda d, s: {"channels": d(st.sampled_from(["first", "last"])) if len(s) == 3 else "last",
                               "elementwise_affine": d(st.booleans()), "bias": d(st.booleans())},
    "local_response_norm": lambda d, s: {"size": d(st.integers(1, 4))} if len(s) >= 2 else None,
    "relu": _inplace, "relu6": _inplace, "silu": _inplace, "hardswish": _inplace, "hardsigmoid": _inplace,
    "leaky_relu": lambda d, s: {"negative_slope": d(st.sampled_from([0.01, 0.2])), "inplace": d(_SOMETIMES)},
    "gelu": lambda d, s: {"approximate": d(st.sampled_from(["none", "tanh"]))},
    "tanh": lambda d, s: {}, "sigmoid": lambda d, s: {}, "identity": lambda d, s: {},
    "dropout": lambda d, s: {"p": d(st.sampled_from([0.0, 0.5, 1.0])), "inplace": d(_SOMETIMES)},
    "stochastic_depth": lambda d, s: {"p": d(st.sampled_from([0.0, 0.5, 1.0])),
                                      "mode": d(st.sampled_from(["row", "batch"]))},
    "linear": lambda d, s: {"out_features": _width(d, s, -1, d(st.integers(1, 8))), "bias": d(st.booleans())},
    "flatten": _flatten, "reshape": _reshape, "permute": _permute, "select": _select, "unflatten": _unflatten,
    "transpose": lambda d, s: {"dim0": _dim(d, s), "dim1": _dim(d, s)},
    "interpolate": _interpolate,
    "class_token": _rank(2),
    "pos_embedding": _rank(2, extra=lambda d, s: {"init_std": d(st.sampled_from([0.02, 1.0]))}),
    "self_attention": _rank(2, extra=lambda d, s: {"num_heads": d(st.sampled_from(_divisors(s[1])[:3])),
                                                  "bias": d(st.booleans())}),
    "layer_scale": lambda d, s: {"init_value": d(st.sampled_from([1e-6, 0.5])),
                                 "channels": d(st.sampled_from(["first", "last"]))},
    # multi-input ops: the partner inputs are drawn by the generator
    "split": _split, "chunk": _chunk,
    "add": lambda d, s: {}, "mul": lambda d, s: {}, "concat": lambda d, s: {"dim": _dim(d, s)},
    "resize_to": _rank(3, extra=lambda d, s: {"mode": d(st.sampled_from(["nearest", "bilinear"]))}),
    "sub": lambda d, s: {}, "div": lambda d, s: {}, "matmul": lambda d, s: {} if len(s) >= 2 else None,
    "stack": lambda d, s: {"dim": d(st.integers(-len(s) - 1, len(s) + 1).filter(bool))},
    "scaled_dot_product_attention": lambda d, s: None if len(s) < 2 else {
        "is_causal": d(st.booleans()), "scale": d(st.sampled_from([None, 0.5])),
        "dropout_p": d(st.sampled_from([0.0, 0.5]))},
    # the general tensor vocabulary (single input)
    "softmax": lambda d, s: {"dim": _dim(d, s)},
    **{name: lambda d, s: {"dim": _dim(d, s) if d(st.booleans()) else d(st.lists(
        st.integers(1, len(s)), min_size=1, max_size=len(s), unique=True)), "keepdim": d(st.booleans())}
       for name in ("mean", "sum", "amax", "amin")},
    "channel_shuffle": lambda d, s: {"groups": d(st.sampled_from(_divisors(s[0])))} if len(s) >= 2 else None,
    "pad": lambda d, s: d(st.sampled_from(["constant", "constant", "reflect", "replicate", "circular"]).flatmap(
        lambda mode: st.fixed_dictionaries({
            "mode": st.just(mode),
            "pad": st.sampled_from(list(range(1, len(s) + 1)) if mode == "constant" else [len(s) - 1, len(s)])
            .flatmap(lambda k: st.lists(st.integers(-1, 2), min_size=2 * k, max_size=2 * k)),
            "value": st.sampled_from([None, 0.5] if mode == "constant" else [None])}))),
    "roll": lambda d, s: {"shifts": d(st.integers(-3, 3)), "dims": _dim(d, s)} if d(st.booleans()) else {
        "shifts": [d(st.integers(-3, 3)), d(st.integers(-3, 3))], "dims": [_dim(d, s), _dim(d, s)]},
    "pixel_shuffle": _rank(3, extra=lambda d, s: {"upscale_factor": d(st.sampled_from(
        [r for r in (1, 2, 3) if s[0] % (r * r) == 0]))}),
    "pixel_unshuffle": _rank(3, extra=lambda d, s: {"downscale_factor": d(st.sampled_from(
        [r for r in (1, 2, 3) if s[1] % r == 0 and s[2] % r == 0]))}),
    "partition_attention": _rank(3, extra=lambda d, s: {  # a channels-last (H, W, C) map
        "partition": d(st.sampled_from(["window", "grid"])),
        "partition_size": d(st.sampled_from([k for k in (1, 2, 3, 4) if s[0] % k == 0 and s[1] % k == 0])),
        "head_dim": d(st.sampled_from(_divisors(s[2])[:3]))}),
    "conv1d": _rank(2, extra=lambda d, s: {
        "groups": (g := d(st.sampled_from(_divisors(s[0])[:2]))), "out_channels": g * d(st.integers(1, 3)),
        "kernel_size": d(st.integers(1, 3)), "stride": d(st.integers(1, 2)),
        "padding": d(st.sampled_from([0, 1, 2, "valid"])), "dilation": d(st.integers(1, 2)), "bias": d(st.booleans()),
        "padding_mode": d(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))}),
    "batchnorm1d": _rank(1, 2, extra=lambda d, s: {"affine": d(st.booleans()),
                                                   "momentum": d(st.sampled_from([0.1, None]))}),
    "exp": lambda d, s: {}, "log": lambda d, s: {}, "sqrt": lambda d, s: {}, "abs": lambda d, s: {},
    "clamp": lambda d, s: d(st.sampled_from([{"min": 0}, {"max": 0.5}, {"min": -0.5, "max": 0.5}])),
    # Swin on channels-last (H, W, C): windows larger than the map are padded, as in torchvision
    "shifted_window_attention": _rank(3, extra=lambda d, s: {
        "window_size": (w := d(st.sampled_from([2, 3, [2, 4], [4, 3]]))),
        "shift_size": [d(st.integers(0, k - 1)) for k in ([w, w] if isinstance(w, int) else w)],
        "num_heads": d(st.sampled_from(_divisors(s[2])[:3])), "qkv_bias": d(st.booleans()),
        "proj_bias": d(st.booleans()), "version": d(st.sampled_from([1, 2]))}),
    "patch_merging": _rank(3, extra=lambda d, s: {"version": d(st.sampled_from([1, 2]))}),
    # constants sized by the input (YOLOv8's decode), scalar arithmetic, reshape to a partner's shape
    "grid": _rank(3, extra=lambda d, s: {"offset": d(st.sampled_from([0.0, 0.5])), "scale": d(st.sampled_from(
        [1.0, 8.0]))}),
    "full": lambda d, s: {"value": d(st.sampled_from([0.0, 8.0, -1.5])), "channels": d(st.sampled_from([-1, 1, 2]))},
    "arange": lambda d, s: {"dim": _dim(d, s), "start": d(st.sampled_from([0.0, 0.5])), "step": d(
        st.sampled_from([1.0, -2.0]))} if d(st.booleans()) else d(st.sampled_from([
            {"end": 5}, {"start": 1, "end": 5.5, "step": 1.5}, {"start": 3, "end": -3, "step": -2}])),
    "scalar": lambda d, s: d(st.sampled_from([{"mul": 0.5}, {"div": 2}, {"mul": -1, "add": 1}, {}])),
    "reshape_as": lambda d, s: {},
    # learned tensors, indexing, tiling, unfold/fold (their index and size inputs: INPUTS)
    "parameter": _parameter, "slice": _slice, "index_select": _index_select,
    "gather": lambda d, s: {"dim": _dim(d, s)},
    "masked_fill": lambda d, s: {"value": d(st.sampled_from([0.0, -1.5]))},
    "where": lambda d, s: d(st.sampled_from([{}, {"other": 0.0}, {"other": -2.5}])),
    "expand": lambda d, s: {"sizes": [d(st.integers(1, 3)) if n == 1 else d(st.sampled_from([-1, n])) for n in s]},
    "repeat_tensor": lambda d, s: {"repeats": [d(st.integers(1, 2)) for _ in s]},
    "tile": lambda d, s: {"dims": d(st.lists(st.integers(1, 2), max_size=len(s)))},
    "unfold": _unfold, "fold": _fold,
    "prelu": lambda d, s: {"num_parameters": d(st.sampled_from([1, "channels", s[0]])),
                           "init": d(st.sampled_from([0.25, -0.5]))},
    "elu": lambda d, s: {"alpha": d(st.sampled_from([1.0, 0.5])), "inplace": d(_SOMETIMES)},
    "mish": _inplace,
    "softplus": lambda d, s: {"beta": d(st.sampled_from([1.0, 2.0])), "threshold": d(st.sampled_from([20.0, 1.0]))},
    "instance_norm": _rank(2, 3, extra=lambda d, s: {"affine": d(st.booleans()), "track_running_stats": d(
        st.booleans()), "momentum": d(st.sampled_from([0.1, None]))}),
    "rms_norm": lambda d, s: {"dims": d(st.integers(1, len(s))), "eps": d(st.sampled_from([None, 1e-5])),
                              "elementwise_affine": d(st.booleans())},
    "pow": lambda d, s: d(st.sampled_from([{"exponent": 2}, {"exponent": 0.5}, {"exponent": -1}, {}])),
    "minimum": lambda d, s: {}, "maximum": lambda d, s: {},
    # Swin / MaxViT from primitives: tables kept as buffers, windows of channels-last maps (window_reverse's
    # groups: INPUTS), cosine attention's normalize
    "buffer": lambda d, s: d(st.sampled_from([
        {"table": "relative_position_index", "window": 2}, {"table": "relative_position_index", "window": [2, 3],
                                                             "flatten": False},
        {"table": "relative_coords_table", "window": [3, 2], "batch_dim": True}])),
    "window_partition": _windows, "window_reverse": _windows, "window_attention_mask": _window_mask,
    "normalize": lambda d, s: {"dim": _dim(d, s), "p": d(st.sampled_from([2.0, 1.0])), "eps": d(st.sampled_from(
        [1e-12, 0.5]))},
}

BLOCKS = """blocks:
  res:
    args: {ch: int, stride: int}
    nodes:
      c1: {op: conv2d, out_channels: "${ch}", kernel_size: 3, stride: "${stride}", padding: 1}
      b1: batchnorm2d
      r1: {op: relu, inplace: true}
      c2: {op: conv2d, out_channels: "${ch}", kernel_size: 3, padding: 1}
      proj: {op: conv2d, in: input, out_channels: "${ch}", kernel_size: 1, stride: "${stride}"}
      add: {op: add, in: [c2, proj]}
  branch:
    args: {a: int, b: int}
    nodes:
      x: {op: conv2d, in: input, out_channels: "${a}", kernel_size: 1}
      y: {op: conv2d, in: input, out_channels: "${b}", kernel_size: 3, padding: 1}
      cat: {op: concat, in: [x, y]}
"""


def _yaml(v: Any) -> str:
    if isinstance(v, Expr):
        return f'"{v.text}"'
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, list):
        return "[" + ", ".join(_yaml(x) for x in v) + "]"
    return str(v)


def _yaml_name(name: str) -> str:
    return f'"{name}"' if "[" in name else name


def _full(op: str, args: dict[str, Any]) -> dict[str, Any]:
    params = library.get(op).params
    values = {k: v.value if isinstance(v, Expr) else v for k, v in args.items()}
    return {k: values.get(k, p.default) for k, p in params.items() if k in values or p.default is not REQUIRED}


def _partners(draw: st.DrawFn, op: str, args: dict[str, Any], cur: str, shapes: dict[str, Shape]) -> list[str]:
    """Other inputs of a multi-input op: nodes whose shapes fit (the current one reused otherwise)."""
    s = shapes[cur]
    if op == "resize_to":
        fits = [n for n, t in shapes.items() if len(t) == 3]
    elif op == "concat":
        axis = args["dim"] - 1 if args["dim"] > 0 else args["dim"] + len(s)
        fits = [n for n, t in shapes.items()
                if len(t) == len(s) and all(a == b for i, (a, b) in enumerate(zip(t, s)) if i != axis)]
    else:  # add, mul: equal shapes, or broadcastable ones of the same rank
        fits = [n for n, t in shapes.items()
                if len(t) == len(s) and all(a == b or 1 in (a, b) for a, b in zip(t, s))]
    count = 1 if op == "resize_to" else draw(st.integers(1, 2))
    return [draw(st.sampled_from(fits)) if fits else cur for _ in range(count)]


def _pseudo_block(draw: st.DrawFn, s: Shape) -> tuple[str, Shape] | None:
    """One of the spec's own blocks (residual unit or two-branch concat) on a (C, H, W) map."""
    if len(s) != 3:
        return None
    if draw(st.booleans()):
        ch, stride = draw(st.integers(1, 6)), draw(st.integers(1, 2))
        return f"{{op: res, ch: {ch}, stride: {stride}}}", (ch, (s[1] - 1) // stride + 1, (s[2] - 1) // stride + 1)
    a, b = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return f"{{op: branch, a: {a}, b: {b}}}", (a + b, s[1], s[2])


@st.composite
def spec_text(draw: st.DrawFn, ops: list[str] | None = None) -> str:
    """A spec of 1..8 nodes over a random (C, H, W), (L, D) or (D,) input."""
    rank = draw(st.sampled_from([3, 3, 3, 3, 2, 2, 1]))
    dims = [draw(st.integers(1, 4))] + [draw(st.integers(2, 12)) for _ in range(rank - 1)]
    shapes: dict[str, Shape] = {"input": tuple(dims)}
    lines = ["name: fuzz", f"input: {_yaml(dims)}", BLOCKS.rstrip(), "nodes:"]
    cur = "input"
    names = ops or sorted(OP_ARGS)
    for i in range(draw(st.integers(1, 8))):
        if draw(st.integers(0, 9)) == 0:
            block = _pseudo_block(draw, shapes[cur])
            if block is not None:
                lines.append(f"  n{i}: {{in: [{_yaml_name(cur)}], {block[0][1:]}")
                shapes[cur := f"n{i}"] = block[1]
            continue
        op = draw(st.sampled_from(names))
        args = OP_ARGS[op](draw, shapes[cur])
        if args is None:
            continue
        lo, hi = library.get(op).arity
        ins = [cur] + (_partners(draw, op, args, cur, shapes) if lo > 1 or (hi or 1) > 1 else [])
        if op in INPUTS:  # index and size inputs that must hold valid values: written before the node
            ins = INPUTS[op](draw, args, cur, shapes, lines, i)
        if op == "matmul" and shapes[cur][-1] != shapes[ins[1]][-2]:  # x @ x^T always fits: add the transpose
            s = shapes[cur]
            lines.append(f"  t{i}: {{op: transpose, dim0: -1, dim1: -2, in: [{_yaml_name(cur)}]}}")
            shapes[f"t{i}"] = (*s[:-2], s[-1], s[-2])
            ins = [cur, f"t{i}"]
        block = library.get(op)
        try:
            full, in_shapes = _full(op, args), [shapes[n] for n in ins]
            outs = block.out_shapes(full, in_shapes)
        except ShapeError:
            continue
        if any(not out or min(out) < 1 or prod(out) > MAX_ELEMENTS for out in outs):
            continue
        fields = [f"op: {op}", *(f"{k}: {_yaml(v)}" for k, v in args.items()),
                  f"in: [{', '.join(_yaml_name(n) for n in ins)}]"]
        lines.append(f"  n{i}: {{{', '.join(fields)}}}")
        if block.outputs is None:
            shapes[cur := f"n{i}"] = outs[0]
        else:  # read as n{i}[K]; the next node continues from one of them
            shapes.update({f"n{i}[{k}]": out for k, out in enumerate(outs)})
            cur = f"n{i}[{draw(st.integers(0, len(outs) - 1))}]"
    if cur == "input" or "[" in cur:
        lines.append(f"  last: {{op: identity, in: [{_yaml_name(cur)}]}}")
    return "\n".join(lines) + "\n"
