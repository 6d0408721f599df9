"""The Python API: ``archc.check`` (no torch) and ``archc.compile`` (torch)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archc.analyze import Analysis, analyze
from archc.errors import ArchcError
from archc.resolve import Limits, build, find_spec
from archc.resolve.spec import SpecSource, load_spec

if TYPE_CHECKING:
    import torch

__all__ = ["MissingExtraError", "analyse", "analyse_graph", "analyse_source", "check", "compile", "from_module",
           "missing_extra"]

# The optional modules, by the extra (pyproject's optional-dependencies) that installs them.
EXTRA_OF_MODULE = {"torch": "torch", "torchvision": "torch", "safetensors": "torch",
                   "tqdm": "train", "matplotlib": "train", "sklearn": "train", "pycocotools": "train",
                   "onnx": "export", "onnxruntime": "export", "onnxscript": "export",
                   "torchinfo": "bench", "fvcore": "bench", "torchview": "bench"}


class MissingExtraError(ImportError):
    """A feature needs an optional dependency that is not installed; the message names the extra."""

    def __init__(self, what: str, module: str, extra: str) -> None:
        super().__init__(f"{what} needs {module}, which is not installed: pip install 'archc[{extra}]'",
                         name=module)
        self.what, self.module, self.extra = what, module, extra


def missing_extra(err: ImportError, what: str, extra: str | None = None) -> MissingExtraError | None:
    """The extra to install for a failed import of an optional module (None: not one of them).

    ``extra`` is the one the feature needs (``archc[train]`` for training); it is named when it
    brings the missing module (every extra brings torch), else the module's own extra is."""
    module = (err.name or "").partition(".")[0]
    own = EXTRA_OF_MODULE.get(module)
    if own is None:
        return None
    return MissingExtraError(what, module, extra if extra is not None and own in (extra, "torch") else own)


SPEC_TEXT = "<string>"  # how a spec given as text is named in errors


def analyse(spec: str | Path, params: Mapping[str, Any] | None = None, input_shape: Any = None,
            limits: Limits | None = None) -> Analysis:
    """Resolve and analyse; resolution errors raise, shape errors stay in ``Analysis.errors``. ``spec`` is a
    path, a built-in name, or the spec's text itself (a string with a line break; errors say <string>:line:col,
    and `extends:`/`imports:` resolve from the working directory and the built-ins)."""
    with collector_paused():
        if isinstance(spec, str) and "\n" in spec:
            return analyse_source(load_spec(Path(SPEC_TEXT), spec), params, input_shape, limits)
        return analyse_source(load_spec(find_spec(spec)), params, input_shape, limits)


# The cyclic garbage collector during an analysis: it makes tens of thousands of short-lived containers that
# reference counting frees, and keeps a few thousand (the graph, the memo tables), so the collector's young
# generations run often and find nothing, and now and then a full collection walks every object of the
# process (0.2-0.3 s once the memo tables hold the zoo: a third of a warm pass over the zoo). Like mypy, the
# analysis runs with the collector paused: bounded work (Limits), no cycles of its own to collect, and the
# collector back as it was on the way out, even on an error. Nested and concurrent analyses pause it once.
_PAUSE = threading.Lock()
_paused = 0  # analyses running with the collector paused
_resume = False  # whether the first of them found it enabled


@contextmanager
def collector_paused() -> Iterator[None]:
    global _paused, _resume
    with _PAUSE:
        if _paused == 0:
            _resume = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _PAUSE:
            _paused -= 1
            if _paused == 0 and _resume:
                _age()
                gc.enable()


AGED_MAX = 1024  # analyses aged between two full collections made here (a backstop; see _age)
_aged = 0


