"""Receptive fields through gates, against a gradient measurement on torchvision's model.

A squeeze-and-excitation gate modulates its input; its global branch is not the convolutional
path. With the gates replaced by identities, the centre pixel of the last feature map has a
nonzero input gradient over exactly the receptive field's rows (the input larger than the field).
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.ops import SqueezeExcitation

import archc


def _measured_rows(features: torch.nn.Module, size: int) -> int:
    for name, module in list(features.named_modules()):
        if isinstance(module, SqueezeExcitation):
            parent = features.get_submodule(name.rsplit(".", 1)[0]) if "." in name else features
            setattr(parent, name.rsplit(".", 1)[-1], torch.nn.Identity())
    features.eval()
    x = torch.randn(1, 3, size, size, requires_grad=True)
    out = features(x)
    out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    rows = (x.grad[0].abs().sum(dim=(0, 2)) > 0).nonzero().flatten()
    assert rows.min() > 0 and rows.max() < size - 1, "the input must be larger than the field"
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("spec,size", [("mobilenet_v3_small", 1024), ("efficientnet_b0", 1280)])
def test_receptive_field_through_gates_equals_gradient_extent(spec, size):
    analysis = archc.check(spec)
    torch.manual_seed(0)
    model = getattr(torchvision.models, spec)()  # random, nonzero conv weights: every path shows
    assert analysis.sees_whole_input
    assert analysis.receptive_field == _measured_rows(model.features, size)


def test_ungated_model_does_not_see_the_whole_input():
    assert not archc.check("resnet50").sees_whole_input
