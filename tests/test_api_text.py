"""archc.check / archc.compile take a spec's text as well as a path or a built-in name (what `archc import`
and `archc.from_module` return), and a name the OS refuses is a usage error, not an OSError traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

import archc
from archc.errors import ArchcError, UsageError

ROOT = Path(__file__).resolve().parents[1]


def test_spec_text_checks_and_compiles_as_its_file_does():
    text = (ROOT / "specs" / "lenet5.yaml").read_text()
    assert archc.check(text).params == archc.check("lenet5").params == 61_706
    model = archc.compile(text, device="meta")
    assert sum(p.numel() for p in model.parameters()) == 61_706


def test_errors_in_spec_text_are_located_in_the_string():
    text = (ROOT / "specs" / "lenet5.yaml").read_text().replace("kernel_size: 5", "kernel_size: 50", 1)
    with pytest.raises(ArchcError) as info:
        archc.check(text)
    assert info.value.loc is not None and info.value.loc.file == "<string>" and info.value.loc.line > 1


def test_a_name_the_os_refuses_is_a_usage_error():
    with pytest.raises(UsageError, match="not a spec file or built-in name"):
        archc.compile("x" * 5000)
