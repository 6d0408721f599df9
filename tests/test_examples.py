"""specs/examples/: users' modules written in YAML only, each equal to a plain PyTorch reference.

Each reference is the standard formulation written here as an nn.Module whose attribute names are
the spec's node names: same parameter count, its state_dict loads with strict=True, and the same
outputs on random inputs with `randomize_`d weights (BatchNorm statistics included). The
hand-written attention must equal torch.nn.MultiheadAttention given its weights.
"""

from __future__ import annotations

import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import archc
from tests.helpers import randomize_, twin_mismatch

EXAMPLES = Path(__file__).resolve().parent.parent / "specs" / "examples"
RTOL = 1e-5


# --- references ------------------------------------------------------------------------------


class ChannelAttention(nn.Module):
    def __init__(self, c: int, ratio: int = 16) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(c, c // ratio, 1, bias=False), nn.ReLU(),
                                 nn.Conv2d(c // ratio, c, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(gate)


class SpatialAttention(nn.Module):
    def __init__(self, kernel: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    def __init__(self, c: int, ratio: int = 16) -> None:
        super().__init__()
        self.channel_attention = ChannelAttention(c, ratio)
        self.spatial_attention = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial_attention(self.channel_attention(x))


class ECA(nn.Module):
    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.mean((2, 3)).unsqueeze(1))  # (B, 1, C)
        return x * torch.sigmoid(y).transpose(1, 2).unsqueeze(-1)


class CoordAttention(nn.Module):
    """Hou et al.'s CoordAtt (h_swish == hardswish), input and output channels equal."""

    def __init__(self, c: int, reduction: int = 32) -> None:
        super().__init__()
        mip = max(8, c // reduction)
        self.conv1, self.bn1, self.act = nn.Conv2d(c, mip, 1), nn.BatchNorm2d(mip), nn.Hardswish()
        self.conv_h, self.conv_w = nn.Conv2d(mip, c, 1), nn.Conv2d(mip, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        x_h = F.adaptive_avg_pool2d(x, (h, 1))
        x_w = F.adaptive_avg_pool2d(x, (1, w)).permute(0, 1, 3, 2)
        y = self.act(self.bn1(self.conv1(torch.cat([x_h, x_w], 2))))
        y_h, y_w = torch.split(y, [h, w], 2)
        return x * self.conv_w(y_w.permute(0, 1, 3, 2)).sigmoid() * self.conv_h(y_h).sigmoid()


class SKConv(nn.Module):
    def __init__(self, c: int, groups: int = 32, r: int = 16, min_d: int = 32) -> None:
        super().__init__()
        d = max(c // r, min_d)
        self.conv1, self.conv2 = (nn.Sequential(nn.Conv2d(c, c, 3, padding=k, dilation=k, groups=groups, bias=False),
                                                nn.BatchNorm2d(c), nn.ReLU()) for k in (1, 2))
        self.fc = nn.Sequential(nn.Conv2d(c, d, 1, bias=False), nn.BatchNorm2d(d), nn.ReLU())
        self.fc1, self.fc2 = nn.Conv2d(d, c, 1), nn.Conv2d(d, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u1, u2 = self.conv1(x), self.conv2(x)
        z = self.fc((u1 + u2).mean((2, 3), keepdim=True))
        attention = torch.softmax(torch.stack([self.fc1(z), self.fc2(z)], 1), 1)
        return (torch.stack([u1, u2], 1) * attention).sum(1)


class NonLocal(nn.Module):
    """Embedded-Gaussian non-local block with W = 1x1 conv + BN, residual."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.inter = c // 2
        self.theta, self.phi, self.g = (nn.Conv2d(c, self.inter, 1) for _ in range(3))
        self.W = nn.Sequential(nn.Conv2d(self.inter, c, 1), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        theta = self.theta(x).view(b, self.inter, -1).permute(0, 2, 1)
        phi = self.phi(x).view(b, self.inter, -1)
        g = self.g(x).view(b, self.inter, -1).permute(0, 2, 1)
        y = torch.softmax(theta @ phi, dim=-1) @ g
        return self.W(y.permute(0, 2, 1).reshape(b, self.inter, h, w)) + x


class Conv(nn.Module):
    """ultralytics.nn.modules.conv.Conv: conv + BN(eps 1e-3, momentum 0.03) + SiLU."""

    def __init__(self, c1: int, c2: int, k: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=0.001, momentum=0.03)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c: int, shortcut: bool) -> None:
        super().__init__()
        self.cv1, self.cv2, self.add = Conv(c, c, 3), Conv(c, c, 3), shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, e: float = 0.5) -> None:
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c)
        self.cv2 = Conv((2 + n) * self.c, c2)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


# --- helpers ---------------------------------------------------------------------------------


def _named(**modules: nn.Module) -> nn.Module:
    """The spec's top-level nodes as one module (state_dict keys `name.*`)."""
    return nn.Sequential(OrderedDict(modules))


def _inputs(shape: tuple[int, ...], seed: int = 1) -> torch.Tensor:
    return torch.randn(2, *shape, generator=torch.Generator().manual_seed(seed))


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _assert_equal_to(name: str, ref: nn.Module, **params: object) -> None:
    """The example spec compiles to `ref`: parameters, strict load, outputs on randomised weights."""
    spec = EXAMPLES / f"{name}.yaml"
    analysis = archc.check(spec, params)
    shape = analysis.graph.inputs[0][1]
    model = archc.compile(spec, **params).eval()
    randomize_(ref, 0, torch.randn(4, *shape, generator=torch.Generator().manual_seed(1))).eval()
    assert _count(model) == _count(ref) == analysis.params
    model.load_state_dict(ref.state_dict(), strict=True)
    x = _inputs(shape)
    with torch.no_grad():
        problem = twin_mismatch(model(x), ref(x), RTOL)
    assert problem is None, problem


# --- the examples ----------------------------------------------------------------------------


def test_cbam():
    _assert_equal_to("cbam", _named(cbam=CBAM(64, 16)))


def test_eca():
    _assert_equal_to("eca", _named(eca=ECA(3)))
    _assert_equal_to("eca", _named(eca=ECA(5)), k=5)


def test_coord_attention():
    _assert_equal_to("coord_attention", _named(coord_attention=CoordAttention(64, 32)))


def test_selective_kernel():
    _assert_equal_to("selective_kernel", _named(sk=SKConv(64, groups=32)))


def test_non_local():
    _assert_equal_to("non_local", _named(non_local=NonLocal(64)))


@pytest.mark.parametrize("n,shortcut", [(1, False), (2, True), (3, True)])
def test_c2f(n, shortcut):
    _assert_equal_to("c2f", _named(c2f=C2f(64, 128, n, shortcut)), n=n, shortcut=shortcut)


def test_mhsa_equals_torch_multihead_attention():
    spec = EXAMPLES / "mhsa.yaml"
    seq, dim = archc.check(spec).graph.inputs[0][1]
    model = archc.compile(spec, heads=4).eval()
    mha = randomize_(nn.MultiheadAttention(dim, 4, batch_first=True), 0).eval()
    assert _count(model) == _count(mha)
    q, k, v = mha.in_proj_weight.chunk(3)
    qb, kb, vb = mha.in_proj_bias.chunk(3)
    weights = {"q_proj.weight": q, "q_proj.bias": qb, "k_proj.weight": k, "k_proj.bias": kb,
               "v_proj.weight": v, "v_proj.bias": vb,
               "out_proj.weight": mha.out_proj.weight, "out_proj.bias": mha.out_proj.bias}
    model.load_state_dict({f"attention.{k}": t for k, t in weights.items()}, strict=True)
    x = _inputs((seq, dim))
    with torch.no_grad():
        problem = twin_mismatch(model(x), mha(x, x, x, need_weights=False)[0], RTOL)
    assert problem is None, problem


# --- ResNet-50 + CBAM ------------------------------------------------------------------------


def _bottleneck_with_cbam(self: torchvision.models.resnet.Bottleneck, x: torch.Tensor) -> torch.Tensor:
    """torchvision's Bottleneck.forward with CBAM on the residual branch before the addition."""
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.cbam(self.bn3(self.conv3(out)))
    identity = x if self.downsample is None else self.downsample(x)
    return self.relu(out + identity)


def _resnet50_cbam() -> nn.Module:
    net = torchvision.models.resnet50()
    for block in net.modules():
        if isinstance(block, torchvision.models.resnet.Bottleneck):
            block.cbam = CBAM(block.bn3.num_features)
            block.forward = types.MethodType(_bottleneck_with_cbam, block)  # type: ignore[method-assign]
    return net


def test_resnet50_cbam():
    spec = EXAMPLES / "resnet50_cbam.yaml"
    analysis = archc.check(spec, input_shape=[3, 64, 64])
    cbam_params = sum(_count(CBAM(c)) for c, n in zip((256, 512, 1024, 2048), (3, 4, 6, 3)) for _ in range(n))
    assert analysis.params == archc.check("resnet50").params + cbam_params
    ref = randomize_(_resnet50_cbam(), 0, torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))).eval()
    model = archc.compile(spec, input_shape=[3, 64, 64]).eval()
    assert _count(model) == _count(ref) == analysis.params
    model.load_state_dict(ref.state_dict(), strict=True)
    x = _inputs((3, 64, 64))
    with torch.no_grad():
        problem = twin_mismatch(model(x), ref(x), RTOL)
    assert problem is None, problem
