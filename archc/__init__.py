"""archc: a declarative architecture-spec compiler for vision networks.

``archc.check(spec)`` analyses a YAML spec without torch; ``archc.compile(spec, **params)``
returns a ``torch.nn.Module`` whose submodule names are the spec's node names.
"""

from archc.api import check, compile, from_module
from archc.errors import ArchcError, InputShapeError
from archc.resolve import Limits

__all__ = ["ArchcError", "InputShapeError", "Limits", "check", "compile", "from_module"]
__version__ = "0.1.0"  # the one version: pyproject reads it (dynamic), so does `archc --version`
