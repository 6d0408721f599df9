"""Write the folded tree (emit.py's groups and nodes, fold.py's blocks) as spec text: each node as a flow
mapping with its defaults and implicit ``in`` left out, ``nn.Sequential`` scopes as ``seq:``, runs of one block
as ``each:`` items."""

from __future__ import annotations

from typing import Any

from archc.importer.fold import CONTAINERS, Node, run_item
from archc.importer.yaml_scalar import scalar

__all__ = ["render"]


def defaults(op: str) -> dict[str, Any]:
    """The default arguments of an archc op ({} for a block of the spec)."""
    from archc.blocks.base import REQUIRED
    from archc.blocks.registry import get, is_registered

    if not is_registered(op):
        return {}
    return {k: p.default for k, p in get(op).params.items() if p.default is not REQUIRED}


def implicit(ins: list[str], prev: str | None) -> bool:
    """True when ``in`` is what the node reads without saying: the previous sibling, or the input first."""
    return ins == [prev or "input"]


def flow(node: Node, prev: str | None, blocks: dict[str, Node]) -> str:
    """One node as a flow mapping (an op or a block use), its defaults left out."""
    dflt = blocks[node["op"]]["_defaults"] if node["op"] in blocks else defaults(node["op"])
    items = [f"op: {node['op']}"]
    for k, v in node.items():
        if k in ("op", "in") or k.startswith("_") or (k in dflt and repr(dflt[k]) == repr(v)):
            continue
        items.append(f"{k}: {scalar(v)}")
    if not implicit(node["in"], prev):
        items.append(f"in: {scalar(node['in'][0]) if len(node['in']) == 1 else scalar(node['in'])}")
    if len(items) == 1:
        return node["op"]
    return "{" + ", ".join(items) + "}"


def lines(node: Node, indent: int, blocks: dict[str, Node]) -> list[str]:
    """The body lines of a group (``seq:`` or ``nodes:``), at ``indent``."""
    pad = " " * indent
    out: list[str] = []
    names = list(node.get("nodes", {}))
    seq = indent > 0 and node.get("_seq") and names == [str(k) for k in range(len(names))] and all(  # top: nodes:
        implicit(c["in"], names[k - 1] if k else None) for k, c in enumerate(node["nodes"].values()))
    out.append(pad + ("seq:" if seq else "nodes:"))
    before: str | None = None
    runs = {start: length for start, length in node.get("_runs", [])} if seq else {}
    skip = 0
    for k, (name, child) in enumerate(node["nodes"].items()):
        head = pad + ("  - " if seq else f"  {name}: ")
        if skip:
            skip -= 1
        elif k in runs:
            kids = list(node["nodes"].values())[k:k + runs[k]]
            item = run_item(kids, blocks[child["op"]])
            use = flow({**item["items"][0], "in": [before or "input"]}, before, blocks)
            out.append(head + f"{{each: {scalar(item['each'])}, items: [{use}]}}")
            skip = runs[k] - 1
        elif "op" in child:
            out.append(head + flow(child, before, blocks))
        else:
            note = f"  # {child['_cls']}" if child.get("_cls") not in CONTAINERS and not seq else ""
            out.append(head.rstrip() + note)
            inner = indent + 4
            if not implicit(child["in"], before):
                out.append(" " * inner + f"in: {scalar(child['in'][0])}")
            for key in ("when", "else"):
                if key in child:
                    out.append(" " * inner + f"{key}: {scalar(child[key])}")
            out.extend(lines(child, inner, blocks))
        before = name
    if seq:  # seq items that are groups start with '- ' then their keys
        out = _fix_seq_groups(out, pad)
    return out


def _fix_seq_groups(out: list[str], pad: str) -> list[str]:
    """A seq item that is a group: '- ' alone on its line is joined to the item's first key."""
    fixed: list[str] = []
    for line in out:
        if fixed and fixed[-1] == pad + "  -":
            fixed[-1] = pad + "  - " + line.lstrip()
        else:
            fixed.append(line)
    return fixed


def render(top: Node, name: str, input_shape: tuple[int, ...], source: str,
           blocks: dict[str, Node] | None = None) -> str:
    """The spec text."""
    origin = source if source == top["_cls"] else f"{source} ({top['_cls']})"
    out = [f"# Imported by `archc import` from {origin}.", "archc: 1", f"name: {name}",
           f"input: {scalar(list(input_shape))}"]
    if blocks:
        out.append("blocks:")
        for bname, block in blocks.items():
            out.append(f"  {bname}:  # {block['_cls']}")
            if block["args"]:
                out.append("    args: {" + ", ".join(f"{k}: {v}" for k, v in block["args"].items()) + "}")
            out.extend(lines(block, 4, blocks))
    out.extend(lines(top, 0, blocks or {}))
    if top.get("_outputs"):  # the training-only outputs after the first (GoogLeNet's auxiliary heads)
        first, *rest = top["_outputs"]
        out.append("outputs: [" + ", ".join([scalar(first), *(f"{{node: {scalar(r)}, train_only: true}}"
                                                                for r in rest)]) + "]")
    return "\n".join(out) + "\n"
