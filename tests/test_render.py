"""Diagrams: folded by default, readable sizes, deterministic, escaped, errors highlighted."""

from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

import archc
from archc.api import analyse
from archc.cli import main
from archc.render.dot import to_dot
from archc.render.layout import Layout, Unit, units
from archc.render.output import render


def _require(found: str | None, what: str) -> None:
    """A missing tool fails the test (tools/setup.sh installs it); ARCHC_ALLOW_MISSING_TOOLS=1 skips it."""
    if found is None:
        message = f"{what} not installed (tools/setup.sh installs it)"
        if os.environ.get("ARCHC_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(message)
        pytest.fail(f"{message}; set ARCHC_ALLOW_MISSING_TOOLS=1 to skip these tests instead")


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
