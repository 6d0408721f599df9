"""The benchmark's quick mode runs end to end (so it cannot rot); figures are not asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick(tmp_path):
    out = tmp_path / "bench.md"
    proc = subprocess.run([sys.executable, "tools/bench.py", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    for section in ("Checking a spec", "In-process analysis", "Compiling", "Running", "Rendering", "Scaling"):
        assert f"## {section}" in text
