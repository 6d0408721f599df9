"""Issue 26's done-when: networks not written before, from the README alone, as exact twins of timm.

specs/examples/convnextv2_atto.yaml (GRN from parameter nodes and reductions) and
specs/examples/mobilevit_xxs.yaml (unfold/fold patches, a hand-written transformer) each have timm's
parameter count and state_dict keys, load timm's state_dict with strict=True, and give timm's outputs
at rtol 1e-5 on randomised weights and BatchNorm statistics (small inputs: a few seconds on one core).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import archc
from tests.helpers import twin_mismatch

if importlib.util.find_spec("timm") is None:
    pytest.skip("timm is not installed (pip install 'archc[dev]' pins it)", allow_module_level=True)

import timm  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "specs" / "examples"
RTOL = 1e-5
# name -> (parameters, input side). MobileViT at 96 px: 12x12 and 6x6 maps cut into 2x2 patches as they are,
# the 3x3 stride-32 map resized to 4x4 and back (timm's path at its 224 px too).
TWINS = {"convnextv2_atto": (3_708_400, 64), "mobilevit_xxs": (1_272_024, 96)}


def _randomize_(model: torch.nn.Module, seed: int) -> None:
    """Every float tensor random and non-degenerate: fan-in scaled weights, positive scales and variances.

    GRN's zero-initialised weight and bias (ConvNeXt V2) and BatchNorm's identity statistics would
    otherwise hide whole computations from the comparison.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in sorted(model.state_dict(keep_vars=True).items()):
            if not t.is_floating_point():
                continue
            leaf = name.rsplit(".", 1)[-1]
            if t.dim() >= 2:
                t.normal_(0.0, t[0].numel() ** -0.5, generator=gen)
            elif leaf in ("weight", "running_var"):
                t.uniform_(0.5, 1.5, generator=gen)
            else:  # bias, running_mean
                t.normal_(0.0, 0.1, generator=gen)


@pytest.mark.parametrize("name", sorted(TWINS))
def test_timm_twin_from_readme(name: str) -> None:
    torch.manual_seed(0)
    params, size = TWINS[name]
    ref = timm.create_model(name, pretrained=False).eval()
    _randomize_(ref, seed=1)
    model = archc.compile(EXAMPLES / f"{name}.yaml", input_shape=[3, size, size]).eval()

    assert archc.check(EXAMPLES / f"{name}.yaml").params == params
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters()) == params
    assert list(model.state_dict()) == list(ref.state_dict())  # same keys, same order
    model.load_state_dict(ref.state_dict(), strict=True)

    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours, theirs = model(x), ref(x)
    assert ours.shape == theirs.shape == (2, 1000)
    assert (theirs[0] - theirs[1]).abs().max() > 1e-3  # the two samples differ: the net reads its input
    assert twin_mismatch(ours, theirs, RTOL) is None, twin_mismatch(ours, theirs, RTOL)
