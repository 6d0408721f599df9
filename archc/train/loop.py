"""The training loop: AdamW with backbone/head learning rates, warm-up + cosine schedule, gradient
clipping, label smoothing, AMP and channels_last on CUDA, best/last checkpoints, exact resume,
and DistributedDataParallel when started under torchrun. Modules under frozen paths stay in eval
mode while the rest trains (fixed BatchNorm statistics, no dropout), as in torchvision fine-tuning."""

from __future__ import annotations

import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from archc.errors import UsageError
from archc.fileio import atomic_write
from archc.train.data import check_mask_classes, class_names, data_config, data_task, describe, make_datasets
from archc.train.losses import class_dice, class_iou, make_loss, mean_present
from archc.train.task import check_input, check_output, choose_task, split_outputs
from archc.train.weights import load_any

__all__ = ["SHAPES_TRAIN_SIZE", "TrainConfig", "chance_hint", "figure", "fit", "train"]

SHAPES_TRAIN_SIZE = 4096  # --data shapes' default training images (the issue's bar; see README)
HINT_AFTER = 2  # epochs: validation still at chance then (or at the end of a shorter run) prints what to try


@dataclass
class TrainConfig:
    spec: str
    data: str = "digits"
    params: dict[str, Any] = field(default_factory=dict)
    epochs: int = 5
    batch_size: int | None = None  # None: 64 for classification, 16 for segmentation (more steps per epoch)
    lr: float = 1e-3
    backbone_lr: float | None = None  # default: lr (lr / 10 when starting from --weights)
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.0
    clip: float = 1.0
    device: str = "cpu"
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    seed: int = 0
    out: str | None = None  # None: a new numbered folder runs/<spec name>/<N> (the chosen one is stored here)
    exist_ok: bool = False  # write into an existing, non-empty `out` (its previous files are replaced)
    freeze: list[str] = field(default_factory=list)
    train_last: int | None = None
    weights: str | None = None
    strict: bool = True
    workers: int = 0
    fake_size: int = 512
    stop_after: int | None = None  # stop after this epoch (same schedule); continue with --resume
    loss: str | None = None  # ce, dice or ce+dice (Dice: segmentation only); None: ce+dice for segmentation, else ce
    aux_weight: float = 0.5  # loss weight of each auxiliary output (torchvision's segmentation reference)
    task: str | None = None  # classification or segmentation; None: from the data (fake: the output's shape)
    input: list[int | str] | None = None  # train at this [C, H, W] instead of the spec's input
    train_size: int = SHAPES_TRAIN_SIZE  # images made by --data shapes
    val_size: int = 128


def _task_defaults(cfg: TrainConfig, task: str) -> None:
    """Segmentation's defaults (measured on `shapes`, see README): batch 16 and CE + Dice; classification's:
    batch 64 and cross-entropy. run.json records the values used, so --resume keeps them."""
    segmentation = task == "segmentation"
    cfg.batch_size = cfg.batch_size or (16 if segmentation else 64)
    cfg.loss = cfg.loss or ("ce+dice" if segmentation else "ce")


def _dist() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


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


def _save_tensor_file(path: Path, model: nn.Module) -> None:
    from safetensors.torch import save

    module: Any = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    atomic_write(path, save(tensors))


def _save_state(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, buf.getvalue())


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
        for x, y in _progress(loader, _dist()[0], "validating"):
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


@dataclass
class _Run:
    """Everything one training run holds."""

    model: nn.Module
    net: nn.Module
    loader: DataLoader[Any]
    val_loader: DataLoader[Any]
    sampler: DistributedSampler[Any] | None
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    gen: torch.Generator
    device: torch.device
    params: dict[str, Any]
    frozen: list[str]
    task: str
    classes: list[str]


def _train_mode(run: _Run) -> None:
    """Training mode, except frozen parts: their BatchNorm statistics stay fixed, their dropout off."""
    run.net.train()
    for module in _frozen_modules(run.model, run.frozen):
        module.eval()


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


def _setup(cfg: TrainConfig, spec_path: Path, rank: int, world: int, resume: bool) -> _Run:
    import archc

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
    frozen = _freeze(model, cfg)
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
    return _Run(model, net, loader, val_loader, sampler, opt, sched, gen, device, params, frozen, task, names)


