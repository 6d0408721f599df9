"""One walk over the graph: every node's output shape, parameters, MACs and other ops.

Errors are collected per node; a node whose input failed is skipped silently, so the report
lists the independent problems, each at its own spec line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import ceil, prod
from typing import Any

from archc import blocks as library
from archc.errors import ArchcError, LimitError, ShapeError, SpecError
from archc.ir import Graph, Node
from archc.resolve import Limits

__all__ = ["NodeInfo", "Analysis", "analyze"]

Shape = tuple[int, ...]


@dataclass(frozen=True)
class RF:
    """Receptive field along one spatial axis: size and jump (stride) in input pixels."""

    size: Fraction
    jump: Fraction

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
    def macs(self) -> int:
        return sum(i.macs for i in self.info.values())

    @property
    def output_shapes(self) -> list[Shape]:
        return [self.shapes[o] for o in self.graph.outputs if o in self.shapes]

    @property
    def receptive_field(self) -> int | None:
        """Receptive field of the last spatial feature map (before global pooling)."""
        spatial = [i.rf for i in self.info.values() if i.rf is not None and len(i.shape) == 3]
        return spatial[-1].pixels if spatial else None

    def raise_errors(self) -> None:
        if self.errors:
            first = self.errors[0]
            first.others = self.errors[1:]
            raise first


def _node_info(node: Node, ins: tuple[Shape, ...], in_rf: list[RF | None]) -> NodeInfo:
    block = library.get(node.op)
    out = block.shape(node.args, ins)
    return NodeInfo(node, ins, out, block.count_params(node.args, ins), block.macs(node.args, ins, out),
                    block.other_ops(node.args, ins, out), _receptive(block, node, ins, out, in_rf))


def _receptive(block: library.Block, node: Node, ins: tuple[Shape, ...], out: Shape,
               in_rf: list[RF | None]) -> RF | None:
    """Windows grow the field of their first input; pointwise ops keep the widest of their inputs."""
    if block.window is not None:
        w = block.window(node.args, ins, out)
        src = in_rf[0]
        if w is None or src is None:
            return None
        return RF(src.size + (w.span - 1) * src.jump, src.jump * w.stride)
    if len(out) != 3 or any(r is None for r in in_rf):
        return None
    fields = [r for r in in_rf if r is not None]
    return RF(max(r.size for r in fields), max(r.jump for r in fields))


def _block_notes(graph: Graph, path: str) -> list[str]:
    """Which block instances a failing node sits in, innermost first."""
    return [f"in block '{g.label}' ({g.path}) used at {g.loc}" for g in reversed(graph.groups)
            if g.kind == "block" and path.startswith(g.path + ".")]


def _check_inplace(graph: Graph, errors: list[ArchcError]) -> None:
    """An in-place op must be the only reader of its input, or it corrupts the other readers."""
    readers = graph.consumers()
    inputs = {n for n, _ in graph.inputs}
    for node in graph.nodes:
        if node.args.get("inplace") and node.inputs:
            src = node.inputs[0]
            if src in inputs or len(readers.get(src, [])) > 1 or src in graph.outputs:
                others = [r for r in readers.get(src, []) if r != node.path]
                errors.append(SpecError(f"inplace=true would overwrite '{src}', which is also read by "
                                        f"{', '.join(others) or 'the caller'}", node.loc, node=node.path,
                                        hint="set inplace: false here"))


def analyze(graph: Graph, limits: Limits | None = None) -> Analysis:
    """Infer shapes and costs of every node; problems go to ``Analysis.errors`` (nothing raised)."""
    limits = limits or Limits()
    result = Analysis(graph)
    result.shapes.update(dict(graph.inputs))
    fields: dict[str, RF | None] = {name: RF(Fraction(1), Fraction(1)) for name, _ in graph.inputs}
    total = 0
    for node in graph.nodes:
        if any(src not in result.shapes for src in node.inputs):
            continue  # an input already failed and was reported
        ins = tuple(result.shapes[s] for s in node.inputs)
        try:
            info = _node_info(node, ins, [fields[s] for s in node.inputs])
        except ArchcError as e:
            result.errors.append(e.located(node.loc, node.path))
            continue
        except (ValueError, TypeError, ZeroDivisionError, OverflowError) as e:
            result.errors.append(ShapeError(f"{node.op}: {e}", node.loc, node=node.path))
            continue
        total += info.params
        if total > limits.max_params:
            result.errors.append(LimitError(f"the model reaches {total:,} parameters here, over the limit of "
                                            f"{limits.max_params:,}", node.loc, node=node.path,
                                            hint="raise it with --max-params if this is intended"))
            return result
        if prod(info.shape) > limits.max_activation:
            result.errors.append(LimitError(f"output {info.shape} has {prod(info.shape):,} elements per sample, "
                                            f"over the limit of {limits.max_activation:,}", node.loc,
                                            node=node.path))
            return result
        if min(info.shape, default=1) < 1:
            result.errors.append(ShapeError(f"output shape {info.shape} is empty", node.loc, node=node.path,
                                            hint="the input is too small for this many downsamplings"))
            continue
        result.info[node.path] = info
        result.shapes[node.path] = info.shape
        fields[node.path] = info.rf
    _check_inplace(graph, result.errors)
    for err in result.errors:
        if err.node and not err.notes:
            err.notes.extend(_block_notes(graph, err.node))
    return result
