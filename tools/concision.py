"""How short the zoo's specs are: non-blank, non-comment lines of each family's spec (with the specs
it extends or imports) against torchvision's model module (docstrings left out; for segmentation, plus the
backbone module it builds on). Neither side counts its library (archc's blocks, torch.nn).

    python tools/concision.py    # prints a Markdown table
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import yaml

SPECS = Path(__file__).resolve().parents[1] / "specs"
# spec -> torchvision modules it corresponds to (segmentation: head module + backbone module)
FAMILIES = {"resnet50": ["resnet"], "vgg16": ["vgg"], "densenet121": ["densenet"],
            "mobilenet_v3_large": ["mobilenetv3"], "efficientnet_b0": ["efficientnet"], "regnet_y_400mf": ["regnet"],
            "convnext_tiny": ["convnext"], "vit_b_16": ["vision_transformer"], "swin_t": ["swin_transformer"],
            "maxvit_t": ["maxvit"], "inception_v3": ["inception"], "googlenet": ["googlenet"],
            "shufflenet_v2_x1_0": ["shufflenetv2"], "mnasnet1_0": ["mnasnet"], "squeezenet1_0": ["squeezenet"],
            "fcn_resnet50": ["segmentation.fcn", "resnet"],
            "deeplabv3_resnet50": ["segmentation.deeplabv3", "resnet"],
            "lraspp_mobilenet_v3_large": ["segmentation.lraspp", "mobilenetv3"]}


def code_lines(text: str, python: bool = False) -> int:
    if python:
        text = re.sub(r'(?s)""".*?"""', "", text)
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))


def chain(spec: str) -> list[Path]:
    """The spec file and every file it extends or imports blocks from (whole files: an upper bound)."""
    out: list[Path] = []
    todo = [SPECS / f"{spec}.yaml"]
    while todo:
        path = todo.pop(0)
        if path in out:
            continue
        out.append(path)
        data = yaml.safe_load(path.read_text()) or {}
        imports = data.get("imports") or []
        for name in ([data["extends"]] if data.get("extends") else []) + list(imports):
            todo.append(SPECS / (name if name.endswith(".yaml") else f"{name}.yaml"))
    return out


def main() -> None:
    print("| family spec | spec lines (with what it extends or imports) | torchvision module lines | ratio |")
    print("|---|---|---|---|")
    for spec, modules in FAMILIES.items():
        files = chain(spec)
        ours = sum(code_lines(f.read_text()) for f in files)
        theirs = sum(code_lines(inspect.getsource(importlib.import_module(f"torchvision.models.{m}")), True)
                     for m in modules)
        via = f" (+ {', '.join(f.stem for f in files[1:])})" if len(files) > 1 else ""
        print(f"| {spec}{via} | {ours} | {theirs} ({' + '.join(modules)}) | {ours / theirs:.2f} |")


if __name__ == "__main__":
    main()
