"""Detection side by side: archc and Ultralytics (when installed) train the same model (yolov8n, from
scratch) on the same synthetic YOLO-layout data (tools/make_yolo_data.py), same image size, batch and
epochs, on the same CPU, one after the other. Prints ratios measured in this run:

- training throughput: images per second of an epoch (training and that epoch's validation), from each
  side's own per-epoch times; the fastest epoch and the median (a shared machine's load moves single epochs);
- mAP50-95 and mAP50 after the same epochs — each side's own figure, and both models scored by the same
  evaluator (archc's pycocotools path: Ultralytics' trained weights load into archc's yolov8n twin);
- predict latency per image (read, letterbox, forward, NMS; batch 1, median; the two run image by image,
  interleaved).

    python tools/bench_detect.py --epochs 10            # about 2 x 3 minutes on 2 idle cores
    python tools/bench_detect.py --epochs 30 --md docs/benchmarks.md   # also append the table

Ultralytics is AGPL: it is only run here, as a reference, never imported by archc.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

_ULTRALYTICS_TRAIN = """
import json, sys, time
from ultralytics import YOLO
data, epochs, imgsz, batch, project = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
start = time.perf_counter()
YOLO("yolov8n.yaml").train(data=data, epochs=epochs, imgsz=imgsz, batch=batch, device="cpu", workers=0,
                           project=project, name="ul", exist_ok=True, plots=False, seed=0, deterministic=True,
                           amp=False, pretrained=False, verbose=False)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd[:4])} ...\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def train_archc(data: Path, out: Path, a: argparse.Namespace, env: dict[str, str]
                ) -> tuple[list[float], dict[str, float]]:
    if not (a.reuse and (out / "results.json").is_file()):
            _run([sys.executable, "-m", "archc", "train", "yolov8n", "--data", str(data), "--epochs", str(a.epochs),
              "--input", f"3x{a.imgsz}x{a.imgsz}", "--batch-size", str(a.batch), "--out", str(out), "--exist-ok"], env)
    history = json.loads((out / "results.json").read_text())
    last = history[-1]
    return [h["seconds"] for h in history], {"map50": last["val_map50"], "map": last["val_map"]}


def train_ultralytics(data: Path, out: Path, a: argparse.Namespace, env: dict[str, str]
                      ) -> tuple[list[float], dict[str, float], Path]:
    if not (a.reuse and (out / "ul" / "results.csv").is_file()):
            _run([sys.executable, "-c", _ULTRALYTICS_TRAIN, str(data), str(a.epochs), str(a.imgsz), str(a.batch),
              str(out)], env)
    rows = list(csv.DictReader((out / "ul" / "results.csv").read_text().splitlines()))
    last = {k.strip(): v for k, v in rows[-1].items()}
    elapsed = [0.0] + [float(r["time"]) for r in rows]  # cumulative seconds at each epoch's end
    seconds = [b - a for a, b in zip(elapsed, elapsed[1:])]
    return seconds, {"map50": float(last["metrics/mAP50(B)"]), "map": float(last["metrics/mAP50-95(B)"])}, \
        out / "ul" / "weights" / "last.pt"


def archc_scores_ultralytics(weights: Path, archc_run: Path, data: Path) -> dict[str, float]:
    """Ultralytics' trained weights in archc's twin, scored by archc's evaluator on the same validation set.
    (torch.load without weights_only: the file was written by this benchmark's own Ultralytics run.)"""
    import torch
    from torch.utils.data import DataLoader

    from archc.backend.fuse import fuse_conv_bn
    from archc.detect.data import collate, make_detection_data
    from archc.detect.val import load_run_model, validate

    model, head, info = load_run_model(archc_run, fuse=False)
    state = torch.load(weights, weights_only=False)["model"].float().state_dict()
    model.load_state_dict(state, strict=True)
    model = fuse_conv_bn(model)
    _, val_set, names = make_detection_data(str(data), head.channels, head.size, 0, 0, 0, mosaic=0.0)
    report = validate(model.eval(), head, DataLoader(val_set, 32, collate_fn=collate), val_set, names,
                      torch.device("cpu"))
    return {"map50": report.map50, "map": report.map}


