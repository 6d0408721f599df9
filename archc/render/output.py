"""Turn an analysis into diagram bytes in the format asked for."""

from __future__ import annotations

from archc.analyze import Analysis
from archc.errors import UsageError
from archc.render.defs import definitions as block_definitions
from archc.render.diffview import diff_layout
from archc.render.dot import title_of, to_dot, to_mermaid
from archc.render.layout import units

__all__ = ["FORMATS", "render", "render_diff"]

FORMATS = ("svg", "png", "pdf", "dot", "mermaid")


def render(analysis: Analysis, fmt: str, depth: int | None = None, expand: bool = False,
           rankdir: str = "TB", definitions: bool = True) -> bytes:
    """Diagram of a (possibly failing) analysis; failing nodes are highlighted with their message.
    ``definitions``: each block folded in the view is drawn once beside it (not with ``expand``)."""
    errors = {e.node: e.message for e in analysis.errors if e.node}
    layout = units(analysis, depth, expand, errors)
    title = title_of(analysis.graph.name, analysis.params, analysis.macs)
    defs = block_definitions(analysis, layout, errors) if definitions and not expand else []
    if fmt == "mermaid":
        return to_mermaid(layout, title, defs).encode()
    return _finish(to_dot(layout, title, rankdir, defs), fmt)


def render_diff(a: Analysis, b: Analysis, fmt: str, labels: tuple[str, str], depth: int | None = None,
                expand: bool = False, rankdir: str = "TB") -> bytes:
    """The union of A and B in the folded view, units coloured added / removed / changed."""
    layout, notes = diff_layout(a, b, depth, expand)
    title = f"A: {labels[0]}  ->  B: {labels[1]}"
    return _finish(to_dot(layout, title, rankdir, diff=True, notes=notes), fmt)


def _finish(source: str, fmt: str) -> bytes:
    return source.encode() if fmt == "dot" else _run_dot(source, fmt)


def _run_dot(source: str, fmt: str, timeout: float = 120) -> bytes:
    """Run Graphviz's dot ourselves: the graphviz package's pipe() has no timeout, and dot can hang."""
    import shutil
    import subprocess

    exe = shutil.which("dot")
    if exe is None:
        raise UsageError("Graphviz's `dot` is not installed", hint="apt-get install graphviz (tools/setup.sh)")
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=source.encode(), capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UsageError(f"dot took longer than {timeout:g} s", hint="render fewer levels (--depth)") from None
    if proc.returncode != 0:
        raise UsageError(f"dot failed: {proc.stderr.decode(errors='replace')[:300]}")
    return proc.stdout
