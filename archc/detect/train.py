"""`archc train` for detection specs: the loop, EMA weights, checkpoints and exact resume.

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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from archc.detect.head import Head, detection_head
from archc.errors import UsageError
from archc.fileio import atomic_write
from archc.train.loop import (
    _check_out,
    _dist,
    _load_safetensors,
    _progress,
    _rng_state,
    _save_state,
    _save_tensor_file,
    _set_rng_state,
    new_run_dir,
)
from archc.train.weights import load_any

__all__ = ["DetectConfig", "train_detection", "ModelEMA"]


@dataclass
class DetectConfig:
    spec: str
    data: str = "shapes"
    params: dict[str, Any] = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 16
    nominal_batch: int = 64  # gradients are accumulated up to this many images per optimizer step
    optimizer: str = "auto"  # auto | sgd | adamw
    lr: float | None = None  # None: 0.01 for SGD, 0.002 * 5 / (4 + nc) for auto's AdamW, 0.001 for AdamW
    lrf: float = 0.01  # final learning rate, a fraction of lr
    momentum: float = 0.937
    weight_decay: float = 5e-4
    warmup_epochs: float = 3.0
    clip: float = 10.0
    ema: bool = True
    mosaic: float = 1.0
    close_mosaic: int = 10
    device: str = "cpu"
    amp: bool = False
    seed: int = 0
    out: str | None = None
    exist_ok: bool = False
    weights: str | None = None
    strict: bool = True
    workers: int = 0
    stop_after: int | None = None
    input: list[int | str] | None = None
    train_size: int = 400  # --data shapes: training images
    val_size: int = 100
    conf: float = 0.001  # validation: confidence threshold, NMS IoU, boxes kept per image
    iou: float = 0.7
    max_det: int = 300


class ModelEMA:
    """An exponential moving average of a model's weights and buffers; decay ramps up from 0 as
    ``decay * (1 - exp(-updates / tau))`` so the early average follows the fast-changing weights."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0) -> None:
        import copy

        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.tau, self.updates = decay, tau, 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        theirs = model.state_dict()
        for k, v in self.module.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(theirs[k].detach(), alpha=1 - d)
            else:
                v.copy_(theirs[k])


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


@dataclass
class _Run:
    model: nn.Module
    net: nn.Module
    ema: ModelEMA | None
    head: Head
    loss_fn: Any
    train_set: Any
    loader: DataLoader[Any]
    val_set: Any
    val_loader: DataLoader[Any]
    sampler: DistributedSampler[Any] | None
    opt: torch.optim.Optimizer
    gen: torch.Generator
    device: torch.device
    params: dict[str, Any]
    names: list[str]
    accumulate: int


def _setup(cfg: DetectConfig, spec_path: Path, rank: int, world: int, resume: bool) -> _Run:
    import archc
    from archc.detect.data import collate, make_detection_data
    from archc.detect.head import make_detection_loss

    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    probe = archc.check(spec_path, cfg.params, cfg.input)
    head = detection_head(probe)  # a head no loss fits is refused before any data is read
    train_set, val_set, names = make_detection_data(cfg.data, head.channels, head.size, cfg.seed,
                                                    cfg.train_size, cfg.val_size, mosaic=cfg.mosaic)
    params = dict(cfg.params)
    if head.classes != len(names):
        key = "classes" if "classes" in probe.graph.params else "num_classes" if "num_classes" in probe.graph.params \
            else None
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
    loss_fn = make_detection_loss(head)
    ema = ModelEMA(model) if cfg.ema else None
    return _Run(model, net, ema, head, loss_fn, train_set, loader, val_set, val_loader, sampler, opt, gen, device,
                params, names, accumulate)


def _loss_inputs(head: Head, result: Any) -> Any:
    """What the loss reads from a training-mode result: the level maps for anchor-free heads (the
    train-only outputs after the decoded one), every level for anchor heads, the grid for YOLOv1."""
    outs = result if isinstance(result, tuple) else (result,)
    if head.kind == "anchor_free":
        return list(outs[1:])
    if head.kind == "anchor":
        return list(outs)
    return outs[0]


def _epoch(run: _Run, cfg: DetectConfig, epoch: int, rank: int) -> dict[str, float]:
    run.net.train()
    if hasattr(run.train_set, "set_epoch"):
        run.train_set.set_epoch(epoch, mosaic=epoch < cfg.epochs - cfg.close_mosaic)
    cuda = run.device.type == "cuda"
    steps_per_epoch = math.ceil(len(run.loader) / run.accumulate)
    sums: dict[str, float] = {}
    batches = 0
    run.opt.zero_grad(set_to_none=True)
    bar = _progress(run.loader, rank, f"epoch {epoch + 1}/{cfg.epochs}")
    for i, (imgs, targets, _) in enumerate(bar):
        imgs, targets = imgs.to(run.device), targets.to(run.device)
        with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=cfg.amp and cuda):
            result = run.net(imgs)
        loss, parts = run.loss_fn(_loss_inputs(run.head, _float(result)), targets)
        (loss / run.accumulate).backward()
        if (i + 1) % run.accumulate == 0 or i + 1 == len(run.loader):
            step = epoch * steps_per_epoch + i // run.accumulate
            for g in run.opt.param_groups:
                g["lr"] = lr_at(cfg, step, steps_per_epoch)
            nn.utils.clip_grad_norm_([p for p in run.model.parameters() if p.requires_grad], cfg.clip)
            run.opt.step()
            run.opt.zero_grad(set_to_none=True)
            if run.ema is not None:
                run.ema.update(run.model)
        batches += 1
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix({k: f"{v / batches:.3f}" for k, v in sums.items()})
    return {f"train_{k}_loss": v / max(batches, 1) for k, v in sums.items()}


