"""Same spec, same bytes: JSON summary, graph text and str(module) under different hash seeds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE = """
import json, archc
from archc.analyze.summary import to_json
for spec in ("densenet121", "googlenet", "vit_b_32", "efficientnet_b0"):
    a = archc.check(spec)
    print(json.dumps(to_json(a), sort_keys=False))
    print(a.graph.text())
    print(str(archc.compile(spec, device="meta")))
    from archc.render.output import render
    print(render(a, "dot").decode())
"""


def _run(seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.parametrize("seed", ["1", "12345"])
def test_outputs_identical_across_hash_seeds(seed):
    assert _run("0") == _run(seed)
