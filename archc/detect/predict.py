"""`archc predict RUN IMAGE|FOLDER ...` for detection runs: letterbox each image as in training, run the
model, NMS, undo the letterbox, draw labelled boxes on the original image and list them."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archc.detect.data_common import IMAGE_SUFFIXES
from archc.errors import UsageError

__all__ = ["DetectedImage", "predict_boxes"]



@dataclass
class DetectedImage:
    image: str
    boxes: list[dict[str, Any]]  # name, class, score, box [x1, y1, x2, y2] in the image's pixels
    drawn: str

    def as_json(self) -> dict[str, Any]:
        return {"image": self.image, "boxes": self.boxes, "drawn": self.drawn}


def _images(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            found.append(p)
        else:
            raise UsageError(f"{p}: no such image or folder")
    if not found:
        raise UsageError(f"no images in {', '.join(paths)}", hint=f"image files end in {', '.join(IMAGE_SUFFIXES)}")
    return found


def _drawn_path(image: Path, out: str | None, many: bool) -> Path:
    if out is None:
        return image.with_name(f"{image.stem}_boxes.png")
    target = Path(out)
    if many or target.is_dir() or not target.suffix:
        target.mkdir(parents=True, exist_ok=True)
        return target / f"{image.stem}_boxes.png"
    return target


def predict_boxes(run: str, images: list[str], weights: str | None = None, out: str | None = None,
                  conf: float = 0.25, iou: float = 0.7, max_det: int = 300, device: str = "cpu"
                  ) -> list[DetectedImage]:
    from PIL import Image

    from archc.detect.data import letterbox_image, unletterbox_boxes
    from archc.detect.plots import draw_boxes
    from archc.detect.val import load_run_model, predictions
    from archc.fileio import atomic_write

    model, head, info = load_run_model(run, weights, device)
    names = list(info.get("classes", [])) or [str(i) for i in range(head.classes)]
    paths = _images(images)
    results = []
    for path in paths:
        try:
            with Image.open(path) as img:
                original = img.convert("RGB")
        except OSError as e:
            raise UsageError(f"{path}: not a readable image ({e})") from None
        x, meta = letterbox_image(original, head.size, head.channels)
        found = predictions(model, head, x[None].to(device), conf, iou, max_det)[0].cpu()
        boxes = unletterbox_boxes(found[:, :4], meta)
        rows = [[*b.tolist(), float(s), int(c)] for b, s, c in zip(boxes, found[:, 4], found[:, 5])]
        target = _drawn_path(path, out, len(paths) > 1)
        buf = io.BytesIO()
        draw_boxes(original, rows, names).save(buf, format="PNG")
        atomic_write(target, buf.getvalue())
        results.append(DetectedImage(str(path), [
            {"name": names[c] if c < len(names) else str(c), "class": c, "score": round(s, 4),
             "box": [round(v, 1) for v in (x1, y1, x2, y2)]} for x1, y1, x2, y2, s, c in rows], str(target)))
    return results