def _float(result: Any) -> Any:
    if isinstance(result, tuple):
        return tuple(r.float() for r in result)
    return result.float()


def eval_model(run: _Run) -> nn.Module:
    return run.ema.module if run.ema is not None else run.model


def _write_results(out: Path, history: list[dict[str, float]]) -> None:
    keys = list(dict.fromkeys(k for h in history for k in h))
    rows = [",".join(keys)] + [",".join(f"{h[k]:.6g}" if k in h else "" for k in keys) for h in history]
    atomic_write(out / "results.csv", "\n".join(rows) + "\n")
    atomic_write(out / "results.json", json.dumps(history, indent=1))


def _checkpoint(run: _Run, out: Path, history: list[dict[str, float]], epoch: int, best: float,
                report: Any) -> float:
    from archc.detect import plots

    _write_results(out, history)
    plots.losses(out / "losses.png", history)
    final = eval_model(run)
    _save_tensor_file(out / "last.safetensors", final)
    fitness = 0.1 * history[-1]["val_map50"] + 0.9 * history[-1]["val_map"]
    if fitness > best:
        best = fitness
        _save_tensor_file(out / "best.safetensors", final)
        info = json.loads((out / "run.json").read_text())
        info["best"] = {k: v for k, v in history[-1].items() if k == "epoch" or k.startswith("val_")}
        atomic_write(out / "run.json", json.dumps(info, indent=1))
        plots.report(out, report, run.names)
    state = {"optimizer": run.opt.state_dict(), "epoch": epoch, "best": best, "loader_rng": run.gen.get_state(),
             "model": {k: v.detach().cpu() for k, v in run.model.state_dict().items()}, **_rng_state(run.device)}
    if run.ema is not None:
        state["ema_updates"] = run.ema.updates
    _save_state(out / "state.pt", state)
    return best


def _restore(run: _Run, out: Path) -> tuple[int, float, list[dict[str, float]]]:
    state = torch.load(out / "state.pt", weights_only=True)
    run.model.load_state_dict(state["model"])
    if run.ema is not None:
        run.ema.module.load_state_dict(_load_safetensors(out / "last.safetensors"))
        run.ema.updates = int(state.get("ema_updates", 0))
    run.opt.load_state_dict(state["optimizer"])
    run.gen.set_state(state["loader_rng"])
    _set_rng_state(state, run.device)
    return state["epoch"] + 1, state["best"], json.loads((out / "results.json").read_text())


def train_detection(cfg: DetectConfig, resume: str | None = None) -> list[dict[str, float]]:
    """Train (or continue) a detection spec; returns the per-epoch history (also in results.csv)."""
    import archc
    from archc.detect.val import validate

    rank, world = _dist()
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if cfg.device.startswith("cuda") else "gloo")
    if resume:
        cfg.out = resume
    elif cfg.out is not None and rank == 0:
        _check_out(Path(cfg.out), cfg.exist_ok)
    spec_path = Path(resume) / "spec.yaml" if resume else Path(archc.resolve.find_spec(cfg.spec))
    run = _setup(cfg, spec_path, rank, world, bool(resume))
    name = cast(Any, run.model).archc_graph.name
    if cfg.out is None and rank == 0:
        cfg.out = str(new_run_dir(name))
    out = Path(cfg.out or ".")
    start, best, history = _restore(run, out) if resume else (0, -1.0, [])
    if rank == 0:
        print(f"{'continuing' if resume else 'training'} {name}: run directory {out}", flush=True)
    if not resume and rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "spec.yaml", spec_path.read_text(encoding="utf-8"))
        atomic_write(out / "run.json", json.dumps({**asdict(cfg), "task": "detection", "params": run.params,
                                                   "classes": run.names, "head": run.head.kind}, indent=1))
    last = cfg.epochs if cfg.stop_after is None else min(cfg.stop_after, cfg.epochs)
    for epoch in range(start, last):
        if run.sampler is not None:
            run.sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        row: dict[str, float] = {"epoch": epoch + 1, **_epoch(run, cfg, epoch, rank)}
        if rank == 0:
            report = validate(eval_model(run), run.head, run.val_loader, run.val_set, run.names, run.device,
                              conf=cfg.conf, iou=cfg.iou, max_det=cfg.max_det)
            row |= {"val_map50": report.map50, "val_map": report.map, "val_precision": report.precision,
                    "val_recall": report.recall, "lr": run.opt.param_groups[0]["lr"],
                    "seconds": time.perf_counter() - t0}
            history.append(row)
            print(f"epoch {epoch + 1}: " + ", ".join(f"{k[6:]} {v:.4f}" for k, v in row.items()
                                                      if k.startswith("train_")) +
                  f"; val mAP50 {report.map50:.4f} mAP50-95 {report.map:.4f} P {report.precision:.3f} "
                  f"R {report.recall:.3f}", flush=True)
            best = _checkpoint(run, out, history, epoch, best, report)
        if world > 1:
            torch.distributed.barrier()
    if rank == 0 and cfg.stop_after is not None and last < cfg.epochs:
        print(f"paused after epoch {last}: continue with `archc train --resume {out}`", flush=True)
    if world > 1:
        torch.distributed.destroy_process_group()
    return history
