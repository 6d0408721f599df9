"""Issue 28's structure rules (tools/check_layers.py): no import cycle, no upward import between stages, no
file in archc/ over 450 lines (known exceptions listed in the tool)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_layers", ROOT / "tools" / "check_layers.py")
assert _spec is not None and _spec.loader is not None
layers = importlib.util.module_from_spec(_spec)
sys.modules["check_layers"] = layers
_spec.loader.exec_module(layers)


def test_the_structure_rules_hold():
    assert layers.problems() == []


def test_every_stage_is_placed_in_the_readme_order():
    readme = (ROOT / "archc" / "README.md").read_text(encoding="utf-8")
    for stages in layers.LAYERS:
        for stage in stages:
            assert f"`{stage}`" in readme, stage


def test_a_cycle_is_found_even_through_a_type_only_or_lazy_import():
    deps = {"archc.resolve.expand": {"archc.resolve.shapes_so_far": 23},
            "archc.resolve.shapes_so_far": {"archc.resolve.expand": 19}, "archc.ir": {}}
    assert layers.cycles(deps) == [["archc.resolve.expand", "archc.resolve.shapes_so_far"]]


def test_an_upward_import_is_found():
    deps = {"archc.blocks.conv2d": {"archc.resolve": 5}, "archc.resolve": {"archc.blocks": 3}}
    assert layers.upward(deps) == [("archc.blocks.conv2d", "archc.resolve", 5)]


def test_imports_inside_functions_and_under_type_checking_count(tmp_path):
    f = tmp_path / "mod.py"
    f.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from archc.resolve.expand import X\n"
                 "def f():\n    import archc.analyze.algebra\n    from . import sibling\n")
    got = list(layers.imports(f, "archc.resolve.mod", {"archc.resolve.sibling"}))
    assert got == [("archc.resolve.expand", 3), ("archc.analyze.algebra", 5), ("archc.resolve.sibling", 6)]
