"""Hostile specs: each one ends in a located archc error, and nothing runs, connects or writes.

tests/attacks/ holds the corpus (tags, aliases, dunder and format-string expressions, path
traversal, URLs, huge powers, oversized models, names that would clobber module attributes).
An audit hook records every subprocess, socket, file write, exec and compile while archc loads,
checks and compiles them.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import pytest
import torch

import archc
from archc.errors import ArchcError, SpecError, format_error
from archc.resolve.names import MODULE_ATTRIBUTES

HERE = Path(__file__).parent / "attacks"
CASES = sorted(HERE.glob("*.yaml"))
_EVENTS: list[tuple[str, tuple]] = []
_RECORDING = [False]
_WATCH = ("subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.fork", "socket.", "exec", "compile",
          "open", "os.remove", "os.rename", "shutil.", "urllib.", "http.")


# code that may be compiled: library modules being imported (.py files), torch.fx's generated
# forward (from validated node names) and networkx's decorator machinery; never spec text
_CODE_ORIGINS = ("<eval_with_key>", "<class 'networkx.utils.decorators.argmap'>")


def _hook(event: str, args: tuple) -> None:
    if _RECORDING[0] and event.startswith(_WATCH):
        _EVENTS.append((event, args))


sys.addaudithook(_hook)


def _forbidden(events: list[tuple[str, tuple]]) -> list[str]:
    bad = []
    for event, args in events:
        if event == "open":
            mode = str(args[1]) if len(args) > 1 else "r"
            if any(c in mode for c in "wax+"):
                bad.append(f"open for writing: {args[0]}")
        elif event in ("compile", "exec"):
            where = str(args[1] if event == "compile" and len(args) > 1 else getattr(args[0], "co_filename", ""))
            if not where.startswith(_CODE_ORIGINS) and not (where.endswith(".py") and Path(where).is_file()):
                bad.append(f"{event}: {where[:80]}")
        else:
            bad.append(event)
    return bad


@pytest.fixture(scope="module", autouse=True)
def _warm_up():
    """Run every case once unrecorded, so lazy library imports are not mistaken for spec effects."""
    archc.compile("resnet18", device="meta")
    for spec in CASES:
        with contextlib.suppress(ArchcError):
            archc.compile(spec, device="meta")


def test_corpus_is_large_enough():
    assert len(CASES) >= 50


@pytest.mark.parametrize("spec", CASES, ids=[p.stem for p in CASES])
def test_attack_is_refused_cleanly(spec: Path):
    _EVENTS.clear()
    start = time.perf_counter()
    _RECORDING[0] = True
    try:
        with pytest.raises(ArchcError) as info:
            archc.compile(spec, device="meta")
    finally:
        _RECORDING[0] = False
    err = info.value
    assert isinstance(err, SpecError), format_error(err)
    assert err.loc is not None and err.loc.line >= 1 and err.loc.col >= 1, format_error(err)
    assert Path(err.loc.file).name.endswith(".yaml")
    text = format_error(err)
    assert "\x1b" not in text and "Traceback" not in text
    assert not _forbidden(_EVENTS), _forbidden(_EVENTS)
    assert time.perf_counter() - start < 2.0


def test_audit_hook_sees_what_it_should():
    """The hook is live: a file write and an exec are caught (so a silent hook cannot pass)."""
    _EVENTS.clear()
    _RECORDING[0] = True
    try:
        exec(compile("x = 1", "<user>", "exec"), {})
        with open(Path(__file__).parent / "attacks" / ".probe", "w"):
            pass
    finally:
        _RECORDING[0] = False
        (Path(__file__).parent / "attacks" / ".probe").unlink()
    assert len(_forbidden(_EVENTS)) >= 2


def test_valid_compile_runs_only_fx_generated_code():
    _EVENTS.clear()
    _RECORDING[0] = True
    try:
        archc.compile("resnet18", device="meta")
    finally:
        _RECORDING[0] = False
    assert not _forbidden(_EVENTS), _forbidden(_EVENTS)


def test_reserved_names_cover_installed_torch():
    from torch import fx, nn

    public = {n for n in set(dir(nn.Module())) | set(dir(fx.symbolic_trace(nn.ReLU()))) if not n.startswith("__")}
    assert public - {"0"} <= MODULE_ATTRIBUTES


def test_limit_refused_fast_and_small():
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    for name in ("limit_trillion_channels", "limit_million_repeats", "limit_nested_repeats"):
        with pytest.raises(ArchcError):
            archc.compile(HERE / f"{name}.yaml")
    assert time.perf_counter() - start < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KB
    assert torch.get_num_threads() >= 1
