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


def _example(gm: fx.GraphModule, batch: int) -> tuple[torch.Tensor, ...]:
    graph = cast(Any, gm).archc_graph
    return tuple(torch.randn(batch, *shape) for _, shape in graph.inputs)


def _batch_axes(gm: fx.GraphModule, static: bool) -> tuple[dict[int, Any], ...] | None:
    """torch.export's dynamic shapes: the batch axis of every input (one shared size), or None when static."""
    if static:
        return None
    batch = torch.export.Dim("batch", min=1)
    return tuple({0: batch} for _ in cast(Any, gm).archc_graph.inputs)


def _onnx(gm: fx.GraphModule, x: tuple[torch.Tensor, ...], path: Path, dynamic: Any) -> None:
    import tempfile

    import onnx

    graph = cast(Any, gm).archc_graph
    program: Any = torch.onnx.export(gm, x, dynamo=True, verbose=False, dynamic_shapes=dynamic,
                                     input_names=[name for name, _ in graph.inputs],
                                     output_names=onnx_output_names(graph.outputs))
    with tempfile.TemporaryDirectory() as tmp:
        program.save(Path(tmp) / "model.onnx")
        data = (Path(tmp) / "model.onnx").read_bytes()
    onnx.checker.check_model(onnx.load_from_string(data))
    atomic_write(path, data)


def onnx_output_names(outputs: tuple[str, ...]) -> list[str]:
    """The spec's output names (node paths, `NAME[K]` for a multi-output node's), a repeated one suffixed
    `_1`, `_2`, ... (ONNX names are unique)."""
    names: list[str] = []
    for out in outputs:
        name, k = out, 0
        while name in names:
            k += 1
            name = f"{out}_{k}"
        names.append(name)
    return names


def _torchscript(gm: fx.GraphModule, x: tuple[torch.Tensor, ...], path: Path) -> None:
    """A trace (any batch size; sizes that decide a branch are fixed at the traced input's), checked against
    the model itself at another batch size (cheaper and stricter than torch's check_trace, which records
    twice and compares graphs). archc's own modules branch neither on grad mode nor on sizes while traced,
    so a trace warning left is torch's or torchvision's (silenced, as torch silences its own)."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():  # TorchScript is deprecated upstream; older stacks ask
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch(vision)?\.")
        traced = torch.jit.trace(gm, x, check_trace=False)
        other = tuple(torch.randn(t.shape[0] + 1, *t.shape[1:]) for t in x)
        for want, got in zip(_flat(gm(*other)), _flat(traced(*other))):
            if want.shape != got.shape or not torch.allclose(want, got, rtol=1e-4, atol=1e-5):
                how = (f"shape {tuple(got.shape)}, not {tuple(want.shape)}" if want.shape != got.shape else
                       f"largest difference {float((want - got).abs().max()):g}")
                raise RuntimeError(f"the TorchScript trace differs from the model at batch {other[0].shape[0]}: {how}")
        torch.jit.save(traced, buf)
    atomic_write(path, buf.getvalue())


def _flat(result: Any) -> tuple[torch.Tensor, ...]:
    return tuple(result) if isinstance(result, tuple | list) else (result,)


def weights_path(path: str | Path) -> Path:
    """Where ``--format python`` writes the weights: beside the file, ``NAME.pt``."""
    path = Path(path)
    return path.with_suffix(".pt") if path.suffix != ".pt" else path.with_name(path.name + ".weights.pt")


def export(gm: fx.GraphModule, fmt: str, path: str | Path, *, static: bool = False,
           python_weights: bool = False) -> Path:
    """Write ``gm`` (in eval mode) in ``fmt``; the file appears atomically or not at all.

    ONNX and exported programs take any batch size unless ``static`` (then batch 1); TorchScript
    traces are batch-generic anyway. The weights travel inside every format but ``python``: with
    ``python_weights`` its state_dict goes beside the file (:func:`weights_path`, a plain
    ``torch.save``), and the file gains ``load_model()`` reading it."""
    from archc.backend.builder import _class_name

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'", hint=f"choose one of {', '.join(FORMATS)}")
    gm = gm.eval()
    path = Path(path)
    x = _example(gm, 1 if static else 2)  # batch 2: torch.export specialises an example size of 1
    graph: Any = cast(Any, gm).archc_graph
    if fmt == "python":
        from archc.export.python_source import python_source

        weights = weights_path(path) if python_weights else None
        if weights is not None:
            buf = io.BytesIO()
            torch.save({k: v.detach().contiguous().cpu() for k, v in gm.state_dict().items()}, buf)
            atomic_write(weights, buf.getvalue())
        atomic_write(path, python_source(gm, _class_name(graph.name), graph.name,
                                         weights.name if weights is not None else None))
    elif fmt == "onnx":
        _onnx(gm, x, path, _batch_axes(gm, static))
    elif fmt == "torchscript":
        _torchscript(gm, x, path)
    else:
        buf = io.BytesIO()
        torch.export.save(torch.export.export(gm, x, dynamic_shapes=_batch_axes(gm, static)), buf)
        atomic_write(path, buf.getvalue())
    return path