def _age() -> None:
    """Move every object the young generations hold to the oldest, in constant time (freeze, then unfreeze,
    like mypy): what an analysis leaves (its graph, the memo tables' new entries) is long-lived, and the
    young collections that would follow, walking it all, would find nothing (a third of a warm pass over
    the zoo). The objects stay collectable: the next full collection walks them. As aged objects never
    start a full collection themselves, every AGED_MAX-th analysis runs one instead, so that the few cycles
    an analysis leaves (a few dozen objects) cannot pile up in a process that does nothing else."""
    global _aged
    _aged += 1
    if _aged >= AGED_MAX:
        collect()
        return
    gc.freeze()
    gc.unfreeze()


def collect() -> None:
    """A full collection, which frees the cycles aged analyses left (the next backstop counts from here)."""
    global _aged
    _aged = 0
    gc.collect()


def analyse_source(source: SpecSource, params: Mapping[str, Any] | None = None, input_shape: Any = None,
                   limits: Limits | None = None) -> Analysis:
    """``analyse`` of a loaded spec (``load_spec``: a file, or a text standing for one, as `archc check -`
    reads from stdin); every error carries its extends/imports chain."""
    limits = limits or Limits()
    try:
        graph = build(source, params, input_shape, limits)
    except ArchcError as e:
        source.add_chains((e, *e.others))
        raise
    analysis = analyse_graph(graph, limits)
    source.add_chains(analysis.errors)
    return analysis


def analyse_graph(graph: Any, limits: Limits | None = None) -> Analysis:
    """Analyse a resolved graph; symbolic input sizes are swept (see ``_symbolic``)."""
    limits = limits or Limits()
    return _symbolic(graph, limits) if graph.meta.get("symbols") else analyze(graph, limits)


def _symbolic(graph: Any, limits: Limits) -> Analysis:
    """Solve the symbolic sizes (archc.analyze.symbolic.analyse, its one entry): the analysis at the hint
    sizes, with the formulas and constraints in ``Analysis.symbolic``."""
    from archc.analyze.symbolic import analyse as symbolic_analyse

    return symbolic_analyse(graph, limits)


def check(spec: str | Path, params: Mapping[str, Any] | None = None, input_shape: Any = None,
          limits: Limits | None = None, **kwargs: Any) -> Analysis:
    """Resolve and statically analyse a spec; raise the (first, with ``.others``) spec errors.
    Params as a dict or as keywords, like ``compile``: ``check("resnet50", num_classes=10)``."""
    analysis = analyse(spec, {**(params or {}), **kwargs}, input_shape, limits)
    analysis.raise_errors()
    return analysis


def compile(spec: str | Path, *, device: str | torch.device | None = None, input_shape: Any = None,
            limits: Limits | None = None, weights: str | Path | None = None,
            **params: Any) -> torch.fx.GraphModule:  # noqa: A001
    """Compile a spec (path, built-in name or spec text) into a torch module; keyword arguments set `params`.
    ``weights``: ``"torchvision"`` (the twin's default pretrained weights), ``"torchvision:IMAGENET1K_V2"``,
    a weights file or a run directory of `archc train`, loaded strictly.

    >>> model = archc.compile("resnet50", num_classes=10)
    >>> pretrained = archc.compile("resnet50", weights="torchvision:IMAGENET1K_V2")
    """
    try:
        from archc.backend import build_module
    except ImportError as e:
        missing = missing_extra(e, "archc.compile", "torch")
        if missing is None:
            raise
        raise missing from e
    analysis = check(spec, params, input_shape, limits)
    module = build_module(analysis.graph, analysis, device)
    if weights is not None:
        from archc.backend.weights import is_torchvision, load_any, run_weights

        load_any(module, weights if is_torchvision(weights) else run_weights(weights)[0])
    return module


def from_module(module: Any, example_input: Any) -> str:
    """The archc spec text of a PyTorch module (``archc import``): exact, with repeated structure folded.
    ``example_input``: a batched tensor or the per-sample shape. Unmapped modules raise a UsageError."""
    from archc.importer import from_module as _from_module

    return _from_module(module, example_input)
