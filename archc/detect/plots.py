"""The pictures a detection run writes: losses and mAP per epoch, a PR curve per class, the confusion
matrix, and a grid of validation images with true (green) and predicted (coloured, scored) boxes.
Each file is written atomically; matplotlib draws the charts, PIL the boxes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from archc.fileio import atomic_write

__all__ = ["losses", "report", "draw_boxes", "COLOURS"]

COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255), (170, 110, 40)]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    _pyplot().close(fig)
    atomic_write(path, buf.getvalue())


def losses(path: Path, history: list[dict[str, float]]) -> None:
    """Training losses and validation mAP per epoch (points as well as lines: a 1-epoch run shows)."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    for key in [k for k in history[0] if k.startswith("train_")]:
        a.plot(epochs, [h.get(key, float("nan")) for h in history], marker="o", label=key[6:])
    a.set_title("training loss")
    a.set_xlabel("epoch")
    a.legend()
    for key, label in (("val_map50", "mAP50"), ("val_map", "mAP50-95")):
        b.plot(epochs, [h.get(key, float("nan")) for h in history], marker="o", label=label)
    b.set_title("validation")
    b.set_xlabel("epoch")
    b.legend()
    fig.tight_layout()
    _save(fig, path)


def _pr_curves(path: Path, report: Any, names: list[str]) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    recall = report.pr_recall
    for i, name in enumerate(names):
        precision = report.pr_precision[i]
        if precision is not None:
            ap = report.per_class.get(name, {}).get("ap50", float("nan"))
            ax.plot(recall, precision, label=f"{name} {ap:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"precision-recall at IoU 0.5 (mAP50 {report.map50:.3f})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def _confusion(path: Path, report: Any, names: list[str]) -> None:
    plt = _pyplot()
    matrix = report.confusion
    labels = [*names, "background"]
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(labels), 1.0 + 0.55 * len(labels)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, str(int(matrix[i][j])), ha="center", va="center", fontsize=7)
    ax.set_title("confusion (IoU 0.45, confidence 0.25)")
    fig.tight_layout()
    _save(fig, path)


def draw_boxes(image: Any, boxes: Any, names: list[str], truth: Any = None, width: int = 2) -> Any:
    """A copy of a PIL image with labelled boxes: rows (x1, y1, x2, y2, score, class); ``truth``
    rows (x1, y1, x2, y2, class) are drawn thin in green first."""
    from PIL import ImageDraw

    image = image.convert("RGB").copy()
    draw = ImageDraw.Draw(image)
    for x1, y1, x2, y2, _c in ([] if truth is None else truth):
        draw.rectangle([x1, y1, x2, y2], outline=(0, 200, 0), width=1)
    for x1, y1, x2, y2, score, c in boxes:
        colour = COLOURS[int(c) % len(COLOURS)]
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        label = f"{names[int(c)] if int(c) < len(names) else int(c)} {score:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), label)
        top_y = max(y1 - (bottom - top) - 2, 0)
        draw.rectangle([x1, top_y, x1 + right - left + 2, top_y + bottom - top + 2], fill=colour)
        draw.text((x1 + 1, top_y), label, fill=(255, 255, 255))
    return image


def _grid(path: Path, samples: list[tuple[Any, Any, Any]], names: list[str]) -> None:
    """Up to 16 validation images (PIL), each with its predictions and truths, 4 to a row."""
    from PIL import Image

    if not samples:
        return
    tiles = [draw_boxes(img, pred, names, truth, width=1) for img, pred, truth in samples[:16]]
    w, h = tiles[0].size
    cols = min(4, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * w, rows * h), (255, 255, 255))
    for k, tile in enumerate(tiles):
        sheet.paste(tile.resize((w, h)), ((k % cols) * w, (k // cols) * h))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    atomic_write(path, buf.getvalue())


def report(out: Path, report: Any, names: list[str]) -> None:
    """The best epoch's PR curves, confusion matrix and validation image grid."""
    _pr_curves(out / "pr_curve.png", report, names)
    _confusion(out / "confusion_matrix.png", report, names)
    _grid(out / "val_predictions.png", report.samples, names)
