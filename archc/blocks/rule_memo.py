"""Per-node results of the concrete analysis, kept across analyses (issue 28): analysis is incremental by construction.

A node's shapes, parameters, MACs, other ops and receptive-field window are a pure function of its block,
its arguments and its input shapes, so they are kept process-wide under the key
``(op, repr(args), input shapes)``: an edit re-runs only the rules of nodes whose key changed, and the 90
identical units of a deep ResNet stage run their rules once. ``repr`` keeps the key exact (``1``, ``1.0``
and ``True`` differ) and is cheaper than the rules it saves. The entry also holds the block object, and a
hit whose block was registered again since is a miss.

A rule's error is kept too, as raised (before it is located): every hit re-raises a copy, located at the
node that hit. Entries are tuples of immutable values (shapes are tuples of ints), shared read-only.
On symbolic sizes the rules record guards as they run (comparisons answered at the hint): only a run that
recorded and relied on none is kept (``symbolic_table``), since its results then hold at every hint.

``ARCHC_ANALYSIS_MEMO=0`` (or ``ENABLED = False``, ``disabled()``) turns it off; ``STATS`` counts the rules
run (``miss``) and the nodes served from the table (``hit``). The table keeps ``SIZE`` entries; when it is
full the oldest quarter (by insertion) goes.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction
from math import prod
from typing import Any

from archc.blocks.base import Block
from archc.errors import ArchcError

__all__ = ["ENABLED", "STATS", "SIZE", "POINTWISE", "Entry", "table", "symbolic_table", "compute", "out_shapes",
           "symbolic_out_shapes", "store", "clear", "disabled"]

ENABLED = os.environ.get("ARCHC_ANALYSIS_MEMO", "1") != "0"
STATS: Counter[str] = Counter()  # hit, miss
SIZE = 1 << 15
POINTWISE = "pointwise"  # the entry's window for a block without a window rule (the field of its inputs)

# (block, outputs, params, macs, other ops, window, elements, empty, multi, error): `window` is POINTWISE,
# None (every output sees the whole input) or (span - 1, stride) as ints where they are whole; `elements`
# is the first output's element count; `multi` says whether the block has several outputs; with `error`
# (the rule's ArchcError, unlocated) the other fields are None
Entry = tuple[Block, Any, Any, Any, Any, Any, int, bool, bool, "ArchcError | None"]

_TABLE: dict[tuple[Any, ...], Entry] = {}
# symbolic sizes: every rule run, with the guards it recorded or relied on (analyze/symbolic/walk.py): one that
# relied on none holds at every hint, a guarded one is kept under its hint
_SYMBOLIC: dict[tuple[Any, ...], Any] = {}
_OUTS: dict[tuple[Any, ...], Any] = {}  # symbolic_out_shapes
_LOCK = threading.Lock()


def table() -> dict[tuple[Any, ...], Entry] | None:
    """The process-wide table, or None when the memo is off."""
    return _TABLE if ENABLED else None


def symbolic_table() -> dict[tuple[Any, ...], Any] | None:
    """The process-wide table of guard-free rule runs on symbolic sizes, or None when the memo is off."""
    return _SYMBOLIC if ENABLED else None


def clear() -> None:
    with _LOCK:
        _TABLE.clear()
        _SYMBOLIC.clear()
        _OUTS.clear()


@contextmanager
def disabled() -> Iterator[None]:
    """Analyse without the memo (the tests' reference)."""
    global ENABLED
    was, ENABLED = ENABLED, False
    try:
        yield
    finally:
        ENABLED = was


def _exact(x: Any) -> Any:
    """A whole Fraction as an int (receptive-field arithmetic on ints is many times cheaper)."""
    return int(x) if isinstance(x, Fraction) and x.denominator == 1 else x


def compute(block: Block, args: Any, ins: tuple[Any, ...]) -> Entry:
    """Run the node's rules: a new entry (errors other than ArchcError are archc bugs and propagate). When a rule
    after the shape rule fails, the entry keeps the output shapes too (``out_shapes`` gives them)."""
    outs = None
    try:
        outs = block.out_shapes(args, ins)
        out = outs[0]
        params = block.count_params(args, ins)
        macs = block.macs(args, ins, out)
        other = block.other_ops(args, ins, out)
        if block.window is None:
            window: Any = POINTWISE
        else:
            w = block.window(args, ins, out)
            window = None if w is None else (_exact(w.span - 1), _exact(w.stride))
    except ArchcError as e:
        e.__traceback__ = None  # kept: its frames would keep every local alive
        return (block, outs, None, None, None, None, 0, False, False, e)
    return (block, outs, params, macs, other, window, prod(out), any(d < 1 for d in out), block.outputs is not None,
            None)


def out_shapes(op: str, block: Block, args: Any, ins: Sequence[Any]) -> tuple[Any, ...]:
    """``block.out_shapes(args, ins)`` on concrete shapes through the table, for resolve's shape inference (the
    same rules on the same shapes as the analysis after it): raises a copy of the rule's error."""
    key = (op, repr(args), tuple(ins))
    try:
        entry = _TABLE.get(key) if ENABLED else None
    except TypeError:  # a shape given as a list: not a key
        return block.out_shapes(args, ins)
    if entry is None or entry[0] is not block:
        entry = compute(block, args, key[2])
        if ENABLED:
            store(key, entry)
    if entry[1] is None:
        assert entry[9] is not None
        raise entry[9].copy()
    return entry[1]  # type: ignore[no-any-return]


def symbolic_out_shapes(op: str, block: Block, args: Any, ins: Sequence[Any], hint: dict[str, int]) -> Any:
    """resolve's inference on symbolic sizes: ``block.out_shapes`` on expressions, its comparisons answered at
    ``hint`` by guards that are then dropped, so a function of (op, args, input shapes, hint) and kept by them.
    None where the rule has no exact form or fails."""
    from archc.ir.algebra import Guards, NotSymbolic, guarding, shape_key

    key = (op, repr(args), tuple(shape_key(s) for s in ins), tuple(sorted(hint.items())))
    kept = _OUTS.get(key) if ENABLED else None
    if kept is None or kept[0] is not block:
        try:
            with guarding(Guards(dict(hint))):
                kept = (block, block.out_shapes(args, ins))
        except (NotSymbolic, ArchcError):
            kept = (block, None)
        if ENABLED:
            store(key, kept, _OUTS)
    return kept[1]


def store(key: tuple[Any, ...], entry: Any, into: dict[tuple[Any, ...], Any] = _TABLE) -> None:
    if len(into) >= SIZE:
        with _LOCK:
            for old in list(into)[: SIZE // 4]:
                into.pop(old, None)
    into[key] = entry
