"""An open spec document, analysed from the editor's text (not the file on disk): the plain-Python side of
`archc lsp` (no pygls, no torch), one module per concern, re-exported here as one namespace.

| module | what |
|---|---|
| state.py | ``DocState`` (one analysis of one version), ``Site``/``Body``/``Value``, ``is_spec``, ``token_end`` |
| index.py | where nodes, scopes, blocks, `extends:`/`imports:` values and `${...}` values are written |
| cache.py | ``analyse_text`` (load, resolve, analyse, lint) and reuse of the previous analysis across edits |
| hover.py | ``at``; hover on names, ops, values, params, block arguments, `share:` and `NAME.*`; ``inlay_hints`` |
| completion.py | ops, `in:` names (`NAME.*`), `share:`/`after:`/`else:` values, `${` names, arguments, node keys |
| symbols.py | ``definition`` and the outline (``symbols``) |

Lines and columns are 1-based here, as in :class:`archc.errors.Loc`.
"""

from __future__ import annotations

from archc.lsp.cache import analyse_text, same_tree
from archc.lsp.completion import (
           NODE_KEYS,
           expr_names,
           fanin_names,
           link_names,
           op_args,
           op_names,
           op_of_mapping,
           scope_names,
)
from archc.lsp.hover import (
           at,
           hover_fanin,
           hover_link,
           hover_node,
           hover_op,
           hover_param,
           hover_value,
           inlay_hints,
           param_origins,
           value_at,
)
from archc.lsp.state import Body, DocState, Site, Value, is_spec, token_end
from archc.lsp.symbols import Symbol, definition, symbols

__all__ = ["Body", "DocState", "NODE_KEYS", "Site", "Symbol", "Value", "analyse_text", "at", "definition", "expr_names",
           "fanin_names", "hover_fanin", "hover_link", "link_names",
           "hover_node", "hover_op", "hover_param", "hover_value", "inlay_hints", "op_args", "op_names",
           "op_of_mapping", "param_origins", "same_tree", "scope_names", "symbols", "token_end", "is_spec",
           "value_at"]
