"""The block registry: every op name a spec may use. Unknown and duplicate names fail loudly."""

from __future__ import annotations

from difflib import get_close_matches
from importlib import import_module

from archc.blocks.base import Block
from archc.errors import ResolveError

__all__ = ["register", "get", "names", "is_registered", "load_plugins"]

_BLOCKS: dict[str, Block] = {}
_INFRASTRUCTURE = {"base", "registry"}  # every other module in this package defines blocks
_loaded = False


def register(block: Block) -> Block:
    """Add a block; a second block under the same name is an error, never a silent override."""
    if block.name in _BLOCKS:
        raise ValueError(f"block '{block.name}' is already registered")
    _BLOCKS[block.name] = block
    return block


def _ensure() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import pkgutil

        import archc.blocks as package

        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if info.name not in _INFRASTRUCTURE:
                import_module(f"archc.blocks.{info.name}")
        load_plugins()


def load_plugins() -> None:
    """Register user blocks from the ``archc.blocks`` entry-point group (installed packages only)."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group="archc.blocks"), key=lambda e: e.name):
        obj = ep.load()
        if callable(obj) and not isinstance(obj, Block):
            obj = obj()
        for block in [obj] if isinstance(obj, Block) else list(obj):
            register(block)


def is_registered(name: str) -> bool:
    _ensure()
    return name in _BLOCKS


def get(name: str) -> Block:
    _ensure()
    try:
        return _BLOCKS[name]
    except KeyError:
        close = get_close_matches(name, list(_BLOCKS), 3)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else "see `archc blocks`"
        raise ResolveError(f"unknown block '{name}'", hint=hint) from None


def names() -> list[str]:
    _ensure()
    return sorted(_BLOCKS)
