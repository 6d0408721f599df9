"""Property tests with Hypothesis.

- Generated specs (tests/fuzzgen.py, every registered op): archc refuses few of them, always
  located; for the rest its static shapes and parameter counts equal those of the module built on
  the meta device and run there. A quarter of them are also built and run on the CPU (torch checks
  some arguments only then), in a child process (tests/fuzz_worker.py) so that a native crash in
  torch fails one example with its spec text instead of killing pytest: batch outputs equal
  per-sample outputs in eval mode, and honouring every `inplace: true` changes neither outputs nor
  gradients' computability.
- Mutated specs (random edits of valid ones): every outcome is success or a located ArchcError.
- A corrupted scalar is reported at that scalar's line (its column when the value's type is wrong).

2,000 examples each in the normal run; `ARCHC_FUZZ_EXAMPLES=50000 pytest tests/test_fuzz.py` for longer.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archc
from archc import blocks as library
from archc.errors import ArchcError, format_error
from tests.fuzzgen import OP_ARGS, spec_text
from tests.helpers import observed_shapes

_DIR = Path(tempfile.mkdtemp(prefix="archc-fuzz-"))


def _write(text: str) -> Path:
    path = _DIR / f"s{abs(hash(text))}.yaml"
    path.write_text(text)
    return path


EXAMPLES = int(os.environ.get("ARCHC_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
RUN = settings(max_examples=max(EXAMPLES // 4, 50), deadline=None, suppress_health_check=list(HealthCheck),
               derandomize=True)
MAX_REFUSED = 0.10  # generated specs archc refuses: the generator must stay useful
ROOT = Path(__file__).resolve().parents[1]


def test_generator_knows_every_op():
    assert set(OP_ARGS) == set(library.names())


def _matches_meta_build(text: str, draws: dict[str, int], seen_ops: set[str]) -> None:
    path = _write(text)
    try:
        analysis = archc.check(path)
    except ArchcError as e:
        draws["refused"] += 1
        assert e.loc is not None, (format_error(e), text)
        return
    draws["valid"] += 1
    seen_ops.update(n.op for n in analysis.graph.nodes)
    model = archc.compile(path, device="meta").eval()  # train-mode cumulative BN reads a scalar
    x = torch.empty(2, *analysis.graph.inputs[0][1], device="meta")
    seen = observed_shapes(model, x)
    for p, info in analysis.info.items():
        for path, shape in ({f"{p}[{k}]": s for k, s in enumerate(info.outputs)} or {p: info.shape}).items():
            if info.node.op != "identity":
                assert seen[path] == shape, (path, text)
    assert sum(t.numel() for t in model.parameters()) == analysis.params


def test_valid_specs_match_meta_build_and_most_are_valid():
    """Static shapes and parameter counts equal the meta-device module's; and the generator's specs are
    worth something only if archc accepts most of them (counted here, so the test stands alone)."""
    draws = {"valid": 0, "refused": 0}
    seen_ops: set[str] = set()

    @FUZZ
    @given(spec_text())
    def one(text: str) -> None:
        _matches_meta_build(text, draws, seen_ops)

    one()
    total = sum(draws.values())
    assert total >= min(EXAMPLES, 50), draws
    assert draws["refused"] / total <= MAX_REFUSED, draws
    if EXAMPLES >= 1000:  # enough draws (deterministic: derandomized) to meet every op
        assert not set(library.names()) - seen_ops, sorted(set(library.names()) - seen_ops)


class _Worker:
    """tests/fuzz_worker.py in a child process, restarted after it dies (a native crash)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def run(self, text: str) -> str | None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz_worker"], cwd=ROOT, text=True,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps({"text": text}) + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline()
        except BrokenPipeError:
            answer = ""
        if not answer:  # the child died: torch crashed natively on this spec
            code = self.proc.wait()
            self._close_pipes()
            return f"the process running the spec died (exit status {code}): a native crash in torch"
        got = json.loads(answer)
        return None if got["ok"] else got["message"]

    def _close_pipes(self) -> None:
        assert self.proc is not None
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]
        self.proc = None

    def close(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=60)
            self._close_pipes()


