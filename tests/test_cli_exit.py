"""`archc.cli.run`, the process's entry: a brief command (check, summary, diff) leaves without tearing the
interpreter down (os._exit once its output is flushed); its output, errors and exit status are main()'s."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# An atexit handler shows whether the interpreter shut down as usual (it runs then, and not after os._exit).
_CODE = """
import atexit, sys
atexit.register(lambda: print("atexit ran", file=sys.stderr))
if sys.argv[1] == "profiled":
    import cProfile
    cProfile.Profile().enable()
sys.argv = ["archc", *sys.argv[2:]]
from archc.cli import run
run()
"""


# Buffered output, as a user's shell gives a pipe: what the command printed must be flushed before it leaves.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def _run(*argv: str, mode: str = "plain") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _CODE, mode, *argv], capture_output=True, text=True, timeout=120,
                          env=_ENV)


def _main(*argv: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from archc.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120, env=_ENV)


@pytest.mark.parametrize("argv", [("summary", "lenet5"), ("summary", "lenet5", "--json"), ("check", "lenet5"),
                                  ("summary", "no_such_spec"), ("check", "no_such_spec")])
def test_a_brief_command_skips_the_shutdown_and_keeps_its_output(argv):
    done, expected = _run(*argv), _main(*argv)
    assert (done.returncode, done.stdout, done.stderr) == (expected.returncode, expected.stdout, expected.stderr)
    assert done.stdout or done.stderr  # something real was flushed (the table, or the located error)


def test_other_commands_and_profiled_runs_shut_down_as_usual():
    listed = _run("list")
    assert listed.returncode == 0 and "lenet5" in listed.stdout and listed.stderr == "atexit ran\n"
    profiled = _run("summary", "lenet5", mode="profiled")  # cProfile's report is printed at the usual exit
    assert profiled.returncode == 0 and "lenet5: 61,706 parameters" in profiled.stdout
    assert profiled.stderr == "atexit ran\n"


def test_a_reader_that_leaves_early_is_no_error():
    """`archc summary ... | head -1`: the rest of the table goes nowhere, quietly, with status 0."""
    with subprocess.Popen([sys.executable, "-c", _CODE, "plain", "summary", "maxvit_t"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=_ENV) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 0 and first.startswith("path") and err in ("", "atexit ran\n")
