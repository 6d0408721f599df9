"""A value written as a YAML 1.2 flow scalar, as the importer writes spec text (spec_text.py) and the defaults
of the blocks it folds (fold.py)."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["scalar"]


def scalar(v: Any) -> str:
    """A YAML 1.2 flow scalar."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, float):
        r = repr(v)
        return r if any(c in r for c in ".en") else r + ".0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(scalar(x) for x in v) + "]"
    text = str(v)
    return text if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) and text not in _YAML_WORDS else json.dumps(text)


_YAML_WORDS = {"true", "false", "null", "True", "False", "Null", "TRUE", "FALSE", "NULL", "y", "n", "yes", "no",
               "on", "off"}
