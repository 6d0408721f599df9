"""One walk over the graph: every node's output shape, parameters, MACs and other ops.

Errors are collected per node; a node whose input failed is skipped silently, so the report
lists the independent problems, each at its own spec line. Rules raise ShapeError for user
mistakes; anything else they raise is a bug in archc and propagates as an internal error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import ceil, prod
from typing import Any

from archc import blocks as library
from archc.analyze.inplace import check_inplace
from archc.blocks import rule_memo as node_memo
from archc.errors import ArchcError, LimitError, ShapeError
from archc.ir import Graph, Node
from archc.ir.refs import output_ref
from archc.resolve import Limits

__all__ = ["NodeInfo", "Analysis", "analyze"]

Shape = tuple[int, ...]
Num = Fraction | int  # the concrete walk keeps whole values as ints (Fraction arithmetic costs several times more)


@dataclass(frozen=True)
class RF:
    """Receptive field along one spatial axis: size and jump (stride) in input pixels."""

    size: Num
    jump: Num
    whole: bool = False  # a global branch (a gate, attention over the map) also feeds this node

    @property
    def pixels(self) -> int:
        return ceil(self.size)


@dataclass(frozen=True)
class NodeInfo:
    node: Node
    in_shapes: tuple[Shape, ...]
    shape: Shape
    params: int
    macs: int
    other_ops: int
    rf: RF | None = None  # None: global (every output sees the whole input) or not spatial
    outputs: tuple[Shape, ...] = ()  # every output of a multi-output node (split, chunk); `shape` is the first


@dataclass
class Analysis:
    graph: Graph
    info: dict[str, NodeInfo] = field(default_factory=dict)
    shapes: dict[str, Shape] = field(default_factory=dict)  # every producer (graph inputs too)
    errors: list[ArchcError] = field(default_factory=list)
    symbolic: Any = None  # analyze.symbolic.SymbolicResult when the input has symbolic sizes

    @property
    def params(self) -> int:
        return sum(i.params for i in self.info.values())

    @property
    def frozen_params(self) -> int:
        """Parameters under the spec's `frozen:` paths."""
        frozen = tuple(self.graph.meta.get("frozen", ()))
        return sum(i.params for p, i in self.info.items()
                   if any(p == f or p.startswith(f + ".") for f in frozen))

    @property
    def train_only(self) -> frozenset[str]:
        """Nodes that run in training mode only (read by train-only outputs alone)."""
        return self.graph.train_only()

    def eval_info(self) -> list[NodeInfo]:
        """The nodes of the eval-mode forward: what MACs, other ops and activations count."""
        skip = self.train_only
        return [i for p, i in self.info.items() if p not in skip] if skip else list(self.info.values())

    @property
    def macs(self) -> int:
        """MACs of the eval-mode forward (torchvision's `_ops` convention); parameters count every node."""
        return sum(i.macs for i in self.eval_info())

    @property
    def other_ops(self) -> int:
        return sum(i.other_ops for i in self.eval_info())

    @property
    def activation_elements(self) -> int:
        """Elements of every node output of the eval-mode forward, per sample."""
        return sum(prod(s) for i in self.eval_info() for s in i.outputs or (i.shape,))

    @property
    def output_shapes(self) -> list[Shape]:
        return [self.shapes[o] for o in self.graph.outputs if o in self.shapes]

    @property
    def train_output_shapes(self) -> list[Shape]:
        """Shapes of the outputs returned in training mode only, after ``output_shapes``."""
        return [self.shapes[o] for o in self.graph.train_outputs if o in self.shapes]

    @property
    def receptive_field(self) -> int | None:
        """Receptive field of the last spatial feature map (before global pooling), along the
        convolutional path: gates and global-context branches modulate it (see `sees_whole_input`)."""
        rf = self._last_rf()
        return rf.pixels if rf is not None else None

    @property
    def sees_whole_input(self) -> bool:
        """Whether the last spatial map also depends on the whole input through a global branch."""
        rf = self._last_rf()
        return rf is not None and rf.whole

    def _last_rf(self) -> RF | None:
        spatial = [i.rf for i in self.eval_info() if i.rf is not None and len(i.shape) == 3]
        return spatial[-1] if spatial else None

    def raise_errors(self) -> None:
        if self.errors:
            first = self.errors[0]
            first.others = self.errors[1:]
            raise first


Memo = dict[tuple[Any, ...], tuple[Any, ...]]  # (op, args, input shapes) -> outputs and costs


def node_info(node: Node, ins: tuple[Shape, ...], in_rf: list[RF | None] | None = None) -> NodeInfo:
    """One node's shapes and costs from its input shapes (``in_rf`` None: no receptive field)."""
    block = library.get(node.op)
    outs = block.out_shapes(node.args, ins)
    params, macs = block.count_params(node.args, ins), block.macs(node.args, ins, outs[0])
    other_ops = block.other_ops(node.args, ins, outs[0])
    params = 0 if node.shares else params  # `share:`: the weights are another node's, counted there
    rf = _receptive(block, node, ins, outs[0], in_rf) if in_rf is not None else None
    return NodeInfo(node, ins, outs[0], params, macs, other_ops, rf, outs if block.outputs is not None else ())


