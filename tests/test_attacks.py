"""Hostile specs: each one trips its own guard with a located archc error, and nothing runs,
connects, writes or reads outside the folders a check may read.

tests/attacks/ holds the corpus (tags, aliases, dunder and format-string expressions, path
traversal, URLs, huge powers, oversized models, names that would clobber module attributes) and
expected.txt, the line and message substring of the guard each attack must trip. An audit hook
records every subprocess, socket, file open (read or write), directory listing, exec and compile
while archc loads, checks and compiles them.
"""

from __future__ import annotations

import contextlib
import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

import archc
from archc.errors import ArchcError, SpecError, format_error
from archc.resolve import builtin_dir
from archc.resolve.names import MODULE_ATTRIBUTES
from tests.work import bounded

HERE = Path(__file__).parent / "attacks"
ROOT = HERE.parents[1]
CASES = sorted(HERE.glob("*.yaml"))
CORPUS_SIZE = 85  # pinned: dropping an attack (and its expected line) must be a visible change
# Work is counted, not timed (tests/work.py): limit_each_huge expands 50,000 nodes before its limit
# trips; a missing limit costs hundreds of millions of calls or runs out of memory.
MAX_CALLS = 30_000_000


def _expected() -> dict[str, tuple[int, str]]:
    """expected.txt: `stem line substring` per attack; '#' lines are comments."""
    table: dict[str, tuple[int, str]] = {}
    for raw in (HERE / "expected.txt").read_text().splitlines():
        if raw.strip() and not raw.startswith("#"):
            stem, line, needle = raw.split(" ", 2)
            table[stem] = (int(line), needle)
    return table


EXPECTED = _expected()

# --- the audit hook -------------------------------------------------------------------------

_EVENTS: list[tuple[str, tuple[Any, ...]]] = []
_RECORDING = [False]
_WATCH = ("subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.fork", "socket.", "exec", "compile",
          "open", "os.listdir", "os.scandir", "os.remove", "os.rename", "shutil.", "urllib.", "http.")
_PATH_EVENTS = ("open", "os.listdir", "os.scandir")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# code that may be compiled: library modules being imported (.py files), torch.fx's generated
# forward (from validated node names) and networkx's decorator machinery; never spec text
_CODE_ORIGINS = ("<eval_with_key>", "<class 'networkx.utils.decorators.argmap'>")


def _real(path: str | Path) -> str:
    return os.path.realpath(path)


# Where a check may read (symlinks resolved, so a link inside one of them cannot point out):
READ_ROOTS = tuple(sorted({_real(p) for p in (
    builtin_dir(),                       # built-in specs (`extends: resnet50`)
    HERE,                                # the attack's own folder
    Path(archc.__file__).parent,         # archc's own modules and data (the JSON schema)
    sys.prefix, sys.base_prefix, sys.exec_prefix,  # the Python installation (stdlib, lazy imports)
    *site.getsitepackages(), site.getusersitepackages(), *sysconfig.get_paths().values(),
    "/proc/self",                        # the process's own state (torch reads /proc/self/maps)
)}))
# listing a sys.path folder itself (not its subtree) is the import system refreshing its cache
_LISTABLE = frozenset(_real(p or ".") for p in sys.path)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _RECORDING[0] and event.startswith(_WATCH):
        if event in _PATH_EVENTS and not isinstance(args[0], int):  # an int is an already open fd
            args = (os.path.abspath(os.fsdecode(args[0] if args[0] is not None else ".")), *args[1:])
        _EVENTS.append((event, args))


sys.addaudithook(_hook)


def _readable(path: str) -> bool:
    real = _real(path)
    return any(real == r or real.startswith(r + os.sep) for r in READ_ROOTS)


def _path_problem(event: str, args: tuple[Any, ...]) -> str | None:
    path = args[0]
    if event == "open":
        mode, flags = (args[1] if len(args) > 1 else None) or "", args[2] if len(args) > 2 else 0
        if any(c in str(mode) for c in "wax+") or int(flags or 0) & _WRITE_FLAGS:
            return f"open for writing: {path}"
    if isinstance(path, int) or _readable(path) or (event != "open" and _real(path) in _LISTABLE):
        return None
    return f"{event} outside the allowed folders: {path}"


def _forbidden(events: list[tuple[str, tuple[Any, ...]]]) -> list[str]:
    bad = []
    for event, args in events:
        if event in _PATH_EVENTS:
            problem = _path_problem(event, args)
            if problem:
                bad.append(problem)
        elif event in ("compile", "exec"):
            where = str(args[1] if event == "compile" and len(args) > 1 else getattr(args[0], "co_filename", ""))
            if not where.startswith(_CODE_ORIGINS) and not (where.endswith(".py") and Path(where).is_file()):
                bad.append(f"{event}: {where[:80]}")
        else:
            bad.append(event)
    return bad


def _recorded(fn: Any, *args: Any, **kwargs: Any) -> list[str]:
    """Run fn with the hook recording; return what it did that is forbidden."""
    _EVENTS.clear()
    _RECORDING[0] = True
    try:
        fn(*args, **kwargs)
    finally:
        _RECORDING[0] = False
    return _forbidden(list(_EVENTS))


# --- the corpus -----------------------------------------------------------------------------

BENIGN = [ROOT / "specs/resnet18.yaml", ROOT / "specs/lenet5.yaml", ROOT / "specs/vit_s_16.yaml"]


