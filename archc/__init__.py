"""archc: a declarative architecture-spec compiler for vision networks.

``archc.check(spec)`` analyses a YAML spec without torch; ``archc.compile(spec, **params)``
returns a ``torch.nn.Module`` whose submodule names are the spec's node names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archc.api import check, compile, from_module
    from archc.errors import ArchcError, InputShapeError
    from archc.resolve import Limits

__all__ = ["ArchcError", "InputShapeError", "Limits", "check", "compile", "from_module"]
__version__ = "0.1.0"  # the one version: pyproject reads it (dynamic), so does `archc --version`

# Where each public name lives: imported on first use, so that `import archc.cli` (and `archc --version`,
# `archc list`, `archc lsp`) does not import the whole analysis pipeline.
_HOME = {"check": "archc.api", "compile": "archc.api", "from_module": "archc.api", "ArchcError": "archc.errors",
         "InputShapeError": "archc.errors", "Limits": "archc.resolve"}


def __getattr__(name: str) -> Any:
    """A public name, or a subpackage (``archc.analyze.Analysis`` after a bare ``import archc``), on first use."""
    from importlib import import_module

    if name in _HOME:
        value = getattr(import_module(_HOME[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:
            return import_module(f"archc.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"archc.{name}":
                raise
    raise AttributeError(f"module 'archc' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