def _missing_input(result: Analysis, src: str) -> ShapeError | None:
    """Why an input has no shape: a multi-output node read whole, or an output it does not have;
    None when its producer failed (already reported)."""
    base, k = output_ref(src)
    info = result.info.get(base)
    if info is None and base in dict(result.graph.inputs):  # resolve refuses this; a Graph built by hand
        return ShapeError(f"the input '{base}' has a single output: there is no '{src}'", hint=f"read it as '{base}'")
    if info is None:
        try:
            result.graph.node(base)
        except KeyError:
            raise AssertionError(f"'{src}' names no node or input of the graph") from None
        return None
    n = len(info.outputs) or 1
    if k is None:
        return ShapeError(f"'{base}' has {n} outputs; read one of them", hint=f"name it as '{base}[0]' … "
                          f"'{base}[{n - 1}]' (quoted in a flow list: in: [\"{base}[0]\"])")
    if not info.outputs:
        return ShapeError(f"'{base}' has a single output: there is no '{src}'", hint=f"read it as '{base}'")
    return ShapeError(f"'{base}' has {n} outputs: there is no '{src}'",
                      hint=f"its outputs are '{base}[0]' … '{base}[{n - 1}]'")


def _skip_hint(graph: Graph, node: Node, err: ArchcError) -> ArchcError:
    """A node that combines several inputs, one of them through a skipped (`when:` false) node, and
    fails: say that the skip is why (adding a shortcut that is already written would not help)."""
    skipped = graph.meta.get("skipped", {}).get(node.path, ())
    if len(node.inputs) < 2 or not skipped:
        return err
    k, path, when = skipped[0]
    err.hint = (f"'{path}' is skipped here (its `when:` at {when} is false), so '{node.path}' reads "
                f"'{node.inputs[k]}' in its place: make that `when:` true where the shapes differ (a stride or a "
                "width change)")
    return err


def _receptive(block: library.Block, node: Node, ins: tuple[Shape, ...], out: Shape,
               in_rf: list[RF | None]) -> RF | None:
    """Windows grow the field of their first input; pointwise ops keep the widest of their inputs."""
    if block.window is not None:
        w = block.window(node.args, ins, out)
        src = in_rf[0]
        if w is None or src is None:
            return None
        return RF(src.size + (w.span - 1) * src.jump, src.jump * w.stride, src.whole)
    fields = [r for r in in_rf if r is not None]
    if len(out) != 3 or not fields:
        return None
    # a gate or a global-context branch modulates the spatial path: the field is the path's, and
    # the output also depends on the whole image (`whole`)
    return RF(max(r.size for r in fields), max(r.jump for r in fields),
              any(r.whole for r in fields) or len(fields) < len(in_rf))


def _block_notes(graph: Graph, path: str) -> list[str]:
    """Which block instances a failing node sits in, innermost first."""
    return [f"in block '{g.label}' ({g.path}) used at {g.loc}" for g in reversed(graph.groups)
            if g.kind == "block" and path.startswith(g.path + ".")]


def analyze(graph: Graph, limits: Limits | None = None) -> Analysis:
    """Infer shapes and costs of every node of a graph with concrete input sizes; problems go to
    ``Analysis.errors`` (nothing raised). Symbolic sizes: archc.analyze.symbolic (its walk.py)."""
    limits = limits or Limits()
    result = Analysis(graph)
    result.shapes.update(dict(graph.inputs))
    if _walk(graph, limits, result):  # else a limit stopped the walk: that error alone
        finish(graph, result)
    return result


def finish(graph: Graph, result: Analysis) -> None:
    """After a whole walk (concrete or symbolic): the outputs without a shape, the in-place check, and the
    block instances each error sits in."""
    for out in (*graph.outputs, *graph.train_outputs):
        absent = _missing_input(result, out) if out not in result.shapes else None
        if absent is not None:
            base = output_ref(out)[0]
            result.errors.append(absent.located(graph.node(base).loc, base))
    if not result.errors and any(o not in result.shapes for o in (*graph.outputs, *graph.train_outputs)):
        raise AssertionError("an output has no shape and no error says why")  # never print `ok` for it
    check_inplace(graph, result.errors)
    for err in result.errors:
        if err.node and not err.notes:
            err.notes.extend(_block_notes(graph, err.node))


_UNIT = RF(1, 1)  # a graph input's field
_new = object.__new__
_set = object.__setattr__


def _rf(size: Num, jump: Num, whole: bool) -> RF:
    rf = _new(RF)
    _set(rf, "__dict__", {"size": size, "jump": jump, "whole": whole})
    return rf  # type: ignore[no-any-return]


