"""The rule for node names, written or generated, and the names a node cannot take.

A written name must match the schema's `ident` pattern (read from the schema itself, so the two
cannot drift); a generated one (seq/repeat index, repeat's `name:` template) obeys the same rule,
or is a plain index such as `0`. A node becomes a module attribute, so `forward`, `training` or
`state_dict` as node names would break the compiled model: MODULE_ATTRIBUTES is kept as data so
that resolving never imports torch; a test checks the list against the installed torch.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from archc.errors import Loc, ResolveError
from archc.schema.fast import schema_doc

__all__ = ["MODULE_ATTRIBUTES", "UnknownName", "check_name", "written_name"]


class UnknownName(ResolveError):
    """A reference to a name that no scope defines (maybe not yet: `in_shape` asks before the end)."""

_INDEX = re.compile(r"[0-9]{1,9}")
# names made by a repeat's `name:` template may also hold '-' (torchvision's RegNet: `block1-0`);
# nothing refers to them by name, and a module name only must not contain '.'
_GENERATED = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


def written_name(value: Any) -> Any:
    """A name as written in a reference: YAML reads `in: 3` (a node named 3) as an integer."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else value


@lru_cache(maxsize=1)
def _ident() -> re.Pattern[str]:
    return re.compile(schema_doc()["$defs"]["ident"]["pattern"])


def check_name(name: Any, loc: Loc | None, origin: str = "", generated: bool = False) -> str:
    """Refuse a node name that a spec could not write (or, ``generated``, a template could not make);
    ``origin`` says where a generated one came from."""
    if not isinstance(name, str):
        raise ResolveError(f"{origin}{str(name)[:80]} is a {type(name).__name__}, not a name", loc)
    shown = f"{origin}'{name[:80]}'"
    if not (_ident().fullmatch(name) or _INDEX.fullmatch(name) or (generated and _GENERATED.fullmatch(name))):
        raise ResolveError(f"{shown} is not a valid name", loc,
                           hint=f"names are letters, digits{', - ' if generated else ' '}and _ (at most 64), "
                                "not starting with a digit, or a plain index such as 0")
    if name in MODULE_ATTRIBUTES or name.startswith("__"):
        raise ResolveError(f"{shown} cannot name a node: it is an attribute of torch modules", loc,
                           hint="choose another name")
    return name


MODULE_ATTRIBUTES = frozenset({
    "T_destination", "_apply", "_backward_hooks", "_backward_pre_hooks", "_boxed_call", "_buffers",
    "_call_impl", "_code", "_compiled_call_impl", "_create_node_hooks", "_deepcopy_hooks", "_deepcopy_init",
    "_erase_node_hooks", "_forward_hooks", "_forward_hooks_always_called", "_forward_hooks_with_kwargs",
    "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_get_backward_hooks", "_get_backward_pre_hooks",
    "_get_name", "_graph", "_is_full_backward_hook", "_lineno_map", "_load_from_state_dict",
    "_load_state_dict_post_hooks", "_load_state_dict_pre_hooks", "_maybe_warn_non_full_backward_hook",
    "_modules", "_named_members", "_non_persistent_buffers_set", "_parameters", "_prologue_start",
    "_recompile_submodules", "_register_create_node_hook", "_register_deepcopy_hook",
    "_register_erase_node_hook", "_register_load_state_dict_pre_hook", "_register_replace_node_hook",
    "_register_state_dict_hook", "_replace_hooks", "_replicate_for_data_parallel", "_save_to_state_dict",
    "_set_replace_hook", "_slow_forward", "_state_dict_hooks", "_state_dict_pre_hooks", "_tracer_cls",
    "_tracer_extras", "_unregister_create_node_hook", "_unregister_deepcopy_hook",
    "_unregister_erase_node_hook", "_unregister_replace_node_hook", "_version", "_wrapped_call",
    "_wrapped_call_impl", "add_module", "add_submodule", "apply", "archc_graph", "bfloat16", "buffers",
    "call_super_init", "children", "code", "compile", "cpu", "cuda", "delete_all_unused_submodules",
    "delete_submodule", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer",
    "get_extra_state", "get_parameter", "get_submodule", "graph", "half", "ipu", "load_state_dict", "meta",
    "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters", "parameters",
    "print_readable", "recompile", "register_backward_hook", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
    "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_",
    "set_extra_state", "set_submodule", "shape_env", "share_memory", "state_dict", "to", "to_empty",
    "to_folder", "train", "training", "type", "xpu", "zero_grad",
})  # archc_graph: set by archc.compile
