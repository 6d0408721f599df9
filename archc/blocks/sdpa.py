"""scaled_dot_product_attention: softmax(q k^T * scale) v over inputs q, k, v (in that order) of shapes
(..., L, E), (..., S, E), (..., S, Ev) -> (..., L, Ev) (torch.nn.functional.scaled_dot_product_attention).

Leading dims (heads, ...) broadcast like `add`; `dropout_p` applies in training mode only. MACs:
L * S * (E + Ev) per leading index (q k^T and the product with v), as torch.utils.flop_counter
counts (FLOPs / 2); the causal mask saves nothing there.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

from archc.blocks.base import Args, Block, Param, Shape
from archc.blocks.matmul import leading
from archc.blocks.registry import register
from archc.errors import ShapeError

PARAMS = {"is_causal": Param("bool", False), "scale": Param("float|none", None, doc="default 1 / sqrt(E)"),
          "dropout_p": Param("float", 0.0, min=0, max=1)}
_CLASS: Any = None


def shape(args: Args, ins: Sequence[Shape]) -> Shape:
    lead = leading(ins, 2, "scaled_dot_product_attention", 3)
    q, k, v = ins
    if q[-1] != k[-1]:
        raise ShapeError(f"query {q} and key {k} differ in their last dim ({q[-1]} vs {k[-1]})",
                         hint="inputs are q, k, v in that order; q and k need the same embedding size E")
    if k[-2] != v[-2]:
        raise ShapeError(f"key {k} and value {v} differ in sequence length ({k[-2]} vs {v[-2]})",
                         hint="inputs are q, k, v in that order; k and v need the same length S")
    return (*lead, q[-2], v[-1])


def macs(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    q, k, v = ins
    return prod(out[:-2]) * q[-2] * k[-2] * (q[-1] + v[-1])


def other_ops(args: Args, ins: Sequence[Shape], out: Shape) -> int:
    return prod(out[:-2]) * ins[0][-2] * ins[1][-2]  # the softmax over the attention scores


def module_class() -> Any:
    """The nn.Module, made on first use so that importing the block library does not import torch."""
    global _CLASS
    if _CLASS is None:
        from torch import Tensor, nn
        from torch.nn import functional

        class ScaledDotProductAttention(nn.Module):
            """F.scaled_dot_product_attention with dropout only while training."""

            def __init__(self, is_causal: bool = False, scale: float | None = None, dropout_p: float = 0.0):
                super().__init__()
                self.is_causal, self.scale, self.dropout_p = is_causal, scale, dropout_p

            def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
                return functional.scaled_dot_product_attention(
                    q, k, v, dropout_p=self.dropout_p if self.training else 0.0, is_causal=self.is_causal,
                    scale=self.scale)

            def extra_repr(self) -> str:
                return f"is_causal={self.is_causal}, scale={self.scale}, dropout_p={self.dropout_p}"

        ScaledDotProductAttention.__module__ = __name__
        ScaledDotProductAttention.__qualname__ = "ScaledDotProductAttention"  # pickle finds it via __getattr__
        _CLASS = ScaledDotProductAttention
    return _CLASS


def __getattr__(name: str) -> Any:
    if name == "ScaledDotProductAttention":
        return module_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build(args: Args, ins: Sequence[Shape]) -> Any:
    scale = None if args["scale"] is None else float(args["scale"])
    return module_class()(args["is_causal"], scale, float(args["dropout_p"]))


DOC = ("scaled_dot_product_attention: softmax(q k^T * scale) v over inputs q (..., L, E), k (..., S, E), "
       "v (..., S, Ev); dropout_p in training only.")
register(Block("scaled_dot_product_attention", DOC, PARAMS, shape, build=build, macs=macs, other_ops=other_ops,
               arity=(3, 3), window=lambda a, s, o: None, category="attn",
               tags=frozenset({"keeps_output"})))  # flash kernels (CPU and CUDA) save the output for backward
