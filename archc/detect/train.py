"""`archc train` for detection specs: `DetectTask`, the detection plugin of the one training loop
(archc.train.engine, which holds the EMA, accumulation, checkpoints, exact resume and DDP).

Settings follow the field's defaults (../DESIGN.md section 5, the YOLO papers' reference recipes):
SGD (lr 0.01, momentum 0.937, Nesterov) or AdamW (`auto`: AdamW at 0.002 * 5 / (4 + nc) for short runs),
weight decay 5e-4 on weights only (not on biases or norm scales) scaled to a nominal batch of 64 reached
by gradient accumulation, linear warm-up over 3 epochs (at least 100 steps), then a cosine decay to
lrf = 0.01 of the base rate, gradient clipping at 10, an exponential moving average of the weights
(decay 0.9999 ramped up over the first 2,000 updates) that is validated and saved, mosaic switched off
for the last `close_mosaic` epochs, bf16 autocast on CUDA. Validation runs every epoch on the EMA
weights: COCO mAP from pycocotools (archc.detect.metrics).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from archc.backend.weights import load_any
from archc.detect.head import Head, detection_head
from archc.errors import UsageError
from archc.fileio import atomic_write
from archc.train.engine import ModelEMA, Run, RunConfig, autocast, run_task
from archc.train.runs import dist_info, load_safetensors

__all__ = ["DetectConfig", "DetectTask", "ModelEMA", "lr_at", "train_detection"]


@dataclass
class DetectConfig(RunConfig):
    """`archc train`'s settings for detection specs (the shared ones: `RunConfig`, with detection's defaults)."""

    data: str = "shapes"
    epochs: int = 30
    batch_size: int = 16
    lr: float | None = None  # None: 0.01 for SGD, 0.002 * 5 / (4 + nc) for auto's AdamW, 0.001 for AdamW
    weight_decay: float = 5e-4
    warmup_epochs: float = 3.0
    clip: float = 10.0
    train_size: int = 400  # --data shapes: training images
    val_size: int = 100
    nominal_batch: int = 64  # gradients are accumulated up to this many images per optimizer step
    optimizer: str = "auto"  # auto | sgd | adamw
    lrf: float = 0.01  # final learning rate, a fraction of lr
    momentum: float = 0.937
    ema: bool = True
    mosaic: float = 1.0
    close_mosaic: int = 10
    conf: float = 0.001  # validation: confidence threshold, NMS IoU, boxes kept per image
    iou: float = 0.7
    max_det: int = 300


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weights decay; biases and normalisation scales do not (they set offsets and scales, not features)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    norms = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            (no_decay if name == "bias" or isinstance(module, norms) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _optimizer(cfg: DetectConfig, model: nn.Module, classes: int, steps: int, accumulate: int
               ) -> torch.optim.Optimizer:
    """The optimizer; sets ``cfg.lr`` to the rate chosen when none was given (run.json records it)."""
    kind = cfg.optimizer
    if kind == "auto":  # short runs: AdamW converges faster than SGD (the field's default rule)
        kind = "adamw" if steps < 10_000 else "sgd"
        default = round(0.002 * 5 / (4 + classes), 6) if kind == "adamw" else 0.01
    elif kind in ("sgd", "adamw"):
        default = 0.01 if kind == "sgd" else 0.001
    else:
        raise UsageError(f"--optimizer {cfg.optimizer}: expected auto, sgd or adamw")
    lr = cfg.lr = cfg.lr if cfg.lr is not None else default
    decay = cfg.weight_decay * cfg.batch_size * accumulate / cfg.nominal_batch
    groups = _param_groups(model, decay)
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=lr, betas=(cfg.momentum, 0.999))


def lr_at(cfg: DetectConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate at an optimizer step: linear warm-up, then cosine from lr to lr * lrf."""
    warmup = max(int(cfg.warmup_epochs * steps_per_epoch), 100) if cfg.warmup_epochs > 0 else 0
    total = max(cfg.epochs * steps_per_epoch, 1)
    base = float(cfg.lr or 0.0)
    if step < warmup:
        return base * (step + 1) / warmup
    t = min((step - warmup) / max(total - warmup, 1), 1.0)
    return base * (cfg.lrf + (1 - cfg.lrf) * 0.5 * (1 + math.cos(math.pi * t)))


