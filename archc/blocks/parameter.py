"""parameter: a learned tensor of any shape as a node (relative position tables, learned queries, GRN's
gamma/beta, a cls/dist token pair, a temperature), stored under the node's own path like class_token.

`shape` is the per-sample shape; the stored tensor has a leading dimension of 1 (`batch_dim: true`,
timm's cls_token (1, 1, D)) or is `shape` itself (`batch_dim: false`, Swin's bias table). `init` fills
it as the spec's `init:` methods do (archc/backend/init.py). `combine` says what the node returns:
`none` the tensor itself, one copy per sample (the input only gives the batch size; it adds nothing
to the receptive field), `add`/`mul` the input plus/times it (broadcasting like `add`, equal rank),
`prepend`/`append` the input with it joined along `dim` (the other dims must match).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.merge import broadcast
from archc.blocks.reduce import sample_axis
from archc.blocks.registry import register
from archc.errors import ShapeError

# init method -> {argument: torch's default}; an argument another method reads is refused here
INITS: dict[str, dict[str, float]] = {
    "zeros": {}, "ones": {}, "normal": {"mean": 0.0, "std": 1.0},
    "trunc_normal": {"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0}, "uniform": {"a": 0.0, "b": 1.0},
    "constant": {"value": 0.0},
}
_NUMBERS = ("mean", "std", "a", "b", "value")

PARAMS = {
    "shape": Param("ints", min=1, doc="the per-sample shape (batch left out)"),
    "init": Param("str", "zeros", choices=tuple(INITS), doc="how it starts; its arguments below"),
    "mean": Param("float|none", None, doc="normal, trunc_normal (default 0)"),
    "std": Param("float|none", None, min=0, doc="normal, trunc_normal (default 1)"),
    "a": Param("float|none", None, doc="uniform's low end (0); trunc_normal's absolute lower bound (-2)"),
    "b": Param("float|none", None, doc="uniform's high end (1); trunc_normal's absolute upper bound (2)"),
    "value": Param("float|none", None, doc="constant (required there)"),
    "combine": Param("str", "none", choices=("none", "add", "mul", "prepend", "append"),
                     doc="none: the tensor itself per sample; add/mul with the input; prepend/append along dim"),
    "dim": Param("int", 1, doc="prepend/append: the torch dim to join along (not the batch)"),
    "batch_dim": Param("bool", True, doc="stored as (1, *shape) (true) or as shape itself (false)"),
}


def init_args(args: Args) -> dict[str, float]:
    """The init method's arguments, torch's defaults filled in; arguments it does not read are refused."""
    method = args["init"]
    wanted = INITS[method]
    stray = [k for k in _NUMBERS if args[k] is not None and k not in wanted]
    if stray:
        reads = ", ".join(wanted) or "no argument"
        raise ShapeError(f"init {method} does not read {', '.join(stray)}", hint=f"{method} reads {reads}")
    out = {k: float(v if args[k] is None else args[k]) for k, v in wanted.items()}
    if method == "constant" and args["value"] is None:
        raise ShapeError("init constant needs `value`", hint="e.g. `init: constant, value: 1.0`")
    if "a" in out and not out["a"] < out["b"]:
        raise ShapeError(f"init {method} needs a < b, got a={out['a']:g}, b={out['b']:g}",
                         hint="a and b are the low and high ends of the range")
    return out


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    init_args(args)
    p, x, mode = tuple(args["shape"]), ins[0], args["combine"]
    if not p:
        raise ShapeError("shape [] has no dimension", hint="a scalar (a temperature) is `shape: [1]`")
    if mode == "none":
        return p
    if mode in ("add", "mul"):
        return broadcast(args, [x, p])
    if len(p) != len(x):
        raise ShapeError(f"{mode} joins a {len(p)}-D parameter {p} to a {len(x)}-D input {x}",
                         hint="give the parameter the input's rank (e.g. [1, D] before (L, D) tokens)")
    a = sample_axis(args["dim"], len(x), mode)
    for i, (m, n) in enumerate(zip(p, x)):
        if i != a and m != n:
            raise ShapeError(f"{mode} along dim {args['dim']}: the parameter {p} and the input {x} differ on "
                             f"dim {i + 1}", hint="only the joined dim may differ")
    return (*x[:a], x[a] + p[a], *x[a + 1:])


def stored_shape(args: Args) -> tuple[int, ...]:
    return (1, *args["shape"]) if args["batch_dim"] else tuple(args["shape"])


def build(args: Args, ins: Sequence[Shape]) -> Any:
    import torch

    from archc.blocks.nn.init import METHODS as _METHODS  # the spec's init methods, so both fill alike

    tensor = torch.empty(stored_shape(args))
    kwargs = {("val" if k == "value" else k): v for k, v in init_args(args).items()}
    with torch.no_grad():
        _METHODS[args["init"]](tensor, **kwargs)
    return torch.nn.Parameter(tensor)


def combine_param(x: Any, p: Any, combine: str = "none", dim: int = 1, batch_dim: bool = True) -> Any:
    """The node's value from its input x (B, ...) and its parameter p (self-contained: export copies it)."""
    import torch

    if not batch_dim:
        p = p.unsqueeze(0)
    if combine == "add":
        return x + p
    if combine == "mul":
        return x * p
    per_sample = p.expand(x.shape[0], *p.shape[1:])
    if combine == "none":  # a fresh copy per sample: in-place ops after it never write into the parameter
        return per_sample.clone(memory_format=torch.contiguous_format)
    return torch.cat([per_sample, x] if combine == "prepend" else [x, per_sample], dim)


def function(args: Args) -> tuple[Any, dict[str, Any]]:
    return combine_param, {"combine": args["combine"], "dim": args["dim"], "batch_dim": args["batch_dim"]}


def other_ops(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return prod(out) if args["combine"] in ("add", "mul") else 0


register(Block("parameter", "parameter: a learned tensor of any `shape` with an `init` (zeros, ones, normal, "
               "trunc_normal, uniform, constant), returned per sample or combined with the input (add, mul, "
               "prepend, append); stored under the node's path.", PARAMS, shape, kind="parameter", build=build,
               function=function, count_params=lambda a, s: prod(a["shape"]), other_ops=other_ops,
               category="embed"))
