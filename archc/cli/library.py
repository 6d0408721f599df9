"""`archc list`, `archc blocks`, `archc schema`: what is built in."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _list(args: argparse.Namespace) -> int:
    from archc import check
    from archc.resolve import builtin_dir, builtin_names

    rows = []
    for name in builtin_names():
        a = check(builtin_dir() / f"{name}.yaml")
        ref = a.graph.meta.get("reference", "")
        rows.append({"name": name, "example": "/" in name,  # specs/examples/NAME.yaml: examples/NAME
                     "family": a.graph.meta.get("family", ""), "params": a.params, "input": list(a.graph.inputs[0][1]),
                     "reference": ref if isinstance(ref, str) else dict(ref)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        print(f"{r['name']:<22} {r['family']:<14} {r['params']:>14,}  {'x'.join(map(str, r['input'])):<12} "
              f"{_reference_text(r['reference'])}")
    return 0


def _reference_text(ref: Any) -> str:
    if isinstance(ref, str):
        return ref
    for key in ("torchvision", "paper", "timm", "library", "url"):
        if ref.get(key):
            return f"timm:{ref[key]}" if key == "timm" else str(ref[key])
    return ""


def add_list(sub: Any) -> None:
    ls = sub.add_parser("list", help="the built-in specs")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(fn=_list)


def _blocks(args: argparse.Namespace) -> int:
    from archc import blocks

    if args.name:
        return _block_detail(args.name)
    for name in blocks.names():
        b = blocks.get(name)
        params = ", ".join(k if p.default is blocks.REQUIRED else f"{k}={p.default!r}" for k, p in b.params.items())
        print(f"{name}({params})\n    {b.doc.split(':', 1)[-1].strip()}")
    return 0


def _block_detail(name: str) -> int:
    """`archc blocks NAME`: the whole description, each argument's kind, default, allowed values and bounds."""
    from difflib import get_close_matches

    from archc import blocks
    from archc.errors import UsageError

    if name not in blocks.names():
        close = get_close_matches(name, blocks.names(), n=3)
        raise UsageError(f"no block '{name}'", hint=f"did you mean {' or '.join(close)}?" if close else
                         "`archc blocks` lists them all")
    b = blocks.get(name)
    low, high = b.arity
    inputs = f"{low}" if low == high else f"{low} or more" if high is None else f"{low} to {high}"
    print(f"{name} ({b.category}; {inputs} input{'s' if high != 1 else ''}"
          + (f"; tags {', '.join(sorted(b.tags))}" if b.tags else "") + ")")
    print(f"    {b.doc.strip()}")
    for key, p in b.params.items():
        facts = [p.kind, "required" if p.default is blocks.REQUIRED else f"default {p.default!r}"]
        if p.choices:
            facts.append(("one of " if p.kind == "str" else "or ") + ", ".join(map(repr, p.choices)))
        if p.min is not None:
            facts.append(f">= {p.min:g}")
        if p.max is not None:
            facts.append(f"<= {p.max:g}")
        print(f"  {key}: {'; '.join(facts)}" + (f"\n      {p.doc}" if p.doc else ""))
    return 0


def add_blocks(sub: Any) -> None:
    b = sub.add_parser("blocks", help="the block library; `archc blocks NAME`: one block in full")
    b.add_argument("name", nargs="?", help="a block: its description and each argument's kind, default and bounds")
    b.set_defaults(fn=_blocks)


def _schema(args: argparse.Namespace) -> int:
    from archc.schema import schema_text

    sys.stdout.write(schema_text())
    return 0


def add_schema(sub: Any) -> None:
    sub.add_parser("schema", help="print the JSON Schema of specs").set_defaults(fn=_schema)
