"""Counted work for tests: bounds are proved by what a call does, never by how long it took.

``counted()`` counts the Python and C function calls made inside it (``sys.setprofile``) and the peak
of Python allocations (``tracemalloc``). Both are deterministic for a given interpreter and library
versions (pinned in tools/constraints.txt), and neither depends on the machine's load.
"""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Work:
    calls: int = 0
    peak_bytes: int = 0


@contextmanager
def counted() -> Iterator[Work]:
    """Count calls and the allocation peak of the block; read the figures after it ends."""
    work = Work()

    def profile(frame: object, event: str, arg: object) -> None:
        if event in ("call", "c_call"):
            work.calls += 1

    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    old = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield work
    finally:
        sys.setprofile(old)
        work.peak_bytes = tracemalloc.get_traced_memory()[1] - base
        if not was_tracing:
            tracemalloc.stop()


@contextmanager
def bounded(max_calls: int, max_bytes: int = 256 * 2**20) -> Iterator[Work]:
    """Assert that the block makes at most ``max_calls`` calls and allocates at most ``max_bytes`` at
    its peak: a missing limit shows as millions of calls or gigabytes, never as a slow machine."""
    with counted() as work:
        yield work
    assert work.calls <= max_calls, f"{work.calls:,} calls (bound {max_calls:,})"
    assert work.peak_bytes <= max_bytes, f"{work.peak_bytes:,} bytes at the peak (bound {max_bytes:,})"
