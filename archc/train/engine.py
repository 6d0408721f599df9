"""The one training loop every task shares: epochs and batches, gradient accumulation, clipping, the optimizer and
its schedule, an EMA of the weights when the task keeps one, checkpoints and exact resume, DDP, the progress bar and
the history files. What differs by task (data, loss, validation, what the run folder records) comes from a `Task`
plugin: `archc.train.loop` (classification, segmentation) and `archc.detect.train` (detection)."""

from __future__ import annotations

import json
import math
import time
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from archc.errors import UsageError
from archc.fileio import atomic_write
from archc.train.runs import (
    check_out,
    dist_info,
    new_run_dir,
    progress,
    rng_state,
    save_state,
    save_tensor_file,
    set_rng_state,
)

__all__ = ["ModelEMA", "Run", "RunConfig", "Task", "autocast", "record_best", "run_task", "train_pass"]


@dataclass
class RunConfig:
    """The settings every task has; each task's config subclasses it with its own defaults and fields."""

    spec: str
    data: str = "digits"
    params: dict[str, Any] = field(default_factory=dict)
    epochs: int = 5
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    clip: float = 1.0
    device: str = "cpu"
    amp: bool = False
    seed: int = 0
    out: str | None = None  # None: a new numbered folder runs/<spec name>/<N> (the chosen one is stored here)
    exist_ok: bool = False  # write into an existing, non-empty `out` (its previous files are replaced)
    weights: str | None = None
    strict: bool = True
    workers: int = 0
    stop_after: int | None = None  # stop after this epoch (same schedule); continue with --resume
    input: list[int | str] | None = None  # train at this [C, H, W] instead of the spec's input
    train_size: int = 4096  # images made by --data shapes
    val_size: int = 128


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


@dataclass
class Run:
    """Everything one training run holds; ``task`` is the plugin that made it."""

    task: Task
    model: nn.Module
    net: nn.Module  # the model as trained: DDP-wrapped, compiled
    loader: DataLoader[Any]
    val_loader: DataLoader[Any]
    sampler: DistributedSampler[Any] | None
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR | None  # None: the task sets the rate itself (Task.before_step)
    gen: torch.Generator
    device: torch.device
    params: dict[str, Any]
    names: list[str]  # class names
    accumulate: int = 1  # batches per optimizer step
    ema: ModelEMA | None = None  # validated and saved instead of the model when present

    @property
    def final(self) -> nn.Module:
        """The weights validated and saved: the EMA's when the task keeps one."""
        return self.ema.module if self.ema is not None else self.model


class Task(Protocol):
    """A task plugin: what the loop asks of classification, segmentation or detection."""

    cfg: Any  # a RunConfig
    history_file: str  # the per-epoch history the run folder keeps as JSON ("metrics.json", "results.json")

    def setup(self, spec_path: Path, rank: int, world: int, resume: bool) -> Run:
        """Check the spec against the data, build the model, loaders and optimizer."""

    def record(self, run: Run) -> dict[str, Any]:
        """run.json's entries beyond the config's fields."""

    def start_epoch(self, run: Run, epoch: int) -> None:
        """Training mode and anything set per epoch (frozen parts in eval, mosaic on or off)."""

    def loss(self, run: Run, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of one training batch and the sums its epoch figures are made of."""

    def before_step(self, run: Run, step: int, steps_per_epoch: int) -> None:
        """Called before each optimizer step (a task without a scheduler sets the learning rate here)."""

    def postfix(self, sums: dict[str, float], batches: int) -> dict[str, str] | None:
        """What the progress bar shows after the batch count, or None."""

    def train_row(self, sums: dict[str, float], batches: int) -> dict[str, float]:
        """The epoch's training figures from the summed batch figures."""

    def validate(self, run: Run, rank: int, world: int) -> tuple[dict[str, float], Any] | None:
        """The validation figures and what checkpoint/plots need of them; None on a rank that does not validate."""

    def log(self, row: dict[str, float]) -> str:
        """The epoch's line."""

    def score(self, row: dict[str, float]) -> float:
        """What `best.safetensors` is the best of."""

    def write_history(self, out: Path, history: list[dict[str, float]]) -> None:
        """The history files and plots."""

    def on_best(self, run: Run, out: Path, payload: Any) -> None:
        """After a new best checkpoint (its plots)."""

    def after_epoch(self, run: Run, history: list[dict[str, float]], payload: Any, last: int) -> None:
        """After the checkpoint, on rank 0 (hints)."""

    def save_extra(self, run: Run) -> dict[str, Any]:
        """state.pt's entries beyond the optimizer, scheduler, epoch, best and random state."""

    def restore(self, run: Run, out: Path, state: dict[str, Any]) -> None:
        """The model's (and EMA's) weights of a run to continue."""


def autocast(run: Run, enabled: bool) -> AbstractContextManager[Any]:
    """bf16 autocast on CUDA when ``enabled`` (bf16 needs no gradient scaler); nothing on CPU."""
    return torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=enabled and run.device.type == "cuda")


