"""The few torch modules and functions the blocks' builders construct beyond torch.nn itself (backend/modules.py
re-exports them for export and for models pickled before they moved here)."""

from __future__ import annotations

import torch
from torch import Tensor, fx, nn
from torch.fx._symbolic_trace import is_fx_symbolic_tracing
from torch.nn import functional as F

__all__ = ["LayerNorm2d", "SelfAttention", "self_attention", "global_avg_pool", "reshape", "resize_to",
           "prepend_token", "add_param", "scale_by_param", "identity", "grid_coords", "full_like", "arange_like",
           "scalar_arith", "reshape_as"]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map (same keys as torchvision's LayerNorm2d)."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # (B, C, H, W)


class SelfAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention used as self-attention on (B, L, D); returns only the output.

    Eager, it is nn.MultiheadAttention itself (whose inference fast path runs when no gradient is
    recorded). Traced or scripted, it is always the general path: a trace must not depend on the grad
    mode it was recorded under (torch.jit.trace re-records under no_grad to check itself, and the two
    paths are different graphs), and TorchScript cannot compile the fast path's checks. An ArchcModule
    re-traced by torch.fx calls it as one node (``fx_leaf``), as fx calls the torch.nn module it stands for."""

    fx_leaf = True

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        if torch.jit.is_scripting() or torch.jit.is_tracing():
            return self.general(x)
        return self.eager(x)

    @torch.jit.unused
    def eager(self, x: Tensor) -> Tensor:
        if is_fx_symbolic_tracing():  # nn.MultiheadAttention's checks branch on sizes
            return self.general(x)
        return super().forward(x, x, x, need_weights=False)[0]

    def general(self, x: Tensor) -> Tensor:
        """The general path of nn.MultiheadAttention (batch first, self-attention, no masks)."""
        return self_attention(x, self.embed_dim, self.num_heads, self.in_proj_weight, self.in_proj_bias,
                              self.out_proj.weight, self.out_proj.bias, self.dropout, self.training)


def self_attention(x: Tensor, embed_dim: int, num_heads: int, in_w: Tensor, in_b: Tensor | None, out_w: Tensor,
                   out_b: Tensor | None, dropout: float, training: bool) -> Tensor:
    """SelfAttention's general path on (B, L, D). One call for torch.fx (``fx.wrap``): a SelfAttention is not a
    torch.nn module to fx's tracers, and nn.MultiheadAttention's checks branch on sizes."""
    t = x.transpose(0, 1)  # (L, B, D)
    out = F.multi_head_attention_forward(t, t, t, embed_dim, num_heads, in_w, in_b, None, None, False, dropout,
                                         out_w, out_b, training=training, need_weights=False)[0]
    return out.transpose(0, 1)


fx.wrap("self_attention")


def global_avg_pool(x: Tensor) -> Tensor:
    return x.mean(dim=(2, 3))  # (B, C, H, W) -> (B, C)


def reshape(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    return x.reshape(x.shape[0], *shape)


def resize_to(x: Tensor, ref: Tensor, mode: str = "nearest") -> Tensor:
    if torch.jit.is_tracing():  # no branch on sizes in a trace: at the same size interpolate is the identity
        return F.interpolate(x, size=ref.shape[-2:], mode=mode)
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    return F.interpolate(x, size=ref.shape[-2:], mode=mode)


def prepend_token(x: Tensor, token: Tensor) -> Tensor:
    return torch.cat([token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + L, D)


def add_param(x: Tensor, p: Tensor) -> Tensor:
    return x + p


def scale_by_param(x: Tensor, p: Tensor) -> Tensor:
    return p * x


def identity(x: Tensor) -> Tensor:
    return x


# Constants (blocks grid, full, arange): computed in the forward from the size of the map flowing in, on
# its device and in its floating dtype, one fresh copy per sample, so they behave as any other batch
# (concat, in-place) and follow any input size; nothing is stored (no state_dict key). Each helper is
# self-contained: `archc export --format python` copies its source.

def grid_coords(x: Tensor, offset: float = 0.0, scale: float = 1.0) -> Tensor:
    """(B, 2, H, W): (column + offset) * scale, then (row + offset) * scale, of every cell of x's map."""
    h, w = x.shape[-2], x.shape[-1]
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    gx = torch.arange(w, device=x.device).to(dtype) + offset
    gy = torch.arange(h, device=x.device).to(dtype) + offset
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"))  # (2, H, W), x first
    if scale != 1.0:
        grid = grid * scale
    return grid.unsqueeze(0).expand(x.shape[0], -1, -1, -1).contiguous()


def full_like(x: Tensor, value: float, channels: int | None = None) -> Tensor:
    """x's shape (with `channels` channels when given), every element `value`."""
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    return torch.full((x.shape[0], x.shape[1] if channels is None else channels, *x.shape[2:]), value,
                      dtype=dtype, device=x.device)


def arange_like(x: Tensor, start: float = 0.0, step: float = 1.0, end: float | None = None, dim: int = -1) -> Tensor:
    """(B, N): torch.arange(start, end, step), or start + k * step for k < x.shape[dim] when end is None."""
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    if end is None:
        values = torch.arange(x.shape[dim], device=x.device).to(dtype)
        if step != 1:
            values = values * step
        if start != 0:
            values = values + start
    else:
        values = torch.arange(start, end, step, dtype=torch.float64, device=x.device).to(dtype)
    return values.unsqueeze(0).expand(x.shape[0], -1).contiguous()


def scalar_arith(x: Tensor, mul: float = 1.0, div: float = 1.0, add: float = 0.0) -> Tensor:
    """((x * mul) / div) + add, each step only where it changes something; always a new tensor."""
    if mul == 1 and div == 1 and add == 0:
        return x.clone()
    if mul != 1:
        x = x * mul
    if div != 1:
        x = x / div
    if add != 0:
        x = x + add
    return x


def reshape_as(x: Tensor, like: Tensor) -> Tensor:
    return x.reshape(like.shape)
