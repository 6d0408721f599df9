"""A compiled model survives pickle and deepcopy as what it was: an ArchcModule with its spec paths (feature
extraction names), its input errors, its tensors, requires_grad flags, mode and attributes. fx alone pickles a
GraphModule as generated code and re-traces it on load, which loses all that and cannot re-trace every model
(swin_v2_t's helpers iterate over sizes). Also: torchvision's feature extraction on a ViT (parameter nodes
and self-attention) by spec path."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import fx

import archc
from archc.backend.graph_module import ArchcModule

fe = pytest.importorskip("torchvision.models.feature_extraction")

TINY_VIT = {"image_size": 32, "patch": 8, "layers": 2, "heads": 2, "hidden": 16, "mlp_dim": 32, "num_classes": 5}


def _randomised(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5)
    return model.eval()


@pytest.mark.parametrize(("name", "params", "size"), [("resnet18", {"num_classes": 7}, 64),
                                                      ("vit_b_16", TINY_VIT, 32), ("swin_v2_t", {}, 256)])
def test_pickle_round_trip(name: str, params: dict, size: int) -> None:
    model = _randomised(archc.compile(name, **params))
    model.note = "kept"
    first = next(iter(model.parameters()))
    first.requires_grad_(False)
    again = pickle.loads(pickle.dumps(model))
    assert isinstance(again, ArchcModule) and not again.training and again.note == "kept"
    assert [p.requires_grad for p in again.parameters()] == [p.requires_grad for p in model.parameters()]
    assert model.state_dict().keys() == again.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    x = torch.randn(1, 3, size, size)
    assert torch.equal(model(x), again(x))
    assert fe.get_graph_node_names(again) == fe.get_graph_node_names(model)
    with pytest.raises(archc.InputShapeError):
        again(torch.randn(1, 4, size, size))


def test_deepcopy_keeps_input_errors() -> None:
    model = archc.compile("resnet18", num_classes=3)
    twin = copy.deepcopy(model)
    assert isinstance(twin, ArchcModule) and twin.archc_graph is not model.archc_graph
    with pytest.raises(archc.InputShapeError):
        twin(torch.randn(1, 4, 32, 32))


def test_a_changed_model_pickles_as_a_plain_graph_module() -> None:
    """A layer replaced after compiling no longer fits the spec: fx's own pickling, as before (it runs)."""
    model = archc.compile("resnet18", num_classes=3).eval()
    model.fc = torch.nn.Linear(512, 2)
    again = pickle.loads(pickle.dumps(model))
    assert isinstance(again, fx.GraphModule) and not isinstance(again, ArchcModule)
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(model(x), again(x)) and again(x).shape == (1, 2)


def test_feature_extraction_on_a_vit_by_spec_path() -> None:
    """Parameter nodes named like their tensor (encoder.pos_embedding) and self-attention trace by spec path;
    the features are the model's own tensors."""
    model = _randomised(archc.compile("vit_b_16", **TINY_VIT))
    train, evaluation = fe.get_graph_node_names(model)
    assert "encoder.pos_embedding" in evaluation and "class_token" in evaluation
    attention = "encoder.layers.encoder_layer_0.self_attention"
    assert attention in evaluation
    x = torch.randn(2, 3, 32, 32)
    out = fe.create_feature_extractor(model, {"encoder.pos_embedding": "pos", attention: "att",
                                              "heads.head": "logits"})(x)
    assert torch.equal(out["logits"], model(x))
    tokens = {}
    handle = model.get_submodule(attention).register_forward_hook(lambda m, i, o: tokens.setdefault("att", o))
    model(x)
    handle.remove()
    assert torch.allclose(out["att"], tokens["att"], atol=1e-6)
    assert out["pos"].shape == (2, 17, 16)
