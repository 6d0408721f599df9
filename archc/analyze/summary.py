"""Per-node tables and totals for `archc summary` and `archc build`, as text or JSON."""

from __future__ import annotations

from fractions import Fraction
from math import prod
from typing import Any, NamedTuple

from archc import blocks as library
from archc.analyze.shapes import RF, Analysis, NodeInfo, _receptive
from archc.blocks.base import Layout, positional

__all__ = ["Row", "rows", "to_json", "to_text", "fmt_count"]


class Row(NamedTuple):  # NamedTuples, not dataclasses: `archc summary` starts faster (no generated methods)
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
    shares: str | None = None  # `share:`: the row(s) whose weights its nodes call (at the same depth), comma-joined


def fmt_count(n: float) -> str:
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3f} {unit}"
    return f"{n:g} "


def rows(analysis: Analysis, depth: int | None = None) -> list[Row]:
    """One row per node, or per group at ``depth`` path components (sums of their nodes)."""
    labels = {g.path: g.label for g in analysis.graph.groups}
    fields = None if analysis.symbolic is not None else receptive_fields(analysis)
    out: dict[str, list[Any]] = {}
    last: dict[str, str] = {}
    evals: set[str] = set()  # rows with a node of the eval-mode forward
    owners: dict[str, dict[str, None]] = {}  # row -> the rows owning the weights its nodes call, in order
    skip = analysis.train_only
    for path, info in analysis.info.items():
        key = ".".join(path.split(".")[:depth]) if depth else path
        owner = info.node.shares
        if owner is not None and (mine := ".".join(owner.split(".")[:depth]) if depth else owner) != key:
            owners.setdefault(key, {})[mine] = None
        block = info.node.op if key == path else labels.get(key, "group")
        if key not in out:
            out[key] = [block, info.shape, 0, 0, 0, 0, None]
        row = out[key]
        row[1] = info.shape
        row[2] += info.params
        row[3] += info.macs
        row[4] += info.other_ops
        row[5] += sum(prod(s) for s in info.outputs) if info.outputs else prod(info.shape)
        rf = fields.get(path) if fields is not None else info.rf
        row[6] = "global" if rf is None else f"{rf.pixels}+" if rf.whole else rf.pixels
        last[key] = path
        if path not in skip:
            evals.add(key)
    return [Row(k, v[0], v[1], v[2], v[3], v[4], v[5], v[6], last[k], k not in evals,
                ", ".join(owners[k]) if k in owners else None) for k, v in out.items()]


# -- receptive fields through layout ops ------------------------------------------------------------------
# The analysis follows receptive fields on (C, H, W) maps only; a flatten to tokens and an unflatten back lost
# them ("global" after a plain flatten/unflatten). Here every tensor that holds one window per element keeps
# its field with its layout: per dim, the input axes it holds, each with its size ("h" and "w" the map's rows
# and columns, "c" anything else), so an unflatten that restores (C, H, W) gives a map again. Where a layout op
# moves positions is its block's `layout` rule; which dims a token op mixes, its `mixes` rule (blocks/README.md).


class Field(NamedTuple):
    rf: RF
    dims: Layout | None  # None: a layout this pass does not follow (channels-last maps the analysis follows, ...)


def _map_layout(shape: tuple[int, ...]) -> Layout:
    return ((("c", shape[0]),), (("h", shape[1]),), (("w", shape[2]),))


