"""What `archc build` shows on request: the compiled module's structure (its submodules as a tree, each with the
static output shape of the nodes it runs and its parameters, folded below ``depth``) and a test forward that runs
the module once on random inputs and checks every output's shape against the static analysis.

The module is the one `archc.compile` returns (it carries ``archc_graph``). torch is imported inside the
functions only, so importing this package stays torch-free."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from archc.analyze.shapes import Analysis, analyze

__all__ = ["ForwardReport", "forward_check", "structure"]


def _count(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def _shape(shape: tuple[int, ...] | None) -> str:
    return "x".join(map(str, shape)) if shape else ""


def _inputs(graph: Any, batch: int | None = None) -> str:
    """'3x224x224' for the usual single input named input, else 'name 3x224x224, ...' (batch first when given)."""
    shown = [(n, (batch, *s) if batch else s) for n, s in graph.inputs]
    return ", ".join(_shape(s) if n == "input" and len(shown) == 1 else f"{n} {_shape(s)}" for n, s in shown)


def _last_shapes(analysis: Analysis) -> dict[str, tuple[int, ...]]:
    """Module path -> the output shape of the last node under it (its own for a leaf), in execution order."""
    out: dict[str, tuple[int, ...]] = {}
    for path, info in analysis.info.items():
        parts = path.split(".")
        for i in range(1, len(parts) + 1):
            out[".".join(parts[:i])] = info.shape
    return out


def structure(module: Any, depth: int | None = None, analysis: Analysis | None = None) -> str:
    """The module as a tree: one line per submodule (a leaf's torch repr, a group's block label), its output shape
    (the static one of the last node it runs) and its parameters; groups deeper than ``depth`` levels are folded
    into one line saying how many modules they hold. ``analysis``: the graph's, when the caller has it."""
    graph = module.archc_graph
    analysis = analysis or analyze(graph)
    shapes = _last_shapes(analysis)
    labels = {g.path: g.label for g in graph.groups}
    rows: list[tuple[str, str, str]] = []

    def walk(mod: Any, prefix: str, level: int) -> None:
        for name, child in mod.named_children():
            path = f"{prefix}.{name}" if prefix else name
            kids = list(child.named_children())
            indent = "  " * level
            if not kids:
                text = f"{indent}{name}: {' '.join(repr(child).split())}"
            elif depth is not None and level + 1 >= depth:
                inner = sum(1 for m in child.modules() if not list(m.children()))
                text = f"{indent}{name} ({labels.get(path, type(child).__name__)}, {inner} modules folded)"
            else:
                text = f"{indent}{name} ({labels.get(path, type(child).__name__)})"
            rows.append((text, _shape(shapes.get(path)), f"{_count(child):,}"))
            if kids and (depth is None or level + 1 < depth):
                walk(child, path, level + 1)

    walk(module, "", 0)
    head = f"{graph.name} ({type(module).__name__}): {_count(module):,} parameters; input {_inputs(graph)}"
    if not rows:
        return head
    w0, w1 = (max(len(r[i]) for r in rows) for i in (0, 1))
    w2 = max(max(len(r[2]) for r in rows), len("params"))
    table = [f"{'module':<{w0}}  {'output':<{w1}}  {'params':>{w2}}"] + [
        f"{a:<{w0}}  {b:<{w1}}  {c:>{w2}}" for a, b, c in rows]
    return "\n".join([head, *table])


@dataclass
class ForwardReport:
    ok: bool
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(self.lines)


def _tensors(out: Any) -> list[Any]:
    """The tensors a forward returned, in order (a tensor, or tuples and lists of them)."""
    if isinstance(out, (tuple, list)):
        return [t for x in out for t in _tensors(x)]
    return [out]


def forward_check(module: Any, batch: int = 1, seed: int = 0) -> ForwardReport:
    """Run the module once in eval mode on random inputs (``batch`` samples of each graph input, from ``seed``) and
    compare each output's shape with the static analysis; also flags outputs that are not finite. On the meta
    device only shapes are checked. The module's training flag is restored afterwards."""
    import torch

    graph = module.archc_graph
    expected = [tuple(s) for s in analyze(graph).output_shapes]
    tensors = [*module.parameters(), *module.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    gen = torch.Generator().manual_seed(seed)
    inputs = [torch.empty(batch, *s, device="meta") if device.type == "meta" else
              torch.randn(batch, *s, generator=gen).to(device) for _, s in graph.inputs]
    was_training = module.training
    module.eval()
    start = time.perf_counter()
    try:
        with torch.no_grad():
            out = _tensors(module(*inputs))
    except Exception as e:  # a spec that checks must run: anything else is an archc bug, said as such
        return ForwardReport(False, [f"forward failed: {type(e).__name__}: {' '.join(str(e).split())[:500]}",
                                     "the static check accepted this spec, so this is a bug in archc: please report "
                                     "it with the spec"])
    finally:
        module.train(was_training)
    ms = (time.perf_counter() - start) * 1000
    got = [tuple(t.shape[1:]) for t in out]
    shown_in = _inputs(graph, batch)
    shown_out = ", ".join(_shape((batch, *s)) for s in got)
    where = "meta device: shapes only" if device.type == "meta" else f"{device}, {ms:.1f} ms"
    lines = [f"forward (eval, batch {batch}, {where}): {shown_in} -> {shown_out}"]
    ok = got == expected
    if ok:
        lines.append("output shapes match the static analysis")
    else:
        lines.append(f"output shapes differ from the static analysis: {[_shape(s) for s in expected]} expected "
                     "(a bug in archc: please report it with the spec)")
    finite = [device.type == "meta" or not t.is_floating_point() or bool(t.isfinite().all()) for t in out]
    bad = [i for i, f in enumerate(finite) if not f]
    if bad:
        ok = False
        lines.append(f"output {', '.join(map(str, bad))} holds NaN or infinite values on random inputs")
    return ForwardReport(ok, lines)
