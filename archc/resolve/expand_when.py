"""`when:`/`else:`: what a skipped node's name stands for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archc.errors import ResolveError
from archc.load import LocDict
from archc.resolve.expand_base import (
    ExpanderBase,
    Ref,
    _seq_else,
)
from archc.resolve.names import written_name


class WhenMixin(ExpanderBase):
    def stands_for(self, sid: int, name: str, spec: LocDict, env: Mapping[str, Any], refs: list[Ref],
                   seq: bool, path: str) -> Ref:
        """What a node's name stands for when its `when:` is false: its input, or with several inputs
        the one its `else:` names (required: a skipped `add: {in: [a, b]}` is neither a nor b by nature).
        A `seq:` item is dropped instead (the next item reads the one before), so it takes no `else:`."""
        eloc = spec.key_locs.get("else")
        if "else" in spec and "when" not in spec:
            raise ResolveError(f"'{name}' has `else:` but no `when:`", eloc, node=path,
                               hint="`else:` names the input a node stands for when its `when:` is false")
        if "else" in spec and seq:
            raise _seq_else(spec)
        if "else" not in spec:
            if "when" in spec and len(refs) > 1 and not seq:
                names = ", ".join(f"'{r[1]}'" for r in refs)
                raise ResolveError(f"'{name}' reads {len(refs)} inputs ({names}) and may be skipped: say which one "
                                   "it stands for when its `when:` is false", spec.val_locs.get("when", spec.loc),
                                   node=path,
                                   hint=f"add `else: {refs[0][1]}` (or another of its inputs); a skipped node's name "
                                        "stands for its input")
            return refs[0]
        wanted = written_name(self.value(spec["else"], env, spec.val_locs.get("else")))
        for ref in refs:
            if ref[1] == wanted:
                return (sid, ref[1], spec.val_locs.get("else"))
        names = ", ".join(f"'{r[1]}'" for r in refs)
        raise ResolveError(f"`else: {wanted}` is not an input of '{name}' (it reads {names})",
                           spec.val_locs.get("else"), node=path,
                           hint="`else:` names the input the node stands for when skipped")