def _field(window: Any, out: Shape, inputs: tuple[str, ...], fields: dict[str, RF | None]) -> RF | None:
    """``_receptive`` from a memo entry's window (see node_memo.Entry)."""
    if window is node_memo.POINTWISE:
        if len(out) != 3 or not inputs:
            return None
        if len(inputs) == 1:
            return fields[inputs[0]]  # RF(r.size, r.jump, r.whole): the same value
        in_rf = [fields[s] for s in inputs]
        known = [r for r in in_rf if r is not None]
        if not known:
            return None
        return _rf(max(r.size for r in known), max(r.jump for r in known),
                   any(r.whole for r in known) or len(known) < len(in_rf))
    src = fields[inputs[0]] if window is not None else None
    if src is None:
        return None
    span1, stride = window
    return _rf(src.size + span1 * src.jump, src.jump * stride, src.whole)


def _walk(graph: Graph, limits: Limits, result: Analysis) -> bool:
    """The concrete walk: each node's rules come from the node memo (blocks/rule_memo.py) or run once and are kept.
    False when a limit stopped it."""
    shapes, infos, errors = result.shapes, result.info, result.errors
    fields: dict[str, RF | None] = {name: _UNIT for name, _ in graph.inputs}
    memo, blocks = node_memo.table(), dict[str, library.Block]()
    total = hits = misses = 0
    max_params, max_activation, pointwise = limits.max_params, limits.max_activation, node_memo.POINTWISE
    rank: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        path, inputs = node.path, node.inputs
        try:
            ins = (shapes[inputs[0]],) if len(inputs) == 1 else tuple([shapes[s] for s in inputs])
        except KeyError:
            rank = rank or {n.path: k for k, n in enumerate(graph.nodes)}
            _report_missing(result, node, lambda base, i=i, rank=rank: base in shapes or rank.get(base, i + 1) <= i)
            continue
        try:
            block = blocks.get(node.op) or blocks.setdefault(node.op, library.get(node.op))
        except ArchcError as e:
            errors.append(_skip_hint(graph, node, e.located(node.loc, path)))
            continue
        key = (node.op, repr(node.args), ins)
        entry = memo.get(key) if memo is not None else None
        if entry is not None and entry[0] is block:
            hits += 1
        else:
            misses += 1
            entry = node_memo.compute(block, node.args, ins)
            if memo is not None:
                node_memo.store(key, entry)
        _, outs, params, macs, other, window, elements, empty, multi, error = entry
        if error is not None:
            errors.append(_skip_hint(graph, node, error.copy().located(node.loc, path)))
            continue
        params = 0 if node.shares else params  # `share:`: the weights are another node's, counted there
        total += params
        if total > max_params or elements > max_activation:
            errors.append(_limit(node, total, outs[0], elements, limits))
            return False
        if empty:
            errors.append(ShapeError(f"output shape {outs[0]} is empty", node.loc, node=path,
                                     hint="the input is too small for this many downsamplings"))
            continue
        out = outs[0]
        if window is pointwise and len(inputs) == 1:  # the common case of _field, inline
            rf = fields[inputs[0]] if len(out) == 3 else None
        else:
            rf = _field(window, out, inputs, fields)
        info = _new(NodeInfo)  # NodeInfo(...) without the frozen dataclass's field-by-field __init__
        _set(info, "__dict__", {"node": node, "in_shapes": ins, "shape": out, "params": params, "macs": macs,
                                "other_ops": other, "rf": rf, "outputs": outs if multi else ()})
        infos[path] = info
        if multi:
            for k, shape in enumerate(outs):
                shapes[f"{path}[{k}]"] = shape
                fields[f"{path}[{k}]"] = rf
        else:
            shapes[path] = out
        fields[path] = rf
    node_memo.STATS["hit"] += hits
    node_memo.STATS["miss"] += misses
    return True


def _limit(node: Node, total: Any, shape: Shape, elements: Any, limits: Limits) -> LimitError:
    """The limit a node breaks: parameters first (a walk stops there)."""
    if total > limits.max_params:
        return LimitError(f"the model reaches {total:,} parameters here, over the limit of {limits.max_params:,}",
                          node.loc, node=node.path, hint="raise it with --max-params if this is intended")
    return LimitError(f"output {shape} has {elements:,} elements per sample, over the limit of "
                      f"{limits.max_activation:,}", node.loc, node=node.path,
                      hint="raise the limit with --max-activation (Limits.max_activation) if this is intended")


def _report_missing(result: Analysis, node: Node, walked: Any) -> None:
    """A node with an input that has no shape: an input failed (already reported), or it names an output
    that does not exist. ``walked(base)``: whether that producer's turn has come."""
    missing = [src for src in node.inputs if src not in result.shapes]
    early = [src for src in missing if not walked(output_ref(src)[0])]
    if early:  # a bug in the execution order, never a spec's fault: say so rather than skip silently
        raise AssertionError(f"'{node.path}' reads {early} before they are analysed")
    result.errors.extend(e.located(node.loc, node.path) for e in
                         filter(None, (_missing_input(result, src) for src in missing)))


