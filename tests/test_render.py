"""Diagrams: folded by default, readable sizes, deterministic, escaped, errors highlighted."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import archc
from archc.api import analyse
from archc.cli import main
from archc.render.dot import to_dot
from archc.render.layout import Layout, Unit, units
from archc.render.output import render
from tests.helpers import require_tool as _require


@pytest.fixture
def _dot() -> None:
    _require(shutil.which("dot"), "Graphviz dot")


needs_dot = pytest.mark.usefixtures("_dot")


def _svg_size_px(svg: bytes) -> tuple[float, float]:
    w, h = re.search(rb'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups()
    return float(w) * 96 / 72, float(h) * 96 / 72


@needs_dot
def test_resnet50_collapsed_fits_one_screen():
    svg = render(archc.check("resnet50"), "svg")
    assert _svg_size_px(svg)[1] < 1500
    assert "bottleneck ×6" in svg.decode()
    ET.fromstring(svg)  # well-formed XML


def test_folding_levels():
    a = archc.check("resnet50")
    folded, opened, full = (len(units(a, depth=d, expand=e).units) for d, e in ((None, False), (2, False),
                                                                              (None, True)))
    assert folded == 11 and folded < opened < full == len(a.graph.nodes)
    assert ("input", "conv1") in {(x, y) for x, y, _, _ in units(a).edges}  # the graph input is connected


@needs_dot
def test_deterministic_bytes():
    a = archc.check("densenet121")
    assert render(a, "dot") == render(archc.check("densenet121"), "dot")
    assert render(a, "svg") == render(a, "svg")


def test_dot_escapes_hostile_strings():
    hostile = 'x<b>bold</b>" URL="javascript:alert(1)" \\N \x1b[31m\x00'
    layout = Layout({hostile: Unit(hostile, "<i>op</i>", "conv", error="<script>alert(1)</script>")},
                    {}, [], [], [])
    dot = to_dot(layout, "<title>")
    assert "\x1b" not in dot and "\x00" not in dot
    assert 'URL="' not in dot and "\\N" not in dot.replace("\\\\N", "")
    if shutil.which("dot"):
        from archc.render.output import _run_dot

        svg = _run_dot(dot, "svg")
        root = ET.fromstring(svg)  # well-formed
        tags = {el.tag.split("}")[-1] for el in root.iter()}
        assert not {"b", "i", "script", "a"} & tags
        assert b"javascript:" not in svg or b"href" not in svg


def test_mermaid_text():
    text = render(archc.check("unet"), "mermaid").decode()
    assert text.count("-->") >= 14 and "flowchart TB" in text and "enc1" in text


@needs_dot
def test_shape_error_still_renders(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\ninput: [3, 16, 16]\nnodes:\n  a: {op: conv2d, out_channels: 8, kernel_size: 3}\n"
                    "  b: {op: conv2d, in: input, out_channels: 4, kernel_size: 3}\n  c: {op: add, in: [a, b]}\n")
    out = tmp_path / "bad.svg"
    status = main(["render", str(spec), "--svg", "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 1 and "bad.yaml:6:" in err
    svg = out.read_text()
    assert "error: cannot combine shapes" in svg and "#ffb3b3" in svg
    assert analyse(spec).errors


def test_failed_render_keeps_existing_file(tmp_path, capsys):
    spec = tmp_path / "broken.yaml"
    spec.write_text("name: broken\ninput: [3, 16, 16]\nnodes:\n  a: {op: nope}\n")
    out = tmp_path / "diagram.svg"
    out.write_text("old")
    assert main(["render", str(spec), "--svg", "-o", str(out)]) == 1
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.yaml", "diagram.svg"]


# --- definitions beside the folded graph ---------------------------------------------------------

def _nodes(svg: bytes) -> dict[str, tuple[str | None, str]]:
    """SVG node id (its <title>) -> (fill of its box, its text joined by '|')."""
    ns = "{http://www.w3.org/2000/svg}"
    out = {}
    for g in ET.fromstring(svg).iter(f"{ns}g"):
        if g.get("class") == "node":
            shape = next((el for el in g if el.tag in (f"{ns}path", f"{ns}polygon", f"{ns}ellipse")), None)
            text = "|".join(t.text or "" for t in g.iter(f"{ns}text"))
            out[g.findtext(f"{ns}title")] = (None if shape is None else shape.get("fill"), text)
    return out


def _edges(svg: bytes) -> set[str]:
    ns = "{http://www.w3.org/2000/svg}"
    return {g.findtext(f"{ns}title") for g in ET.fromstring(svg).iter(f"{ns}g") if g.get("class") == "edge"}


def test_resnet50_bottleneck_definition_layout():
    from archc.render.defs import definitions

    a = archc.check("resnet50")
    (d,) = definitions(a, units(a))
    assert d.name == "bottleneck" and d.drawn == "layer1.0" and len(d.instances) == 16
    assert d.signature.startswith("planes: int, stride: int = 1, downsample: bool = false")
    u = d.layout.units
    assert {"conv1", "conv2", "conv3", "downsample.0", "downsample.1", "add"} <= set(u)
    assert u["conv2"].detail == "3x3/1 64" and u["conv1"].params == 4096
    assert u["downsample.0"].notes == ["in 4 of 16 instances"] and not u["conv1"].notes
    edges = {(x, y) for x, y, _, _ in d.layout.edges}
    assert {("input", "conv1"), ("input", "downsample.0"), ("downsample.1", "add"), ("bn3", "add"),
            ("relu", "output")} <= edges
    assert [g.path for g in d.layout.clusters] == ["downsample"]
    assert d.params[:4] == [75_008, 70_400, 70_400, 379_392]


@needs_dot
def test_resnet50_svg_draws_the_definition_and_stays_short():
    svg = render(archc.check("resnet50"), "svg")
    assert _svg_size_px(svg)[1] < 2000
    nodes, edges = _nodes(svg), _edges(svg)
    for part in ("conv1", "conv2", "conv3", "downsample.0", "downsample.1", "add"):
        assert f"def0/{part}" in nodes
    assert {"def0/input->def0/downsample.0", "def0/downsample.1->def0/add"} <= edges
    text = svg.decode()
    assert "bottleneck(planes: int" in text and "16 instances" in text and "bottleneck ×6" in text


def test_efficientnet_definitions_nest_once():
    from archc.render.defs import definitions

    a = archc.check("efficientnet_b0")
    defs = {d.name: d for d in definitions(a, units(a))}
    assert sorted(defs) == ["conv_bn_act", "mbconv", "squeeze_excite"]  # each once
    mb = defs["mbconv"].layout.units
    assert mb["block.2"].label == "squeeze_excite" and len(mb["block.2"].members) == 6  # folded inside
    assert mb["block.0"].notes == ["in 15 of 16 instances"]  # the expansion conv (t != 1), aligned, not by index
    assert mb["block.1"].notes == [] and mb["add"].notes == ["in 9 of 16 instances"]
    se = defs["squeeze_excite"].layout
    assert {"fc1", "fc2", "scale"} <= set(se.units) and ("input", "scale") in {(x, y) for x, y, _, _ in se.edges}


@needs_dot
def test_no_definitions_flag_and_expand(tmp_path):
    with_defs, without, expanded = (tmp_path / f"{n}.dot" for n in ("a", "b", "c"))
    assert main(["render", "resnet50", "--dot", "-o", str(with_defs)]) == 0
    assert main(["render", "resnet50", "--dot", "--no-definitions", "-o", str(without)]) == 0
    assert main(["render", "resnet50", "--dot", "--expand", "-o", str(expanded)]) == 0
    assert "cluster_definitions" in with_defs.read_text()
    assert "cluster_definitions" not in without.read_text() and "cluster_definitions" not in expanded.read_text()
    assert "layer3.5.conv2" in expanded.read_text()
    assert "cluster_definitions" not in render(archc.check("resnet50"), "dot", depth=3).decode()  # all open


def test_definitions_deterministic_across_hash_seeds():
    code = ("import sys, archc; from archc.render.output import render\n"
            "for s in ('resnet50', 'efficientnet_b0', 'examples/coord_attention'):\n"
            "    sys.stdout.write(render(archc.check(s), 'dot').decode())\n")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "777")}
    assert len(outs) == 1 and "def0/" in next(iter(outs))


def test_definition_labels_escaped():
    from archc.render.defs import Definition

    hostile = 'x<b>" URL="javascript:1" \\N \x1b'
    inner = Layout({"a": Unit("a", "<i>op</i>", "conv", notes=[hostile])}, {}, [], [("input", "a", (1,), "")],
                   [("input", (1,))])
    dot = to_dot(Layout({}, {}, [], [], []), "t", defs=[Definition(hostile, inner, hostile, [hostile], [1], hostile)])
    assert "\x1b" not in dot and 'URL="' not in dot and "\\N" not in dot.replace("\\\\N", "")
    if shutil.which("dot"):
        from archc.render.output import _run_dot

        tags = {el.tag.split("}")[-1] for el in ET.fromstring(_run_dot(dot, "svg")).iter()}
        assert not {"b", "i", "a"} & tags


def test_multi_output_edges_keep_their_tag_in_definitions():
    from archc.render.defs import definitions

    a = archc.check("examples/coord_attention")
    (d,) = [d for d in definitions(a, units(a)) if d.name == "coord_attention"]
    assert {t for _, _, _, t in d.layout.edges} >= {"[0]", "[1]"}


# --- visual diff -------------------------------------------------------------------------------------

ADDED, REMOVED, CHANGED = "#b7e4c7", "#f5c2c7", "#ffe69c"


@needs_dot
def test_diff_svg_marks_layer3_changed(tmp_path, capsys):
    out = tmp_path / "d.svg"
    assert main(["diff", "resnet50", "--set", "layers=[3,4,23,3]", "--svg", "-o", str(out)]) == 0
    svg = out.read_bytes()
    nodes = _nodes(svg)
    assert nodes["layer3"][0] == CHANGED and "A: bottleneck ×6" in nodes["layer3"][1]
    assert nodes["layer2"][0] != CHANGED and nodes["fc"][0] != CHANGED
    assert {"legend_added", "legend_removed", "legend_changed"} <= set(nodes)  # the legend
    text = "".join(ET.fromstring(svg).itertext())
    assert "B: resnet50 --set layers=[3,4,23,3]" in text and "A: resnet50" in text
    assert "layer3: params +18,992,128" in text


@needs_dot
def test_diff_vgg16_bn_adds_batchnorms_only():
    from archc.render.output import render_diff

    nodes = _nodes(render_diff(archc.check("vgg16"), archc.check("vgg16_bn"), "svg", ("vgg16", "vgg16_bn")))
    added = [k for k, (fill, _) in nodes.items() if fill == ADDED and not k.startswith("legend")]
    assert len(added) == 13 and all("batchnorm2d" in nodes[k][1] for k in added)
    assert not [k for k, (fill, _) in nodes.items() if fill in (CHANGED, REMOVED) and not k.startswith("legend")]


def test_diff_text_aligns_by_structure(capsys):
    assert main(["diff", "vgg16", "vgg16_bn"]) == 0
    out = capsys.readouterr().out
    assert "added nodes (13: 13 batchnorm2d)" in out and "changed nodes" not in out and "removed" not in out
    assert main(["diff", "resnet50", "--set", "layers=[3,4,23,3]"]) == 0
    out = capsys.readouterr().out
    assert "--- A: resnet50\n+++ B: resnet50 --set layers=[3,4,23,3]" in out and "layer3.6.conv1" in out


@needs_dot
def test_diff_removed_units_and_html(tmp_path):
    from archc.render.diffview import REMOVED as PREFIX
    from archc.render.output import render_diff

    nodes = _nodes(render_diff(archc.check("resnet50"), archc.check("resnet18"), "svg", ("a", "b"), depth=2))
    assert nodes[PREFIX + "layer3.5"][0] == REMOVED and nodes["layer3.0"][0] == CHANGED
    page = tmp_path / "d.html"
    assert main(["diff", "vgg16", "vgg16_bn", "--html", "-o", str(page)]) == 0
    text = page.read_text()
    assert "<svg" in text and ADDED in text and "id='stages'" in text and "https://" not in text


def test_diff_help_says_set_changes_b(capsys):
    with pytest.raises(SystemExit):
        main(["diff", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--set overrides apply to B only" in out and "override a parameter of B (the right side) only" in out


# --- Mermaid -----------------------------------------------------------------------------------------

def _front_matter(text: str) -> dict:
    import yaml

    head, sep, rest = text.partition("\n---\n")
    assert head.startswith("---\n") and sep
    return yaml.safe_load(head[4:])


def test_mermaid_front_matter_is_yaml():
    text = render(archc.check("resnet18"), "mermaid").decode()
    assert _front_matter(text) == {"title": "resnet18: 11,689,512 parameters, 1.814 GMACs"}
    layout = Layout({}, {}, [], [], [])
    from archc.render.dot import to_mermaid

    hostile = 'a: b\n--- "c" # d\\ \x1b'
    assert _front_matter(to_mermaid(layout, hostile))["title"] == hostile


MERMAID_PARSE = """
import { pathToFileURL } from "url"; import { createRequire } from "module"; import fs from "fs";
const dir = process.env.ARCHC_MERMAID_DIR + "/node_modules/";
const { JSDOM } = createRequire(dir)(dir + "jsdom");
const dom = new JSDOM("<!DOCTYPE html><body></body>");
globalThis.window = dom.window; globalThis.document = dom.window.document;
const mermaid = (await import(pathToFileURL(dir + "mermaid/dist/mermaid.core.mjs").href)).default;
mermaid.initialize({ startOnLoad: false });
for (const f of process.argv.slice(2)) await mermaid.parse(fs.readFileSync(f, "utf8"));
console.log("parsed");
"""


def test_mermaid_parses_with_mermaid(tmp_path):
    """The real parser: ARCHC_MERMAID_DIR names a folder with `npm install mermaid jsdom` done (optional)."""
    folder = os.environ.get("ARCHC_MERMAID_DIR")
    if not folder or not shutil.which("node"):
        pytest.skip("set ARCHC_MERMAID_DIR to a folder with `npm install mermaid jsdom` to run the real parser")
    files = []
    for spec in ("resnet18", "efficientnet_b0", "examples/coord_attention"):
        files.append(tmp_path / f"{len(files)}.mmd")
        files[-1].write_bytes(render(archc.check(spec), "mermaid"))
    script = tmp_path / "parse.mjs"
    script.write_text(MERMAID_PARSE)
    proc = subprocess.run(["node", str(script), *map(str, files)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "parsed" in proc.stdout, proc.stderr[-2000:]
