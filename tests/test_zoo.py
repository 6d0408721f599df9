"""Generated from specs/: adding a spec adds its checks.

Every spec: passes `archc check`; every node's static shape equals the shape of a real forward
(on the meta device, so even ViT-H costs nothing). Specs with a torchvision twin: same
parameter count, same state_dict keys and shapes, and the same outputs on the same weights.
"""

from __future__ import annotations

import pytest
import torch
import torchvision

import archc
from tests.conftest import SPECS
from tests.helpers import observed_shapes

IDS = [p.stem for p in SPECS]
BIG = 200_000_000  # parameters above which the numeric comparison is a slow test
SMALL = 64  # spatial size used for numeric comparisons where the architecture allows it


def _twin(analysis: archc.analyze.Analysis) -> str | None:
    twin = analysis.graph.twin()
    return twin[0] if twin else None


def _twin_module(analysis: archc.analyze.Analysis, name: str) -> torch.nn.Module:
    twin = analysis.graph.twin()
    assert twin is not None and twin[0] == name
    return getattr(torchvision.models, name)(**twin[1])


def _small(spec) -> archc.analyze.Analysis:
    """The spec at a reduced input size when its shapes allow one (ViTs need their own size)."""
    full = archc.check(spec)
    channels, *spatial = full.graph.inputs[0][1]
    if len(spatial) != 2 or min(spatial) <= SMALL:
        return full
    try:
        return archc.check(spec, input_shape=[channels, SMALL, SMALL])
    except archc.ArchcError:
        return full


def _inputs(analysis: archc.analyze.Analysis, device: str, batch: int = 2) -> list[torch.Tensor]:
    return [torch.randn(batch, *shape, device=device) for _, shape in analysis.graph.inputs]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_static_shapes_equal_observed(spec):
    analysis = archc.check(spec)
    model = archc.compile(spec, device="meta")
    seen = observed_shapes(model, *_inputs(analysis, "meta"))
    expected = {p: i.shape for p, i in analysis.info.items() if i.node.op != "identity"}
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
        with torch.device("meta"):
            tv = _twin_module(analysis, twin)
        assert analysis.params == sum(p.numel() for p in tv.parameters())


def _twin_specs() -> list:
    out = []
    for spec in SPECS:
        twin = _twin(archc.check(spec))
        if twin is not None:
            params = archc.check(spec).params
            marks = [pytest.mark.slow] if params > BIG else []
            out.append(pytest.param(spec, twin, id=spec.stem, marks=marks))
    return out


@pytest.mark.parametrize("spec,twin", _twin_specs())
def test_matches_torchvision(spec, twin):
    torch.manual_seed(0)
    analysis = _small(spec)
    tv = _twin_module(analysis, twin).eval()
    model = archc.compile(spec, input_shape=list(analysis.graph.inputs[0][1])).eval()
    ours, theirs = model.state_dict(), tv.state_dict()
    assert sorted(ours) == sorted(theirs)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    model.load_state_dict(theirs, strict=True)
    x = _inputs(analysis, "cpu")
    with torch.no_grad():
        diff = (model(*x) - tv(*x)).abs().max().item()
    assert diff <= (1e-4 if analysis.params > 250_000_000 else 1e-5)