def _epoch(run: _Run, cfg: TrainConfig, loss_fn: nn.Module, rank: int, desc: str) -> tuple[float, float]:
    """One pass over the training data; returns (mean loss, accuracy)."""
    _train_mode(run)
    cuda = run.device.type == "cuda"
    seen, loss_sum, correct, labels = 0, 0.0, 0, 0
    for x, y in _progress(run.loader, rank, desc):
        x, y = x.to(run.device), y.to(run.device)
        if cfg.channels_last and cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=cfg.amp and cuda):  # bf16: no scaler
            out, extra = split_outputs(run.net(x))
            loss = loss_fn(out, y)
            for aux in extra if cfg.aux_weight else ():  # weighted as in torchvision's reference scripts
                if aux.shape == out.shape:
                    loss = loss + cfg.aux_weight * loss_fn(aux, y)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_([p for p in run.model.parameters() if p.requires_grad], cfg.clip)
        run.opt.step()
        run.sched.step()
        seen += len(y)
        loss_sum += loss.item() * len(y)
        correct += int((out.argmax(1) == y).sum().item())
        labels += y.numel()  # per pixel for segmentation
    return loss_sum / max(seen, 1), correct / max(labels, 1)


def _checkpoint(run: _Run, out: Path, history: list[dict[str, float]], epoch: int, best: float) -> float:
    _write_metrics(out, history)
    _save_tensor_file(out / "last.safetensors", run.model)
    score = history[-1].get("val_miou", history[-1]["val_acc"])  # segmentation: best by mIoU
    if score > best:
        best = score
        _save_tensor_file(out / "best.safetensors", run.model)
        _record_best(out / "run.json", history[-1])
    _save_state(out / "state.pt", {"optimizer": run.opt.state_dict(), "scheduler": run.sched.state_dict(),
                                   "epoch": epoch, "best": best, "loader_rng": run.gen.get_state(),
                                   **_rng_state(run.device)})
    return best


