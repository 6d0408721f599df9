"""`archc predict`: run a trained model on images. Classification prints the top-k classes with the
run's class names; segmentation writes a class-index mask PNG (palette mode: the pixel values are the
classes, the palette makes them visible) of each image's own size."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from archc.errors import UsageError
from archc.fileio import atomic_write
from archc.train.data import image_tensor
from archc.train.task import SUPPORTED, output_task
from archc.train.weights import load_weights, run_weights

__all__ = ["Prediction", "predict", "palette"]


@dataclass
class Prediction:
    image: Path
    top: list[tuple[str, float]]  # classification: (class, probability), best first
    mask: Path | None = None  # segmentation: the mask PNG written


def _run_info(weights: Path) -> dict[str, Any]:
    run = weights if weights.is_dir() else weights.parent
    info = run / "run.json"
    return json.loads(info.read_text()) if info.is_file() else {}


def _model(spec: str, weights: str | None, params: dict[str, Any], input_shape: Any
           ) -> tuple[nn.Module, dict[str, Any]]:
    """The compiled spec with the run's params and input size, and its trained weights loaded."""
    import archc

    if weights is None and Path(spec).is_dir() and (Path(spec) / "run.json").is_file():
        weights, spec = spec, str(Path(spec) / "spec.yaml")  # `archc predict RUN_DIR IMAGE`
    info: dict[str, Any] = {}
    if weights is not None:
        file, trained_with = run_weights(weights)
        info = _run_info(Path(weights))
        params = {**trained_with, **params}
    if input_shape is None and info.get("input"):
        input_shape = info["input"]
    model = archc.compile(spec, input_shape=input_shape, **params).eval()
    if weights is not None:
        load_weights(model, file)
    return model, info


def palette(classes: int) -> list[int]:
    """256 RGB entries: class 0 black, then well-separated hues."""
    import colorsys

    colours = [(0, 0, 0)] + [tuple(int(255 * c) for c in colorsys.hsv_to_rgb((i * 0.618) % 1, 0.8, 1.0))
                             for i in range(1, 256)]
    return [v for rgb in colours for v in rgb]


def _open(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise UsageError(f"no such image: {path}")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError) as e:
        raise UsageError(f"cannot read {path} as an image: {e}", hint="PNG or JPEG images") from None
    return image


def _mask_path(image: Path, out: str | None, many: bool) -> Path:
    if out is None:
        return image.with_name(f"{image.stem}_mask.png")
    target = Path(out)
    if target.suffix.lower() == ".png" and not many:
        return target
    target.mkdir(parents=True, exist_ok=True)
    return target / f"{image.stem}_mask.png"


def predict(spec: str, images: list[str], weights: str | None = None, params: dict[str, Any] | None = None,
            input_shape: Any = None, out: str | None = None, top_k: int = 5) -> list[Prediction]:
    """Classify or segment each image with ``spec`` and ``weights`` (a run directory or a file)."""
    from PIL import Image
    from torch.nn import functional as F

    model, info = _model(spec, weights, dict(params or {}), input_shape)
    graph: Any = cast(Any, model).archc_graph
    shape = tuple(graph.inputs[0][1])
    probe = model(torch.zeros(1, *shape))
    task = info.get("task") or output_task(tuple(probe.shape[1:]), shape)
    if task is None:
        raise UsageError(f"{graph.name}'s output is {'x'.join(map(str, probe.shape[1:]))} per image; archc predict "
                         f"takes the models that {SUPPORTED}")
    names = list(info.get("classes") or [str(i) for i in range(probe.shape[1])])
    results = []
    for name in images:
        path = Path(name)
        with _open(path) as image:
            x = image_tensor(image, shape[0], path, info.get("data", "folder"))
        size = x.shape[1:]
        with torch.no_grad():
            scores = model(F.interpolate(x[None], size=shape[1:], mode="bilinear", align_corners=False))
        if task == "classification":
            probs = scores.softmax(1)[0]
            top = probs.topk(min(top_k, len(probs)))
            results.append(Prediction(path, [(names[i], float(p)) for p, i in zip(top.values, top.indices)]))
            continue
        labels = F.interpolate(scores, size=size, mode="bilinear", align_corners=False).argmax(1)[0]
        mask = Image.frombytes("P", (int(size[1]), int(size[0])), bytes(labels.to(torch.uint8).flatten().tolist()))
        mask.putpalette(palette(len(names)))
        buf = io.BytesIO()
        mask.save(buf, format="PNG")
        target = _mask_path(path, out, len(images) > 1)
        atomic_write(target, buf.getvalue())
        counts = torch.bincount(labels.flatten(), minlength=len(names)).float() / labels.numel()
        results.append(Prediction(path, [(names[i], float(c)) for i, c in enumerate(counts) if c > 0], target))
    return results
