"""An analysis runs with the cyclic collector paused and leaves it as it found it (archc.api.collector_paused)."""

from __future__ import annotations

import gc
import threading

import pytest

import archc
from archc.api import collector_paused

BAD = "name: bad\ninput: [3, 8, 8]\nnodes: {a: {op: conv2d, out_channels: 4, kernel_size: 9}}\n"


def test_paused_during_and_restored_after() -> None:
    seen: list[bool] = []
    with collector_paused():
        seen.append(gc.isenabled())
        with collector_paused():  # nested: still paused, and the outer one resumes it
            seen.append(gc.isenabled())
        seen.append(gc.isenabled())
    assert seen == [False, False, False] and gc.isenabled()


def test_restored_after_an_error_and_left_off_when_it_was_off() -> None:
    with pytest.raises(archc.ArchcError):
        archc.check(BAD)
    assert gc.isenabled()
    gc.disable()
    try:
        archc.check("resnet18")
        assert not gc.isenabled()  # the caller's choice stands
    finally:
        gc.enable()


def test_concurrent_analyses_resume_it_once_all_end() -> None:
    start, release = threading.Barrier(3), threading.Event()

    def hold() -> None:
        with collector_paused():
            start.wait()
            release.wait(10)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    start.wait()
    assert not gc.isenabled()
    release.set()
    for t in threads:
        t.join()
    assert gc.isenabled()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_what_an_analysis_leaves_is_aged_and_still_collectable() -> None:
    """On the way out, what the young generations hold moves to the oldest (no young collection walks it),
    and a cycle made inside is still freed by a full collection."""
    import weakref

    gc.collect()
    with collector_paused():
        kept = [object()]
        ref = weakref.ref(_Cycle())  # a cycle, unreachable at once
    assert any(o is kept for o in gc.get_objects(generation=2))
    assert not any(o is kept for o in gc.get_objects(generation=0))
    assert ref() is not None  # nothing collected it yet
    gc.collect()
    assert ref() is None


def test_the_language_server_collects_now_and_then() -> None:
    """archc.lsp.server.tidy: a full collection every COLLECT_EVERY published analyses, never while another
    analysis runs or waits."""
    from types import SimpleNamespace

    from archc.lsp.server import COLLECT_EVERY, tidy

    ls = SimpleNamespace(since_collect=COLLECT_EVERY - 1, running={"u": None}, queued=set())
    full = gc.get_stats()[2]["collections"]
    tidy(ls)  # type: ignore[arg-type]
    assert gc.get_stats()[2]["collections"] == full and ls.since_collect == COLLECT_EVERY
    ls.running = {}
    tidy(ls)  # type: ignore[arg-type]
    assert gc.get_stats()[2]["collections"] == full + 1 and ls.since_collect == 0
    for _ in range(COLLECT_EVERY - 1):
        tidy(ls)  # type: ignore[arg-type]
    assert gc.get_stats()[2]["collections"] == full + 1


def test_every_aged_max_th_analysis_collects(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that only analyses still frees the cycles analyses leave: every AGED_MAX-th one collects."""
    import weakref

    from archc import api

    monkeypatch.setattr(api, "AGED_MAX", 3)
    monkeypatch.setattr(api, "_aged", 0)
    with collector_paused():
        ref = weakref.ref(_Cycle())
    with collector_paused():
        pass
    assert ref() is not None  # aged twice, not collected
    with collector_paused():
        pass
    assert ref() is None  # the third analysis collected
