"""Load weights into a compiled model: safetensors or `torch.load(weights_only=True)`, strict by
default, with a readable report of missing, unexpected and mismatched keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archc.errors import UsageError

__all__ = ["load_weights", "read_state_dict", "run_weights"]


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"no such weights file: {p}")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    try:
        obj: Any = torch.load(p, map_location="cpu", weights_only=True)  # never unpickle arbitrary code
    except Exception as e:  # noqa: BLE001 - any unpickling refusal is reported, never bypassed
        raise UsageError(f"cannot read {p} as plain tensors: {str(e).splitlines()[0][:200]}",
                         hint="only state_dicts (weights_only) and .safetensors files are accepted") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UsageError(f"{p} does not hold a state_dict of tensors")
    return obj


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> dict[str, list[str]]:
    """Load what fits; with ``strict`` any missing, unexpected or mismatched key is an error."""
    theirs = read_state_dict(path)
    ours = model.state_dict()
    report = {
        "missing": [k for k in ours if k not in theirs],
        "unexpected": [k for k in theirs if k not in ours],
        "mismatched": [f"{k}: file {tuple(theirs[k].shape)} vs model {tuple(ours[k].shape)}"
                       for k in ours if k in theirs and theirs[k].shape != ours[k].shape],
    }
    if strict and any(report.values()):
        lines = [f"{name} ({len(keys)}): {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"
                 for name, keys in report.items() if keys]
        raise UsageError(f"weights {path} do not fit the model: " + "; ".join(lines),
                         hint="pass --no-strict to load the keys that fit (e.g. after changing num_classes)")
    fitting = {k: v for k, v in theirs.items() if k in ours and v.shape == ours[k].shape}
    model.load_state_dict(fitting, strict=False)
    return report


def run_weights(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """A weights file and the spec parameters it was trained with: a run directory of `archc train` gives
    its best.safetensors (else last) and run.json's params (num_classes set from the data ...); a file
    inside a run directory gives that run's params; any other file, none."""
    p = Path(path)
    run = p if p.is_dir() else p.parent
    if p.is_dir():
        found = [run / n for n in ("best.safetensors", "last.safetensors") if (run / n).is_file()]
        if not found:
            raise UsageError(f"--weights {p}: no best.safetensors or last.safetensors in that folder",
                             hint="give a run directory of archc train, or a weights file")
        p = found[0]
    info = run / "run.json"
    params = json.loads(info.read_text()).get("params", {}) if info.is_file() else {}
    return p, dict(params)
