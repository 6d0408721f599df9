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


def test_a_base_rewritten_within_one_mtime_tick_is_checked_again(tmp_path):
    """The schema check of extended files is cached per process (the language server lives long):
    keyed by content, a base rewritten at the same size and mtime is validated again."""
    import os

    import archc

    base, child = tmp_path / "base.yaml", tmp_path / "child.yaml"
    good = "name: b\ninput: [3, 8, 8]\nnodes:\n  c: {op: conv2d, out_channels: 4, kernel_size: 1}\n"
    base.write_text(good)
    child.write_text("extends: base.yaml\nname: c\n")
    archc.check(child)
    st = base.stat()
    bad = good.replace("name: b\n", "zz: 1\n") + "  "
    assert len(bad) == len(good)
    base.write_text(bad)
    os.utime(base, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(archc.ArchcError, match="'name' is a required property"):
        archc.check(child)
