"""`archc diff`: what changed between two specs or two parameter settings."""

from __future__ import annotations

from typing import Any

from archc.analyze.shapes import Analysis
from archc.analyze.summary import rows

__all__ = ["diff", "diff_text"]


def _node_sig(analysis: Analysis) -> dict[str, tuple[str, str, tuple[int, ...]]]:
    return {p: (i.node.op, repr(dict(i.node.args)), i.shape) for p, i in analysis.info.items()}


def diff(a: Analysis, b: Analysis) -> dict[str, Any]:
    """Nodes added/removed/changed, per-stage and total parameters and MACs of A and B."""
    sa, sb = _node_sig(a), _node_sig(b)
    changed = [p for p in sa if p in sb and sa[p] != sb[p]]
    stages_a = {r.path: r for r in rows(a, depth=1)}
    stages_b = {r.path: r for r in rows(b, depth=1)}
    order = list(stages_a) + [p for p in stages_b if p not in stages_a]
    stages = [{"stage": p,
               "params": [stages_a[p].params if p in stages_a else 0, stages_b[p].params if p in stages_b else 0],
               "macs": [stages_a[p].macs if p in stages_a else 0, stages_b[p].macs if p in stages_b else 0]}
              for p in order]
    return {
        "a": a.graph.name, "b": b.graph.name,
        "added": [p for p in sb if p not in sa],
        "removed": [p for p in sa if p not in sb],
        "changed": [{"path": p, "a": [sa[p][0], list(sa[p][2])], "b": [sb[p][0], list(sb[p][2])]} for p in changed],
        "stages": [s for s in stages if s["params"][0] != s["params"][1] or s["macs"][0] != s["macs"][1]],
        "params": [a.params, b.params],
        "macs": [a.macs, b.macs],
        "output_shape": [[list(s) for s in a.output_shapes], [list(s) for s in b.output_shapes]],
    }


def _delta(x: int, y: int) -> str:
    return f"{y - x:+,}" if x == 0 else f"{y - x:+,} ({(y - x) / x:+.1%})"


def _listing(title: str, paths: list[str], limit: int = 12) -> list[str]:
    if not paths:
        return []
    more = f" ... and {len(paths) - limit} more" if len(paths) > limit else ""
    return [f"{title} ({len(paths)}): {', '.join(paths[:limit])}{more}"]


def diff_text(d: dict[str, Any]) -> str:
    out = [f"--- {d['a']}", f"+++ {d['b']}"]
    out += _listing("added nodes", d["added"]) + _listing("removed nodes", d["removed"])
    out += _listing("changed nodes", [c["path"] for c in d["changed"]])
    if d["stages"]:
        out += ["", f"{'stage':<16} {'params A':>14} {'params B':>14} {'delta':>22} {'MACs A':>16} {'MACs B':>16}"]
        for s in d["stages"]:
            (pa, pb), (ma, mb) = s["params"], s["macs"]
            out.append(f"{s['stage']:<16} {pa:>14,} {pb:>14,} {_delta(pa, pb):>22} {ma:>16,} {mb:>16,}")
    (pa, pb), (ma, mb) = d["params"], d["macs"]
    out += ["", f"parameters: {pa:,} -> {pb:,} ({_delta(pa, pb)})", f"MACs: {ma:,} -> {mb:,} ({_delta(ma, mb)})"]
    if d["output_shape"][0] != d["output_shape"][1]:
        out.append(f"output: {d['output_shape'][0]} -> {d['output_shape'][1]}")
    if not (d["added"] or d["removed"] or d["changed"]):
        out.append("no structural differences")
    return "\n".join(out)
