"""What has no archc op: the error that names it, with the archc op nearest to its Python name as a hint."""

from __future__ import annotations

import difflib

from archc.errors import UsageError


def op_names() -> list[str]:
    """Every archc op name (for the nearest-op hint)."""
    from archc.blocks.registry import names

    return names()


# Python names whose nearest archc op difflib would not find.
NEAREST = {"upsample": "interpolate", "upsamplingnearest2d": "interpolate", "upsamplingbilinear2d": "interpolate",
           "multiheadattention": "self_attention", "convtranspose2d": "conv_transpose2d", "cumsum": "sum",
           "zeropad2d": "pad", "constantpad2d": "pad", "reflectionpad2d": "pad", "embedding": "linear",
           "lstm": "linear", "gru": "linear", "einsum": "matmul"}


def nearest(name: str) -> str:
    """The archc op nearest to a Python name (difflib), for hints."""
    key = name.lower()
    if key in NEAREST:
        return NEAREST[key]
    close = difflib.get_close_matches(key, op_names(), n=1, cutoff=0.0)
    return close[0] if close else "?"


def unmapped(what: str, path: str, name: str) -> UsageError:
    """The error for a module or function with no archc op."""
    return UsageError(f"{what} at '{path or '<top>'}' has no archc op (nearest: {nearest(name)})",
                      hint="`archc blocks` lists the ops; add one to archc/blocks or rewrite the module with them")
