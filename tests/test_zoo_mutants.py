"""The twin comparison can fail: one activation changed inside one block of a spec is caught.

Each mutant is the spec's own text with one activation replaced (gelu/silu/relu6 -> relu), written
next to a copy of specs/ so `extends:`/`imports:` still resolve. The unmutated copy must match
torchvision (the control) and the mutant must not, on the same randomised weights and input.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import archc
from tests.conftest import ROOT
from tests.helpers import compare_with_twin, comparison_analysis, random_twin

# spec -> (the one activation line in a block definition, its replacement)
MUTANTS = {
    "vit_b_16": ("          - gelu\n", "          - relu\n"),  # encoder_block.mlp
    "efficientnet_b0": ("activation: {op: silu, inplace: true}", "activation: {op: relu, inplace: true}"),  # SE
    "convnext_tiny": ("          - gelu\n", "          - relu\n"),  # cnblock.block
    "mobilenet_v2": ("      - {op: relu6, inplace: true}", "      - {op: relu, inplace: true}"),  # conv_bn_relu6
}


def _write_spec(folder: Path, name: str, text: str) -> Path:
    """`text` as specs/<name>.yaml inside a copy of the spec folder."""
    specs = folder / "specs"
    if not specs.exists():
        shutil.copytree(ROOT / "specs", specs)
    path = specs / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _mismatch(spec: Path, tv: torch.nn.Module, analysis: archc.analyze.Analysis) -> str | None:
    model = archc.compile(spec, input_shape=list(analysis.graph.inputs[0][1])).eval()
    model.load_state_dict(tv.state_dict(), strict=True)
    return compare_with_twin(model, tv, analysis)


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_one_changed_activation_fails_the_twin_comparison(name, tmp_path):
    old, new = MUTANTS[name]
    text = (ROOT / "specs" / f"{name}.yaml").read_text(encoding="utf-8")
    assert text.count(old) == 1, f"the mutated line must occur exactly once in specs/{name}.yaml"
    control = _write_spec(tmp_path / "control", name, text)
    mutant = _write_spec(tmp_path / "mutant", name, text.replace(old, new))
    analysis = comparison_analysis(control)
    tv = random_twin(analysis)
    assert _mismatch(control, tv, analysis) is None
    assert _mismatch(mutant, tv, analysis) is not None
