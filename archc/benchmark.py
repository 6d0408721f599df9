"""`archc bench`: latency and throughput of a compiled spec next to its torchvision twin, measured
in the same run with interleaved repeats (so machine drift hits both alike)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn

from archc.errors import UsageError

__all__ = ["bench", "format_rows"]


def _time(fn: Callable[[], Any], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def _twin(against: str | None, graph: Any) -> tuple[str, nn.Module] | None:
    """`--against torchvision:NAME`, or by default the spec's own `reference:` twin."""
    import torchvision

    twin = graph.twin()
    if against is None:
        if twin is None:
            return None
        name, kwargs = twin
    elif against.startswith("torchvision:"):
        name = against.split(":", 1)[1]
        kwargs = twin[1] if twin is not None and twin[0] == name else {}
    else:
        raise UsageError(f"--against expects torchvision:NAME, got '{against}'")
    if name not in torchvision.models.list_models():  # classification, segmentation, ... by one name
        raise UsageError(f"torchvision has no model '{name}'")
    return name, torchvision.models.get_model(name, **kwargs)


def bench(spec: str, against: str | None = None, device: str = "cpu", batch_sizes: tuple[int, ...] = (1, 8),
          repeats: int = 20, compile_: bool = False, params: dict[str, Any] | None = None,
          input_shape: Any = None) -> list[dict[str, Any]]:
    """Median latency per batch size for archc's module and its twin (same weights), and their ratio."""
    import archc

    dev = torch.device(device)
    model = archc.compile(spec, input_shape=input_shape, **(params or {})).eval().to(dev)
    twin = _twin(against, model.archc_graph)
    contenders: dict[str, nn.Module] = {"archc": model}
    if twin is not None:
        twin_model = twin[1].eval().to(dev)
        model.load_state_dict(twin_model.state_dict())
        contenders[f"torchvision:{twin[0]}"] = twin_model
    if compile_:
        contenders = {k: torch.compile(m) for k, m in contenders.items()}  # type: ignore[misc]
    shape = model.archc_graph.inputs[0][1]  # type: ignore[union-attr, index]
    rows = []
    for b in batch_sizes:
        x = torch.randn(b, *shape, device=dev)
        times: dict[str, list[float]] = {k: [] for k in contenders}
        with torch.no_grad():
            for m in contenders.values():
                for _ in range(3):
                    m(x)  # warm-up (and compilation)
            for _ in range(repeats):
                for k, m in contenders.items():
                    times[k].append(_time(partial(m, x), dev))
        med = {k: statistics.median(v) for k, v in times.items()}
        row: dict[str, Any] = {"batch": b, **{f"{k} ms": v * 1e3 for k, v in med.items()},
                               "archc img/s": b / med["archc"]}
        if len(med) == 2:
            row["ratio"] = med["archc"] / list(med.values())[1]
        rows.append(row)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["  ".join(f"{k:>22}" for k in keys)]
    lines += ["  ".join(f"{r[k]:>22.3f}" if isinstance(r[k], float) else f"{r[k]:>22}" for k in keys) for r in rows]
    return "\n".join(lines)
