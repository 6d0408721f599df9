"""References to one output of a multi-output node: `NAME[K]`."""

from __future__ import annotations

__all__ = ["output_ref"]


def output_ref(src: str) -> tuple[str, int | None]:
    """'NAME[K]' -> (NAME, K); a plain producer name -> (name, None)."""
    if src.endswith("]") and "[" in src:
        base, _, k = src[:-1].rpartition("[")
        if k.isdigit():
            return base, int(k)
    return src, None
