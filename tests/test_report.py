"""`archc report`: a self-contained page, loaded in headless Chromium (Debian's `chromium`)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from archc.cli import main
from tests.helpers import require_tool as _require

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]




@pytest.fixture
def _chromium_installed() -> None:
    _require(CHROMIUM, "chromium")


needs_chromium = pytest.mark.usefixtures("_chromium_installed")


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="archc-chromium-")
    try:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    _require(shutil.which("dot"), "Graphviz dot")  # the page embeds the rendered diagram
    out = tmp_path_factory.mktemp("report") / "resnet50.html"
    assert main(["report", "resnet50", "-o", str(out)]) == 0
    return out


def test_page_is_self_contained(page):
    text = page.read_text()
    assert "<svg" in text and 'id="summary"' in text and 'id="chart"' in text and 'id="source"' in text
    assert "bottleneck ×6" in text and "25,557,032" in text
    assert "bottleneck(planes: int" in text and "def0/downsample.0" in text  # the definition beside
    for external in ("http://", "https://", "src=", "<link"):
        assert external not in text.replace("http://www.w3.org", "")


@needs_chromium
def test_page_loads_in_chromium_without_errors(page):
    proc = _chromium("--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert 'data-ready="1"' in dom and "data-error" not in dom  # the script ran to the end
    assert "Uncaught" not in proc.stderr and ":ERROR:CONSOLE" not in proc.stderr
    assert 'id="folded"' in dom and "<table>" in dom


@needs_chromium
def test_screenshot_is_not_blank(page, tmp_path):
    shot = tmp_path / "shot.png"
    proc = _chromium("--window-size=1200,900", f"--screenshot={shot}", page.as_uri())
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    from PIL import Image

    img = Image.open(shot).convert("L")
    lo, hi = img.getextrema()
    assert hi - lo > 100  # text and boxes, not a blank page
    dark = img.histogram()[:128]
    dark = sum(dark)
    assert dark > 0.002 * img.width * img.height