def latency(archc_run: Path, ul_weights: Path | None, images: list[Path], imgsz: int) -> dict[str, float]:
    import torch
    from PIL import Image

    from archc.detect.data import letterbox_image, unletterbox_boxes
    from archc.detect.val import load_run_model, predictions

    model, head, _ = load_run_model(archc_run)

    def archc_one(path: Path) -> None:
        with Image.open(path) as img:
            x, meta = letterbox_image(img.convert("RGB"), head.size, head.channels)
        found = predictions(model, head, x[None], 0.25, 0.7, 300)[0]
        unletterbox_boxes(found[:, :4], meta)

    runners = {"archc": archc_one}
    if ul_weights is not None:
        from ultralytics import YOLO

        ul = YOLO(str(ul_weights))
        runners["ultralytics"] = lambda q: ul.predict(str(q), imgsz=imgsz, conf=0.25, verbose=False, device="cpu")
    samples: dict[str, list[float]] = {k: [] for k in runners}
    with torch.no_grad():
        for p in images[:3]:  # warm-up
            for fn in runners.values():
                fn(p)
        for p in images:  # interleaved, so that the machine's load falls on both alike
            for name, fn in runners.items():
                samples[name].append(_timed(fn, p))
    return {k: statistics.median(v) for k, v in samples.items()}


def _timed(fn, arg) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn(arg)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--train", type=int, default=400)
    p.add_argument("--val", type=int, default=100)
    p.add_argument("--out", default="out/bench_detect")
    p.add_argument("--data", help="an existing data.yaml (default: make one with tools/make_yolo_data.py)")
    p.add_argument("--skip-ultralytics", action="store_true")
    p.add_argument("--reuse", action="store_true", help="keep the runs already in --out (re-measure latency only)")
    p.add_argument("--md", help="append the table to this Markdown file")
    a = p.parse_args()
    from make_yolo_data import make

    out = Path(a.out).resolve()
    made = out / "data" / "data.yaml"
    data = Path(a.data) if a.data else made if a.reuse and made.is_file() else make(out / "data", a.train, a.val,
                                                                                     a.imgsz, seed=0)
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    try:
        import ultralytics  # noqa: F401
        have_ul = not a.skip_ultralytics
    except ImportError:
        have_ul = False
    t_archc, m_archc = train_archc(data, out / "archc", a, env)
    rows = [("archc", t_archc, m_archc, m_archc)]
    ul_weights = None
    if have_ul:
        t_ul, m_ul_own, ul_weights = train_ultralytics(data, out / "ultralytics", a, env)
        m_ul = archc_scores_ultralytics(ul_weights, out / "archc", data)
        rows.append(("ultralytics", t_ul, m_ul_own, m_ul))
    val_images = sorted((data.parent / "images" / "val").glob("*.jpg"))[:30]
    lat = latency(out / "archc", ul_weights, val_images, a.imgsz)
    lines = [f"yolov8n from scratch, {a.train} training / {a.val} validation images ({data}), imgsz {a.imgsz}, "
             f"batch {a.batch}, {a.epochs} epochs, CPU ({os.cpu_count()} cores)", "",
             "| | train images/s (fastest epoch) | (median epoch) | mAP50-95 (own evaluator) | mAP50 (own) | "
             "mAP50-95 (archc's evaluator) | mAP50 (archc's) | predict ms/image |", "|---|---|---|---|---|---|---|---|"]
    speed = {name: (a.train / min(sec), a.train / statistics.median(sec)) for name, sec, _, _ in rows}
    for name, _, own, same in rows:
        lines.append(f"| {name} | {speed[name][0]:.1f} | {speed[name][1]:.1f} | {own['map']:.3f} | "
                     f"{own['map50']:.3f} | {same['map']:.3f} | {same['map50']:.3f} | {lat[name] * 1000:.1f} |")
    if have_ul:
        lines += ["", f"ratios archc / Ultralytics: throughput {speed['archc'][0] / speed['ultralytics'][0]:.2f}x "
                  f"(fastest epochs; median epochs {speed['archc'][1] / speed['ultralytics'][1]:.2f}x), mAP50-95 "
                  f"{rows[0][3]['map'] / max(rows[1][3]['map'], 1e-9):.2f}x (same evaluator), predict latency "
                  f"{lat['archc'] / lat['ultralytics']:.2f}x"]
    text = "\n".join(lines)
    print(text)
    if a.md:
        with open(a.md, "a") as f:
            f.write("\n## Detection: archc and Ultralytics (tools/bench_detect.py)\n\n" + text + "\n")


if __name__ == "__main__":
    main()
