"""Turn an analysis into diagram bytes in the format asked for."""

from __future__ import annotations

from archc.analyze import Analysis
from archc.errors import UsageError
from archc.render.dot import title_of, to_dot, to_mermaid
from archc.render.layout import units

__all__ = ["FORMATS", "render"]

FORMATS = ("svg", "png", "pdf", "dot", "mermaid")


def render(analysis: Analysis, fmt: str, depth: int | None = None, expand: bool = False,
           rankdir: str = "TB") -> bytes:
    """Diagram of a (possibly failing) analysis; failing nodes are highlighted with their message."""
    errors = {e.node: e.message for e in analysis.errors if e.node}
    layout = units(analysis, depth, expand, errors)
    title = title_of(analysis.graph.name, analysis.params, analysis.macs)
    if fmt == "mermaid":
        return to_mermaid(layout, title).encode()
    source = to_dot(layout, title, rankdir)
    if fmt == "dot":
        return source.encode()
    return _run_dot(source, fmt)


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
