"""`archc train`, `archc predict`, `archc val` (detection specs and runs are routed to archc.cli.detection)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from archc.cli.options import _int_from, _parse_input, _parse_set, _real, _weights_options
from archc.errors import UsageError


def _train(args: argparse.Namespace) -> int:
    from archc.cli import detection as detect

    if detect.is_detection(args):  # a YOLO head (or a detection run to resume): archc.detect's loop
        return detect.train(args)
    from archc.train import TrainConfig, train

    if args.resume:
        run_json = Path(args.resume) / "run.json"
        if not run_json.is_file():
            raise UsageError(f"--resume {args.resume}: no run.json there", hint="give a run directory of archc train")
        saved = json.loads(run_json.read_text())
        saved = {k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__}  # not frozen, classes
        cfg = TrainConfig(**{**saved, "out": args.resume, "epochs": args.epochs or saved["epochs"],
                             "stop_after": args.stop_after})
        _train_done(cfg, train(cfg, resume=args.resume))
        return 0
    if not args.spec:
        raise UsageError("archc train needs a spec (or --resume RUN_DIR)")
    cfg = TrainConfig(
        spec=args.spec, data=args.data, params=_parse_set(args.set), epochs=args.epochs or 5,
        batch_size=args.batch_size, lr=args.lr, backbone_lr=args.backbone_lr, weight_decay=args.weight_decay,
        warmup_epochs=args.warmup, label_smoothing=args.label_smoothing, clip=args.clip, device=args.device,
        amp=args.amp, channels_last=args.channels_last, compile=args.compile, seed=args.seed, out=args.out,
        exist_ok=args.exist_ok, freeze=[f for f in (args.freeze or "").split(",") if f], train_last=args.train_last,
        weights=args.weights, strict=not args.no_strict, workers=args.workers, fake_size=args.fake_size,
        stop_after=args.stop_after, task=args.task, input=_parse_input(args.input),
        train_size=args.train_size or TrainConfig.train_size, val_size=args.val_size, loss=args.loss,
        aux_weight=args.aux_weight)
    _train_done(cfg, train(cfg))
    return 0


def _train_done(cfg: Any, history: list[dict[str, float]]) -> None:
    """The last word of a run: finished, or paused with the command that continues it."""
    if int(os.environ.get("RANK", 0)) != 0:
        return
    key, what = ("val_miou", "mIoU") if history and "val_miou" in history[0] else ("val_acc", "accuracy")
    best = max(h[key] for h in history) if history else float("nan")
    done = len(history)
    if done < cfg.epochs:
        print(f"paused after epoch {done} of {cfg.epochs} (best validation {what} {best:.4f}); continue with: "
              f"archc train --resume {cfg.out}")
    else:
        print(f"done: best validation {what} {best:.4f}; run directory {cfg.out}")


def add_train(sub: Any) -> None:
    t = sub.add_parser("train", help="train or fine-tune a spec (digits, FakeData or an ImageFolder)",
                       description="Train a classifier or a segmentation model. Each run gets a new folder "
                       "runs/<spec name>/1, 2, ... "
                       "(printed); it holds the spec, run.json, metrics, plot.png, best/last.safetensors, state.pt.")
    t.add_argument("spec", nargs="?", help="spec file or built-in name")
    t.add_argument("--data", default="digits", help="digits (scikit-learn's 8x8 grey digits, no download; "
                   "default), fake, shapes (synthetic segmentation: circles, rectangles, triangles), a folder with "
                   "train/ and val/ class sub-folders, or a folder with images/ and masks/ (segmentation)")
    t.add_argument("--task", choices=("classification", "segmentation"), default=None,
                   help="default: from the data (fake: from the model's output shape)")
    t.add_argument("--input", metavar="CxHxW", help="train at this input size instead of the spec's, e.g. 1x64x64")
    t.add_argument("--train-size", type=_int_from(1), default=None,
                   help="training images --data shapes makes (default: 4096)")
    t.add_argument("--val-size", type=_int_from(1), default=128, help="validation images of --data shapes "
                   "(default: %(default)s)")
    t.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override a spec parameter (num_classes is set from the data)")
    t.add_argument("--epochs", type=_int_from(1), default=None, help="default: 5 (with --resume: the run's)")
    t.add_argument("--batch-size", type=_int_from(1), default=None, help="default: 64 (segmentation: 16)")
    t.add_argument("--lr", type=_real(0, above=True), default=1e-3, help="head learning rate (default: %(default)s)")
    t.add_argument("--backbone-lr", type=_real(0, above=True), default=None, help="default: lr (lr/10 with --weights)")
    t.add_argument("--weight-decay", type=_real(0), default=0.05, help="AdamW's (default: %(default)s)")
    t.add_argument("--warmup", type=_real(0), default=0.5, help="warm-up epochs (default: %(default)s)")
    t.add_argument("--loss", choices=("ce", "dice", "ce+dice"), default=None,
                   help="cross-entropy, Dice (segmentation: softmax probabilities, mean over classes) or their sum "
                   "(default: ce; segmentation: ce+dice)")
    t.add_argument("--aux-weight", type=_real(0), default=0.5,
                   help="loss weight of each auxiliary output shaped like the main one (segmentation `aux`, "
                   "Inception-v3's training-only logits; default: %(default)s)")
    t.add_argument("--label-smoothing", type=_real(0, below=1), default=0.0, help="default: %(default)s")
    t.add_argument("--clip", type=_real(0, above=True), default=1.0,
                   help="gradient norm clipping (default: %(default)s)")
    t.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    t.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    t.add_argument("--channels-last", action="store_true")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--seed", type=_int_from(0), default=0, help="default: %(default)s")
    t.add_argument("--out", default=None, metavar="RUN_DIR",
                   help="run directory (default: a new runs/<spec name>/N); must be new or empty")
    t.add_argument("--exist-ok", action="store_true", help="let --out name a folder that already holds files")
    t.add_argument("--freeze", help="comma-separated node paths to freeze, e.g. conv1,bn1,layer1")
    t.add_argument("--train-last", type=_int_from(1), default=None, help="train only the last N top-level nodes")
    _weights_options(t, "initial weights: torchvision (the twin's default pretrained weights, from "
                     "torchvision's cache or downloaded once), torchvision:NAME (e.g. IMAGENET1K_V2), .safetensors "
                     "or a state_dict .pth")
    t.add_argument("--workers", type=_int_from(0), default=0, help="data loader processes (default: %(default)s)")
    t.add_argument("--fake-size", type=_int_from(1), default=512, help="images in --data fake (default: %(default)s)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run where it stopped")
    t.add_argument("--stop-after", type=_int_from(1), default=None,
                   help="stop after this epoch, keeping the schedule of --epochs (continue with --resume)")
    _detect_cli().add_train_options(t)
    t.set_defaults(fn=_train)


def _predict(args: argparse.Namespace) -> int:
    from archc.cli import detection as detect

    if detect.detection_run(args.spec):  # a detection run: boxes drawn on each image
        return detect.predict(args)
    from archc.train.predict import predict

    results = predict(args.spec, args.images, args.weights, _parse_set(args.set), _parse_input(args.input),
                      args.out, args.top_k, args.overlay, strict=not args.no_strict)
    for r in results:
        shares = ", ".join(f"{name} {p:.3f}" for name, p in r.top)
        also = f" and {r.overlay}" if r.overlay else ""
        print(f"{r.image}: {'wrote ' + str(r.mask) + also + ' (' + shares + ')' if r.mask else shares}")
        for note in r.notes:  # a conversion beyond training's own steps (e.g. inverted ink)
            print(f"note: {r.image}: {note}", file=sys.stderr)
    return 0


def add_predict(sub: Any) -> None:
    pr = sub.add_parser("predict", help="run a trained model on images: top classes, or a mask PNG per image")
    pr.add_argument("spec", help="spec file, built-in name, or a run directory of archc train")
    pr.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG images")
    _weights_options(pr, "a run directory of archc train (its best weights, params, input size and "
                     "class names), a weights file, or torchvision / torchvision:NAME (the twin's pretrained "
                     "weights, their class names and preprocessing)")
    pr.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a spec parameter")
    pr.add_argument("--input", metavar="CxHxW", help="model input size (default: the run's, else the spec's)")
    pr.add_argument("-o", "--out", help="segmentation: the mask file (one image) or a folder (default: "
                    "NAME_mask.png beside each image)")
    pr.add_argument("--overlay", action="store_true", help="segmentation: also write NAME_overlay.png, the "
                    "classes' colours over the image")
    pr.add_argument("--top-k", type=_int_from(1), default=5, help="classes printed per image (default: %(default)s)")
    _detect_cli().add_predict_options(pr)
    pr.set_defaults(fn=_predict)


def _detect_cli() -> Any:
    from archc.cli import detection as cli

    return cli


def _val(args: argparse.Namespace) -> int:
    return int(_detect_cli().val(args))


def add_val(sub: Any) -> None:
    _detect_cli().add_val_parser(sub, _val)
