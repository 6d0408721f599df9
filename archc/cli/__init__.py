"""The `archc` command: one module per command group, each command's flags next to its code.

| module | commands |
|---|---|
| analysis.py | check, summary, diff (no torch) |
| drawing.py | render, report |
| model.py | build, export, bench (torch) |
| training.py | train, predict, val (torch; detection routed to archc.cli.detection) |
| library.py | list, blocks, schema |
| lsp.py | lsp |
| options.py | the option types and parsers every command shares |

`archc import` registers itself from archc.importer.cli. Each module imports what its command needs
inside the command, so `archc check` never imports torch (tests/test_cli.py)."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module
from typing import Any, NoReturn

from archc.errors import ArchcError, UsageError, format_error

__all__ = ["main", "run"]

# Each command: the module (under archc.cli) that holds its parser (`add_NAME`) and its code (`_NAME`), in the
# order `archc --help` lists them. Only the chosen command's module is imported (start-up: `archc summary`
# never imports the training, drawing or LSP code); `archc import` registers itself from archc.importer.cli.
_MODULES = {"check": "analysis", "build": "model", "summary": "analysis", "diff": "analysis", "render": "drawing",
            "report": "drawing", "train": "training", "predict": "training", "val": "training", "export": "model",
            "bench": "model", "list": "library", "blocks": "library", "schema": "library", "lsp": "lsp"}
# The option types, re-exported for older importers (archc.cli._limits ...), from archc.cli.options.
_OPTIONS = ("_int_from", "_limits", "_parse_input", "_parse_set", "_real", "_weights_options")


def _module(command: str) -> Any:
    return import_module(f"archc.cli.{_MODULES[command]}")


def __getattr__(name: str) -> Any:
    """``archc.cli._summary`` and the other commands by name (so that patching one, as a test does, replaces
    the command that runs), and the option types, each imported on first use."""
    if name.startswith("_") and name[1:] in _MODULES:
        return getattr(_module(name[1:]), name)
    if name in _OPTIONS:
        return getattr(import_module("archc.cli.options"), name)
    raise AttributeError(f"module 'archc.cli' has no attribute '{name}'")


def _add_import(sub: Any) -> None:
    import_module("archc.importer.cli").add_parser(sub)  # `archc import` (issue 27)


def _add(sub: Any, command: str) -> None:
    if command == "import":
        _add_import(sub)
    else:
        getattr(_module(command), f"add_{command}")(sub)


_PARSERS = (*_MODULES, "import")


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command``, only that command's parser (none for a name that is no
    command): argparse spends more on building the sixteen than `archc check` on a small spec."""
    from archc import __version__

    p = argparse.ArgumentParser(prog="archc", description="Compile YAML architecture specs into PyTorch models.")
    p.add_argument("--version", action="version", version=f"archc {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for name in _PARSERS:
        if command is None or name == command:
            _add(sub, name)
    return p


def _command(args: argparse.Namespace) -> int:
    """Run the parsed command, looked up in this module by name (`archc import` registers its own)."""
    fn = globals().get(f"_{args.command}", args.fn) if args.command in _MODULES else args.fn
    return int(fn(args))


# The extra each command needs (pyproject's optional-dependencies); the other commands need none.
COMMAND_EXTRAS = {"build": "torch", "train": "train", "predict": "train", "val": "train", "export": "export",
                  "bench": "bench"}


def _missing_extra(e: Exception, command: str) -> UsageError | None:
    """The error naming the extra to install when ``e`` is a failed import of an optional module."""
    from archc.api import missing_extra

    m = missing_extra(e, f"archc {command}", COMMAND_EXTRAS.get(command)) if isinstance(e, ImportError) else None
    return None if m is None else UsageError(f"{m.what} needs {m.module}, which is not installed",
                                             hint=f"pip install 'archc[{m.extra}]'")


def _stdout_gone() -> bool:
    """Whether standard output itself is a pipe whose reader has left (`archc ... | head`). Asked of the
    file descriptor (poll: a pipe without readers reports POLLERR), since the failed write has already
    emptied Python's buffer, so flushing it again succeeds; flushing is the fallback where poll is missing."""
    try:
        import select

        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLNVAL) == select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or no descriptor (a test's capture)
        pass
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    return False


# The analysis commands run briefly and leave almost no cyclic garbage (a few hundred objects a spec, the largest
# built-in ones included), yet the cyclic collector ran ~40 times in `archc summary efficientnet_b0` (7-17 ms, about
# a tenth of the command). With this first threshold it runs at most a few times even on a huge spec. A caller in
# the same process (main(argv)) gets its threshold back; the command line's process exits instead (putting it back
# there would collect everything the command made once more, on the way out).
_BRIEF = ("check", "summary", "diff")
_GC_THRESHOLD = 500_000


def main(argv: list[str] | None = None) -> int:
    process, argv = argv is None, sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in _BRIEF:
        return _main(argv)
    import gc

    old = gc.get_threshold()
    gc.set_threshold(_GC_THRESHOLD, *old[1:])
    try:
        return _main(argv)
    finally:
        if not process:
            gc.set_threshold(*old)


def run() -> NoReturn:
    """The process's entry (`python -m archc`, the `archc` script): ``main()``, then exit. A brief command leaves
    without tearing the interpreter down once its output is flushed (as mypy does): freeing every object and
    module one by one was 5-8% of a whole `archc summary` (counted: 35M of 457M instructions on lenet5, 46M of
    849M on maxvit_t), and nothing of archc's runs at exit. Under a profiler or tracer (cProfile, coverage), or
    when flushing fails (a closed pipe), it exits as usual, so their reports and Python's own messages come out."""
    brief = len(sys.argv) > 1 and sys.argv[1] in _BRIEF
    code = main()
    if brief and sys.getprofile() is None and sys.gettrace() is None:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        else:
            os._exit(code)
    sys.exit(code)


def _main(argv: list[str]) -> int:
    # only the named command's parser (and none for `archc --version`); `archc --help`, a typo: all of them
    args = _parser(argv[0] if argv and (argv[0] in _PARSERS or argv == ["--version"]) else None).parse_args(argv)
    try:
        return _command(args)
    except UsageError as e:
        print(format_error(e), file=sys.stderr)
        return 2
    except ArchcError as e:
        print(format_error(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError as e:  # `archc summary ... | head`: the reader left; not an error
        if not _stdout_gone():
            print(f"archc: internal error: {type(e).__name__}: {e}", file=sys.stderr)
            return 3  # a pipe to a subprocess broke, not ours: never silence our own stdout for that
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # a bug in archc, never the user's fault: no traceback unless asked
        missing = _missing_extra(e, args.command)
        if missing is not None:  # an optional dependency (torch, onnx ...) is not installed
            print(format_error(missing), file=sys.stderr)
            return 2
        if os.environ.get("ARCHC_DEBUG"):
            raise
        print(f"archc: internal error: {type(e).__name__}: {e}\n  (set ARCHC_DEBUG=1 for a traceback "
              "and please report it)", file=sys.stderr)
        return 3

