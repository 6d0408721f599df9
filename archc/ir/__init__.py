"""Stage 4: the graph IR: frozen dataclasses, with networkx for graph algorithms."""

from archc.ir.graph import Graph, Group, Node

__all__ = ["Graph", "Group", "Node"]