@pytest.fixture(scope="module", autouse=True)
def _warm_up():
    """Compile ordinary specs once unrecorded, so lazy library imports are not mistaken for spec
    effects. The attacks themselves are never run unrecorded: one that acts only once is caught."""
    for spec in BENIGN:
        archc.compile(spec, device="meta")
    with pytest.raises(SpecError):  # an invalid spec: the schema's located errors import jsonschema lazily
        archc.check("name: warm\ninput: [3, 8, 8]\nnodes: {a: {op: relu}}\nunknown_key: 1\n")
    with pytest.raises(SpecError):  # an op outside the built-in table: the registry reads the entry points once
        archc.check("name: warm\ninput: [3, 8, 8]\nnodes: {a: {op: no_such_op}}\n")


def test_every_attack_has_its_expected_guard():
    assert len(CASES) == CORPUS_SIZE
    assert sorted(EXPECTED) == [p.stem for p in CASES]


def _attempt(spec: Path) -> ArchcError | None:
    """Compile an attack; return its error (None if it compiled)."""
    try:
        archc.compile(spec, device="meta")
    except ArchcError as e:
        return e
    return None


@pytest.mark.parametrize("spec", CASES, ids=[p.stem for p in CASES])
def test_attack_is_refused_cleanly(spec: Path):
    caught: list[ArchcError | None] = []
    with bounded(MAX_CALLS, max_bytes=512 * 2**20):
        bad = _recorded(lambda: caught.append(_attempt(spec)))
    assert not bad, bad  # first: what it did matters more than how it was refused
    err = caught[0]
    assert err is not None, f"{spec.name} compiled"
    text = format_error(err)
    line, needle = EXPECTED[spec.stem]
    assert needle in err.message, text
    assert isinstance(err, SpecError), text
    assert err.loc is not None and Path(err.loc.file).resolve() == spec.resolve(), text
    assert err.loc.line == line and err.loc.col >= 1, text
    assert text.startswith(f"{err.loc.file}:{err.loc.line}:{err.loc.col}: error: "), text
    assert "\x1b" not in text and "Traceback" not in text


def test_audit_hook_sees_what_it_should(tmp_path):
    """The hook is live and precise: an exec, writes through open() and os.open(), and reads and
    listings outside the allowed folders are caught; reading a built-in spec is not."""
    probe, raw = tmp_path / "probe.txt", tmp_path / "raw.bin"

    def misbehave() -> None:
        exec(compile("x = 1", "<user>", "exec"), {})
        probe.write_text("x")
        os.close(os.open(raw, os.O_WRONLY | os.O_CREAT, 0o600))
        os.listdir("/etc")
        with contextlib.suppress(OSError):  # the audit event fires before the open itself
            Path("/etc/hostname").read_bytes()
        (builtin_dir() / "resnet18.yaml").read_text()

    bad = _recorded(misbehave)
    assert bad == ["compile: <user>", "exec: <user>", f"open for writing: {probe}", f"open for writing: {raw}",
                   "os.listdir outside the allowed folders: /etc",
                   "open outside the allowed folders: /etc/hostname"]


def test_valid_compile_runs_only_fx_generated_code():
    assert not _recorded(archc.compile, "resnet18", device="meta")


def test_reserved_names_cover_installed_torch():
    from torch import fx, nn

    public = {n for n in set(dir(nn.Module())) | set(dir(fx.symbolic_trace(nn.ReLU()))) if not n.startswith("__")}
    assert public - {"0"} <= MODULE_ATTRIBUTES


# In a fresh process: warm up on an ordinary spec (meta, so nothing big stays allocated), then
# refuse the oversized models on the CPU; report time, RSS peak growth and Python allocations.
_MEASURE = """
import json, resource, sys, tracemalloc
import archc
from archc.errors import ArchcError
archc.compile("resnet18", device="meta")
def refuse_all():
    out = []
    for path in sys.argv[1:]:
        try:
            archc.compile(path)
            out.append("compiled")
        except ArchcError as e:
            out.append(e.message)
    return out
calls = 0
def count(frame, event, arg):
    global calls
    calls += event in ("call", "c_call")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sys.setprofile(count)
messages = refuse_all()
sys.setprofile(None)
grew_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
tracemalloc.start()
refuse_all()
traced = tracemalloc.get_traced_memory()[1]
print(json.dumps({"messages": messages, "calls": calls, "grew_kb": grew_kb, "traced": traced}))
"""


def test_limit_refused_fast_and_small():
    names = ["limit_trillion_channels", "limit_giant_linear", "limit_million_repeats", "limit_nested_repeats"]
    proc = subprocess.run([sys.executable, "-c", _MEASURE, *(str(HERE / f"{n}.yaml") for n in names)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.splitlines()[-1])
    for name, message in zip(names, got["messages"], strict=True):
        assert EXPECTED[name][1] in message, (name, message)
    assert got["calls"] < 4 * MAX_CALLS, got
    # measured: ~40 MB each (the 50,000 nodes built before the node limit trips); compiling
    # vgg16 for real instead grows the peak by ~540 MB
    assert got["grew_kb"] < 128 * 1024, got  # peak RSS of the fresh process grew by under 128 MB
    assert got["traced"] < 128 * 2**20, got  # Python allocations at their peak
