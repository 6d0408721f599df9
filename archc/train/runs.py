"""What every training task shares around the loop: the process's rank, run folders, checkpoint files, the random
state exact resume restores, and the progress bar. Public names only: the engine and the task plugins import them."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archc.errors import UsageError
from archc.fileio import atomic_write

__all__ = ["check_out", "dist_info", "load_safetensors", "new_run_dir", "progress", "rng_state", "save_state",
           "save_tensor_file", "set_rng_state"]


def dist_info() -> tuple[int, int]:
    """(rank, world size) as torchrun sets them; (0, 1) in a plain process."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def save_tensor_file(path: Path, model: nn.Module) -> None:
    """The model's state_dict as safetensors (a DDP wrapper's inner module's)."""
    from safetensors.torch import save

    module: Any = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    atomic_write(path, save(tensors))


def save_state(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, buf.getvalue())


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise UsageError(f"cannot resume: {path} is missing")
    from safetensors.torch import load_file

    return load_file(str(path))


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The global random streams training draws from (dropout, ...): the CPU generator, and the training
    GPU's when on CUDA (only that one, so a CPU run never initialises CUDA)."""
    state = {"torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)


def check_out(out: Path, exist_ok: bool) -> None:
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


def progress(loader: Any, rank: int, desc: str, file: Any = None) -> Any:
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
