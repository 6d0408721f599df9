"""The tools/ scripts: the benchmark's quick mode runs end to end and reports sane figures (the
figures themselves depend on the machine), and setup.sh refuses to finish without its tools."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _sections(text: str) -> dict[str, list[list[str]]]:
    """The markdown tables by `## heading`: each row as its cells (header rows dropped)."""
    out: dict[str, list[list[str]]] = {}
    title = ""
    for line in text.splitlines():
        if line.startswith("## "):
            title = line[3:]
            out[title] = []
        elif line.startswith("| ") and not line.startswith(("| task |", "|---")):
            out[title].append([c.strip() for c in line.strip("|").split(" | ")])
    return out


def _numbers(cell: str) -> list[float]:
    return [float(n) for n in _NUMBER.findall(cell)]


def test_bench_quick(tmp_path):
    out = tmp_path / "bench.md"
    proc = subprocess.run([sys.executable, "tools/bench.py", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    tables = _sections(out.read_text())
    assert [t.split(" (")[0] for t in tables] == ["Checking a spec", "MACs against counters that run the model",
                                                 "In-process analysis", "Compiling", "Running", "Rendering",
                                                 "Scaling"]
    for title, rows in tables.items():
        assert rows, title
        for task, ours, _anchor, ratio in rows:
            if "(anchor)" in task:
                continue
            assert _numbers(ours) and all(n > 0 for n in _numbers(ours)), (title, task, ours)
            assert _numbers(ratio) and all(n > 0 for n in _numbers(ratio)), (title, task, ratio)
    check = {r[0]: r for r in tables["Checking a spec (whole process)"]}
    assert "`archc summary specs/resnet18.yaml` vs torchinfo.summary (whole process)" in check
    (macs,) = tables["MACs against counters that run the model"]
    assert macs[3] == "1 (exact)" and macs[1].split()[0] == macs[2].split()[1], macs  # same count, in G
    assert re.fullmatch(r"exponent \d\.\d\d", tables["Scaling"][0][3])


def _stub(folder: Path, name: str, script: str) -> None:
    (folder / name).write_text(f"#!/bin/sh\n{script}\n")
    (folder / name).chmod(0o755)


@pytest.mark.parametrize("allow", ["", "1"])
def test_setup_fails_without_dot_and_chromium(tmp_path, allow):
    """apt-get fails and none of dot, chromium and nvim is on PATH: setup.sh stops before pip unless allowed."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in ("dirname", "id"):
        os.symlink(shutil.which(tool), bin_dir / tool)  # type: ignore[arg-type]
    _stub(bin_dir, "apt-get", f'echo "apt-get $*" >> {log}; exit 100')
    _stub(bin_dir, "sudo", '"$@"')
    _stub(bin_dir, "python", f'echo "python $*" >> {log}')
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "ARCHC_ALLOW_MISSING_TOOLS": allow}
    proc = subprocess.run([shutil.which("bash"), "tools/setup.sh"], cwd=ROOT, env=env,  # type: ignore[list-item]
                          capture_output=True, text=True, timeout=60)
    calls = log.read_text()
    assert "apt-get update" in calls and "'dot', 'chromium' and 'nvim' are required" in proc.stderr
    if allow:
        assert proc.returncode == 0 and calls.count("python -m pip install") == 2, (proc.stderr, calls)
    else:
        assert proc.returncode == 1 and "pip" not in calls, (proc.stderr, calls)