def train_pass(run: Run, rank: int, desc: str, epoch: int = 0) -> tuple[dict[str, float], int]:
    """One pass over the training data: the summed batch figures and the number of batches."""
    task, acc = run.task, run.accumulate
    steps_per_epoch = math.ceil(len(run.loader) / acc)
    sums: dict[str, float] = {}
    batches = 0
    run.opt.zero_grad(set_to_none=True)
    bar = progress(run.loader, rank, desc)
    for i, batch in enumerate(bar):
        loss, stats = task.loss(run, batch)
        (loss / acc if acc > 1 else loss).backward()
        if (i + 1) % acc == 0 or i + 1 == len(run.loader):
            task.before_step(run, epoch * steps_per_epoch + i // acc, steps_per_epoch)
            nn.utils.clip_grad_norm_([p for p in run.model.parameters() if p.requires_grad], task.cfg.clip)
            run.opt.step()
            if run.sched is not None:
                run.sched.step()
            run.opt.zero_grad(set_to_none=True)
            if run.ema is not None:
                run.ema.update(run.model)
        batches += 1
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        shown = task.postfix(sums, batches)
        if shown is not None and hasattr(bar, "set_postfix"):
            bar.set_postfix(shown)
    return sums, batches


def record_best(path: Path, row: dict[str, float]) -> None:
    """run.json's `best`: the best checkpoint's epoch and validation figures (per-class IoU as a mapping)."""
    info = json.loads(path.read_text())
    iou = {k[4:]: (None if v != v else v) for k, v in row.items() if k.startswith("iou_")}
    best = {k: v for k, v in row.items() if k == "epoch" or k.startswith("val_")}
    info["best"] = best | ({"iou": iou} if iou else {})
    atomic_write(path, json.dumps(info, indent=1))


def _checkpoint(run: Run, out: Path, history: list[dict[str, float]], epoch: int, best: float, payload: Any
                ) -> float:
    task = run.task
    task.write_history(out, history)
    save_tensor_file(out / "last.safetensors", run.final)
    score = task.score(history[-1])
    if score > best:
        best = score
        save_tensor_file(out / "best.safetensors", run.final)
        record_best(out / "run.json", history[-1])
        task.on_best(run, out, payload)
    state = {"optimizer": run.opt.state_dict(), "epoch": epoch, "best": best, "loader_rng": run.gen.get_state(),
             **rng_state(run.device), **task.save_extra(run)}
    if run.sched is not None:
        state["scheduler"] = run.sched.state_dict()
    save_state(out / "state.pt", state)
    return best


def _restore(run: Run, out: Path) -> tuple[int, float, list[dict[str, float]]]:
    for path in (out / "last.safetensors", out / "state.pt"):
        if not path.is_file():
            raise UsageError(f"cannot resume: {path} is missing")
    state = torch.load(out / "state.pt", weights_only=True)
    run.task.restore(run, out, state)
    run.opt.load_state_dict(state["optimizer"])
    if run.sched is not None:
        run.sched.load_state_dict(state["scheduler"])
    run.gen.set_state(state["loader_rng"])
    set_rng_state(state, run.device)
    return state["epoch"] + 1, state["best"], json.loads((out / run.task.history_file).read_text())


def _start(task: Task, resume: str | None, rank: int, world: int) -> tuple[Run, Path]:
    """The run's folder (checked or created), the model, data and optimizer; a new run's spec.yaml and run.json."""
    import archc

    cfg = task.cfg
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if cfg.device.startswith("cuda") else "gloo")
    if resume:
        cfg.out = resume
    elif cfg.out is not None and rank == 0:  # rank 0 alone writes (other ranks would see its files)
        check_out(Path(cfg.out), cfg.exist_ok)
    spec_path = Path(resume) / "spec.yaml" if resume else Path(archc.resolve.find_spec(cfg.spec))
    run = task.setup(spec_path, rank, world, bool(resume))
    name = cast(Any, run.model).archc_graph.name
    if cfg.out is None and rank == 0:  # after the checks, so a refused run leaves no empty folder
        cfg.out = str(new_run_dir(name))
    out = Path(cfg.out or ".")  # ranks other than 0 never write
    if rank == 0:
        print(f"{'continuing' if resume else 'training'} {name}: run directory {out}", flush=True)
    if not resume and rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "spec.yaml", spec_path.read_text(encoding="utf-8"))
        record = task.record(run)
        atomic_write(out / "run.json", json.dumps({**asdict(cfg), **record}, indent=1))
    return run, out


def run_task(task: Task, resume: str | None = None) -> tuple[Run, list[dict[str, float]]]:
    """Train (or continue) ``task.cfg``'s spec; returns the run and the per-epoch history (rank 0's is the one
    the run folder holds)."""
    rank, world = dist_info()
    cfg = task.cfg
    run, out = _start(task, resume, rank, world)
    start, best, history = _restore(run, out) if resume else (0, -1.0, [])
    last = cfg.epochs if cfg.stop_after is None else min(cfg.stop_after, cfg.epochs)
    for epoch in range(start, last):
        if run.sampler is not None:
            run.sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        task.start_epoch(run, epoch)
        sums, batches = train_pass(run, rank, f"epoch {epoch + 1}/{cfg.epochs}", epoch)
        row: dict[str, float] = {"epoch": epoch + 1, **task.train_row(sums, batches)}
        validated = task.validate(run, rank, world)
        if validated is not None:
            history.append({**row, **validated[0], "lr": run.opt.param_groups[-1]["lr"],
                            "seconds": time.perf_counter() - t0})
        if rank == 0 and validated is not None:
            print(task.log(history[-1]), flush=True)
            best = _checkpoint(run, out, history, epoch, best, validated[1])
            task.after_epoch(run, history, validated[1], last)
        if world > 1:
            torch.distributed.barrier()
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return run, history
