"""The result of the symbolic analysis (`SymbolicResult`: formulas, the valid sizes, the paths), and
the analysis at concrete sizes read from it (`at_sizes`)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from archc import blocks as library
from archc.analyze.shapes import RF, Analysis, NodeInfo
from archc.analyze.shapes import _receptive as receptive  # same package: one receptive-field rule
from archc.analyze.symbolic.paths import _Path
from archc.analyze.symbolic.runs import AxisSet
from archc.ir import Graph
from archc.ir.algebra import Guard, value_at

__all__ = ["SymbolicResult", "Lazy", "at_sizes"]

_MAX_REGIONS = 6  # regions printed (each a set of sizes per axis)

@dataclass
class SymbolicResult:
    symbols: dict[int, str]  # input axis -> symbol
    hint: dict[str, int]  # the sizes that answered the guards (and where concrete figures are taken)
    shapes: Mapping[str, tuple[str, ...]]  # node (and NAME[k] output) -> output shape as expressions
    constraint: str  # where the formulas hold
    breaks: str  # what fails just below the smallest valid size
    figures: Mapping[str, Any] = field(default_factory=dict)  # params, macs, ... as Expr or int
    guards: list[Guard] = field(default_factory=list)  # the formulas' guards at the hint
    axes: dict[str, AxisSet] = field(default_factory=dict)  # the formulas' sizes per axis (their first region)
    method: str = "algebra"  # "sweep" (see `note`), or "none" when no hint size works
    note: str = ""
    sampled: tuple[int, ...] = ()  # the sweep's valid sizes (method "sweep"), the hint sizes tried ("none")
    analysis: Analysis | None = None  # the analysis on symbolic sizes (method "algebra")
    paths: list[tuple[str, _Path]] = field(default_factory=list)  # ("formulas" | "other" | "invalid", path)
    complete: bool = True  # every size is covered by a path (else `status` may say "unknown")
    steps: int = 0  # symbolic work counted

    def status(self, sizes: dict[str, int]) -> str:
        """"formulas" (they hold here), "other" (valid, with other formulas), "invalid", or "unknown"."""
        if self.method == "none":  # the hint sizes tried fail; nothing is known of the others
            one = len(set(sizes.values())) == 1 and next(iter(sizes.values()))
            return "invalid" if one in self.sampled else "unknown"
        if self.method == "sweep":
            one = len(set(sizes.values())) == 1 and next(iter(sizes.values()))
            return "formulas" if one in self.sampled else "unknown"
        memo: dict[str, int] = {}
        return next((kind for kind, p in self.paths if p.holds(sizes, memo)), "unknown")

    def valid(self, sizes: dict[str, int]) -> bool:
        """Whether the formulas hold at these sizes."""
        return self.status(sizes) == "formulas"

    def accepts(self, sizes: dict[str, int]) -> bool | None:
        """Whether these sizes are valid (with these formulas or others); None: not known."""
        kind = self.status(sizes)
        return None if kind == "unknown" else kind != "invalid"

    def formula(self, name: str) -> str:
        v = self.figures.get(name)
        return "?" if v is None else str(v)

    def at(self, name: str, sizes: dict[str, int]) -> int:
        v = self.figures[name]
        return int(value_at(v, sizes))



class Lazy(Mapping[str, Any]):
    """A mapping whose values are made on first read: `archc check` prints a few of the symbolic shapes and
    one formula, and the memory formulas (a walk of the graph on symbolic sizes) only `archc summary` reads."""

    def __init__(self, make: Callable[[str], Any], keys: Collection[str]) -> None:
        self._make, self._keys = make, keys
        self._made: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._made:
            if key not in self._keys:
                raise KeyError(key)
            self._made[key] = self._make(key)
        return self._made[key]

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return repr(dict(self))


def _regions_text(regions: list[tuple[dict[str, AxisSet], tuple[str, ...]]]) -> str:
    if not regions:
        return "no size works"
    texts = [", ".join([axes[s].text(s) for s in axes] + list(joint)) for axes, joint in regions[:_MAX_REGIONS]]
    more = [f"… ({len(regions)} regions in all)"] if len(regions) > _MAX_REGIONS else []
    return texts[0] if len(texts) == 1 else " or ".join([f"({t})" for t in texts] + more)


def at_sizes(result: SymbolicResult, graph: Graph, sizes: dict[str, int]) -> Analysis:
    """The symbolic analysis evaluated at ``sizes`` (where ``result.valid``): what a concrete
    analysis there gives, receptive fields included, without a second pass over the rules."""
    assert result.analysis is not None
    memo: dict[str, int] = {}

    def at(x: Any) -> Any:
        return value_at(x, sizes, memo)

    def dims(shape: tuple[Any, ...]) -> tuple[int, ...]:
        return tuple(at(d) for d in shape)

    out = Analysis(graph, errors=list(result.analysis.errors))
    out.shapes = {k: dims(v) for k, v in result.analysis.shapes.items()}
    fields: dict[str, RF | None] = {name: RF(Fraction(1), Fraction(1)) for name, _ in graph.inputs}
    for path, info in result.analysis.info.items():
        node, ins, outs = info.node, tuple(dims(s) for s in info.in_shapes), tuple(dims(s) for s in info.outputs)
        rf = receptive(library.get(node.op), node, ins, dims(info.shape), [fields[s] for s in node.inputs])
        out.info[path] = NodeInfo(node, ins, dims(info.shape), at(info.params), at(info.macs), at(info.other_ops),
                                  rf, outs)
        fields.update({path: rf, **{f"{path}[{k}]": rf for k in range(len(outs))}})
    return out