def _pointwise(info: NodeInfo, block: Any, fields: list[Field | None]) -> Field | None:
    """A node that keeps each position apart on a non-map layout (tokens): element-wise ops, and the ops whose
    `mixes` rule names only dims that hold no position (linear, layernorm, rms_norm, softmax)."""
    first = fields[0] if fields else None
    elementwise = "elementwise" in block.tags or "pass_through" in block.tags
    if first is not None and elementwise and len(fields) == 1:
        return first
    if first is None or first.dims is None:
        return None
    dims = first.dims
    if elementwise:
        known = [f for f in fields if f is not None]
        if any(f.dims != dims for f in known):
            return None
        return Field(RF(max(f.rf.size for f in known), max(f.rf.jump for f in known),
                        any(f.rf.whole for f in known) or len(known) < len(fields)), dims)
    if block.mixes is None or not dims:
        return None
    mixed = {d % len(dims) for d in block.mixes(info.node.args, len(dims))}
    if any(positional(dims[d]) for d in mixed):
        return None
    if "projects" not in block.tags:
        return first
    # its mixed dims come out as new features: one channel dim each, of the output's size
    return Field(first.rf, tuple((("c", info.shape[d]),) if d in mixed else dims[d] for d in range(len(dims))))


def _field(info: NodeInfo, block: Any, fields: list[Field | None]) -> Field | None:
    out = info.shape
    if block.layout is not None:  # each output element is one input element: its field, whatever the layout
        first = fields[0]
        if first is None:
            return None
        return Field(first.rf, None if first.dims is None else block.layout(info.node.args, first.dims, out))
    if len(out) == 3 and all(f is None or len(s) == 3 and f.dims == _map_layout(s)
                             for f, s in zip(fields, info.in_shapes)):  # maps in, a map out
        rf = _receptive(block, info.node, info.in_shapes, out, [f.rf if f is not None else None for f in fields])
        if rf is not None:
            return Field(rf, _map_layout(out))
    return _pointwise(info, block, fields)


def receptive_fields(analysis: Analysis) -> dict[str, RF | None]:
    """Each node's receptive field (None: global, or not known), followed through layout ops as well."""
    state: dict[str, Field | None] = {name: Field(RF(Fraction(1), Fraction(1)), _map_layout(shape))
                                      if len(shape) == 3 else None for name, shape in analysis.graph.inputs}
    out: dict[str, RF | None] = {}
    blocks = {op: library.get(op) for op in {info.node.op for info in analysis.info.values()}}  # once per op
    for path, info in analysis.info.items():
        f = _field(info, blocks[info.node.op], [state.get(src) for src in info.node.inputs])
        if info.rf is not None:  # the analysis' field stands (its window rules know channels-last maps too)
            f = Field(info.rf, f.dims if f is not None else None)
        for k, shape in enumerate(info.outputs):  # split, chunk: their parts of a map are maps
            state[f"{path}[{k}]"] = Field(f.rf, _map_layout(shape)) if f and f.dims == _map_layout(info.shape) \
                else None
        state[path] = f
        out[path] = f.rf if f is not None else None
    return out


def totals(analysis: Analysis) -> dict[str, Any]:
    params, frozen, macs = analysis.params, analysis.frozen_params, analysis.macs  # each a sum over the nodes
    return {
        "name": analysis.graph.name,
        "params": params,
        "trainable_params": params - frozen,
        "frozen_params": frozen,
        "macs": macs,
        "flops": 2 * macs,
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
                     "activation_elements": r.activations, "train_only": r.train_only, "shares": r.shares}
                    for r in rows(analysis, depth)]
    return doc


def to_text(analysis: Analysis, depth: int | None = None, batch: int = 1, dtype: str = "fp32") -> str:
    from archc.analyze.memory import memory

    table = rows(analysis, depth)
    head = ("path", "block", "output", "params", "MACs", "RF", "activations")
    sym = analysis.symbolic
    body = [(r.path, r.block + (" (train only)" if r.train_only else "") + (f" (shares {r.shares})" * bool(r.shares)),
             f"({', '.join(sym.shapes.get(r.last, ('?',)))})" if sym else "x".join(map(str, r.output_shape)),
             f"{r.params:,}", f"{r.macs:,}", str(r.receptive_field), f"{r.activations:,}") for r in table]
    widths = [max(map(len, column)) for column in zip(head, *body)]  # every cell is a str
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
