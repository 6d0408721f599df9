"""Stage 7: diagrams (Graphviz DOT/SVG/PNG/PDF, Mermaid) and the HTML report."""

from archc.render.dot import to_dot, to_mermaid
from archc.render.layout import Unit, units

__all__ = ["Unit", "units", "to_dot", "to_mermaid"]
