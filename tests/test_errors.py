"""Golden error texts: every bad spec in tests/errors/ gives exactly the reviewed message.

Rewrite the .txt files with `pytest tests/test_errors.py --accept` and review the diff like code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archc.cli import main

HERE = Path(__file__).parent / "errors"
CASES = sorted(HERE.glob("*.yaml"))


@pytest.mark.parametrize("spec", CASES, ids=[p.stem for p in CASES])
def test_golden_error(spec: Path, capsys, monkeypatch, accept):
    monkeypatch.chdir(HERE.parent.parent)
    status = main(["check", str(spec.relative_to(HERE.parent.parent))])
    out = capsys.readouterr()
    assert status == 1, out
    assert out.out == ""
    assert "Traceback" not in out.err
    first = out.err.splitlines()[0]
    assert first.startswith(f"tests/errors/{spec.name}:") or first.startswith("tests/errors/nested/"), first
    golden = spec.with_suffix(".txt")
    if accept or not golden.exists():
        golden.write_text(out.err)
        if not accept:
            pytest.fail(f"wrote new golden file {golden.name}; review it")
    assert out.err == golden.read_text()
