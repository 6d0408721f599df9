"""Option types and parsers shared by the commands: --set, --input, numbers, --weights, the limits."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from archc.errors import ArchcError, UsageError


def _parse_set(items: list[str]) -> dict[str, Any]:
    from archc.load import load_text

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects name=value, got '{item}'", hint="e.g. --set num_classes=10")
        try:
            out[key.strip()] = load_text(raw, f"--set {key.strip()}")
        except ArchcError as e:
            raise UsageError(f"--set {key}: {e.message}") from None
    return out


def _parse_input(text: str | None) -> list[int | str] | None:
    """`3x224x224`, or with symbolic sizes `3xHxW` (letters name the unknown sizes)."""
    if text is None:
        return None
    dims: list[int | str] = []
    for part in text.replace(",", "x").split("x"):
        part = part.strip()
        if part.isdigit() and int(part) > 0:
            dims.append(int(part))
        elif part.isidentifier() and part.upper() == part and dims:
            dims.append(part)
        else:
            raise UsageError(f"--input expects sizes like 3x224x224 or 3xHxW, got '{text}'")
    return dims


def _int_from(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``low`` (a count, size, depth or batch); anything else is
    a usage error (exit 2) naming the option, never a negative figure later."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {'positive' if low == 1 else f'at least {low}'}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def _real(low: float, *, above: bool = False, below: float | None = None) -> Callable[[str], float]:
    """An argparse type: a finite number of at least ``low`` (more than ``low`` with ``above``; less than
    ``below`` when given); anything else is a usage error (exit 2) naming the option."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
        if not math.isfinite(value) or value < low or (above and value == low) or (below is not None
                                                                                     and value >= below):
            span = f"{'>' if above else '>='} {low:g}" + (f" and < {below:g}" if below is not None else "")
            raise argparse.ArgumentTypeError(f"must be {span}, got {text}")
        return value

    parse.__name__ = "float"
    return parse


def _weights_options(sp: argparse.ArgumentParser, what: str) -> None:
    """--weights and --no-strict, declared once for every command that loads weights (build, train, predict,
    export); ``what`` is what --weights takes there."""
    sp.add_argument("--weights", help=what)
    sp.add_argument("--no-strict", action="store_true", help="load only the weights that fit and report the "
                    "keys left out (e.g. after changing num_classes); by default every key must fit")


def _limits(args: argparse.Namespace) -> Any:
    from archc.resolve import Limits

    return Limits(max_nodes=args.max_nodes, max_params=args.max_params, max_activation=args.max_activation,
                  max_steps=args.max_steps)


def spec_command(sub: Any, name: str, fn: Callable[[argparse.Namespace], int], help_: str, many: bool = False) -> Any:
    """A command that reads spec(s): the spec argument, --set, --input and the resource limits, declared once."""
    sp = sub.add_parser(name, help=help_)
    sp.add_argument("specs" if many else "spec", nargs="+" if many else None,
                    help="spec file(s) or built-in name(s)")
    sp.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a spec parameter")
    sp.add_argument("--input", metavar="CxHxW", help="input shape without batch, e.g. 3x224x224")
    sp.add_argument("--max-nodes", type=_int_from(1), default=50_000, help="refuse specs with more nodes")
    sp.add_argument("--max-params", type=_int_from(1), default=20_000_000_000, help="refuse larger models")
    sp.add_argument("--max-activation", type=_int_from(1), default=250_000_000,
                    help="refuse a per-sample tensor (input included) with more elements (default: 1 GB fp32)")
    sp.add_argument("--max-steps", type=_int_from(1), default=100_000,
                    help="refuse specs whose expansion (nodes, groups, each items, expressions) takes more steps")
    sp.set_defaults(fn=fn)
    return sp
