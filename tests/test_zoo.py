"""Generated from specs/: adding a spec adds its checks.

Every spec: passes `archc check`; every node's static shape equals the shape of a real forward
(on the meta device, so even ViT-H costs nothing). Specs with a torchvision twin: same
parameter count, same state_dict keys and shapes, and the same outputs on the same random weights
(`randomize_`: fresh torchvision weights would make the comparison vacuous; see test_zoo_mutants.py).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import torch
import torchvision

import archc
from tests.conftest import SPECS
from tests.helpers import (
    FULL_SIZE,
    SMALL,
    compare_with_twin,
    comparison_analysis,
    comparison_params,
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


@cache
def _checked(spec: Path) -> archc.analyze.Analysis:
    """The spec at its own size and defaults (collection reads each spec once)."""
    return archc.check(spec)


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
        twin = _twin(_checked(spec))
        if twin is not None:
            params = _checked(spec).params
            marks = [pytest.mark.slow] if params > BIG or spec.stem in SIZES_IN_SLOW else []
            out.append(pytest.param(spec, twin, id=spec.stem, marks=marks))
    return out


@pytest.mark.parametrize("spec,twin", _twin_specs())
def test_matches_torchvision(spec, twin):
    """Segmentation twins with aux_loss on (both outputs compared); Inception-v3 in eval and in
    training mode, where it returns (logits, aux_logits) as torchvision does."""
    analysis = comparison_analysis(spec)
    tv = random_twin(analysis)
    # built on meta (no init cost): every tensor then comes from the twin's state_dict (assign=True)
    model = archc.compile(spec, input_shape=list(analysis.graph.inputs[0][1]), device="meta",
                          **comparison_params(spec)).eval()
    ours, theirs = model.state_dict(), tv.state_dict()
    assert sorted(ours) == sorted(theirs)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    model.load_state_dict(theirs, strict=True, assign=True)
    assert not any(t.is_meta for t in (*model.parameters(), *model.buffers()))
    problem = compare_with_twin(model, tv, analysis)
    assert problem is None, problem
    if analysis.graph.train_outputs:
        problem = compare_with_twin(model, tv, analysis, train=True)
        assert problem is None, f"in training mode: {problem}"


@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_full_size_specs_cannot_be_reduced(name):
    """FULL_SIZE stays honest: each spec in it really refuses the reduced size."""
    spec = next((p for p in SPECS if p.stem == name), None)
    if spec is None:
        pytest.skip(f"no spec {name}")
    channels = archc.check(spec).graph.inputs[0][1][0]
    with pytest.raises(archc.ArchcError):
        archc.check(spec, input_shape=[channels, SMALL, SMALL])


TWINS = [spec for spec in SPECS if _twin(_checked(spec)) is not None]


@pytest.mark.parametrize("spec", TWINS, ids=[p.stem for p in TWINS])
def test_comparison_exercises_every_dilation(spec):
    """At the size a twin is compared at, every dilated convolution's outer taps reach into the map
    (else it computes a 1x1 conv and a wrong dilation would pass: see helpers.COMPARE_AT)."""
    inert = []
    for path, info in comparison_analysis(spec).info.items():
        if info.node.op != "conv2d":
            continue
        dilation, kernel = _pair(info.node.args.get("dilation", 1))[0], _pair(info.node.args["kernel_size"])[0]
        reach = dilation * (kernel - 1) // 2  # along H; the specs' dilated convs are "same"-padded
        if dilation > 1 and kernel > 1 and info.in_shapes[0][1] <= reach:
            inert.append(f"{path}: dilation {dilation} on a map of height {info.in_shapes[0][1]}")
    assert not inert, inert


def _pair(v: int | list[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (v[0], v[1])


def _published(twin: str) -> list[tuple[str, int, float]]:
    """Each of torchvision's weights for the twin: name, the size its `_ops` were measured at (the
    transforms' crop, or the resize of segmentation weights), and `_ops` (GMACs)."""
    out = []
    for w in torchvision.models.get_model_weights(twin):
        size = w.transforms.keywords.get("crop_size", w.transforms.keywords.get("resize_size"))
        out.append((str(w), int(size), float(w.meta["_ops"])))
    return out


@pytest.mark.parametrize("spec", TWINS, ids=[p.stem for p in TWINS])
def test_macs_equal_published_ops(spec):
    """MACs equal torchvision's `_ops` for every weights entry, at its size and with what its
    builder sets for weights: a ViT's image_size; aux_loss=True for segmentation weights, whose
    auxiliary head runs in eval mode too (their `_ops` count it). Inception-v3's aux head runs in
    training only (a train-only output): torchvision measured eval mode, and so do archc's MACs."""
    analysis = _checked(spec)
    twin = analysis.graph.twin()
    assert twin is not None
    channels = analysis.graph.inputs[0][1][0]
    wrong = []
    for weights, size, ops in _published(twin[0]):
        params = {k: v for k, v in (("image_size", size), ("aux_loss", True)) if k in analysis.graph.params}
        macs = archc.check(spec, input_shape=[channels, size, size], **params).macs
        if round(macs / 1e9, 3) != ops:
            wrong.append(f"{weights} at {size}: {macs / 1e9:.3f} GMACs, published {ops}")
    assert not wrong, wrong
