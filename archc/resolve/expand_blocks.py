"""Block instances (spec blocks, memoised through memo.py) and primitive ops."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archc import blocks as library
from archc.errors import ArchcError, ResolveError, get_close_matches
from archc.expr import describe, division_hint, fits
from archc.load import LocDict
from archc.resolve.expand_base import (
    INFERRED_WIDTHS,
    RESERVED,
    WIDTH_HINT,
    ExpanderBase,
    Ref,
    _Pending,
)
from archc.resolve.memo import expand_instance


class BlocksMixin(ExpanderBase):
    def instance(self, sid: int, name: str, op: str, spec: LocDict, env: Mapping[str, Any], path: str,
                 refs: list[Ref]) -> None:
        bdef = self.blocks[op]
        declared = bdef.get("args") or LocDict(bdef.loc)
        benv = dict(env)
        for key in spec:
            if key not in RESERVED and key not in declared:
                close = get_close_matches(key, list(declared), 1)
                raise ResolveError(f"block '{op}' has no argument '{key}'", spec.key_locs.get(key),
                                   hint=WIDTH_HINT.format(key=key) if key in INFERRED_WIDTHS else
                                   f"did you mean '{close[0]}'?" if close else
                                   f"arguments: {', '.join(declared) or 'none'}")
        for arg, decl in declared.items():
            default = decl.get("default", _MISSING) if isinstance(decl, LocDict) else _MISSING
            if arg in spec:
                benv[arg] = self.field(spec, arg, env)
            elif default is not _MISSING:
                benv[arg] = self.value(default, benv, decl.val_locs.get("default"))
            else:
                raise ResolveError(f"block '{op}' needs argument '{arg}'", spec.loc)
            kind = decl.get("type", "any") if isinstance(decl, LocDict) else decl
            if not fits(kind, benv[arg]):
                raise ResolveError(f"argument '{arg}' of block '{op}' should be {describe(kind)}, got "
                                   f"{benv[arg]!r}", spec.val_locs.get(arg, spec.loc),
                                   hint=division_hint(describe(kind), benv[arg]))
        body = bdef["seq"] if "seq" in bdef else bdef["nodes"]
        bspec = LocDict(spec.loc)
        for key in ("out", "outputs"):
            if key in bdef:
                bspec[key], bspec.val_locs[key] = bdef[key], bdef.val_locs[key]
        try:
            expand_instance(self, op, sid, name, bspec, body, bdef.get("inputs"), benv, path, refs)  # memo.py
        except ArchcError as e:
            note = instance_note(op, path, spec)
            for err in (e, *e.others):
                err.notes.append(note)
            raise

    def primitive(self, sid: int, name: str, op: str, spec: LocDict, env: Mapping[str, Any], path: str,
                  refs: list[Ref]) -> None:
        try:
            block = library.get(op)
        except ArchcError as e:  # unknown op: suggest this spec's own blocks too
            local = get_close_matches(op, list(self.blocks), 1)
            raise ResolveError(e.message, spec.val_locs.get("op", spec.loc), node=path,
                               hint=f"did you mean '{local[0]}'?" if local else e.hint) from None
        lo, hi = block.arity
        if len(refs) < lo or (hi is not None and len(refs) > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
            raise ResolveError(f"{op} takes {want} input(s), got {len(refs)}", spec.val_locs.get("in", spec.loc),
                               node=path, hint="name them with `in: [a, b]`" if lo > 1 else None)
        args: dict[str, Any] = {}
        for key in spec:
            if key in RESERVED:
                continue
            if key not in block.params:
                close = get_close_matches(key, list(block.params), 1)
                raise ResolveError(f"{op} has no argument '{key}'", spec.key_locs.get(key), node=path,
                                   hint=WIDTH_HINT.format(key=key) if key in INFERRED_WIDTHS else
                                   f"did you mean '{close[0]}'?" if close else
                                   f"arguments: {', '.join(block.params) or 'none'}")
        for key, param in block.params.items():
            if key in spec:
                value = self.field(spec, key, env)
                expected = param.check(value)
                if expected:
                    yaml11 = isinstance(value, str) and value.lower() in _YAML11_BOOLS
                    raise ResolveError(f"{op}: {key} should be {expected}, got {value!r}",
                                       spec.val_locs.get(key), node=path,
                                       hint="archc reads YAML 1.2: only true/false are booleans" if yaml11
                                       else division_hint(expected, value))
                args[key] = value
            elif param.default is library.REQUIRED:
                raise ResolveError(f"{op} needs argument '{key}'", spec.loc, node=path)
            else:
                args[key] = param.default
        self.count(1, spec.loc, f"node '{path}'")
        self.pending.append(_Pending(path, op, args, refs, spec.val_locs.get("op", spec.loc)))
        self.ops[path] = op
        self.define(sid, name, ("node", path), spec.loc)

def instance_note(op: str, path: str, spec: LocDict) -> str:
    """'in block X (path) used at LOC with a=1 (at LOC)': where the arguments of a failing block came from."""
    args = [f"{k}={v!r} (at {spec.val_locs[k]})" for k, v in spec.items()
            if k not in RESERVED and k in spec.val_locs and not isinstance(v, (list, dict))][:4]
    return f"in block '{op}' ({path}) used at {spec.loc}" + (f" with {', '.join(args)}" if args else "")


_MISSING = object()
_YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n"}
