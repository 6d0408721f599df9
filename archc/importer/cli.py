"""`archc import SOURCE`: write the spec of a torchvision, timm or user module."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from archc.errors import UsageError

HELP = """SOURCE is torchvision:NAME, torchvision:NAME?k=v&k2=v2 (builder arguments, values read as JSON
where they parse), timm:NAME (needs timm: pip install timm) or path/to/file.py:Factory (a class or
function in your file, called with --args). The file form RUNS YOUR PYTHON FILE: it is the one archc
command that executes code, and only the file you name here."""


def add_parser(sub: Any) -> None:
    """Register the `import` command on the CLI's subparsers."""
    p = sub.add_parser("import", help="write the archc spec of a PyTorch model (runs the Python file you name)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="torchvision:NAME[?k=v], timm:NAME or path/to/file.py:Factory")
    p.add_argument("-o", "--output", metavar="OUT.yaml", help="write the spec here (atomically); default: stdout")
    p.add_argument("--input", metavar="CxHxW", default="3x224x224", help="the input shape without batch")
    p.add_argument("--args", metavar="JSON", help="keyword arguments for the builder or Factory, a JSON object")
    p.set_defaults(fn=run)


def _shape(text: str) -> tuple[int, ...]:
    if not re.fullmatch(r"\d+(x\d+)*", text) or any(int(s) < 1 for s in text.split("x")):
        raise UsageError(f"--input expects positive sizes like 3x224x224, got '{text}'")
    return tuple(int(s) for s in text.split("x"))


def _kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"--args is not JSON: {e}", hint='e.g. --args \'{"num_classes": 10}\'') from None
    if not isinstance(value, dict):
        raise UsageError("--args must be a JSON object", hint='e.g. --args \'{"num_classes": 10}\'')
    return value


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _call(factory: Any, kwargs: dict[str, Any], what: str) -> Any:
    try:
        return factory(**kwargs)
    except Exception as e:  # the user's or the library's code: report it, never a traceback
        raise UsageError(f"{what} failed: {type(e).__name__}: {e}") from None


def load_source(source: str, kwargs: dict[str, Any]) -> tuple[Any, str]:
    """The module SOURCE names and a spec name for it."""
    kind, _, rest = source.partition(":")
    if kind == "torchvision" and rest:
        import torchvision

        name, _, query = rest.partition("?")
        builders = set(torchvision.models.list_models())
        if name not in builders:
            import difflib

            close = difflib.get_close_matches(name, sorted(builders), n=1)
            raise UsageError(f"torchvision has no model '{name}'", hint=f"did you mean '{close[0]}'?" if close
                             else "torchvision.models.list_models() lists them")
        kwargs = {**{k: _value(v) for k, v in parse_qsl(query, keep_blank_values=True)}, **kwargs}
        return _call(lambda **k: torchvision.models.get_model(name, **k), kwargs, f"torchvision {name}"), name
    if kind == "timm" and rest:
        if importlib.util.find_spec("timm") is None:
            raise UsageError("timm is not installed", hint="pip install timm (the dev extra pins it: pip install "
                                                            "'archc[dev]')")
        import timm

        return _call(lambda **k: timm.create_model(rest, **k), kwargs, f"timm {rest}"), rest.replace("-", "_")
    path, sep, factory = source.rpartition(":")
    if not sep or not path.endswith(".py") or not factory.isidentifier():
        raise UsageError(f"cannot read SOURCE '{source}'",
                         hint="torchvision:NAME, timm:NAME or path/to/file.py:Factory")
    return _call(getattr(_user_module(Path(path)), factory, None) or _no_factory(path, factory), kwargs,
                 f"{path}:{factory}"), re.sub(r"\W", "_", Path(path).stem)


def _no_factory(path: str, factory: str) -> Any:
    raise UsageError(f"{path} defines no '{factory}'", hint="name a class or function of that file")


def _user_module(path: Path) -> Any:
    """Import the user's file (this runs it)."""
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"archc_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's code
        raise UsageError(f"importing {path} failed: {type(e).__name__}: {e}") from None
    return module


def run(args: argparse.Namespace) -> int:
    from archc.fileio import atomic_write
    from archc.importer import from_module

    shape = _shape(args.input)
    module, name = load_source(args.source, _kwargs(args.args))
    text = from_module(module, shape, name=name, source=args.source)
    if args.output:
        try:
            atomic_write(args.output, text)
        except OSError as e:
            raise UsageError(f"cannot write {args.output}: {e.strerror or e}") from None
    else:
        sys.stdout.write(text)
    return 0
