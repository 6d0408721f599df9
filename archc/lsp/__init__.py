"""`archc lsp`: a Language Server Protocol server over stdio (pygls; ``pip install 'archc[lsp]'``).

The analysis behind it (:mod:`archc.lsp.document`) needs neither pygls nor torch.
"""

from __future__ import annotations

__all__ = ["serve"]


def serve() -> None:
    """Run the server on stdin/stdout; raises ImportError (named ``pygls``) without the extra."""
    from archc.lsp.server import serve as run

    run()
