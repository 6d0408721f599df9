"""The union of two graphs in the folded view, for `archc diff --svg`: B's units, plus A's units
that have no counterpart in B; each marked added, removed or changed (a member node added,
removed or changed: op, arguments, output shape or parameters). Nodes are paired as in
`archc diff` (analyze.diff: by structure, not by index)."""

from __future__ import annotations

import re
from typing import Any

from archc.analyze import Analysis
from archc.analyze.diff import Aligner, change_text, diff, node_status, param_text
from archc.analyze.summary import fmt_count
from archc.render.layout import Layout, Unit, units

__all__ = ["diff_layout", "REMOVED"]

REMOVED = "removed/"  # id prefix of A's units that have no counterpart in B


def _title(label: str) -> str:
    return re.sub(r" x(\d+)$", r" ×\1", label)


def _status(u: Unit, a_units: list[str], la: Layout, pairs: dict[str, str], moved: set[str]) -> str:
    if not a_units:
        return "added"
    a_members = [m for k in a_units for m in la.units[k].members]
    if len(a_units) > 1 or any(m in moved for m in u.members) or any(m not in pairs for m in a_members):
        return "changed"
    return ""


def diff_layout(a: Analysis, b: Analysis, depth: int | None = None, expand: bool = False
                ) -> tuple[Layout, list[str]]:
    """(union layout, notes: per-stage and total parameter and MAC deltas)."""
    la, lb = units(a, depth, expand), units(b, depth, expand)
    aligner = Aligner(a.graph, b.graph)
    status = node_status(a, b, aligner)
    pairs, added, _, changed = status
    d = diff(a, b, aligner=aligner, status=status)
    changes = {c["path"]: text for c in d["changed"] if (text := change_text(c))}
    back = {y: x for x, y in pairs.items()}
    moved = set(added) | set(changed)
    out: dict[str, Unit] = {}
    a_to_union: dict[str, str] = {}
    for key, u in lb.units.items():
        a_units = list(dict.fromkeys(la.unit_of[back[m]] for m in u.members if m in back))
        u.status = _status(u, a_units, la, pairs, moved)
        for k in a_units:
            a_to_union.setdefault(k, key)
        if u.status == "changed":
            before = [la.units[k] for k in a_units]
            was = " + ".join(_title(x.label) for x in before)
            if was != _title(u.label):
                u.notes.append(f"A: {was}")
            u.notes += _arg_notes(u, changes)
            delta = u.params - sum(x.params for x in before)
            if delta:
                u.notes.append(f"{delta:+,} params")
        out[key] = u
    for key, u in la.units.items():
        if key not in a_to_union:
            u.status = "removed"
            a_to_union[key] = REMOVED + key
            out[REMOVED + key] = u
    edges = list(lb.edges)
    seen = {(x, y, t) for x, y, _, t in edges}
    for x, y, shape, tag in la.edges:
        ux, uy = a_to_union.get(x, x), a_to_union.get(y, y)
        if (ux.startswith(REMOVED) or uy.startswith(REMOVED)) and ux != uy and (ux, uy, tag) not in seen:
            seen.add((ux, uy, tag))
            edges.append((ux, uy, shape, tag))
    in_b = {c.path for c in lb.clusters}
    clusters = list(lb.clusters) + [g for g in la.clusters if g.path not in in_b]
    layout = Layout(out, {**lb.unit_of, **{m: v for m, v in la.unit_of.items() if m not in lb.unit_of}},
                    clusters, edges, list(lb.inputs))
    return layout, _notes(d)


def _arg_notes(u: Unit, changes: dict[str, str], limit: int = 3) -> list[str]:
    """The argument changes of a unit's members: 'out_channels 64 -> 96' for one node; for a folded unit, each
    distinct change once, with the first member it names ('out_channels 64 -> 96 (0.conv1 and 3 more)')."""
    found: dict[str, list[str]] = {}
    for m in u.members:
        if m in changes:
            found.setdefault(changes[m], []).append(m)
    if list(found.values()) == [[u.path]]:
        return list(found)
    out = []
    for text, members in list(found.items())[:limit]:
        name = members[0][len(u.path) + 1:] if members[0].startswith(u.path + ".") else members[0]
        out.append(f"{text} ({name}" + (f" and {len(members) - 1} more)" if len(members) > 1 else ")"))
    if len(found) > limit:
        out.append(f"+{len(found) - limit} more argument changes")
    return out


def _notes(d: dict[str, Any]) -> list[str]:
    """'layer3: params +18,992,128 (+267.6%), MACs +3.7 G' for each stage that changed, and the totals."""
    def delta(x: int, y: int, count: bool) -> str:
        text = f"{y - x:+,}" if count else ("+" if y >= x else "-") + fmt_count(abs(y - x)).strip()
        return text + (f" ({(y - x) / x:+.1%})" if x else "")

    out = [f"param {param_text(p)}" for p in d.get("param_changes", [])]
    for s in d["stages"]:
        (pa, pb), (ma, mb) = s["params"], s["macs"]
        out.append(f"{s['stage']}: params {delta(pa, pb, True)}, MACs {delta(ma, mb, False)}")
    (pa, pb), (ma, mb) = d["params"], d["macs"]
    macs = f"{fmt_count(ma).strip()} -> {fmt_count(mb).strip()}"
    out.append(f"total: params {pa:,} -> {pb:,} ({delta(pa, pb, True)}), MACs {macs}")
    added, removed, changed = len(d["added"]), len(d["removed"]), len(d["changed"])
    out.append(f"nodes: {added} added, {removed} removed, {changed} changed")
    return out
