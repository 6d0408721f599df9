"""`archc lsp`: the language server for editors."""

from __future__ import annotations

import argparse
from typing import Any

from archc.errors import UsageError


def _lsp(args: argparse.Namespace) -> int:
    try:
        from archc.lsp import serve

        serve()
    except ImportError as e:
        if (e.name or "").partition(".")[0] not in ("pygls", "lsprotocol", "cattrs"):
            raise
        raise UsageError("archc lsp needs pygls, which is not installed", hint="pip install 'archc[lsp]'") from None
    return 0


DESCRIPTION = """\
A Language Server Protocol server on stdin/stdout for editors (needs pygls: pip install 'archc[lsp]').
It analyses the editor's text of each open YAML spec as you type, with the same loader, schema,
resolver, analysis and lints as `archc check`, and answers:

  diagnostics     every error and lint warning at its token (errors in an extended or imported file too)
  hover           a node's op, arguments, shapes, parameters, MACs, receptive field; an op's signature;
                  the value of a ${...}, a param or a block argument
  inlay hints     the output shape at the end of each line that writes a node
  completion      ops, names inside in:, names inside ${, the arguments of a node's op
  definition      a block used as an op, a name read by in:, an extends:/imports: file
  symbols         the outline: blocks, nodes, groups

Set-up: make your editor start `archc lsp` for YAML files (or `python -m archc lsp` inside a virtual
environment), next to yaml-language-server for the schema (`archc schema > archc.schema.json`).
Neovim, VS Code, Helix and Emacs configurations: README.md, section "The editor: archc lsp", and
archc/lsp/README.md, section "Editor setup"."""


def add_lsp(sub: Any) -> None:
    p = sub.add_parser("lsp", help="a Language Server Protocol server over stdio (editors)", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stdio", action="store_true",
                   help="talk over stdin/stdout (the default and only transport; accepted because clients such as "
                   "vscode-languageclient pass it)")
    p.set_defaults(fn=_lsp)
