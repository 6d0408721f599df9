"""`archc render` and `archc report`: diagrams and the HTML page."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from archc.cli.options import _int_from, _limits, _parse_input, _parse_set, spec_command
from archc.errors import format_error


def _render(args: argparse.Namespace) -> int:
    from archc.api import analyse
    from archc.fileio import atomic_write
    from archc.render.output import FORMATS, render

    fmt = next(f for f in FORMATS if getattr(args, f))
    analysis = analyse(args.spec, _parse_set(args.set), _parse_input(args.input), _limits(args))
    data = render(analysis, fmt, None if args.expand else args.depth, args.expand, args.rankdir,
                  not args.no_definitions)
    ext = {"mermaid": "mmd"}.get(fmt, fmt)
    target = args.output or f"{analysis.graph.name}.{ext}"
    if target == "-":
        sys.stdout.buffer.write(data)
    else:
        atomic_write(target, data)
        print(f"wrote {target}", file=sys.stderr)
    for err in analysis.errors:
        print(format_error(err), file=sys.stderr)
    return 1 if analysis.errors else 0


def add_render(sub: Any) -> None:
    r = spec_command(sub, "render", _render, "draw the model (Graphviz or Mermaid); repeated blocks folded")
    fmt = r.add_mutually_exclusive_group(required=True)
    for f in ("svg", "png", "pdf", "dot", "mermaid"):
        fmt.add_argument(f"--{f}", action="store_true")
    r.add_argument("-o", "--output", help="output file ('-' for stdout); default NAME.EXT")
    r.add_argument("--depth", type=_int_from(0), default=None, help="open this many levels of the hierarchy")
    r.add_argument("--expand", action="store_true", help="draw every layer (no folding)")
    r.add_argument("--rankdir", choices=("TB", "LR"), default="TB")
    r.add_argument("--no-definitions", action="store_true",
                   help="leave out the definitions drawn beside the graph (each folded block, once)")


def _report(args: argparse.Namespace) -> int:
    from archc import check
    from archc.fileio import atomic_write
    from archc.render.report import report
    from archc.resolve import find_spec

    analysis = check(args.spec, _parse_set(args.set), _parse_input(args.input), _limits(args))
    source = find_spec(args.spec).read_text(encoding="utf-8")
    target = args.output or f"{analysis.graph.name}.html"
    atomic_write(target, report(analysis, source))
    print(f"wrote {target}", file=sys.stderr)
    return 0


def add_report(sub: Any) -> None:
    rep = spec_command(sub, "report", _report, "one self-contained HTML page: diagram, chart, table, spec source")
    rep.add_argument("-o", "--output", help="output file; default NAME.html")
