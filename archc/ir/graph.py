"""The resolved graph: every node a library block with concrete arguments, inputs by path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archc.errors import Loc
from archc.ir.refs import output_ref

__all__ = ["Node", "Group", "Graph"]


@dataclass(frozen=True)
class Node:
    """One primitive op. ``path`` is also its module path in the compiled model (``layer1.0.conv1``)."""

    path: str
    op: str
    args: Mapping[str, Any]
    inputs: tuple[str, ...]
    loc: Loc | None = None
    shares: str | None = None  # `share:`: the path of the node whose module (weights) this one calls


@dataclass(frozen=True)
class Group:
    """A named level of the hierarchy (block instance, repeat, seq) for summaries and diagrams."""

    path: str
    label: str
    loc: Loc | None = None
    kind: str = "group"  # block | repeat | seq | group


@dataclass(frozen=True)
class Graph:
    """A whole model: graph inputs with shapes, nodes in execution order, outputs.

    ``outputs`` are what the model returns in eval mode; ``train_outputs`` are returned after them in
    training mode only (Inception-v3's auxiliary logits), and the nodes only they read run only then."""

    name: str
    inputs: tuple[tuple[str, tuple[int, ...]], ...]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    groups: tuple[Group, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    file: str = ""
    train_outputs: tuple[str, ...] = ()

    def node(self, path: str) -> Node:
        return self._index()[path]

    def _index(self) -> dict[str, Node]:
        idx = self.__dict__.get("_idx")
        if idx is None:
            idx = {n.path: n for n in self.nodes}
            object.__setattr__(self, "_idx", idx)
        return idx

    def twin(self) -> tuple[str, dict[str, Any]] | None:
        """The torchvision builder this spec reproduces, with its keyword arguments: `reference:` as
        exactly ``torchvision.models.NAME`` or a mapping's ``torchvision:`` key. Any other reference
        (a paper, a URL, timm, a submodule such as torchvision.models.quantization.x) has no twin."""
        ref = self.meta.get("reference")
        kwargs = dict(ref.get("args", {})) if isinstance(ref, Mapping) else {}
        name = ref.get("torchvision") if isinstance(ref, Mapping) else ref
        prefix = "torchvision.models."
        builder = name[len(prefix):] if isinstance(name, str) and name.startswith(prefix) else ""
        if not (builder.isascii() and builder.isidentifier()):
            return None
        return builder, kwargs

    def train_only(self) -> frozenset[str]:
        """Node paths that only ``train_outputs`` read: they run in training mode only."""
        cached = self.__dict__.get("_train_only")
        if cached is None:
            cached = frozenset(self.ancestors(self.train_outputs) - self.ancestors(self.outputs)) \
                if self.train_outputs else frozenset()
            object.__setattr__(self, "_train_only", cached)
        return cached  # type: ignore[no-any-return]

    def ancestors(self, outputs: tuple[str, ...]) -> set[str]:
        """The node paths (and graph inputs) whose values reach ``outputs`` (`NAME[K]` read as NAME)."""
        index = self._index()
        seen: set[str] = set()
        stack = [output_ref(o)[0] for o in outputs]
        while stack:
            p = stack.pop()
            if p not in seen:
                seen.add(p)
                node = index.get(p)
                if node is not None:
                    stack.extend(output_ref(s)[0] for s in node.inputs)
        return seen

    def consumers(self) -> dict[str, list[str]]:
        """For each producer path (node or graph input), the nodes that read it."""
        out: dict[str, list[str]] = {}
        for n in self.nodes:
            for src in n.inputs:
                out.setdefault(src, []).append(n.path)
        return out

    def text(self) -> str:
        """A deterministic one-line-per-node listing (golden tests, diffs)."""
        lines = [f"graph {self.name}({', '.join(f'{n}: {list(s)}' for n, s in self.inputs)})"]
        for n in self.nodes:
            args = ", ".join(f"{k}={v!r}" for k, v in n.args.items())
            shared = f"  # weights of {n.shares}" if n.shares else ""
            lines.append(f"  {n.path} = {n.op}({', '.join(n.inputs)}{', ' if args else ''}{args}){shared}")
        lines.append(f"  return {', '.join(self.outputs)}")
        if self.train_outputs:
            lines.append(f"  in training, also return {', '.join(self.train_outputs)}")
        return "\n".join(lines)
