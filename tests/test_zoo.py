"""Generated from specs/: adding a spec adds its checks.

Every spec: passes `archc check`; every node's static shape equals the shape of a real forward
(on the meta device, so even ViT-H costs nothing). Specs with a torchvision twin: same
parameter count, same state_dict keys and shapes, and the same outputs on the same random weights
(`randomize_`: fresh torchvision weights would make the comparison vacuous; see test_zoo_mutants.py).
"""

from __future__ import annotations

import pytest
import torch

import archc
from tests.conftest import SPECS
from tests.helpers import (
    FULL_SIZE,
    SMALL,
    compare_with_twin,
    comparison_analysis,
    observed_shapes,
    random_twin,
    twin_module,
)

IDS = [p.stem for p in SPECS]
BIG = 200_000_000  # parameters above which the numeric comparison is a slow test
# Larger sizes whose family spec is compared numerically through a smaller size in the normal run
# (the same spec with other params): their numerics run with --slow, their keys and params always.
SIZES_IN_SLOW = frozenset({
    "swin_b", "swin_v2_b", "regnet_x_16gf", "regnet_x_32gf", "regnet_y_16gf", "regnet_y_32gf",
    "wide_resnet101_2", "resnext101_32x8d", "resnext101_64x4d", "efficientnet_b5", "efficientnet_b6",
    "efficientnet_b7", "efficientnet_v2_l", "densenet161", "densenet201", "convnext_large", "fcn_resnet101",
    "deeplabv3_resnet101", "vit_b_32", "resnet152",
})


def _twin(analysis: archc.analyze.Analysis) -> str | None:
    twin = analysis.graph.twin()
    return twin[0] if twin else None


def _inputs(analysis: archc.analyze.Analysis, device: str, batch: int = 2) -> list[torch.Tensor]:
    return [torch.randn(batch, *shape, device=device) for _, shape in analysis.graph.inputs]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_static_shapes_equal_observed(spec):
    analysis = archc.check(spec)
    model = archc.compile(spec, device="meta")
    seen = observed_shapes(model, *_inputs(analysis, "meta"))
    expected = {path: shape for p, i in analysis.info.items() if i.node.op != "identity"  # NAME[K]: each output
                for path, shape in ({f"{p}[{k}]": s for k, s in enumerate(i.outputs)} or {p: i.shape}).items()}
    assert set(expected) <= set(seen)
    mismatched = {p: (s, seen[p]) for p, s in expected.items() if seen[p] != s}
    assert not mismatched
    assert sum(p.numel() for p in model.parameters()) == analysis.params


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_reference_parameter_count(spec):
    analysis = archc.check(spec)
    ref = analysis.graph.meta.get("reference")
    published = ref.get("params") if isinstance(ref, dict) else None
    twin = _twin(analysis)
    if published is None and twin is None:
        pytest.skip("no reference figure")
    if published is not None:
        assert analysis.params == published
    if twin is not None:
        tv = twin_module(analysis)  # uninitialised: RegNet's builder cannot run on the meta device
        assert analysis.params == sum(p.numel() for p in tv.parameters())


def _twin_specs() -> list:
    out = []
    for spec in SPECS:
        twin = _twin(archc.check(spec))
        if twin is not None:
            params = archc.check(spec).params
            marks = [pytest.mark.slow] if params > BIG or spec.stem in SIZES_IN_SLOW else []
            out.append(pytest.param(spec, twin, id=spec.stem, marks=marks))
    return out


@pytest.mark.parametrize("spec,twin", _twin_specs())
def test_matches_torchvision(spec, twin):
    analysis = comparison_analysis(spec)
    tv = random_twin(analysis)
    # built on meta (no init cost): every tensor then comes from the twin's state_dict (assign=True)
    model = archc.compile(spec, input_shape=list(analysis.graph.inputs[0][1]), device="meta").eval()
    ours, theirs = model.state_dict(), tv.state_dict()
    assert sorted(ours) == sorted(theirs)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    model.load_state_dict(theirs, strict=True, assign=True)
    assert not any(t.is_meta for t in (*model.parameters(), *model.buffers()))
    problem = compare_with_twin(model, tv, analysis)
    assert problem is None, problem


@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_full_size_specs_cannot_be_reduced(name):
    """FULL_SIZE stays honest: each spec in it really refuses the reduced size."""
    spec = next((p for p in SPECS if p.stem == name), None)
    if spec is None:
        pytest.skip(f"no spec {name}")
    channels = archc.check(spec).graph.inputs[0][1][0]
    with pytest.raises(archc.ArchcError):
        archc.check(spec, input_shape=[channels, SMALL, SMALL])
