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
from collections.abc import Callable
from typing import Any

from archc.cli import analysis, drawing, library, lsp, model, training
from archc.cli.analysis import _check, _diff, _summary
from archc.cli.drawing import _render, _report
from archc.cli.library import _blocks, _list, _schema
from archc.cli.lsp import _lsp
from archc.cli.model import _bench, _build, _export
from archc.cli.options import _int_from, _limits, _parse_input, _parse_set, _real, _weights_options  # noqa: F401
from archc.cli.training import _predict, _train, _val
from archc.errors import ArchcError, UsageError, format_error

__all__ = ["main"]

# The option types above are re-exported for older importers; the commands by name, so that patching
# ``archc.cli._summary`` (as a test does) replaces the command that runs.
_COMMANDS = {"check": _check, "build": _build, "summary": _summary, "diff": _diff, "render": _render,
             "report": _report, "train": _train, "predict": _predict, "val": _val, "export": _export,
             "bench": _bench, "list": _list, "blocks": _blocks, "schema": _schema, "lsp": _lsp}


def _add_import(sub: Any) -> None:
    __import__("archc.importer.cli", fromlist=["add_parser"]).add_parser(sub)  # `archc import` (issue 27)


# Each command's parser, in the order `archc --help` lists them.
_PARSERS: dict[str, Callable[[Any], None]] = {
    "check": analysis.add_check, "build": model.add_build, "summary": analysis.add_summary, "diff": analysis.add_diff,
    "render": drawing.add_render, "report": drawing.add_report, "train": training.add_train,
    "predict": training.add_predict, "val": training.add_val, "export": model.add_export, "bench": model.add_bench,
    "list": library.add_list, "blocks": library.add_blocks, "schema": library.add_schema, "lsp": lsp.add_lsp,
    "import": _add_import}


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command`` (a known name), only that command's parser: argparse
    spends more on building the sixteen than `archc check` on a small spec."""
    from archc import __version__

    p = argparse.ArgumentParser(prog="archc", description="Compile YAML architecture specs into PyTorch models.")
    p.add_argument("--version", action="version", version=f"archc {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for name, add in _PARSERS.items():
        if command is None or name == command:
            add(sub)
    return p


def _command(args: argparse.Namespace) -> int:
    """Run the parsed command, looked up in this module by name (`archc import` registers its own)."""
    fn = globals()[f"_{args.command}"] if args.command in _COMMANDS else args.fn
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser(argv[0] if argv and argv[0] in _PARSERS else None).parse_args(argv)
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

