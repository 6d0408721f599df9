"""Stage 6: graph IR -> torch.fx GraphModule whose submodule paths are the spec's node names."""

from archc.backend.builder import build_module

__all__ = ["build_module"]
