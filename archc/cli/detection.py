"""The detection side of `archc train`, `archc val` and `archc predict` (archc/cli.py routes here).

A spec is trained as a detector when its outputs form a detection head (archc.detect.head), or when
`--resume` names a detection run."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["add_train_options", "add_val_parser", "add_predict_options", "is_detection", "train", "val", "predict"]


def _types() -> tuple[Any, Any]:
    from archc.cli.options import _int_from, _real

    return _int_from, _real


def add_train_options(t: argparse.ArgumentParser) -> None:
    int_from, real = _types()
    g = t.add_argument_group("detection (specs whose outputs are a YOLO head)")
    g.add_argument("--optimizer", choices=("auto", "sgd", "adamw"), default="auto",
                   help="auto: AdamW at 0.002*5/(4+classes) for runs under 10,000 steps, else SGD at 0.01")
    g.add_argument("--mosaic", type=real(0.0, below=1.000001), default=1.0,
                   help="probability of a 4-image mosaic (default: 1.0)")
    g.add_argument("--close-mosaic", type=int_from(0), default=10, help="no mosaic in the last N epochs (default: 10)")
    g.add_argument("--no-ema", action="store_true", help="validate and save the raw weights, not their EMA")
    g.add_argument("--nominal-batch", type=int_from(1), default=64,
                   help="accumulate gradients up to this many images per step (default: 64)")


def _nms_options(g: Any, conf: float) -> None:
    int_from, real = _types()
    g.add_argument("--conf", type=real(0.0, below=1.000001), default=conf,
                   help=f"confidence threshold (default: {conf})")
    g.add_argument("--iou", type=real(0.0, above=True, below=1.000001), default=0.7,
                   help="NMS IoU threshold (default: 0.7)")
    g.add_argument("--max-det", type=int_from(1), default=300, help="boxes kept per image (default: 300)")


def add_predict_options(pr: argparse.ArgumentParser) -> None:
    g = pr.add_argument_group("detection")
    _nms_options(g, 0.25)
    g.add_argument("--json", action="store_true", help="print the boxes as JSON")


def add_val_parser(sub: Any, fn: Any) -> None:
    v = sub.add_parser("val", help="COCO mAP of a trained detector on a data set",
                       description="Validate a detection run: mAP50, mAP50-95, precision and recall, overall and "
                                   "per class, from pycocotools' COCOeval.")
    v.add_argument("run", help="a run directory of archc train (detection)")
    v.add_argument("--data", help="shapes, a data.yaml (YOLO layout) or a COCO instances .json "
                                  "(default: the run's data, validation split)")
    v.add_argument("--weights", help="a weights file (default: the run's best.safetensors)")
    v.add_argument("--json", action="store_true", help="print {map50, map, precision, recall, per_class} as JSON")
    v.add_argument("--save-json", metavar="FILE", help="write COCO results (image_id, category_id, bbox, score)")
    _nms_options(v, 0.001)
    v.add_argument("--batch-size", type=_types()[0](1), default=32)
    v.add_argument("--device", default="cpu")
    v.set_defaults(fn=fn)


def _run_info(run: str | Path) -> dict[str, Any] | None:
    path = Path(run) / "run.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def is_detection(args: argparse.Namespace) -> bool:
    """Whether `archc train` should train a detector: a detection run to resume, or a detection spec."""
    if getattr(args, "resume", None):
        info = _run_info(args.resume)
        return bool(info and info.get("task") == "detection")
    if not args.spec:
        return False
    import archc
    from archc.cli.options import _parse_input, _parse_set
    from archc.detect.head import is_detection_spec

    return is_detection_spec(archc.check(args.spec, _parse_set(args.set), _parse_input(args.input)))


def train(args: argparse.Namespace) -> int:
    from archc.cli.options import _parse_input, _parse_set
    from archc.detect.train import DetectConfig, train_detection

    if args.resume:
        saved = _run_info(args.resume) or {}
        saved = {k: v for k, v in saved.items() if k in DetectConfig.__dataclass_fields__}
        cfg = DetectConfig(**{**saved, "out": args.resume, "epochs": args.epochs or saved["epochs"],
                              "stop_after": args.stop_after})
        history = train_detection(cfg, resume=args.resume)
    else:
        cfg = DetectConfig(
            spec=args.spec, data=args.data if args.data != "digits" else "shapes", params=_parse_set(args.set),
            epochs=args.epochs or 30, batch_size=args.batch_size or 16, nominal_batch=args.nominal_batch,
            optimizer=args.optimizer, lr=args.lr if args.lr != 1e-3 else None, clip=10.0 if args.clip == 1.0 else
            args.clip, ema=not args.no_ema, mosaic=args.mosaic, close_mosaic=args.close_mosaic, device=args.device,
            amp=args.amp, seed=args.seed, out=args.out, exist_ok=args.exist_ok, weights=args.weights,
            strict=not args.no_strict, workers=args.workers, stop_after=args.stop_after,
            input=_parse_input(args.input), train_size=args.train_size or DetectConfig.train_size,
            val_size=args.val_size if args.val_size != 128 else DetectConfig.val_size)
        history = train_detection(cfg)
    if int(os.environ.get("RANK", 0)) == 0 and history:
        best = max(history, key=lambda h: 0.1 * h["val_map50"] + 0.9 * h["val_map"])
        state = "done" if len(history) >= cfg.epochs else f"paused after epoch {len(history)} of {cfg.epochs}"
        print(f"{state}: best validation mAP50 {best['val_map50']:.4f}, mAP50-95 {best['val_map']:.4f} "
              f"(epoch {int(best['epoch'])}); run directory {cfg.out}")
    return 0


def val(args: argparse.Namespace) -> int:
    from archc.detect.val import validate_run

    report = validate_run(args.run, data=args.data, weights=args.weights, conf=args.conf, iou=args.iou,
                          max_det=args.max_det, batch_size=args.batch_size, device=args.device,
                          save_json=args.save_json)
    if args.json:
        print(json.dumps(report.as_json(), indent=1))
        return 0
    print(f"{'class':<16} {'images':>7} {'boxes':>7} {'P':>7} {'R':>7} {'mAP50':>7} {'mAP50-95':>9}")
    print(f"{'all':<16} {report.images:>7} {report.boxes:>7} {report.precision:>7.3f} {report.recall:>7.3f} "
          f"{report.map50:>7.3f} {report.map:>9.3f}")
    for name, row in report.per_class.items():
        print(f"{name:<16} {'':>7} {row['boxes']:>7} {row['precision']:>7.3f} {row['recall']:>7.3f} "
              f"{row['ap50']:>7.3f} {row['ap']:>9.3f}")
    if args.save_json:
        print(f"wrote {args.save_json}")
    return 0


def predict(args: argparse.Namespace) -> int:
    from archc.detect.predict import predict_boxes

    results = predict_boxes(args.spec, args.images, weights=args.weights, out=args.out, conf=args.conf,
                            iou=args.iou, max_det=args.max_det)
    if args.json:
        print(json.dumps([r.as_json() for r in results], indent=1))
        return 0
    for r in results:
        found = ", ".join(f"{b['name']} {b['score']:.2f}" for b in r.boxes) or "no boxes"
        print(f"{r.image}: {len(r.boxes)} boxes ({found}); wrote {r.drawn}")
    return 0


def detection_run(path: str) -> bool:
    info = _run_info(path)
    return bool(info and info.get("task") == "detection")