@pytest.fixture(scope="module")
def worker() -> Iterator[_Worker]:
    w = _Worker()
    yield w
    w.close()


def test_a_native_crash_is_one_failing_example(worker):
    """The child's death is reported for the spec that caused it, and the next spec runs in a new child."""
    import signal

    class Crashing(_Worker):
        def run(self, text: str) -> str | None:
            if self.proc is None or self.proc.poll() is not None:
                self.proc = subprocess.Popen([sys.executable, "-c", "import os, sys; sys.stdin.readline(); "
                                              "os.kill(os.getpid(), 6)"], text=True, stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE)
            return super().run(text)

    crashing = Crashing()
    message = crashing.run("input: [1, 1, 6]\n")
    assert message is not None and f"exit status {-signal.SIGABRT}" in message
    assert crashing.proc is None
    assert worker.run("archc: 1\nname: ok\ninput: [2, 4, 4]\nnodes:\n  r: relu\n") is None


@RUN
@given(spec_text())
def test_valid_specs_run_on_cpu_batch_independent_and_inplace_safe(worker, text):
    """Built and run for real, in a child process (tests/fuzz_worker.py): torch accepts every argument
    the static rules accepted and never crashes; in eval mode a batch's outputs equal its samples'
    outputs run one by one; `inplace: true` changes nothing."""
    problem = worker.run(text)
    assert problem is None, f"{problem}\n--- spec ---\n{text}"


MUTATORS = st.sampled_from(["delete", "insert", "replace_number", "dup_line", "swap_lines", "indent"])
JUNK = st.sampled_from([":", "{", "}", "[", "]", ",", "-", "#", "&a", "*a", "!!str", "|", ">", "'", '"', "%",
                        "@", "`", "\t", "\n", "${", "${1/0}", "${x.y}", "99999999999999", "-1", "1e308", "no",
                        "~", "__class__", "forward", "\x00", "\x1b[2J", "é"])


@FUZZ
@given(spec_text(), MUTATORS, st.integers(0, 10_000), st.integers(0, 10_000), JUNK)
def test_mutated_specs_never_crash(text, how, a, b, junk):
    lines = text.splitlines(keepends=True)
    i, j = a % len(text), b % len(lines)
    if how == "delete":
        text = text[:i] + text[i + 1 + b % 8:]
    elif how == "insert":
        text = text[:i] + junk + text[i:]
    elif how == "replace_number":
        import re

        nums = list(re.finditer(r"\b\d+\b", text))
        m = nums[a % len(nums)]
        text = text[:m.start()] + junk + text[m.end():]
    elif how == "dup_line":
        lines.insert(j, lines[j])
        text = "".join(lines)
    elif how == "swap_lines":
        k = a % len(lines)
        lines[j], lines[k] = lines[k], lines[j]
        text = "".join(lines)
    else:
        lines[j] = " " * (a % 5) + lines[j]
        text = "".join(lines)
    try:
        archc.check(_write(text))
    except ArchcError as e:
        assert e.loc is not None and e.loc.line >= 1, (format_error(e), text)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(spec_text(), st.integers(0, 10_000), st.sampled_from(["bogus_value", "[1, 2, 3]", "-7", "{}", "1.5"]))
def test_corrupted_scalar_is_located(text, pick, junk):
    import re

    top = text.index("\nnodes:\n")
    scalars = [m for m in re.finditer(r"(?<=: )(\d+|true|false)(?=[,}])", text) if m.start() > top]
    if not scalars:
        return
    m = scalars[pick % len(scalars)]
    bad = text[:m.start()] + junk + text[m.end():]
    line = text.count("\n", 0, m.start()) + 1
    col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
    try:
        archc.check(_write(bad))
    except ArchcError as e:
        text_of_error = format_error(e)
        # at the scalar itself, or (a shape rule's complaint about it) at its node on the same line
        exact = (e.loc.line, e.loc.col) == (line, col) or f":{line}:{col})" in text_of_error
        assert exact or (e.loc.line == line and "should be" not in e.message), (text_of_error, bad)
        return
    # some replacements stay valid (e.g. another int); then nothing is to be located
    assert junk in ("-7", "1.5") or junk == "[1, 2, 3]"