def _loss_inputs(head: Head, result: Any) -> Any:
    """What the loss reads from a training-mode result: the level maps for anchor-free heads (the
    train-only outputs after the decoded one), every level for anchor heads, the grid for YOLOv1."""
    outs = result if isinstance(result, tuple) else (result,)
    if head.kind == "anchor_free":
        return list(outs[1:])
    if head.kind == "anchor":
        return list(outs)
    return outs[0]


def _float(result: Any) -> Any:
    if isinstance(result, tuple):
        return tuple(r.float() for r in result)
    return result.float()


def eval_model(run: Run) -> nn.Module:
    """The weights validated and saved: the EMA's, or the model's with --no-ema."""
    return run.final


def _write_results(out: Path, history: list[dict[str, float]]) -> None:
    keys = list(dict.fromkeys(k for h in history for k in h))
    rows = [",".join(keys)] + [",".join(f"{h[k]:.6g}" if k in h else "" for k in keys) for h in history]
    atomic_write(out / "results.csv", "\n".join(rows) + "\n")
    atomic_write(out / "results.json", json.dumps(history, indent=1))


class DetectTask:
    """The detection plugin of the training engine (archc.train.engine): detection data and collation, the head's
    loss, an EMA of the weights, the learning rate set per optimizer step (`lr_at`), mosaic closed for the last
    epochs, validation by COCO mAP on rank 0."""

    history_file = "results.json"

    def __init__(self, cfg: DetectConfig) -> None:
        self.cfg = cfg
        self.head: Head | None = None
        self.loss_fn: Any = None
        self.train_set: Any = None
        self.val_set: Any = None

    def setup(self, spec_path: Path, rank: int, world: int, resume: bool) -> Run:
        import archc
        from archc.detect.data import collate, make_detection_data
        from archc.detect.head import make_detection_loss

        cfg = self.cfg
        device = torch.device(cfg.device)
        torch.manual_seed(cfg.seed)
        probe = archc.check(spec_path, cfg.params, cfg.input)
        head = detection_head(probe)  # a head no loss fits is refused before any data is read
        train_set, val_set, names = make_detection_data(cfg.data, head.channels, head.size, cfg.seed,
                                                        cfg.train_size, cfg.val_size, mosaic=cfg.mosaic)
        params = dict(cfg.params)
        if head.classes != len(names):
            key = "classes" if "classes" in probe.graph.params else "num_classes" \
                if "num_classes" in probe.graph.params else None
            if key is None or key in cfg.params:
                raise UsageError(f"{probe.graph.name} scores {head.classes} classes but the data has {len(names)} "
                                 f"({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})",
                                 hint=f"--set classes={len(names)}" if key else "give the spec a `classes` param")
            params[key] = len(names)
            probe = archc.check(spec_path, params, cfg.input)
            head = detection_head(probe)
        if rank == 0:
            print(f"data: {cfg.data}: {len(train_set)} training and {len(val_set)} validation images, "
                  f"{len(names)} classes ({', '.join(names[:8])}); {head.kind} head", flush=True)
        model = archc.compile(spec_path, input_shape=cfg.input, **params).to(device)
        if cfg.weights and not resume:
            report = load_any(model, cfg.weights, cfg.strict)
            if rank == 0 and any(report.values()):
                print("weights: " + "; ".join(f"{k}: {len(v)}" for k, v in report.items() if v))
        net: Any = nn.parallel.DistributedDataParallel(model) if world > 1 else model
        gen = torch.Generator().manual_seed(cfg.seed)
        sampler: DistributedSampler[Any] | None = (DistributedSampler(train_set, world, rank, seed=cfg.seed)
                                                   if world > 1 else None)
        loader = DataLoader(train_set, cfg.batch_size, shuffle=sampler is None, sampler=sampler, generator=gen,
                            num_workers=cfg.workers, collate_fn=collate, drop_last=len(train_set) > cfg.batch_size)
        val_loader = DataLoader(val_set, cfg.batch_size * 2, num_workers=cfg.workers, collate_fn=collate)
        accumulate = max(round(cfg.nominal_batch / (cfg.batch_size * world)), 1)
        steps = cfg.epochs * math.ceil(len(loader) / accumulate)
        opt = _optimizer(cfg, model, head.classes, steps, accumulate)
        self.head, self.loss_fn = head, make_detection_loss(head)
        self.train_set, self.val_set = train_set, val_set
        ema = ModelEMA(model) if cfg.ema else None
        return Run(self, model, net, loader, val_loader, sampler, opt, None, gen, device, params, names, accumulate,
                   ema)

    def record(self, run: Run) -> dict[str, Any]:
        return {"task": "detection", "params": run.params, "classes": run.names, "head": self._head().kind}

    def _head(self) -> Head:
        assert self.head is not None, "setup first"
        return self.head

    def start_epoch(self, run: Run, epoch: int) -> None:
        run.net.train()
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch, mosaic=epoch < self.cfg.epochs - self.cfg.close_mosaic)

    def loss(self, run: Run, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        imgs, targets = batch[0].to(run.device), batch[1].to(run.device)
        with autocast(run, self.cfg.amp):
            result = run.net(imgs)
        loss, parts = self.loss_fn(_loss_inputs(self._head(), _float(result)), targets)
        return loss, {k: float(v) for k, v in parts.items()}

    def before_step(self, run: Run, step: int, steps_per_epoch: int) -> None:
        for g in run.opt.param_groups:
            g["lr"] = lr_at(self.cfg, step, steps_per_epoch)

    def postfix(self, sums: dict[str, float], batches: int) -> dict[str, str] | None:
        return {k: f"{v / batches:.3f}" for k, v in sums.items()}

    def train_row(self, sums: dict[str, float], batches: int) -> dict[str, float]:
        return {f"train_{k}_loss": v / max(batches, 1) for k, v in sums.items()}

    def validate(self, run: Run, rank: int, world: int) -> tuple[dict[str, float], Any] | None:
        from archc.detect.val import validate

        if rank != 0:
            return None
        cfg = self.cfg
        report = validate(run.final, self._head(), run.val_loader, self.val_set, run.names, run.device,
                          conf=cfg.conf, iou=cfg.iou, max_det=cfg.max_det)
        return {"val_map50": report.map50, "val_map": report.map, "val_precision": report.precision,
                "val_recall": report.recall}, report

    def log(self, row: dict[str, float]) -> str:
        return (f"epoch {row['epoch']}: " + ", ".join(f"{k[6:]} {v:.4f}" for k, v in row.items()
                                                       if k.startswith("train_")) +
                f"; val mAP50 {row['val_map50']:.4f} mAP50-95 {row['val_map']:.4f} P {row['val_precision']:.3f} "
                f"R {row['val_recall']:.3f}")

    def score(self, row: dict[str, float]) -> float:
        return 0.1 * row["val_map50"] + 0.9 * row["val_map"]

    def write_history(self, out: Path, history: list[dict[str, float]]) -> None:
        from archc.detect import plots

        _write_results(out, history)
        plots.losses(out / "losses.png", history)

    def on_best(self, run: Run, out: Path, payload: Any) -> None:
        from archc.detect import plots

        plots.report(out, payload, run.names)

    def after_epoch(self, run: Run, history: list[dict[str, float]], payload: Any, last: int) -> None:
        pass

    def save_extra(self, run: Run) -> dict[str, Any]:
        extra: dict[str, Any] = {"model": {k: v.detach().cpu() for k, v in run.model.state_dict().items()}}
        if run.ema is not None:
            extra["ema_updates"] = run.ema.updates
        return extra

    def restore(self, run: Run, out: Path, state: dict[str, Any]) -> None:
        run.model.load_state_dict(state["model"])
        if run.ema is not None:
            run.ema.module.load_state_dict(load_safetensors(out / "last.safetensors"))
            run.ema.updates = int(state.get("ema_updates", 0))


def train_detection(cfg: DetectConfig, resume: str | None = None) -> list[dict[str, float]]:
    """Train (or continue) a detection spec; returns the per-epoch history (also in results.csv)."""
    _, history = run_task(DetectTask(cfg), resume)
    last = cfg.epochs if cfg.stop_after is None else min(cfg.stop_after, cfg.epochs)
    if dist_info()[0] == 0 and cfg.stop_after is not None and last < cfg.epochs:
        print(f"paused after epoch {last}: continue with `archc train --resume {cfg.out}`", flush=True)
    return history
