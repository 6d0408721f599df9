"""Start-up: each command imports what it uses and nothing else (counted, never timed). The whole-process
timings against torchinfo are tools/bench_startup.py's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Run a command in a fresh interpreter; print the modules it added to those of a bare one (site included).
_CODE = """
import contextlib, io, json, sys
before = set(sys.modules)
from archc.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as e:
        code = e.code
print(json.dumps([code, sorted(set(sys.modules) - before)]))
"""
_NEVER = ("torch", "networkx", "jsonschema", "importlib.metadata", "pkgutil", "archc.importer", "archc.lsp",
          "archc.render", "archc.train", "archc.backend")  # on any of the commands below


def _imported(*argv: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _CODE, *argv], capture_output=True, text=True, check=True)
    code, modules = json.loads(done.stdout)
    assert code == 0, done.stderr
    return list(modules)


def _never(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in _NEVER or any(m.startswith(f"{n}.") or m == n for n in _NEVER)]


@pytest.mark.parametrize("argv", [("summary", "resnet18"), ("check", "mobilenet_v3_small")])
def test_analysis_commands_import_only_their_command_and_the_blocks_they_use(argv):
    modules = _imported(*argv)
    assert _never(modules) == []
    cli = [m for m in modules if m.startswith("archc.cli")]
    assert cli == ["archc.cli", "archc.cli.analysis", "archc.cli.options"]  # not training, drawing, lsp ...
    blocks = {m.rpartition(".")[2] for m in modules if m.startswith("archc.blocks.")}
    # the registry's infrastructure and the modules of the ops these specs use, not the ~50 block modules
    assert {"base", "registry", "table", "conv2d", "batchnorm2d"} <= blocks and len(blocks) <= 14, sorted(blocks)
    # archc's own modules and the third-party ones (the standard library's count depends on what the
    # interpreter's site already imported: 63 in a plain venv, fewer where .pth files preload some)
    own = [m for m in modules if m.startswith("archc")]
    assert len(own) <= 70, len(own)  # 61 today (106 before issue 28's second stop)
    others = {m.split(".")[0] for m in modules if not m.startswith("archc")} - set(sys.stdlib_module_names)
    assert {m for m in others if not m.startswith("_cython_")} <= {"yaml", "_yaml", "cython_runtime"}, others


def test_version_imports_no_analysis():
    assert sorted(m for m in _imported("--version") if m.startswith("archc")) == ["archc", "archc.cli", "archc.errors"]


def test_schema_imports_no_analysis():
    modules = _imported("schema")
    assert _never(modules) == []
    assert not [m for m in modules if m.startswith(("archc.api", "archc.analyze", "archc.resolve", "archc.blocks"))]


def test_lazy_names_still_resolve():
    """`archc.check` and friends, the command functions of `archc.cli`, and the option types it re-exports."""
    import archc
    import archc.cli as cli
    from archc.cli.analysis import _summary
    from archc.cli.options import _limits

    assert archc.check.__module__ == "archc.api" and archc.Limits.__name__ == "Limits"
    assert archc.analyze.Analysis.__name__ == "Analysis"  # a subpackage after a bare `import archc`
    assert cli._summary is _summary and cli._limits is _limits
    with pytest.raises(AttributeError):
        archc.no_such_name  # noqa: B018
    with pytest.raises(AttributeError):
        cli._no_such_command  # noqa: B018


def test_the_analysis_commands_run_without_the_cyclic_collector():
    """The cyclic collector found a few hundred objects in a whole `archc summary` and cost ~10% of it: the brief
    commands raise its threshold (counted: collections during the command), and give it back in-process."""
    code = ("import gc, sys, contextlib, io\nfrom archc.cli import main\nruns = []\n"
            "gc.callbacks.append(lambda phase, info: runs.append(info['generation']) if phase == 'stop' else None)\n"
            "sys.argv = ['archc', 'summary', 'efficientnet_b0']\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    code = main()\nprint(code, len(runs))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "0"], done.stderr  # ~40 collections before


def test_an_in_process_caller_keeps_its_collector_threshold(capsys):
    import gc

    from archc.cli import main

    before = gc.get_threshold()
    assert main(["check", "-q", "resnet18"]) == 0
    assert gc.get_threshold() == before
