"""`archc check`, `archc summary`, `archc diff`: static analysis, no torch."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from archc.cli.options import _int_from, _limits, _parse_input, _parse_set, spec_command
from archc.errors import ArchcError, UsageError, format_error

STDIN = "<stdin>"  # how `archc check -` names the spec it reads: errors say <stdin>:line:col


def _load(spec: str, stdin: list[str]) -> Any:
    """The loaded spec: a file or built-in name, or for `-` the text on stdin (read once, kept in ``stdin``)."""
    from pathlib import Path

    from archc.resolve import find_spec
    from archc.resolve.spec import load_spec

    if spec != "-":
        return load_spec(find_spec(spec))
    if not stdin:
        stdin.append(sys.stdin.read())
    return load_spec(Path(STDIN), stdin[0])


def _check(args: argparse.Namespace) -> int:
    from archc.analyze.summary import fmt_count
    from archc.api import analyse_source

    status, stdin = 0, list[str]()
    for spec in args.specs:
        try:
            source = _load(spec, stdin)
            a = analyse_source(source, _parse_set(args.set), _parse_input(args.input), _limits(args))
            a.raise_errors()
        except ArchcError as e:
            if isinstance(e, UsageError):
                raise
            print(format_error(e), file=sys.stderr)
            status = 1
            continue
        warnings = _warnings(source, a, args.input)
        for warning in warnings:
            print(warning, file=sys.stderr)
        if warnings and args.strict:  # --strict: an unsilenced warning fails the check
            status = 1
        shapes = ", ".join("x".join(map(str, s)) for s in a.output_shapes)
        if a.graph.train_outputs:  # returned after the others in training mode only
            shapes += " (in training also " + ", ".join(
                f"{o} {'x'.join(map(str, a.shapes[o]))}" for o in a.graph.train_outputs if o in a.shapes) + ")"
        inputs = ", ".join("x".join(map(str, s)) for _, s in a.graph.inputs)
        if a.symbolic is not None:
            shapes = ", ".join("x".join(a.symbolic.shapes.get(o, ("?",))) for o in a.graph.outputs)
            sym = a.symbolic
            size = "x".join(str(d) for i, d in enumerate(a.graph.inputs[0][1]) if i in sym.symbols)
            inputs = "x".join(str(sym.symbols.get(i, d)) for i, d in enumerate(a.graph.inputs[0][1]))
            shapes += f"; valid inputs: {sym.constraint}" + (f"; {sym.note}" if sym.note else "") + \
                f"; MACs = {sym.formula('macs')} (figures at {size})"
        if not args.quiet:
            name = STDIN if spec == "-" else spec
            print(f"ok  {name}: {a.graph.name}, {len(a.graph.nodes)} nodes, {a.params:,} parameters, "
                  f"{fmt_count(a.macs)}MACs, input {inputs}, output {shapes}")
    return status


def _warnings(source: Any, a: Any, override: str | None) -> list[str]:
    """`file:line:col: warning: ...` for what is valid but probably not meant: the lints (archc.analyze.lint:
    dead branches, channel vectors broadcast along W, `repeat: 0`, strides over the kernel) and an input that
    looks channels-last. `archc check` prints them and still succeeds."""
    from archc.analyze.lint import LintWarning, lint

    found: list[Any] = []
    for _, shape in a.graph.inputs:
        if len(shape) == 3 and shape[2] in (1, 3) and min(shape[:2]) >= 8:  # as archc.train.task.looks_channels_last
            c, h, w = shape
            written, meant = (f"--input {c}x{h}x{w}", f"{w}x{c}x{h}") if override else \
                (f"input [{c}, {h}, {w}]", f"[{w}, {c}, {h}]")
            found.append(LintWarning(
                "W005", f"{written} looks channels-last: archc reads [channels, height, width] (batch left out), "
                f"so this is {c} channels of {h}x{w}", None if override else _input_loc(source),
                hint=f"did you mean {meant}?"))
    return [format_error(w) for w in lint(a, source, extra=found)]  # W005 first, silenced like the others


def _input_loc(source: Any) -> Any:
    """Where the spec (or the spec it extends) writes `input:`."""
    return source.data.val_locs.get("input", source.data.loc)


def add_check(sub: Any) -> None:
    c = spec_command(sub, "check", _check, "validate specs and infer every shape (no torch)", many=True)
    c.description = "Validate specs and infer every shape (no torch). A spec named - is read from stdin."
    c.add_argument("-q", "--quiet", action="store_true")
    c.add_argument("--strict", action="store_true",
                   help="exit 1 when there are lint warnings (silence one with `lint: {ignore: {CODE: reason}}`)")


def _summary(args: argparse.Namespace) -> int:
    from archc import check
    from archc.analyze.summary import to_json, to_text

    a = check(args.spec, _parse_set(args.set), _parse_input(args.input), _limits(args))
    if args.json:
        print(json.dumps(to_json(a, args.depth, args.batch, args.dtype), indent=1))
    else:
        print(to_text(a, args.depth, args.batch, args.dtype))
    return 0


def add_summary(sub: Any) -> None:
    s = spec_command(sub, "summary", _summary, "per-node table: shapes, parameters, MACs")
    s.add_argument("--depth", type=_int_from(1), default=None, help="collapse to this many path levels")
    s.add_argument("--json", action="store_true")
    s.add_argument("--batch", type=_int_from(1), default=1, help="batch size for the memory estimates")
    s.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32")


def _diff(args: argparse.Namespace) -> int:
    from archc import check
    from archc.analyze.diff import diff, diff_text

    limits = _limits(args)
    a = check(args.spec, None, _parse_input(args.input), limits)
    b = check(args.other or args.spec, _parse_set(args.set), _parse_input(args.input), limits)
    labels = (str(args.spec), " ".join([str(args.other or args.spec), *(f"--set {x}" for x in args.set or [])]))
    fmt = next((f for f in ("svg", "png", "pdf", "html") if getattr(args, f)), None)
    if fmt is None:
        result = diff(a, b, labels)
        print(json.dumps(result, indent=1) if args.json else diff_text(result))
        return 0
    from archc.fileio import atomic_write
    from archc.render.output import render_diff
    from archc.render.report import diff_page

    data = (diff_page(a, b, labels, args.depth).encode() if fmt == "html" else
            render_diff(a, b, fmt, labels, args.depth, rankdir=args.rankdir))
    target = args.output or f"diff.{fmt}"
    atomic_write(target, data)
    print(f"wrote {target}", file=sys.stderr)
    return 0


def add_diff(sub: Any) -> None:
    d = spec_command(sub, "diff", _diff, "compare two specs, or a spec with and without --set overrides")
    d.description = ("Compare A (the first spec, as written) with B (the second spec, or A again); --set "
                     "overrides apply to B only. Without a format flag prints the differences; --svg/--png/--pdf/"
                     "--html draw the union of both in the folded view, coloured added / removed / changed.")
    next(x for x in d._actions if x.dest == "set").help = "override a parameter of B (the right side) only"
    d.add_argument("other", nargs="?", help="B, the second spec (default: A again, with the --set overrides)")
    d.add_argument("--json", action="store_true")
    dfmt = d.add_mutually_exclusive_group()
    for f in ("svg", "png", "pdf", "html"):
        dfmt.add_argument(f"--{f}", action="store_true", help=f"write the diff diagram as {f.upper()}")
    d.add_argument("-o", "--output", help="diagram file; default diff.EXT")
    d.add_argument("--depth", type=_int_from(0), default=None, help="open this many levels of the hierarchy")
    d.add_argument("--rankdir", choices=("TB", "LR"), default="TB")
