"""Write a small synthetic detection data set in Ultralytics' YOLO layout, independently of archc's own
`--data shapes` generator (other code, other drawing: PIL primitives, other colours and backgrounds),
so that detection benchmarks and acceptance runs use data archc did not make for itself.

    python tools/make_yolo_data.py OUT_DIR [--train 400] [--val 100] [--size 128] [--seed 0]

OUT_DIR/data.yaml, OUT_DIR/images/{train,val}/NNNNNN.jpg, OUT_DIR/labels/{train,val}/NNNNNN.txt with rows
`class cx cy w h` (normalised); 3 classes (ellipse, box, triangle), 1-4 objects per image on a gradient
background with noise; about a tenth of the images have no objects (no label file: background images).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

NAMES = ["ellipse", "box", "triangle"]


def _background(rng: random.Random, size: int) -> object:
    from PIL import Image, ImageDraw, ImageFilter

    img = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(img)
    a = [rng.randint(0, 255) for _ in range(3)]
    b = [rng.randint(0, 255) for _ in range(3)]
    for y in range(size):
        t = y / max(size - 1, 1)
        draw.line([(0, y), (size, y)], fill=tuple(int(a[i] * (1 - t) + b[i] * t) for i in range(3)))
    for _ in range(size // 4):  # speckles
        x, y = rng.randrange(size), rng.randrange(size)
        draw.point((x, y), fill=tuple(rng.randint(0, 255) for _ in range(3)))
    return img.filter(ImageFilter.GaussianBlur(0.6))


def _image(rng: random.Random, size: int) -> tuple[object, list[str]]:
    from PIL import ImageDraw

    img = _background(rng, size)
    draw = ImageDraw.Draw(img)
    rows = []
    count = 0 if rng.random() < 0.1 else rng.randint(1, 4)
    for _ in range(count):
        cls = rng.randrange(3)
        w, h = rng.uniform(0.12, 0.45) * size, rng.uniform(0.12, 0.45) * size
        x1, y1 = rng.uniform(0, size - w), rng.uniform(0, size - h)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        if cls == 0:
            draw.ellipse([x1, y1, x1 + w, y1 + h], fill=colour)
        elif cls == 1:
            draw.rectangle([x1, y1, x1 + w, y1 + h], fill=colour)
        else:
            draw.polygon([(x1 + w / 2, y1), (x1, y1 + h), (x1 + w, y1 + h)], fill=colour)
        rows.append(f"{cls} {(x1 + w / 2) / size:.6f} {(y1 + h / 2) / size:.6f} {w / size:.6f} {h / size:.6f}")
    return img, rows


def make(out: Path, train: int, val: int, size: int, seed: int) -> Path:
    rng = random.Random(seed)
    for split, count in (("train", train), ("val", val)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            img, rows = _image(rng, size)
            img.save(out / "images" / split / f"{i:06d}.jpg", quality=92)  # type: ignore[attr-defined]
            if rows:
                (out / "labels" / split / f"{i:06d}.txt").write_text("\n".join(rows) + "\n")
    data = out / "data.yaml"
    data.write_text(f"path: {out.resolve()}\ntrain: images/train\nval: images/val\nnames: {NAMES}\n")
    return data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--train", type=int, default=400)
    p.add_argument("--val", type=int, default=100)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    print(make(Path(a.out), a.train, a.val, a.size, a.seed))


if __name__ == "__main__":
    main()
