"""Stage 5: static analysis: shapes, parameter counts, MACs, from formulas, without torch."""

from archc.analyze.shapes import Analysis, NodeInfo, analyze

__all__ = ["Analysis", "NodeInfo", "analyze"]
