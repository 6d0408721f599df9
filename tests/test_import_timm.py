"""`archc import timm:NAME`, issue 27's done-when list: timm's resnet50d, cspresnet50, poolformer_s12 and
deit_tiny_patch16_224 import exact and folded, each at most 150 lines (timm pinned in the dev extra)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
if importlib.util.find_spec("timm") is None:
    pytest.skip("timm is not installed (pip install 'archc[dev]' pins it)", allow_module_level=True)

import archc  # noqa: E402
from archc.cli import main  # noqa: E402
from tests.test_import_zoo import build, exact  # noqa: E402

# name: (create_model arguments, input shape, a line of the imported text that shows the fold)
TIMM = {
    "resnet50d": ({}, (3, 64, 64), r"layer3: {op: bottleneck, repeat: 6, "),
    "cspresnet50": ({}, (3, 64, 64), r"op: bottleneck_block, repeat: \d"),
    "poolformer_s12": ({}, (3, 64, 64), r"blocks: {op: meta_former_block, repeat: 6"),
    "deit_tiny_patch16_224": ({"img_size": 32}, (3, 32, 32), r"blocks: {op: block, repeat: 12}"),
}


@pytest.mark.parametrize("name", list(TIMM))
def test_timm_model_imports_exact_within_150_lines(name: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    kwargs, shape, folded = TIMM[name]
    model = build("timm", name, kwargs)
    text = archc.from_module(model, shape)
    assert len(text.splitlines()) <= 150
    assert re.search(folded, text, re.M), text
    exact(model, text, shape, tmp_path)


def test_cli_imports_timm_by_name(tmp_path: Path) -> None:
    out = tmp_path / "deit.yaml"
    assert main(["import", "timm:deit_tiny_patch16_224", "--args", '{"img_size": 32}', "--input", "3x32x32",
                 "-o", str(out)]) == 0
    assert archc.check(out).params == 5_717_416 - (197 - 5) * 192  # timm at 224 px: 192 positions fewer at 32
