"""`archc build` on request (issue 29): the module's structure as a tree with static shapes and parameters, and a
test forward whose output shapes are checked against the static analysis (archc/analyze/build_report.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import archc
from archc.analyze import build_report
from archc.analyze.build_report import forward_check, structure

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def _lines(text: str) -> dict[str, list[str]]:
    """First cell (stripped) of each table row -> the row's cells (split on runs of two spaces), first row of a name."""
    out = {}
    for line in text.splitlines()[2:]:
        cells = [c.strip() for c in line.split("  ") if c.strip()]
        out.setdefault(cells[0], cells)  # the first of equal names (layer2.0 before layer3.0)
    return out


def test_structure_is_a_tree_with_shapes_and_parameters():
    module = archc.compile("resnet18", device="meta")
    text = structure(module)
    assert text.splitlines()[0] == "resnet18 (Resnet18): 11,689,512 parameters; input 3x224x224"
    rows = _lines(text)
    assert rows["conv1: Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)"][1:] == [
        "64x112x112", "9,408"]
    assert rows["layer1 (basic x2)"][1:] == ["64x56x56", "147,968"]
    assert rows["downsample (seq)"][1:] == ["128x28x28", "8,448"]  # layer2.0's projection, opened
    assert rows["fc: Linear(in_features=512, out_features=1000, bias=True)"][1:] == ["1000", "513,000"]
    assert sum(1 for line in text.splitlines() if line.startswith("      ")) > 0  # three levels deep
    folded = _lines(structure(module, depth=1))
    assert folded["layer2 (basic x2, 14 modules folded)"][1:] == ["128x28x28", "525,568"]
    assert not any(k.startswith("0 ") for k in folded)


def test_forward_checks_shapes_against_the_analysis():
    module = archc.compile("lenet5").train()
    report = forward_check(module, batch=3)
    assert report.ok and module.training  # the training flag comes back
    assert report.lines[0].startswith("forward (eval, batch 3, cpu, ") and report.lines[0].endswith(
        "1x32x32".replace("1x", "3x1x") + " -> 3x10")
    assert report.lines[1] == "output shapes match the static analysis"
    several = forward_check(archc.compile(str(ROOT / "tests/specs/multi_output.yaml")))
    assert several.ok and several.lines[0].count("->") == 1 and several.lines[0].split("-> ")[1].count(",") >= 1
    meta = forward_check(archc.compile("resnet18", device="meta"))
    assert meta.ok and "meta device: shapes only" in meta.text()


def test_forward_reports_what_went_wrong(monkeypatch):
    module = archc.compile("lenet5")
    other = archc.check("lenet5", {"num_classes": 7})
    monkeypatch.setattr(build_report, "analyze", lambda graph: other)  # the analysis expects 7 scores
    wrong = forward_check(module)
    assert not wrong.ok and "output shapes differ from the static analysis: ['7'] expected" in wrong.text()
    monkeypatch.undo()
    with torch.no_grad():
        module.classifier[2].bias[0] = float("nan")
    nan = forward_check(module)
    assert not nan.ok and "output 0 holds NaN or infinite values" in nan.text()

    def broken(*args: object) -> None:
        raise RuntimeError("boom\n  at node x")

    monkeypatch.setattr(module, "forward", broken)
    failed = forward_check(module)
    assert not failed.ok and failed.lines[0] == "forward failed: RuntimeError: boom at node x"


def test_the_build_command_prints_the_tree_and_runs_the_forward(capsys):
    """`archc build SPEC --structure --depth 1 --forward`: the tree folded at depth 1, then the checked forward."""
    from archc.cli import main

    assert main(["build", "lenet5", "--structure", "--depth", "1", "--forward", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "features" in out and "classifier" in out and "folded" in out
    assert "2x1x32x32 -> 2x10" in out
    assert "output shapes match the static analysis" in out