def _record_best(path: Path, row: dict[str, float]) -> None:
    """run.json's `best`: the best checkpoint's epoch and validation figures (per-class IoU as a mapping)."""
    info = json.loads(path.read_text())
    iou = {k[4:]: (None if v != v else v) for k, v in row.items() if k.startswith("iou_")}
    best = {k: v for k, v in row.items() if k == "epoch" or k.startswith("val_")}
    info["best"] = best | ({"iou": iou} if iou else {})
    atomic_write(path, json.dumps(info, indent=1))


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The global random streams training draws from (dropout, ...): the CPU generator, and the training
    GPU's when on CUDA (only that one, so a CPU run never initialises CUDA)."""
    state = {"torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)


def _restore(run: _Run, out: Path) -> tuple[int, float, list[dict[str, float]]]:
    run.model.load_state_dict(_load_safetensors(out / "last.safetensors"))
    state = torch.load(out / "state.pt", weights_only=True)
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    run.gen.set_state(state["loader_rng"])
    _set_rng_state(state, run.device)
    return state["epoch"] + 1, state["best"], json.loads((out / "metrics.json").read_text())


def train(cfg: TrainConfig, resume: str | None = None) -> list[dict[str, float]]:
    """Train (or continue training) a spec; returns the metrics history."""
    return fit(cfg, resume)[1]


def fit(cfg: TrainConfig, resume: str | None = None) -> tuple[nn.Module, list[dict[str, float]]]:
    """`train`, also returning this process's trained model (each rank's own copy under torchrun)."""
    import archc

    rank, world = _dist()
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if cfg.device.startswith("cuda") else "gloo")
    if resume:
        cfg.out = resume
    elif cfg.out is not None and rank == 0:  # rank 0 alone writes (other ranks would see its files)
        _check_out(Path(cfg.out), cfg.exist_ok)
    spec_path = Path(resume) / "spec.yaml" if resume else Path(archc.resolve.find_spec(cfg.spec))
    run = _setup(cfg, spec_path, rank, world, bool(resume))
    if cfg.out is None and rank == 0:  # after the checks, so a refused run leaves no empty folder
        cfg.out = str(new_run_dir(cast(Any, run.model).archc_graph.name))
    out = Path(cfg.out or ".")  # ranks other than 0 never write
    start, best, history = _restore(run, out) if resume else (0, -1.0, [])
    if rank == 0:
        name = cast(Any, run.model).archc_graph.name
        print(f"{'continuing' if resume else 'training'} {name}: run directory {out}", flush=True)
    if not resume and rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "spec.yaml", spec_path.read_text(encoding="utf-8"))
        cfg.task = run.task  # --resume continues the same task
        shape = tuple(cast(Any, run.model).archc_graph.inputs[0][1])
        atomic_write(out / "run.json", json.dumps({**asdict(cfg), "params": run.params, "frozen": run.frozen,
                                                   "classes": run.classes,
                                                   "data_config": data_config(cfg.data, shape, run.task)}, indent=1))
    loss_fn = make_loss(cfg.loss or "ce", run.task, cfg.label_smoothing)
    val_loss_fn = make_loss(cfg.loss or "ce", run.task)  # validation: without label smoothing
    last = cfg.epochs if cfg.stop_after is None else min(cfg.stop_after, cfg.epochs)
    for epoch in range(start, last):
        if run.sampler is not None:
            run.sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        train_loss, train_acc = _epoch(run, cfg, loss_fn, rank, f"epoch {epoch + 1}/{cfg.epochs}")
        val_loss, val_acc, confusion = _evaluate(run.net, run.val_loader, run.device, world, len(run.classes),
                                                 val_loss_fn)
        row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
               "val_acc": val_acc}
        if run.task == "segmentation":  # val_acc is pixel accuracy
            iou = class_iou(confusion)
            row |= {"val_miou": mean_present(iou), "val_dice": mean_present(class_dice(confusion)),
                    **{f"iou_{n}": v for n, v in zip(run.classes, iou)}}
        history.append({**row, "lr": run.opt.param_groups[-1]["lr"], "seconds": time.perf_counter() - t0})
        if rank == 0:
            miou = f" mIoU {row['val_miou']:.4f}" if "val_miou" in row else ""
            print(f"epoch {epoch + 1}: train loss {train_loss:.4f} acc {train_acc:.4f}, "
                  f"val loss {val_loss:.4f} acc {val_acc:.4f}{miou}", flush=True)
            best = _checkpoint(run, out, history, epoch, best)
            hint = chance_hint(history, confusion, cfg.lr) if epoch + 1 == min(HINT_AFTER, last) else None
            if hint:
                print(hint, flush=True)
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return run.model, history


def _check_out(out: Path, exist_ok: bool) -> None:
    """An explicit run directory must be new or empty, unless ``exist_ok``: never replace a run silently."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not exist_ok:
        raise UsageError(f"--out {out} already holds files (a previous run?)",
                         hint=f"pass --exist-ok to write over them, `--resume {out}` to continue that run, or leave "
                              "out --out for a new numbered folder under runs/")


def new_run_dir(name: str, root: Path = Path("runs")) -> Path:
    """Create and return the next numbered folder ``root/name/N`` (1, 2, ...), never an existing one."""
    base = root / ("".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "run")
    base.mkdir(parents=True, exist_ok=True)
    n = max((int(p.name) for p in base.iterdir() if p.name.isdigit()), default=0) + 1
    while True:
        try:
            (base / str(n)).mkdir()  # atomic: two runs started together get different folders
            return base / str(n)
        except FileExistsError:
            n += 1


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise UsageError(f"cannot resume: {path} is missing")
    from safetensors.torch import load_file

    return load_file(str(path))


def _progress(loader: DataLoader[Any], rank: int, desc: str, file: Any = None) -> Any:
    """``loader`` with a per-batch progress bar on a terminal (``file``, default stderr); nothing in a pipe or a log
    file, nothing on ranks other than 0. The bar is cleared when the pass ends (the epoch line follows)."""
    if rank != 0:
        return loader
    import shutil
    import sys

    from tqdm import tqdm

    # tqdm asks the terminal for its size itself and draws nothing where it reads 0 rows (a terminal that reports
    # no size: docker exec, script, some IDEs); shutil falls back to 80x24 there
    size = shutil.get_terminal_size((80, 24))
    return tqdm(loader, desc=desc, leave=False, ncols=size.columns if size.columns > 0 else 80,
                nrows=size.lines if size.lines > 0 else 24, disable=None, file=sys.stderr if file is None else file,
                unit="batch")


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
