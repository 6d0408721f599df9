"""Issue 28's structure rules (tools/check_layers.py): no import cycle, no upward import between stages, no
file in archc/ over 450 lines, no exception to any of them, and READMEs that say what LAYERS says."""

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


def test_there_are_no_exceptions():
    """Issue 28: the rules hold with no exceptions (the lists stay, empty, for the future)."""
    assert layers.KNOWN == {} and layers.KNOWN_CYCLES == {} and layers.LONG_KNOWN == {}


def test_an_exception_is_honoured_only_while_it_occurs(monkeypatch):
    """The mechanism kept for the future: a listed upward import or cycle is not reported while it occurs, and a
    listed one that no longer occurs is."""
    deps = {"archc.blocks.a": {"archc.resolve.b": 3}, "archc.resolve.b": {"archc.blocks.a": 1}}
    monkeypatch.setattr(layers, "graph", lambda: deps)
    monkeypatch.setattr(layers, "module_file", lambda module: module.replace(".", "/") + ".py")
    for check in ("long_files", "table_problems", "stage_readme_problems"):
        monkeypatch.setattr(layers, check, lambda: [])
    found = layers.problems()
    assert found == ["import cycle: archc.blocks.a <-> archc.resolve.b",
                     "archc/blocks/a.py:3: blocks imports archc.resolve.b (resolve), a stage above it "
                     "(archc/README.md lists the order)"]
    known = {("archc.blocks.a", "archc.resolve.b"): "why", ("archc.ir.c", "archc.x"): "gone"}
    monkeypatch.setattr(layers, "KNOWN", known)
    monkeypatch.setattr(layers, "KNOWN_CYCLES", {("archc.blocks.a", "archc.resolve.b"): "why"})
    monkeypatch.setattr(layers, "LONG_KNOWN", {"archc/ir/c.py": "gone"})
    assert layers.problems() == ["KNOWN lists archc.ir.c -> archc.x, which no longer occurs: delete the entry",
                                 "LONG_KNOWN lists archc/ir/c.py, which is no longer over 450 lines: delete the entry"]


def test_a_stage_may_import_exactly_the_rows_before_it():
    assert layers.allowed("errors") == [] and layers.allowed("fileio") == []
    assert layers.allowed("expr") == ["errors", "fileio"]
    assert layers.allowed("importer") == layers.allowed("backend")  # siblings: neither imports the other
    assert "importer" not in layers.allowed("backend") and layers.allowed("api")[-2:] == ["backend", "importer"]
    assert layers.may_import_line("load") == "May import: `errors`, `fileio`, `expr`."


def _stage_readme(root: Path, stage: str, text: str) -> None:
    (root / stage).mkdir(parents=True)
    (root / stage / "README.md").write_text(f"# {stage}\n\nWhat it does.\n\n{text}", encoding="utf-8")


def test_every_stage_folder_readme_says_what_it_may_import():
    """Each real stage folder has the section, and it names exactly the stages LAYERS allows."""
    folders = [s for s in layers.RANK if (layers.PACKAGE / s).is_dir()]
    assert len(folders) >= 15
    for stage in folders:
        text = (layers.PACKAGE / stage / "README.md").read_text(encoding="utf-8")
        assert layers.readme_names(text) == layers.allowed(stage), stage


def test_a_readme_that_drifts_from_layers_is_found(tmp_path):
    root = tmp_path / "archc"
    ok = f"{layers.SECTION}\n\nOwns: the graph.\n\n{layers.may_import_line('ir')}\n\nMore text with `resolve`.\n"
    _stage_readme(root, "ir", ok)
    assert layers.stage_readme_problems(root) == []  # backticks after the paragraph are not read
    _stage_readme(root, "load", f"{layers.SECTION}\n\nMay import: `errors`, `expr`,\n`ir`.\n\n## Next\n")
    _stage_readme(root, "lsp", "## Owns\n\nMay import: everything.\n")
    (root / "cli").mkdir()  # a stage folder without a README
    found = layers.stage_readme_problems(root)
    assert len(found) == 3, found
    assert found[0].startswith("archc/load/README.md: 'May import:' names errors, expr, ir;")
    assert "(not allowed: ir) (missing: fileio)" in found[0]
    assert found[0].endswith("expected: May import: `errors`, `fileio`, `expr`.")
    assert found[1].startswith("archc/lsp/README.md: no '## Owns / may import' section")
    assert found[2].startswith("archc/cli/README.md: no '## Owns / may import' section")


def test_the_stage_table_follows_layers(tmp_path):
    readme = layers.PACKAGE / "README.md"
    assert layers.table_problems(readme) == []
    text = readme.read_text(encoding="utf-8")
    bad = tmp_path / "README.md"
    row1 = "| 1 | `expr` | the `${...}` language | row 0 |"
    bad.write_text(text.replace(row1, "| 1 | `expr` | the language | errors |"), encoding="utf-8")
    found = layers.table_problems(bad)
    assert len(found) == 1 and "table row 1" in found[0] and "may import row 0" in found[0], found
    bad.write_text(text.replace("| 14 | `__main__` | `python -m archc` | rows 0-13 |\n", ""), encoding="utf-8")
    assert layers.table_problems(bad) == ["archc/README.md: the stage table has 14 rows; LAYERS has 15"]


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
