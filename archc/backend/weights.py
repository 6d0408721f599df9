"""Load weights into a compiled model: safetensors or `torch.load(weights_only=True)` files, or
torchvision's pretrained weights of the spec's twin by name (`torchvision`, `torchvision:IMAGENET1K_V2`)
through torchvision's own weights API and cache; strict by default, with a readable report of missing,
unexpected and mismatched keys."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archc.errors import UsageError

__all__ = ["is_torchvision", "load_any", "load_state", "load_weights", "read_state_dict", "run_weights",
           "torchvision_cache_file", "torchvision_enum", "torchvision_state_dict"]


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
    return load_state(model, read_state_dict(path), str(path), strict)


def load_state(model: nn.Module, theirs: dict[str, torch.Tensor], source: str, strict: bool = True
               ) -> dict[str, list[str]]:
    """Load the tensors of ``theirs`` that fit; with ``strict`` any missing, unexpected or mismatched
    key is an error naming ``source``."""
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
        raise UsageError(f"weights {source} do not fit the model: " + "; ".join(lines),
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


# ---- torchvision's pretrained weights: `--weights torchvision[:NAME]` --------------------------------

def is_torchvision(weights: object) -> bool:
    """``torchvision`` (the twin's default weights) or ``torchvision:NAME`` (e.g. IMAGENET1K_V2)."""
    return isinstance(weights, str) and (weights == "torchvision" or weights.startswith("torchvision:"))


def torchvision_enum(graph: Any, weights: str) -> Any:
    """The torchvision weights (an enum member) that ``weights`` names for the spec's twin."""
    import torchvision

    twin = graph.twin()
    if twin is None:
        raise UsageError(f"--weights {weights}: {graph.name} has no torchvision twin (its `reference:` names none)",
                         hint="give a weights file or a run directory instead")
    try:
        enum = torchvision.models.get_model_weights(twin[0])
    except (ValueError, KeyError):
        raise UsageError(f"--weights {weights}: torchvision has no pretrained weights for {twin[0]}") from None
    if weights == "torchvision":
        return enum.DEFAULT
    name = weights.split(":", 1)[1].rpartition(".")[2]  # IMAGENET1K_V2 or ResNet50_Weights.IMAGENET1K_V2
    if name == "DEFAULT" or name in enum.__members__:
        return enum[name]
    raise UsageError(f"--weights {weights}: {enum.__name__} has no {name}",
                     hint=f"one of: {', '.join(['DEFAULT', *enum.__members__])}")


def torchvision_cache_file(member: Any) -> Path:
    """Where torchvision's cache keeps these weights: ``$TORCH_HOME/hub/checkpoints/<file of the URL>``."""
    from urllib.parse import urlparse

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(member.url).path).name


def torchvision_state_dict(graph: Any, weights: str) -> tuple[dict[str, torch.Tensor], Any]:
    """The twin's pretrained state_dict, built by torchvision itself (its key fix-ups included) from its
    cache, downloading once when missing; offline without the file is an error naming it."""
    import torchvision

    member = torchvision_enum(graph, weights)
    name, kwargs = graph.twin()
    file = torchvision_cache_file(member)
    cached = file.is_file()
    try:
        twin = torchvision.models.get_model(name, **{**kwargs, "weights": member})
    except OSError as e:  # URLError and HTTPError are OSErrors: no network, or a proxy refusing
        if cached:
            raise
        raise UsageError(f"--weights {weights}: {member} is not in torchvision's cache ({file}) and could not be "
                         f"downloaded from {member.url}: {e}",
                         hint="download it once on a machine with internet and copy it to that path (TORCH_HOME "
                              "sets the cache folder)") from None
    except (RuntimeError, EOFError, pickle.UnpicklingError) as e:
        if not cached:
            raise
        first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise UsageError(f"--weights {weights}: cannot read torchvision's cached {file}: {first}",
                         hint="delete the file to download it again") from None
    return twin.state_dict(), member


def load_any(model: nn.Module, weights: str | Path, strict: bool = True) -> dict[str, list[str]]:
    """``torchvision[:NAME]`` (the spec's twin's pretrained weights) or a file (`load_weights`)."""
    if not is_torchvision(weights):
        return load_weights(model, weights, strict)
    graph = getattr(model, "archc_graph", None)
    if graph is None:
        raise UsageError(f"--weights {weights} needs a model compiled by archc (its spec names the twin)")
    state, member = torchvision_state_dict(graph, str(weights))
    children = {n for n, _ in model.named_children()}
    # torchvision builds segmentation models with their auxiliary head when loading weights; a spec
    # without one (aux_loss: false) leaves those tensors out
    state = {k: v for k, v in state.items() if not k.startswith("aux_classifier.") or "aux_classifier" in children}
    return load_state(model, state, f"torchvision's {member}", strict)
