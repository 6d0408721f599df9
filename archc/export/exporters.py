"""`archc export`: ONNX (checked with onnx.checker), TorchScript, torch.export programs, Python source."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, cast

import torch
from torch import fx

from archc.errors import UsageError
from archc.fileio import atomic_write

__all__ = ["FORMATS", "export"]

FORMATS = {"onnx": ".onnx", "torchscript": ".ts.pt", "exported-program": ".pt2", "python": ".py"}


def _example(gm: fx.GraphModule) -> tuple[torch.Tensor, ...]:
    graph = cast(Any, gm).archc_graph
    return tuple(torch.randn(1, *shape) for _, shape in graph.inputs)


def _onnx(gm: fx.GraphModule, x: tuple[torch.Tensor, ...], path: Path) -> None:
    import tempfile

    import onnx

    program: Any = torch.onnx.export(gm, x, dynamo=True, verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        program.save(Path(tmp) / "model.onnx")
        data = (Path(tmp) / "model.onnx").read_bytes()
    onnx.checker.check_model(onnx.load_from_string(data))
    atomic_write(path, data)


def export(gm: fx.GraphModule, fmt: str, path: str | Path) -> Path:
    """Write ``gm`` (in eval mode) in ``fmt``; the file appears atomically or not at all."""
    from archc.backend.builder import _class_name

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'", hint=f"choose one of {', '.join(FORMATS)}")
    gm = gm.eval()
    path = Path(path)
    x = _example(gm)
    graph: Any = cast(Any, gm).archc_graph
    if fmt == "python":
        from archc.export.python_source import python_source

        atomic_write(path, python_source(gm, _class_name(graph.name), graph.name))
    elif fmt == "onnx":
        _onnx(gm, x, path)
    elif fmt == "torchscript":
        buf = io.BytesIO()
        with warnings.catch_warnings():  # TorchScript is deprecated upstream; still asked for by older stacks
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.save(torch.jit.trace(gm, x), buf)
        atomic_write(path, buf.getvalue())
    else:
        buf = io.BytesIO()
        torch.export.save(torch.export.export(gm, x), buf)
        atomic_write(path, buf.getvalue())
    return path
