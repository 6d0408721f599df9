"""`archc diff` leads with what changed: the params and the arguments that differ (text, JSON, diagram labels)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import archc
from archc.analyze.diff import diff, diff_text, show_value, value_changes
from archc.cli import main

SMALL = """archc: 1
name: small
input: [3, 16, 16]
params: {widths: WIDTHS, heads: HEADS}
nodes:
  stage1:
    seq:
      - {op: conv2d, out_channels: "${widths[0]}", kernel_size: 3, padding: 1}
      - relu
  stage2: {op: conv2d, out_channels: "${widths[1]}", kernel_size: 3, stride: 2, padding: 1}
  tokens: {op: flatten, start_dim: 2}
  t: {op: permute, dims: [0, 2, 1]}
  attn: {op: self_attention, num_heads: "${heads}"}
"""

WIDE = """extends: resnet18
name: resnet18_wide
nodes:
  conv1: {out_channels: 96}
  layer1: {planes: 96}
  layer2: {planes: 192}
  layer3: {planes: 384}
  layer4: {planes: 768}
"""


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(SMALL.replace("WIDTHS", "[32, 64]").replace("HEADS", "4"))
    b.write_text(SMALL.replace("WIDTHS", "[48, 96]").replace("HEADS", "8"))
    return a, b


def test_text_leads_with_params_then_arguments(small, capsys):
    a, b = small
    assert main(["diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[2:9] == ["params changed (2):",
                          "  widths [32, 64] -> [48, 96]",
                          "  heads 4 -> 8",
                          "changed nodes (3) by their arguments:",
                          "  stage1.0 out_channels 32 -> 48",
                          "  stage2 out_channels 64 -> 96",
                          "  attn num_heads 4 -> 8"]
    assert "changed nodes (3) by their inputs only (shape or parameters): stage1.1, tokens, t" in out
    assert out.index("num_heads") < out.index("stage ") < out.index("parameters: 36,032 -> 80,160")


def test_json_has_params_and_args_per_node(small, capsys):
    a, b = small
    assert main(["diff", str(a), str(b), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["param_changes"] == [{"name": "widths", "a": [32, 64], "b": [48, 96], "status": "changed"},
                                  {"name": "heads", "a": 4, "b": 8, "status": "changed"}]
    by_path = {c["path"]: c for c in d["changed"]}
    assert by_path["stage1.0"]["args"] == {"out_channels": [32, 48]}
    assert by_path["attn"]["args"] == {"num_heads": [4, 8]}
    assert by_path["stage2"]["param_count"] == [18_496, 41_568]
    assert by_path["t"]["args"] == {} and by_path["t"]["a"][1] == [64, 64] and by_path["t"]["b"][1] == [64, 96]


def test_resnet18_against_a_widened_variant(tmp_path):
    (tmp_path / "wide.yaml").write_text(WIDE)
    d = diff(archc.check("resnet18"), archc.check(str(tmp_path / "wide.yaml")))
    text = diff_text(d)
    assert not d["param_changes"] and "params changed" not in text  # the variant changes nodes, not params
    assert ("  conv1, layer1.0.conv1, layer1.0.conv2, layer1.1.conv1 (+1 more) out_channels 64 -> 96"
            in text.splitlines())
    assert "  layer4.0.conv1, layer4.0.conv2, layer4.0.downsample.0, layer4.1.conv1 (+1 more) out_channels 512 -> 768" \
        in text.splitlines()
    assert sum(1 for c in d["changed"] if c["args"]) == 20 and len(d["changed"]) == 69
    assert text.index("out_channels 64 -> 96") < text.index("layer4 ") < text.index("parameters:")


def test_set_override_names_the_param():
    a, b = archc.check("resnet50"), archc.check("resnet50", {"width_per_group": 128})
    text = diff_text(diff(a, b))
    assert text.splitlines()[2:4] == ["params changed (1):", "  width_per_group 64 -> 128"]
    assert "out_channels 512 -> 1024" in text


def test_op_change_and_params_only_one_side_sets(tmp_path):
    (tmp_path / "a.yaml").write_text("archc: 1\nname: x\ninput: [3, 8, 8]\nparams: {k: 3}\n"
                                     "nodes:\n  p: {op: max_pool2d, kernel_size: 2}\n  f: flatten\n")
    (tmp_path / "b.yaml").write_text("archc: 1\nname: x\ninput: [3, 8, 8]\nparams: {n: 2}\n"
                                     "nodes:\n  p: {op: avg_pool2d, kernel_size: 4}\n  f: flatten\n")
    d = diff(archc.check(str(tmp_path / "a.yaml")), archc.check(str(tmp_path / "b.yaml")))
    text = diff_text(d)
    assert "  k 3 -> (unset)" in text and "  n (unset) -> 2" in text
    assert [p["status"] for p in d["param_changes"]] == ["removed", "added"]
    (line,) = [x for x in text.splitlines() if x.startswith("  p ")]
    assert line.startswith("  p op max_pool2d -> avg_pool2d") and "kernel_size 2 -> 4" in line


def test_values_compare_by_type_and_print_as_yaml():
    assert value_changes({"a": 1, "b": [1, 2], "c": True}, {"a": 1.0, "b": (1, 2), "c": 1}) == {
        "a": [1, 1.0], "c": [True, 1]}
    assert show_value([48, {"x": None, "y": False}]) == "[48, {x: null, y: false}]"


def test_many_changes_are_cut_with_a_pointer_to_json():
    a = archc.check("lenet5")
    b = archc.check("lenet5", {"num_classes": 7})
    d = diff(a, b)
    assert diff_text(d, limit=0).count("... and 1 more changes (--json lists every node)") == 1


def test_diagram_labels_name_the_changed_arguments(tmp_path, small):
    from archc.render.diffview import diff_layout

    a, b = small
    layout, notes = diff_layout(archc.check(str(a)), archc.check(str(b)))
    assert "num_heads 4 -> 8" in layout.units["attn"].notes
    assert notes[:2] == ["param widths [32, 64] -> [48, 96]", "param heads 4 -> 8"]
    (tmp_path / "wide.yaml").write_text(WIDE)
    layout, _ = diff_layout(archc.check("resnet18"), archc.check(str(tmp_path / "wide.yaml")))
    assert "out_channels 64 -> 96 (0.conv1 and 3 more)" in layout.units["layer1"].notes
    assert "out_channels 64 -> 96" in layout.units["conv1"].notes
    assert not any("->" in n for n in layout.units["fc"].notes)  # fc changed through its input only
