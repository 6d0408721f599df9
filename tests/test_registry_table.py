"""The block registry's static table (archc/blocks/table.py) against the block modules themselves, and the
laziness it buys: an op in the table imports its own module only; entry points are read only for an op the
table does not name."""

from __future__ import annotations

import subprocess
import sys

from archc.blocks import registry
from archc.blocks.table import MODULES


def test_table_matches_the_block_modules():
    assert registry.module_table() == MODULES, \
        'archc/blocks/table.py is out of date: python -c "from archc.blocks.registry import write_table; write_table()"'


def _fresh(code: str) -> str:
    """Run ``code`` in a new interpreter (nothing imported yet) and return what it prints."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_every_builtin_block_is_in_the_table():
    """Every op the block modules register (plugins left out) has a row, however it is registered."""
    out = _fresh("from archc.blocks import registry\nregistry.load_plugins = lambda: None\n"
                 "from archc.blocks.table import MODULES\nprint(sorted(set(registry.names()) ^ set(MODULES)))")
    assert out == "[]"
    assert len(MODULES) > 90  # the library today: 96 ops


def test_get_imports_only_the_module_of_the_op():
    out = _fresh("import sys\nfrom archc.blocks import get\nget('conv2d')\n"
                 "print(sorted(m for m in sys.modules if m.startswith('archc.blocks.')), "
                 "'importlib.metadata' in sys.modules)")
    assert out == "['archc.blocks.base', 'archc.blocks.conv2d', 'archc.blocks.registry', 'archc.blocks.table'] False"


def test_an_op_outside_the_table_loads_everything_and_the_plugins():
    out = _fresh("import sys\nfrom archc.blocks import registry\n"
                 "print(registry.is_registered('no_such_op'), registry._loaded, 'importlib.metadata' in sys.modules, "
                 "len([m for m in sys.modules if m.startswith('archc.blocks.')]) > 40)")
    assert out == "False True True True"


def test_unknown_op_still_suggests():
    import pytest

    from archc.errors import ResolveError

    with pytest.raises(ResolveError, match="unknown block 'conv2x'") as e:
        registry.get("conv2x")
    assert "conv2d" in (e.value.hint or "")
