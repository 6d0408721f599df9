"""archc/importer/batchless.py on small modules written here: einsum as matmul, and a relative-position bias
(a parameter table gathered through an index buffer, values with no batch) as parameter/buffer nodes. Each
imports exact; what it cannot rewrite stays a named error."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

import archc  # noqa: E402
from archc.blocks.buffer import _position_index  # noqa: E402
from archc.errors import UsageError  # noqa: E402
from archc.importer.batchless import _matmul_form  # noqa: E402
from tests.test_import_rewrite import _roundtrip  # noqa: E402

nn = torch.nn


class _RelAttention(nn.Module):
    """MaxViT's RelativePositionalMultiHeadAttention on (B, P, C), P the positions of a (wh, ww) window."""

    def __init__(self, wh: int, ww: int, unsqueeze: bool, flat_index: bool = True) -> None:
        super().__init__()
        self.p, self.unsqueeze, self.flat_index = wh * ww, unsqueeze, flat_index
        self.to_qkv = nn.Linear(8, 24)
        self.table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), 2))
        self.register_buffer("index", _position_index(wh, ww))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, p, c = x.shape
        q, k, v = torch.chunk(self.to_qkv(x), 3, dim=-1)
        q, k, v = (q.reshape(b, p, 2, c // 2).permute(0, 2, 1, 3), k.reshape(b, p, 2, c // 2).permute(0, 2, 1, 3),
                   v.reshape(b, p, 2, c // 2).permute(0, 2, 1, 3))
        scores = torch.einsum("B H I D, B H J D -> B H I J", q, k * 0.5)
        index = self.index.view(-1) if self.flat_index else self.index
        bias = self.table[index].view(self.p, self.p, -1).permute(2, 0, 1).contiguous()
        attn = torch.softmax(scores + (bias.unsqueeze(0) if self.unsqueeze else bias), dim=-1)
        out = torch.einsum("bhij,bhjd->bhid", attn, v)
        return out.permute(0, 2, 1, 3).reshape(b, p, c)


@pytest.mark.parametrize(("wh", "ww", "unsqueeze"), [(2, 2, True), (2, 3, False)])
def test_relative_position_bias_imports_exact(wh: int, ww: int, unsqueeze: bool, tmp_path: Path) -> None:
    text = _roundtrip(_RelAttention(wh, ww, unsqueeze), (wh * ww, 8), tmp_path)
    n = wh * ww
    for line in (f"table: {{op: parameter, shape: [{(2 * wh - 1) * (2 * ww - 1)}, 2], batch_dim: false}}",
                 f"index: {{op: buffer, table: relative_position_index, window: [{wh}, {ww}], flatten: false",
                 "index_select: {op: index_select, dim: 1, in: [table, flatten]}",
                 f"reshape_3: {{op: reshape, shape: [{n}, {n}, 2]}}", "permute_3: {op: permute, dims: [0, 3, 1, 2]}",
                 "transpose: {op: transpose, dim0: -2, dim1: -1}", "matmul_1: {op: matmul, in: [softmax,"):
        assert line in text, (line, text)
    # unsqueeze(0): (1, 2, n, n) per sample, the leading 1 dropped to broadcast after archc's batch as torch did
    assert (f"reshape_5: {{op: reshape, shape: [2, {n}, {n}]}}\n  add: {{op: add, in: [matmul, reshape_5]}}" in text) \
        is unsqueeze


def test_an_index_that_is_not_a_vector_stays_a_named_error() -> None:
    with pytest.raises(UsageError, match="'index' is a parameter or buffer used directly in a forward"):
        archc.from_module(_RelAttention(2, 2, True, flat_index=False), (4, 8))


def test_a_buffer_that_is_no_archc_table_stays_a_named_error() -> None:
    module = _RelAttention(2, 2, True)
    module.index.copy_(module.index.flip(0))
    with pytest.raises(UsageError, match="parameter or buffer used directly in a forward"):
        archc.from_module(module, (4, 8))


def test_other_einsums_stay_a_named_error() -> None:
    class Outer(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.einsum("bi,bj->bij", x, x)

    with pytest.raises(UsageError, match="function torch.functional.einsum at '<top>' has no archc op"):
        archc.from_module(Outer(), (4,))


@pytest.mark.parametrize(("eq", "form"), [("bhid,bhjd->bhij", "t"), ("B G H I J, B G H J D -> B G H I D", "n"),
                                          ("ij,jk->ik", "n"), ("id,jd->ij", "t"), ("bij,bjk->bki", None),
                                          ("bi,bj->bij", None), ("bij,cjk->bik", None), ("iid,jd->ij", None)])
def test_einsum_matmul_forms(eq: str, form: str | None) -> None:
    assert _matmul_form(eq) == form
