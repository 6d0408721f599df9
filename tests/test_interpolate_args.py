"""interpolate's mode and align_corners: archc's static check accepts exactly what torch runs (issue 26's
from-the-README report: `mode: nearest, align_corners: false` passed `archc check`, then torch raised)."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.nn import functional

import archc
from archc import blocks as library
from archc.blocks.interpolate import MODES
from archc.errors import ArchcError


def _spec(mode: str, align: bool | None) -> str:
    extra = "" if align is None else f", align_corners: {str(align).lower()}"
    node = f"{{op: interpolate, size: [9, 7], mode: {mode}{extra}}}"
    return f"archc: 1\nname: t\ninput: [2, 5, 5]\nnodes:\n  up: {node}\n"


@pytest.mark.parametrize(("mode", "align"), list(itertools.product(MODES, (None, False, True))))
def test_archc_accepts_what_torch_runs(mode, align, tmp_path):
    try:
        functional.interpolate(torch.ones(1, 2, 5, 5), size=(9, 7), mode=mode, align_corners=align)
        torch_ok = True
    except ValueError:
        torch_ok = False
    try:
        path = tmp_path / "t.yaml"
        path.write_text(_spec(mode, align))
        archc.check(str(path))
        archc_ok = True
    except ArchcError as e:
        archc_ok = False
        assert "align_corners" in e.message and e.loc is not None
    assert archc_ok == torch_ok


STRING_CHOICES = [(name, key) for name in library.names() for key, p in library.get(name).params.items()
                  if p.kind == "str" and p.choices]


@pytest.mark.parametrize(("op", "key"), STRING_CHOICES)
def test_string_arguments_take_only_their_choices(op, key):
    """A misspelt mode (`bilinearr`, `reflct`) passed `archc check` and failed in torch, or met a wrong error."""
    param = library.get(op).params[key]
    assert all(param.check(c) is None for c in param.choices)
    assert param.check(str(param.choices[0]) + "x") == "one of " + ", ".join(repr(c) for c in param.choices)


def test_a_misspelt_mode_is_located_at_its_value(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(_spec("bilinearr", None))
    with pytest.raises(ArchcError) as info:
        archc.check(str(path))
    assert "mode should be one of" in info.value.message and info.value.loc.line == 5
