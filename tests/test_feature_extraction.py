"""Feature extraction by spec path (issue 26): torch.fx re-traces keep every node's spec path.

torchvision's create_feature_extractor and get_graph_node_names name a node by the module scope it runs in
plus its fx name; a compiled spec's forward is flat, so archc's module (backend/graph_module.py) replays its
graph under the tracer with each function node named by its path inside its block's scope.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from torch import fx
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

import archc

RETURN = {"layer1.0.add": "first_add", "layer3.5.add": "late_add", "layer4": "layer4", "flatten": "pooled"}


def _names(model: torch.nn.Module) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision warns when train and eval graphs differ
        return get_graph_node_names(model)[1]


@pytest.fixture(scope="module")
def twins() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    reference = torchvision.models.resnet50().eval()
    with torch.no_grad():  # non-trivial statistics, so every feature differs from its neighbours
        for name, t in reference.state_dict().items():
            if "running_var" in name:
                t.copy_(torch.rand_like(t) + 0.5)
            elif "running_mean" in name:
                t.copy_(torch.randn_like(t) * 0.1)
    model = archc.compile("resnet50").eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    return model, reference


def test_resnet50_features_by_spec_path_equal_torchvisions(twins) -> None:
    """The issue's call, `create_feature_extractor(model, {"layer1.0.add": ...})`, on the compiled spec and on
    torchvision's resnet50 with the same weights: the same features, bit for bit."""
    model, reference = twins
    ours, theirs = create_feature_extractor(model, RETURN), create_feature_extractor(reference, RETURN)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        got, want = ours(x), theirs(x)
    assert list(got) == list(want) == list(RETURN.values())
    for key in RETURN.values():
        assert got[key].shape == want[key].shape and torch.equal(got[key], want[key]), key
    assert got["first_add"].shape == (2, 256, 16, 16) and got["pooled"].shape == (2, 2048)


def test_node_names_are_spec_paths(twins) -> None:
    """get_graph_node_names lists every spec node by its path (modules and parameter-free nodes alike), in
    execution order; the residual adds are where torchvision has them."""
    model, reference = twins
    names = _names(model)
    paths = [n.path for n in model.archc_graph.nodes if n.op != "identity"]
    assert [n for n in names if n in set(paths)] == paths
    adds = [n for n in names if n.endswith(".add")]
    assert len(adds) == 16 and adds == [n for n in _names(reference) if n.endswith(".add")]


def test_nested_parameter_free_blocks_keep_their_paths(tmp_path: Path) -> None:
    """Function nodes inside blocks that hold no module (no container at that path), several outputs
    (`split[K]`: `split.getitem`, `split.getitem_1`), a concat, a scalar op and a numbered seq item, extracted
    by path."""
    spec = tmp_path / "nested.yaml"
    spec.write_text("name: nested\ninput: [4, 6, 6]\nblocks:\n  mix:\n    nodes:\n"
                    "      halves: {op: split, sizes: [2, 2], dim: 1}\n"
                    "      swapped: {op: concat, in: ['halves[1]', 'halves[0]']}\n"
                    "      halved: {op: scalar, mul: 0.5}\n"
                    "nodes:\n  conv: {op: conv2d, out_channels: 4, kernel_size: 1}\n"
                    "  stage: {op: mix}\n  head: {seq: [flatten, {op: linear, out_features: 3}]}\n")
    model = archc.compile(spec).eval()
    names = _names(model)
    for path in ("stage.halves.getitem", "stage.halves.getitem_1", "stage.swapped", "stage.halved",
                 "head.0.flatten", "head.1"):  # a numbered function node: its path, then torch's name
        assert path in names, (path, names)
    x = torch.randn(2, 4, 6, 6)
    features = create_feature_extractor(model, {"stage.swapped": "swapped", "stage.halved": "half", "head.0": "flat"})
    with torch.no_grad():
        got = features(x)
        conv = model.conv(x)
    assert torch.equal(got["swapped"], torch.cat([conv[:, 2:], conv[:, :2]], dim=1))
    assert torch.equal(got["half"], got["swapped"] * 0.5)
    assert torch.equal(got["flat"], got["half"].flatten(1))


def test_fx_symbolic_trace_names_nodes_by_path(twins) -> None:
    """Plain torch.fx tracing gives one node per spec node, named by its path with `_`, computing the same."""
    model, _ = twins
    traced = fx.symbolic_trace(model)
    names = [n.name for n in traced.graph.nodes]
    assert "layer1_0_add" in names and "layer4_2_add" in names and "flatten" in names
    assert len([n for n in traced.graph.nodes if n.op in ("call_module", "call_function")]) == len(
        [n for n in model.graph.nodes if n.op in ("call_module", "call_function")])
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(traced(x), model(x))


def test_helpers_that_branch_on_sizes_trace(tmp_path: Path) -> None:
    """A helper that reads sizes (resize_to) is one traced node, not traced through (fx would refuse its
    branch on a traced size)."""
    spec = tmp_path / "resize.yaml"
    spec.write_text("name: resize\ninput: [2, 8, 8]\nnodes:\n"
                    "  down: {op: max_pool2d, kernel_size: 2}\n  up: {op: resize_to, in: [down, input]}\n"
                    "  out: {op: add, in: [up, input]}\n")
    model = archc.compile(spec).eval()
    traced = fx.symbolic_trace(model)
    assert [n.name for n in traced.graph.nodes if n.op == "call_function"] == ["up", "out"]
    x = torch.randn(2, 2, 8, 8)
    assert torch.equal(traced(x), model(x))
    assert "up" in _names(model)


def test_train_only_nodes_by_path(tmp_path: Path) -> None:
    """A train-only function node (run through the model's call table) is listed under its path in train
    mode and extracted by it; eval mode has the eval nodes only."""
    spec = tmp_path / "aux.yaml"
    spec.write_text("name: aux\ninput: [3, 16, 16]\nnodes:\n  conv: {op: conv2d, out_channels: 4, kernel_size: 3}\n"
                    "  pool: {op: adaptive_avg_pool2d, output_size: 1}\n  flat: flatten\n"
                    "  head: {op: linear, out_features: 5}\n"
                    "  aux_pool: {op: adaptive_avg_pool2d, output_size: 2, in: conv}\n  aux_flat: flatten\n"
                    "  aux: {op: linear, out_features: 5}\noutputs: [head, {node: aux, train_only: true}]\n")
    model = archc.compile(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        train, evaluation = get_graph_node_names(model)
        features = create_feature_extractor(model, train_return_nodes={"aux_flat": "aux"},
                                            eval_return_nodes={"flat": "flat"})
    assert "aux_flat.flatten" in train and "aux" in train and "aux" not in evaluation
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        got = features.train()(x)["aux"]
        want = model.aux_pool(model.conv(x)).flatten(1)
    assert torch.equal(got, want)
