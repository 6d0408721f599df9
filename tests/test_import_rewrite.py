"""The rewrite stage of `archc import` (archc/importer/rewrite.py) on small modules written here: each pattern
imports exact (strict load, same outputs), and what it cannot rewrite stays a named error."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

import archc  # noqa: E402
from archc.errors import UsageError  # noqa: E402
from archc.importer.fold import over_i  # noqa: E402
from tests.test_import import assert_exact  # noqa: E402

nn = torch.nn


def _roundtrip(module: torch.nn.Module, shape: tuple[int, ...], tmp_path: Path) -> str:
    """Import, compile, load strict and compare outputs; the spec text."""
    torch.manual_seed(0)
    module.eval()
    text = archc.from_module(module, shape)
    path = tmp_path / "m.yaml"
    path.write_text(text)
    assert_exact(module, path, shape, batch=3, atol=1e-6)
    return text


class _Layer(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, 2, 3, padding=1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return torch.relu(self.conv(torch.cat(feats, 1)))


class _Dense(nn.Module):
    """DenseNet's pattern: each layer reads the concat of everything before it, the block returns them all."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleDict({f"layer{k + 1}": _Layer(4 + 2 * k) for k in range(3)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.layers.values():
            feats.append(layer(feats))
        return torch.cat(feats, 1)


def test_growing_concats_become_a_chain(tmp_path: Path) -> None:
    text = _roundtrip(_Dense(), (4, 8, 8), tmp_path)
    assert 'layers: {op: layer, repeat: 3, name: "layer${i + 1}"}' in text  # one block: each reads one value
    assert "concat: {op: concat, in: [input, relu]}" in text  # (all before, new) at the end of each layer


class _Params(nn.Module):
    """A parameter combined with the input four ways: ConvNeXt's layer scale, ViT's class token and positions,
    timm's Scale (a (C,) vector viewed as (C, 1, 1))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 4, stride=4)
        self.layer_scale = nn.Parameter(torch.ones(8, 1, 1))
        self.scale = nn.Parameter(torch.ones(8))
        self.cls = nn.Parameter(torch.zeros(1, 1, 8))
        self.pos = nn.Parameter(torch.zeros(1, 5, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer_scale * self.conv(x)
        x = x * self.scale.view(-1, 1, 1)
        n, c, h, w = x.shape
        x = x.reshape(n, c, h * w).permute(0, 2, 1)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        return (x + self.pos)[:, 0]


def test_parameters_used_in_the_forward_become_nodes(tmp_path: Path) -> None:
    text = _roundtrip(_Params(), (3, 8, 8), tmp_path)
    for line in ("layer_scale: layer_scale", "scale: {op: parameter, shape: [8], batch_dim: false}",
                 "reshape: {op: reshape, shape: [8, 1, 1]}", "mul: {op: mul, in: [layer_scale, reshape]}",
                 "reshape_1: {op: reshape, shape: [8, 4]}", "cls: class_token", "pos: pos_embedding",
                 "select: {op: select, dim: 1, index: 0}"):
        assert line in text, line


def test_a_size_that_depends_on_the_batch_is_a_named_error() -> None:
    class Mixer(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(1, x.shape[0] * 3, 8)  # the batch folded into the channels

    with pytest.raises(UsageError, match="the first size must be the batch"):
        archc.from_module(Mixer(), (3, 8))


class _Attention(nn.Module):
    """timm's qkv layout: permute(2, 0, 3, 1, 4) moves the 3 in front of the batch, then unbind(0)."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, 2, c // 2).permute(2, 0, 3, 1, 4).unbind(0)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).reshape(b, n, c)


def test_unbind_after_a_batch_moving_permute_becomes_selects(tmp_path: Path) -> None:
    text = _roundtrip(_Attention(), (5, 8), tmp_path)
    assert "permute: {op: permute, dims: [0, 2, 3, 1, 4]}" in text
    assert text.count("op: select, dim: 1") == 3


class _Aux(nn.Module):
    """A head that runs in training only (GoogLeNet's aux); ``drift``: the main path differs in training."""

    def __init__(self, drift: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.aux = nn.Conv2d(4, 4, 1)
        self.head = nn.Conv2d(4, 4, 1)
        self.drift = drift

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(x)
        if self.training and self.drift:
            y = y * 2
        out = self.head(y)
        return (out, self.aux(y)) if self.training else out


def test_training_only_heads_are_train_only_outputs(tmp_path: Path) -> None:
    text = _roundtrip(_Aux(), (3, 8, 8), tmp_path)
    assert "outputs: [head, {node: aux, train_only: true}]" in text
    with pytest.raises(UsageError, match="module 'aux' .* has weights but its forward never runs it"):
        archc.from_module(_Aux(drift=True), (3, 8, 8))  # its training graph is another model: not imported


def test_float_arguments_growing_linearly_fold_to_an_expression() -> None:
    from archc.expr import evaluate

    vec = [0.1 * k / 35 for k in range(3, 30)]  # ConvNeXt-B's stochastic depth in stage 3
    expr = over_i(vec)
    assert isinstance(expr, str) and len(expr) < 80
    assert all(abs(evaluate(expr[2:-1], {"i": i}) - v) < 1e-15 for i, v in enumerate(vec))


def test_identity_modules_leave_no_node(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Identity(), nn.ReLU())
    text = _roundtrip(net, (3, 4, 4), tmp_path)
    assert "identity" not in text and "  2: relu" in text


def test_activations_with_their_own_ops_import_exact(tmp_path: Path) -> None:
    """PReLU (its weight at the node's path), Mish, ELU, Softplus, GroupNorm: issue 26's ops as leaves."""
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.PReLU(4, init=0.1), nn.Mish(), nn.ELU(alpha=0.5),
                        nn.Softplus(beta=2.0), nn.GroupNorm(2, 4))
    text = _roundtrip(net, (3, 4, 4), tmp_path)
    assert "{op: prelu, num_parameters: 4, init: 0.1}" in text and "{op: elu, alpha: 0.5}" in text
