"""Per-node tables and totals for `archc summary` and `archc build`, as text or JSON."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any

from archc.analyze.shapes import Analysis

__all__ = ["Row", "rows", "to_json", "to_text", "fmt_count"]


@dataclass(frozen=True)
class Row:
    path: str
    block: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    other_ops: int
    activations: int
    receptive_field: int | str | None  # pixels, "global", or None for non-spatial rows
    last: str = ""  # the node whose output is the row's output
    train_only: bool = False  # every node of the row runs in training mode only (its costs are not in the totals)


def fmt_count(n: float) -> str:
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3f} {unit}"
    return f"{n:g} "


def rows(analysis: Analysis, depth: int | None = None) -> list[Row]:
    """One row per node, or per group at ``depth`` path components (sums of their nodes)."""
    labels = {g.path: g.label for g in analysis.graph.groups}
    out: dict[str, list[Any]] = {}
    last: dict[str, str] = {}
    evals: set[str] = set()  # rows with a node of the eval-mode forward
    for path, info in analysis.info.items():
        parts = path.split(".")
        key = ".".join(parts[:depth]) if depth else path
        block = info.node.op if key == path else labels.get(key, "group")
        if key not in out:
            out[key] = [block, info.shape, 0, 0, 0, 0, None]
        row = out[key]
        row[1] = info.shape
        row[2] += info.params
        row[3] += info.macs
        row[4] += info.other_ops
        row[5] += sum(prod(s) for s in info.outputs or (info.shape,))
        row[6] = "global" if info.rf is None else f"{info.rf.pixels}+" if info.rf.whole else info.rf.pixels
        last[key] = path
        if path not in analysis.train_only:
            evals.add(key)
    return [Row(k, v[0], v[1], v[2], v[3], v[4], v[5], v[6], last[k], k not in evals) for k, v in out.items()]


def totals(analysis: Analysis) -> dict[str, Any]:
    params = analysis.params
    return {
        "name": analysis.graph.name,
        "params": params,
        "trainable_params": params - analysis.frozen_params,
        "frozen_params": analysis.frozen_params,
        "macs": analysis.macs,
        "flops": 2 * analysis.macs,
        "other_ops": analysis.other_ops,
        "input_shape": [list(s) for _, s in analysis.graph.inputs][0] if len(analysis.graph.inputs) == 1
        else {n: list(s) for n, s in analysis.graph.inputs},
        "output_shape": [list(s) for s in analysis.output_shapes][0] if len(analysis.output_shapes) == 1
        else [list(s) for s in analysis.output_shapes],
        "train_output_shape": [list(s) for s in analysis.train_output_shapes],
        "param_bytes_fp32": 4 * params,
        "activation_elements": analysis.activation_elements,
        "receptive_field": analysis.receptive_field,
        "sees_whole_input": analysis.sees_whole_input,
    }


# figures given as formulas in the input's symbols (`--input 3xHxW`), with their labels
_FORMULAS = {"params": "parameters", "macs": "MACs", "activation_elements": "activations (elements)",
             "training_activation_bytes": "training activations (bytes, fp32, batch 1)",
             "inference_peak_activation_bytes": "inference peak activations (bytes, fp32, batch 1)"}


def to_json(analysis: Analysis, depth: int | None = None, batch: int = 1, dtype: str = "fp32") -> dict[str, Any]:
    from archc.analyze.memory import memory

    doc = totals(analysis)
    doc["memory"] = memory(analysis, batch, dtype)
    sym = analysis.symbolic
    if sym is not None:
        doc["symbolic"] = {"constraint": sym.constraint, "breaks": sym.breaks, "method": sym.method,
                           "note": sym.note, "figures_at": sym.hint,
                           "output_shape": [list(sym.shapes.get(o, ())) for o in analysis.graph.outputs],
                           **{k: sym.formula(k) for k in _FORMULAS if k in sym.figures}}
    doc["nodes"] = [{"path": r.path, "block": r.block,
                     "output_shape": list(sym.shapes.get(r.last, ())) if sym else list(r.output_shape),
                     "params": r.params,
                     "macs": r.macs, "other_ops": r.other_ops, "receptive_field": r.receptive_field,
                     "activation_elements": r.activations, "train_only": r.train_only}
                    for r in rows(analysis, depth)]
    return doc


def to_text(analysis: Analysis, depth: int | None = None, batch: int = 1, dtype: str = "fp32") -> str:
    from archc.analyze.memory import memory

    table = rows(analysis, depth)
    head = ("path", "block", "output", "params", "MACs", "RF", "activations")
    sym = analysis.symbolic
    body = [(r.path, r.block + (" (train only)" if r.train_only else ""),
             f"({', '.join(sym.shapes.get(r.last, ('?',)))})" if sym else "x".join(map(str, r.output_shape)),
             f"{r.params:,}", f"{r.macs:,}", str(r.receptive_field), f"{r.activations:,}") for r in table]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
    t = totals(analysis)
    out = [line.format(*head), "-" * (sum(widths) + 2 * len(widths)), *(line.format(*b) for b in body), ""]
    frozen = f", {t['frozen_params']:,} of them frozen" if t["frozen_params"] else ""
    out.append(f"{t['name']}: {t['params']:,} parameters{frozen} ({fmt_count(t['param_bytes_fp32'])}B fp32), "
               f"{fmt_count(t['macs'])}MACs ({fmt_count(t['flops'])}FLOPs), "
               f"input {t['input_shape']} -> output {t['output_shape']}, "
               + (f"receptive field {t['receptive_field']} px" if t["receptive_field"] is not None
                  else "no spatial receptive field")
               + (" (convolutional path; gates or global context also see the whole input)"
                  if analysis.sees_whole_input else ""))
    if analysis.graph.train_outputs:
        extra = sum(analysis.info[p].macs for p in analysis.train_only if p in analysis.info)
        out.append(f"in training mode it also returns {', '.join(analysis.graph.train_outputs)} "
                   f"{', '.join(map(str, t['train_output_shape']))} ({fmt_count(extra)}MACs more; the figures above "
                   "are the eval-mode forward's, parameters count every node)")
    if sym is not None:
        out.append(f"valid inputs: {sym.constraint}" + (f"; smallest input breaks {sym.breaks}" if sym.breaks else "")
                   + (f"; {sym.note}" if sym.note else "") + f" (figures above at {analysis.graph.inputs[0][1]})")
        out.extend(f"{label} = {sym.formula(k)}" for k, label in _FORMULAS.items() if k in sym.figures)
    m = memory(analysis, batch, dtype)
    out.append(f"memory ({dtype}, batch {batch}): parameters {fmt_count(m['param_bytes'])}B, inference peak "
               f"activations {fmt_count(m['inference_peak_activation_bytes'])}B, training activations "
               f"{fmt_count(m['training_activation_bytes'])}B")
    return "\n".join(out)
