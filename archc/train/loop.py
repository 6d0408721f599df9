"""Classification and segmentation for the training engine (archc.train.engine, the one loop): `ImageTask`, the
plugin, with AdamW at a backbone and a head learning rate, warm-up + cosine schedule, label smoothing,
channels_last on CUDA, frozen parts, and the metrics files and plot. Modules under frozen paths stay in eval
mode while the rest trains (fixed BatchNorm statistics, no dropout), as in torchvision fine-tuning."""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from archc.backend.weights import load_any
from archc.errors import UsageError
from archc.fileio import atomic_write
from archc.train.data import check_mask_classes, class_names, data_config, data_task, describe, make_datasets
from archc.train.engine import Run, RunConfig, autocast, run_task
from archc.train.losses import class_dice, class_iou, make_loss, mean_present
from archc.train.runs import dist_info, load_safetensors, progress
from archc.train.task import check_input, check_output, choose_task, split_outputs

__all__ = ["SHAPES_TRAIN_SIZE", "ImageTask", "TrainConfig", "chance_hint", "figure", "fit", "segment_row", "train"]

SHAPES_TRAIN_SIZE = 4096  # --data shapes' default training images (the issue's bar; see README)
HINT_AFTER = 2  # epochs: validation still at chance then (or at the end of a shorter run) prints what to try


@dataclass
class TrainConfig(RunConfig):
    """`archc train`'s settings for classification and segmentation (the shared ones: `RunConfig`)."""

    batch_size: int | None = None  # None: 64 for classification, 16 for segmentation (more steps per epoch)
    lr: float = 1e-3
    train_size: int = SHAPES_TRAIN_SIZE  # images made by --data shapes
    backbone_lr: float | None = None  # default: lr (lr / 10 when starting from --weights)
    label_smoothing: float = 0.0
    channels_last: bool = False
    compile: bool = False
    freeze: list[str] = field(default_factory=list)
    train_last: int | None = None
    fake_size: int = 512
    loss: str | None = None  # ce, dice or ce+dice (Dice: segmentation only); None: ce+dice for segmentation, else ce
    aux_weight: float = 0.5  # loss weight of each auxiliary output (torchvision's segmentation reference)
    task: str | None = None  # classification or segmentation; None: from the data (fake: the output's shape)


def _task_defaults(cfg: TrainConfig, task: str) -> None:
    """Segmentation's defaults (measured on `shapes`, see README): batch 16 and CE + Dice; classification's:
    batch 64 and cross-entropy. run.json records the values used, so --resume keeps them."""
    segmentation = task == "segmentation"
    cfg.batch_size = cfg.batch_size or (16 if segmentation else 64)
    cfg.loss = cfg.loss or ("ce+dice" if segmentation else "ce")


def _top_level(model: nn.Module) -> list[str]:
    """Top-level children that own parameters, in order."""
    return [n for n, m in model.named_children() if any(True for _ in m.parameters())] + \
        [n for n, _ in model.named_parameters(recurse=False)]


def _freeze(model: nn.Module, cfg: TrainConfig) -> list[str]:
    """Stop gradients under ``--freeze``/``--train-last`` paths; returns every frozen path, the
    spec's ``frozen:`` ones (already without gradients) first."""
    graph = getattr(model, "archc_graph", None)
    spec_frozen = list(graph.meta.get("frozen", ())) if graph is not None else []
    prefixes = list(cfg.freeze)
    if cfg.train_last is not None:
        tops = _top_level(model)
        prefixes += tops[:max(len(tops) - cfg.train_last, 0)]
    names = dict(model.named_parameters())
    for prefix in prefixes:
        hits = [n for n in names if n == prefix or n.startswith(prefix + ".")]
        if not hits:
            raise UsageError(f"--freeze {prefix}: no parameters under that path",
                             hint=f"top-level paths: {', '.join(_top_level(model))}")
        for n in hits:
            names[n].requires_grad_(False)
    return list(dict.fromkeys(spec_frozen + prefixes))


def _frozen_modules(model: nn.Module, frozen: list[str]) -> list[nn.Module]:
    """The modules that frozen paths name (a path may also name a single parameter)."""
    modules = dict(model.named_modules())
    return [modules[p] for p in frozen if p in modules]


