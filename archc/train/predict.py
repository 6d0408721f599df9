"""`archc predict`: run a trained model on images. Classification prints the top-k classes with the
run's class names; segmentation writes a class-index mask PNG (palette mode: the pixel values are the
classes, the palette makes them visible) of each image's own size."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from archc.backend.weights import is_torchvision, load_any, load_weights, run_weights, torchvision_enum
from archc.errors import UsageError
from archc.fileio import atomic_write
from archc.train.data import data_config, image_uint8, prepare
from archc.train.task import SUPPORTED, output_task, split_outputs

__all__ = ["Prediction", "predict", "palette", "run_data_config"]


@dataclass
class Prediction:
    image: Path
    top: list[tuple[str, float]]  # classification: (class, probability), best first
    mask: Path | None = None  # segmentation: the mask PNG written
    overlay: Path | None = None  # segmentation with overlay: the colour overlay PNG written
    notes: list[str] = field(default_factory=list)  # how the image was converted beyond training's steps


def _run_info(weights: Path) -> dict[str, Any]:
    run = weights if weights.is_dir() else weights.parent
    info = run / "run.json"
    return json.loads(info.read_text()) if info.is_file() else {}


def _model(spec: str, weights: str | None, params: dict[str, Any], input_shape: Any, strict: bool = True
           ) -> tuple[nn.Module, dict[str, Any]]:
    """The compiled spec with the run's params and input size, and its trained weights loaded (every key
    must fit unless not ``strict``)."""
    import archc

    if weights is None and Path(spec).is_dir() and (Path(spec) / "run.json").is_file():
        weights, spec = spec, str(Path(spec) / "spec.yaml")  # `archc predict RUN_DIR IMAGE`
    if is_torchvision(weights):
        return _torchvision_model(spec, str(weights), params, input_shape, strict)
    info: dict[str, Any] = {}
    if weights is not None:
        file, trained_with = run_weights(weights)
        info = _run_info(Path(weights))
        params = {**trained_with, **params}
    if input_shape is None and info.get("input"):
        input_shape = info["input"]
    model = archc.compile(spec, input_shape=input_shape, **params).eval()
    if weights is not None:
        load_weights(model, file, strict)
    return model, info


def _torchvision_model(spec: str, weights: str, params: dict[str, Any], input_shape: Any, strict: bool = True
                       ) -> tuple[nn.Module, dict[str, Any]]:
    """The spec with its twin's pretrained weights; the weights' class names and own preprocessing."""
    import archc

    model = archc.compile(spec, input_shape=input_shape, **params).eval()
    load_any(model, weights, strict)
    member = torchvision_enum(cast(Any, model).archc_graph, weights)
    return model, {"classes": member.meta.get("categories"), "transform": member.transforms()}


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


def run_data_config(info: dict[str, Any], shape: tuple[int, ...], task: str) -> dict[str, Any]:
    """How the run made its validation images: run.json's `data_config`, or for runs from before it was stored
    the same derived from the run's data; without a run, the whole image resized (ImageNet statistics for RGB)."""
    stored = info.get("data_config")
    if stored and list(stored.get("input_size", ())) == list(shape):
        return cast(dict[str, Any], stored)
    if "data" in info:
        return data_config(info["data"], shape, info.get("task") or task)
    return data_config("folder", shape, "segmentation")  # segmentation's: no crop


def _input(image: Any, shape: tuple[int, ...], path: Path, info: dict[str, Any], task: str, notes: list[str]
           ) -> torch.Tensor:
    """The image as the model's input: the weights' own preprocessing, else as the run made its validation
    images (channels, resize, crop, normalisation)."""
    if "transform" in info:
        return cast(torch.Tensor, info["transform"](image_uint8(image, shape[0], path)))
    return prepare(image, run_data_config(info, shape, task), path, notes)


def _png(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _overlay(image: Any, mask: Any) -> Any:
    """The image in colour with each non-background class's palette colour blended over it (50%)."""
    from PIL import Image

    colours = mask.convert("RGB")
    blended = Image.blend(image.convert("RGB"), colours, 0.5)
    return Image.composite(blended, image.convert("RGB"), mask.point(lambda v: 255 if v else 0, "L"))


def predict(spec: str, images: list[str], weights: str | None = None, params: dict[str, Any] | None = None,
            input_shape: Any = None, out: str | None = None, top_k: int = 5, overlay: bool = False,
            strict: bool = True) -> list[Prediction]:
    """Classify or segment each image with ``spec`` and ``weights`` (a run directory, a file or
    ``torchvision[:NAME]``, loaded strictly unless not ``strict``); segmentation with ``overlay`` also writes
    ``NAME_overlay.png`` beside each mask. Images take the model's channels as in training: grey or RGB
    for RGB models, RGB or grey for grey models."""
    from PIL import Image
    from torch.nn import functional as F

    model, info = _model(spec, weights, dict(params or {}), input_shape, strict)
    graph: Any = cast(Any, model).archc_graph
    shape = tuple(graph.inputs[0][1])
    probe, _ = split_outputs(model(torch.zeros(1, *shape)))  # auxiliary outputs are not predictions
    task = info.get("task") or output_task(tuple(probe.shape[1:]), shape)
    if task is None:
        raise UsageError(f"{graph.name}'s output is {'x'.join(map(str, probe.shape[1:]))} per image; archc predict "
                         f"takes the models that {SUPPORTED}")
    names = list(info.get("classes") or [str(i) for i in range(probe.shape[1])])
    results = []
    for name in images:
        path = Path(name)
        with _open(path) as image:
            notes: list[str] = []
            x = _input(image, shape, path, info, task, notes)
            size = (image.height, image.width)
            original = image.copy() if overlay else None
        if tuple(x.shape[1:]) != shape[1:]:  # torchvision weights' own crop size
            x = F.interpolate(x[None], size=shape[1:], mode="bilinear", align_corners=False)[0]
        with torch.no_grad():
            scores, _ = split_outputs(model(x[None]))
        if task == "classification":
            probs = scores.softmax(1)[0]
            top = probs.topk(min(top_k, len(probs)))
            results.append(Prediction(path, [(names[i], float(p)) for p, i in zip(top.values, top.indices)],
                                      notes=notes))
            continue
        labels = F.interpolate(scores, size=size, mode="bilinear", align_corners=False).argmax(1)[0]
        mask = Image.frombytes("P", (int(size[1]), int(size[0])), bytes(labels.to(torch.uint8).flatten().tolist()))
        mask.putpalette(palette(len(names)))
        target = _mask_path(path, out, len(images) > 1)
        atomic_write(target, _png(mask))
        shown = None
        if original is not None:
            shown = target.with_name(f"{target.stem.removesuffix('_mask')}_overlay.png")
            atomic_write(shown, _png(_overlay(original, mask)))
        counts = torch.bincount(labels.flatten(), minlength=len(names)).float() / labels.numel()
        results.append(Prediction(path, [(names[i], float(c)) for i, c in enumerate(counts) if c > 0], target, shown,
                                  notes))
    return results

