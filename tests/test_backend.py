"""The compiled module: meta device, torch.compile(fullgraph=True), torch.export, no per-call walking."""

from __future__ import annotations

import pytest
import torch
from torch import fx

import archc
from archc import blocks
from archc.blocks.base import Block, Param


def test_is_straight_line_fx_code():
    model = archc.compile("resnet18")
    assert isinstance(model, fx.GraphModule)
    code = model.code
    assert "layer1" in code and "for " not in code  # generated, unrolled forward


def test_meta_build_allocates_nothing():
    model = archc.compile("vit_h_14", device="meta")
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 632_045_800


def test_torch_compile_fullgraph():
    model = archc.compile("resnet18", num_classes=10).eval()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(compiled(x), model(x), atol=1e-5)


def test_torch_export():
    model = archc.compile("mobilenet_v2", width_mult=0.5).eval()
    x = torch.randn(1, 3, 64, 64)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        assert torch.allclose(exported.module()(x), model(x), atol=1e-5)


def test_param_nodes_and_keys_follow_spec_names():
    keys = archc.compile("vit_b_32", device="meta").state_dict()
    assert "class_token" in keys and "encoder.pos_embedding" in keys
    assert "encoder.layers.encoder_layer_11.self_attention.in_proj_weight" in keys


def test_train_mode_backward_runs():
    model = archc.compile("convnext_tiny", depths=[1, 1, 1, 1], num_classes=3).train()
    out = model(torch.randn(2, 3, 64, 64))
    out.sum().backward()
    assert model.get_submodule("features.1.0").layer_scale.grad is not None


def test_unet_odd_size_real_forward():
    model = archc.compile("unet", f=[4, 8, 16, 32], input_shape=[1, 100, 100]).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 100, 100)).shape == (1, 2, 100, 100)


def test_multiple_outputs(tmp_path):
    spec = tmp_path / "two.yaml"
    spec.write_text("name: two\ninput: [3, 16, 16]\noutputs: [a, b]\nnodes:\n"
                    "  a: {op: conv2d, out_channels: 4, kernel_size: 3}\n  b: {op: relu, in: a}\n")
    a, b = archc.compile(spec)(torch.randn(1, 3, 16, 16))
    assert a.shape == b.shape == (1, 4, 14, 14)
    assert torch.equal(b, a.relu())


def test_plugin_blocks_from_entry_points(monkeypatch):
    class EP:
        name = "double"

        def load(self):
            def function(args):
                return (lambda x: x * 2), {}

            return [Block("test_double", "test_double: x * 2", {"unused": Param("int", 0)}, lambda a, s: s[0],
                          kind="function", function=function)]

    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [EP()] if group == "archc.blocks" else [])
    blocks.registry.load_plugins()
    try:
        assert blocks.get("test_double").name == "test_double"
        with pytest.raises(ValueError, match="already registered"):
            blocks.registry.load_plugins()
    finally:
        blocks.registry._BLOCKS.pop("test_double")


def test_groups_index_like_sequential():
    model = archc.compile("resnet18", device="meta")
    assert len(model.layer4) == 2 and model.layer4[-1] is model.layer4["1"]
    assert isinstance(model.layer4[0].conv1, torch.nn.Conv2d)
    with pytest.raises(TypeError, match="create_feature_extractor"):
        model.layer1(torch.empty(1, 64, 8, 8, device="meta"))


def test_feature_extraction_by_node_path():
    from torchvision.models.feature_extraction import create_feature_extractor

    model = archc.compile("resnet18").eval()
    features = create_feature_extractor(model, {"layer3.1.relu": "c4", "layer4.1.relu": "c5"})
    out = features(torch.randn(1, 3, 64, 64))
    assert out["c4"].shape == (1, 256, 4, 4) and out["c5"].shape == (1, 512, 2, 2)


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0", "mobilenet_v2"])
def test_training_gradients_match_torchvision(name):
    """Residual adds run in place (like torchvision's `out += identity`); gradients stay exact."""
    import torchvision

    torch.manual_seed(0)
    tv = getattr(torchvision.models, name)().train()
    model = archc.compile(name).train()
    model.load_state_dict(tv.state_dict())
    for m in [*tv.modules(), *model.modules()]:  # no randomness: dropout and stochastic depth off
        if isinstance(m, torch.nn.Dropout) or type(m).__name__ == "StochasticDepth":
            m.p = 0.0
    x = torch.randn(2, 3, 64, 64)
    model(x).square().mean().backward()
    tv(x).square().mean().backward()
    grads = dict(tv.named_parameters())
    for key, p in model.named_parameters():
        assert torch.allclose(p.grad, grads[key].grad, atol=1e-5, rtol=1e-4), key