def _param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    head = _top_level(model)[-1]
    backbone_lr = cfg.backbone_lr if cfg.backbone_lr is not None else cfg.lr / (10 if cfg.weights else 1)
    groups: dict[str, list[nn.Parameter]] = {"head": [], "backbone": []}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups["head" if name == head or name.startswith(head + ".") else "backbone"].append(p)
    return [{"params": groups["backbone"], "lr": backbone_lr, "name": "backbone"},
            {"params": groups["head"], "lr": cfg.lr, "name": "head"}]


def _schedule(warmup: int, total: int) -> Any:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))

    return factor


def _plot(path: Path, history: list[dict[str, float]]) -> None:
    import matplotlib.pyplot as plt

    fig = figure(history)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    atomic_write(path, buf.getvalue())


MARKERS_UP_TO = 30  # epochs: shorter runs draw each epoch's point, so a 1-epoch run's plot is not empty


def figure(history: list[dict[str, float]]) -> Any:
    """The loss and accuracy curves of a run (a matplotlib Figure); points marked on short runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    style = {"marker": "o", "markersize": 4} if len(history) <= MARKERS_UP_TO else {}
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    series = [(a, "train_loss", "train"), (a, "val_loss", "val"), (b, "train_acc", "train"), (b, "val_acc", "val")]
    if "val_miou" in history[0]:
        series += [(b, "val_miou", "val mIoU"), (b, "val_dice", "val Dice")]
    for ax, key, label in series:
        ax.plot(epochs, [h[key] for h in history], label=label, **style)
    a.set_title("loss")
    b.set_title("accuracy" if "val_miou" not in history[0] else "pixel accuracy, mIoU, Dice")
    for ax in (a, b):
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
        if len(epochs) == 1:
            ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
        ax.legend()
    fig.tight_layout()
    return fig


def _write_metrics(out: Path, history: list[dict[str, float]]) -> None:
    # a class absent from both labels and predictions has no IoU: null in JSON, empty in CSV
    atomic_write(out / "metrics.json", json.dumps([{k: None if v != v else v for k, v in h.items()} for h in history],
                                                  indent=1))
    keys = list(history[0])
    rows = [",".join(keys)] + [",".join("" if h[k] is None or h[k] != h[k] else f"{h[k]:.6g}" for k in keys)
                               for h in history]
    atomic_write(out / "metrics.csv", "\n".join(rows) + "\n")
    _plot(out / "plot.png", history)


def _evaluate(model: nn.Module, loader: DataLoader[Any], device: torch.device, world: int, classes: int,
              loss_fn: nn.Module) -> tuple[float, float, torch.Tensor]:
    """Mean loss per sample (``loss_fn``: the training loss without label smoothing) and accuracy per
    label (per pixel for segmentation), and the confusion matrix (rows: true class, columns: predicted)."""
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, samples, correct, labels
    confusion = torch.zeros(classes * classes, dtype=torch.float64, device=device)
    with torch.no_grad():
        for x, y in progress(loader, dist_info()[0], "validating"):
            x, y = x.to(device), y.to(device)
            out, _ = split_outputs(model(x))  # metrics and the validation loss are the main output's
            pred = out.argmax(1)
            totals += torch.tensor([loss_fn(out, y).item() * len(y), len(y), (pred == y).sum().item(), y.numel()],
                                   dtype=torch.float64, device=device)
            confusion += torch.bincount((y * classes + pred).flatten(), minlength=classes * classes).double()
    if world > 1:
        torch.distributed.all_reduce(totals)
        torch.distributed.all_reduce(confusion)
    return (totals[0] / totals[1]).item(), (totals[2] / totals[3]).item(), confusion.view(classes, classes).cpu()


def _loaders(cfg: TrainConfig, train_set: Any, val_set: Any, gen: torch.Generator, rank: int, world: int
             ) -> tuple[DataLoader[Any], DataLoader[Any], DistributedSampler[Any] | None]:
    sampler: DistributedSampler[Any] | None = None
    val_sampler: DistributedSampler[Any] | None = None
    if world > 1:
        sampler = DistributedSampler(train_set, world, rank, seed=cfg.seed)
        val_sampler = DistributedSampler(val_set, world, rank, shuffle=False)
    batch = cfg.batch_size or 64  # set by _task_defaults
    loader = DataLoader(train_set, batch, shuffle=sampler is None, sampler=sampler, generator=gen,
                        num_workers=cfg.workers, drop_last=len(train_set) > batch)
    val_loader = DataLoader(val_set, batch * 2, sampler=val_sampler, num_workers=cfg.workers)
    return loader, val_loader, sampler


class ImageTask:
    """The classification and segmentation plugin of the training engine (which of the two: from the data, the
    model's output or --task, known once the spec is checked). Segmentation adds mIoU, Dice and per-class IoU
    (`segment_row`) and keeps the best mIoU instead of the best accuracy."""

    history_file = "metrics.json"

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.kind = "classification"
        self.frozen: list[str] = []
        self.loss_fn: nn.Module = nn.CrossEntropyLoss()
        self.val_loss_fn: nn.Module = nn.CrossEntropyLoss()

    def setup(self, spec_path: Path, rank: int, world: int, resume: bool) -> Run:
        import archc

        cfg = self.cfg
        device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cfg.device == "cuda" and world > 1
                              else cfg.device)
        torch.manual_seed(cfg.seed)
        probe = archc.check(spec_path, cfg.params, cfg.input)
        task = choose_task(probe, cfg.data, data_task(cfg.data), cfg.task)  # an output no task takes: said first
        _task_defaults(cfg, task)
        make_loss(cfg.loss or "ce", task)  # an unknown loss, or Dice for classes: refused before any data is made
        check_input(probe.graph, cfg.data)  # before reading any data
        shape = tuple(probe.graph.inputs[0][1])
        scores = tuple(probe.shapes[probe.graph.outputs[0]])[0]  # fake masks: as many classes as the model scores
        train_set, val_set, classes = make_datasets(cfg.data, shape, cfg.seed, cfg.fake_size, task,
                                                    (cfg.train_size, cfg.val_size), scores)
        params = dict(cfg.params)
        if "num_classes" in probe.graph.params and "num_classes" not in params:
            params["num_classes"] = classes  # replace the head to fit the data
            probe = archc.check(spec_path, params, cfg.input)
        check_output(probe, classes, probe.graph.params, cfg.params, cfg.data, task)  # before the loss meets the model
        scores = tuple(probe.shapes[probe.graph.outputs[0]])[0]
        if task == "segmentation":
            check_mask_classes((train_set, val_set), scores)  # image/mask folders: every mask value is scored
        if rank == 0:
            print(describe(cfg.data, shape, train_set, val_set, classes), flush=True)
        model = archc.compile(spec_path, input_shape=cfg.input, **params).to(device)
        if cfg.weights and not resume:
            report = load_any(model, cfg.weights, cfg.strict)
            if rank == 0 and any(report.values()):
                print("weights: " + "; ".join(f"{k}: {len(v)}" for k, v in report.items() if v))
        self.frozen = _freeze(model, cfg)
        if cfg.channels_last and device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        net: Any = nn.parallel.DistributedDataParallel(model) if world > 1 else model
        if cfg.compile:
            net = torch.compile(net)
        gen = torch.Generator().manual_seed(cfg.seed)
        loader, val_loader, sampler = _loaders(cfg, train_set, val_set, gen, rank, world)
        opt = torch.optim.AdamW(_param_groups(model, cfg), weight_decay=cfg.weight_decay)
        warmup = int(cfg.warmup_epochs * len(loader))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(warmup, len(loader) * cfg.epochs))
        names = class_names(cfg.data, train_set, scores)
        names += [str(i) for i in range(len(names), scores)]
        self.kind = cfg.task = task  # run.json records it: --resume continues the same task
        self.loss_fn = make_loss(cfg.loss or "ce", task, cfg.label_smoothing)
        self.val_loss_fn = make_loss(cfg.loss or "ce", task)  # validation: without label smoothing
        return Run(self, model, net, loader, val_loader, sampler, opt, sched, gen, device, params, names)

    def record(self, run: Run) -> dict[str, Any]:
        shape = tuple(cast(Any, run.model).archc_graph.inputs[0][1])
        return {"params": run.params, "frozen": self.frozen, "classes": run.names,
                "data_config": data_config(self.cfg.data, shape, self.kind)}

    def start_epoch(self, run: Run, epoch: int) -> None:
        """Training mode, except frozen parts: their BatchNorm statistics stay fixed, their dropout off."""
        run.net.train()
        for module in _frozen_modules(run.model, self.frozen):
            module.eval()

    def loss(self, run: Run, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        x, y = batch[0].to(run.device), batch[1].to(run.device)
        if cfg.channels_last and run.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(run, cfg.amp):
            out, extra = split_outputs(run.net(x))
            loss = self.loss_fn(out, y)
            for aux in extra if cfg.aux_weight else ():  # weighted as in torchvision's reference scripts
                if aux.shape == out.shape:
                    loss = loss + cfg.aux_weight * self.loss_fn(aux, y)
        stats = {"loss": loss.item() * len(y), "seen": len(y), "correct": int((out.argmax(1) == y).sum().item()),
                 "labels": y.numel()}  # labels: per pixel for segmentation
        return loss, stats

    def before_step(self, run: Run, step: int, steps_per_epoch: int) -> None:
        pass  # the LambdaLR schedule steps after each optimizer step

    def postfix(self, sums: dict[str, float], batches: int) -> dict[str, str] | None:
        return None

    def train_row(self, sums: dict[str, float], batches: int) -> dict[str, float]:
        return {"train_loss": sums.get("loss", 0.0) / max(sums.get("seen", 0), 1),
                "train_acc": sums.get("correct", 0) / max(sums.get("labels", 0), 1)}

    def validate(self, run: Run, rank: int, world: int) -> tuple[dict[str, float], Any]:
        val_loss, val_acc, confusion = _evaluate(run.net, run.val_loader, run.device, world, len(run.names),
                                                 self.val_loss_fn)
        row = {"val_loss": val_loss, "val_acc": val_acc}  # segmentation: val_acc is pixel accuracy
        if self.kind == "segmentation":
            row |= segment_row(confusion, run.names)
        return row, confusion

    def log(self, row: dict[str, float]) -> str:
        miou = f" mIoU {row['val_miou']:.4f}" if "val_miou" in row else ""
        return (f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}, "
                f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}{miou}")

    def score(self, row: dict[str, float]) -> float:
        return row.get("val_miou", row["val_acc"])  # segmentation: best by mIoU

    def write_history(self, out: Path, history: list[dict[str, float]]) -> None:
        _write_metrics(out, history)

    def on_best(self, run: Run, out: Path, payload: Any) -> None:
        pass

    def after_epoch(self, run: Run, history: list[dict[str, float]], payload: Any, last: int) -> None:
        hint = chance_hint(history, payload, self.cfg.lr) if history[-1]["epoch"] == min(HINT_AFTER, last) else None
        if hint:
            print(hint, flush=True)

    def save_extra(self, run: Run) -> dict[str, Any]:
        return {}

    def restore(self, run: Run, out: Path, state: dict[str, Any]) -> None:
        run.model.load_state_dict(load_safetensors(out / "last.safetensors"))


def segment_row(confusion: torch.Tensor, names: list[str]) -> dict[str, float]:
    """Segmentation's validation figures from the confusion matrix: mIoU and Dice over the classes present, and
    each class's IoU."""
    iou = class_iou(confusion)
    return {"val_miou": mean_present(iou), "val_dice": mean_present(class_dice(confusion)),
            **{f"iou_{n}": v for n, v in zip(names, iou)}}


def train(cfg: TrainConfig, resume: str | None = None) -> list[dict[str, float]]:
    """Train (or continue training) a spec; returns the metrics history."""
    return fit(cfg, resume)[1]


def fit(cfg: TrainConfig, resume: str | None = None) -> tuple[nn.Module, list[dict[str, float]]]:
    """`train`, also returning this process's trained model (each rank's own copy under torchrun)."""
    run, history = run_task(ImageTask(cfg), resume)
    return run.model, history




def chance_hint(history: list[dict[str, float]], confusion: torch.Tensor, lr: float) -> str | None:
    """'what next' when the last epoch's validation accuracy is no better than always answering the commonest
    class (within two standard deviations of a guesser's accuracy on this many labels); None otherwise."""
    counts = confusion.sum(1)
    n = float(counts.sum())
    if n <= 0:
        return None
    row, base = history[-1], float(counts.max()) / n
    if row["val_acc"] > base + 2 * math.sqrt(base * (1 - base) / n):
        return None
    epochs = f"{len(history)} epoch{'s' if len(history) > 1 else ''}"
    head = (f"what next: validation accuracy {row['val_acc']:.3f} is at chance after {epochs} (always answering "
            f"the commonest class scores {base:.3f})")
    if row["train_acc"] > base + 0.1:
        return (f"{head}. Training accuracy is {row['train_acc']:.3f}: the model fits the training images but "
                "nothing carries over. Check that val/ holds the same classes as train/ and images like them; "
                "more training images or fewer parameters help a model that memorises.")
    return (f"{head}, and training accuracy too ({row['train_acc']:.3f}): nothing is learnt yet. Try another "
            f"learning rate (--lr {lr / 10:g} or --lr {lr * 3:g}; now {lr:g}) and more --epochs; check that the "
            "labels match the images (one folder per class) and look at plot.png in the run folder.")
