"""Fold repeated structure: a pass over the emitted tree (emit.build_tree), no torch involved.

1. Groups of the same Python class whose sub-trees match up to argument values become one
   ``blocks:`` entry; the values that differ become the block's arguments (equal value vectors share
   one argument), and a child some instances lack becomes ``when: "${NAME}"`` (it stands for its
   input when skipped, which is what the instance without it reads).
2. A ``seq:`` group (nn.Sequential) whose children are all uses of one block becomes one node with
   ``repeat: N``; each argument follows ``i`` (a constant, ``A if i == 0 else B``, ``a + b * i`` or a
   list indexed by ``i``).
"""

from __future__ import annotations

import copy
import itertools
import re
from collections import Counter
from typing import Any

from archc.importer.yaml_scalar import scalar

Node = dict[str, Any]
Pos = tuple[tuple[str, ...], str]  # (path of a node inside the group, argument key)
CONTAINERS = ("torch.nn.modules.container.Sequential", "torch.nn.modules.container.ModuleList")
SPEC_KEYS = {"op", "in", "nodes", "seq", "when", "else", "repeat", "as", "name", "args", "lint", "outputs",
             "input", "i", "in_shape", "in_shapes", "replace", "frozen", "init", "each", "items", "index"}
_WILD = object()  # an argument value an instance does not have (its child is absent)


def is_group(n: Node) -> bool:
    return "nodes" in n


def _groups(node: Node, out: list[tuple[Node, str, Node]]) -> None:
    """Every group below ``node`` as (parent, name, group), children before parents."""
    for name, child in node["nodes"].items():
        if is_group(child):
            _groups(child, out)
            out.append((node, name, child))


def _substitute(ins: list[str], gone: dict[str, str]) -> list[str]:
    """Refs to absent children read what the absent child reads."""
    out = []
    for r in ins:
        while r in gone:
            r = gone[r]
        out.append(r)
    return out


def match(t: Node, x: Node, path: tuple[str, ...], vals: dict[Pos, Any], missing: dict[tuple[str, ...], str]) -> bool:
    """Does ``x`` have ``t``'s structure up to argument values (and children it lacks)? Fills ``vals``
    with x's value at each of t's argument positions and ``missing`` with each absent child's path and
    the input it stands for (its ``else:``), chosen so that every reader of it reads what x's reader reads."""
    if is_group(t) != is_group(x):
        return False
    if not is_group(t):
        if t["op"] != x["op"] or set(t) != set(x):
            return False
        vals.update({(path, k): v for k, v in x.items() if k not in ("op", "in") and not k.startswith("_")})
        return True
    if t.get("_cls") != x.get("_cls"):
        return False
    absent = [n for n in t["nodes"] if n not in x["nodes"]]
    kept = [n for n in t["nodes"] if n in x["nodes"]]
    if kept != list(x["nodes"]) or not kept or (absent and t.get("_seq")):
        return False
    last = list(t["nodes"])[-1]
    for combo in itertools.islice(itertools.product(*(t["nodes"][n]["in"] for n in absent)), 64):
        gone = dict(zip(absent, combo, strict=True))
        if _substitute([last], gone) != [kept[-1]]:  # the group's output
            continue
        v2: dict[Pos, Any] = {}
        m2: dict[tuple[str, ...], str] = {}
        if all(_substitute(t["nodes"][n]["in"], gone) == x["nodes"][n]["in"]
               and match(t["nodes"][n], x["nodes"][n], path + (n,), v2, m2) for n in kept):
            vals.update(v2)
            missing.update(m2)
            missing.update({path + (n,): g for n, g in gone.items()})
            return True
    return False


def _size(n: Node) -> int:
    return 1 + sum(_size(c) for c in n["nodes"].values()) if is_group(n) else 1


def _compatible(a: list[Any], b: list[Any]) -> bool:
    return all(x is _WILD or y is _WILD or (x == y and type(x) is type(y)) for x, y in zip(a, b, strict=True))


def _type(values: list[Any]) -> str:
    known = [v for v in values if v is not _WILD]
    if all(isinstance(v, bool) for v in known):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in known):
        return "int"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in known):
        return "float"
    if all(isinstance(v, str) for v in known):
        return "str"
    return "list" if all(isinstance(v, list) for v in known) else "any"


def _name(key: str, path: tuple[str, ...], taken: set[str]) -> str:
    base = re.sub(r"\W", "_", key)
    for cand in (base, "_".join((*path[-1:], base)), "_".join((*path, base))):
        cand = re.sub(r"\W", "_", cand)
        if not cand[0].isdigit() and cand not in taken and cand not in SPEC_KEYS:
            return cand
    k = 2
    while f"{base}{k}" in taken:
        k += 1
    return f"{base}{k}"


def _at(root: Node, path: tuple[str, ...]) -> Node:
    for n in path:
        root = root["nodes"][n]
    return root


def block_name(cls: str, taken: set[str]) -> str:
    """BasicBlock -> basic_block, unique among the ops and blocks."""
    from archc.blocks.registry import is_registered

    short = cls.rsplit(".", 1)[-1]
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", short).lower()
    base = re.sub(r"\W", "_", base).strip("_") or "block"
    name, k = base, 2
    while name in taken or is_registered(name) or name in SPEC_KEYS:
        name, k = f"{base}_{k}", k + 1
    return name


def _paths(g: Node, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every child path of a group, in order."""
    out: list[tuple[str, ...]] = []
    for n, c in g["nodes"].items():
        out.append(path + (n,))
        if is_group(c):
            out.extend(_paths(c, path + (n,)))
    return out


def _make_block(insts: list[tuple[Node, str, Node]], template: Node, blocks: dict[str, Node]) -> bool:
    """Replace ``insts`` (all matching ``template``) by uses of one new block (False: they cannot share one)."""
    per: list[dict[Pos, Any]] = []
    absent: list[dict[tuple[str, ...], str]] = []
    for _, _, g in insts:
        vals: dict[Pos, Any] = {}
        missing: dict[tuple[str, ...], str] = {}
        match(template, g, (), vals, missing)
        per.append(vals)
        absent.append(missing)
    elses: dict[tuple[str, ...], str] = {}
    for a in absent:
        for path, src in a.items():
            if elses.setdefault(path, src) != src:
                return False  # instances skip the same child for different inputs: not one block
    tvals: dict[Pos, Any] = {}
    match(template, template, (), tvals, {})
    body = copy.deepcopy(template)
    args: dict[str, str] = {}
    uses: list[dict[str, Any]] = [{} for _ in insts]
    defaults: dict[str, Any] = {}
    # optional children: a bool argument per presence pattern
    by_vec: dict[tuple[bool, ...], str] = {}
    for path in [p for p in _paths(template) if p in elses]:
        present = tuple(path not in a for a in absent)
        if present not in by_vec:
            by_vec[present] = name = _name(path[-1], path[:-1], set(args))
            args[name] = "bool"
            for u, v in zip(uses, present, strict=True):
                u[name] = v
        child = _at(body, path)
        child["when"] = f"${{{by_vec[present]}}}"
        if len(child["in"]) > 1:
            child["else"] = elses[path]
    # values that differ: merged when their vectors agree wherever both are known
    merged: list[tuple[str, list[Any], list[Pos]]] = []
    for pos in tvals:
        vec = [v.get(pos, _WILD) for v in per]
        known = [v for v in vec if v is not _WILD]
        if all(v == known[0] and type(v) is type(known[0]) for v in known):
            _at(body, pos[0])[pos[1]] = known[0]
            continue
        for k, (_, mvec, mpos) in enumerate(merged):
            if _compatible(mvec, vec):
                merged[k] = (merged[k][0], [m if m is not _WILD else v for m, v in zip(mvec, vec, strict=True)],
                             [*mpos, pos])
                break
        else:
            merged.append((_name(pos[1], pos[0], set(args)), vec, [pos]))
            args[merged[-1][0]] = ""
    for name, vec, poss in merged:
        for pos in poss:
            _at(body, pos[0])[pos[1]] = f"${{{name}}}"
        typ = _type(vec)
        if _WILD in vec:
            default = Counter(repr(v) for v in vec if v is not _WILD).most_common(1)[0][0]
            defaults[name] = next(v for v in vec if v is not _WILD and repr(v) == default)
            args[name] = f"{{type: {typ}, default: {_lit(defaults[name])}}}"
        else:
            args[name] = typ
        for u, v in zip(uses, vec, strict=True):
            if v is not _WILD:  # values equal to the default are left out when written (spec_text.render)
                u[name] = v
    for name in [n for n in args if n not in defaults]:  # a neutral commonest value (false, 0, 1) is the default
        common, count = Counter(repr(u[name]) for u in uses if name in u).most_common(1)[0]
        if count >= 2 and common in ("False", "0", "1"):
            defaults[name] = next(u[name] for u in uses if name in u and repr(u[name]) == common)
            args[name] = f"{{type: {args[name]}, default: {_lit(defaults[name])}}}"
    cls = template["_cls"]
    bname = block_name(cls, set(blocks))
    body["args"], body["_defaults"] = args, defaults
    blocks[bname] = body
    for (parent, name, g), u in zip(insts, uses, strict=True):
        parent["nodes"][name] = {"op": bname, **u, "in": g["in"], "_cls": cls}
    return True


def _lit(v: Any) -> str:
    return scalar(v)


def fold_blocks(top: Node, blocks: dict[str, Node]) -> None:
    """Stage 1: fold same-class groups into blocks, innermost classes first."""
    done: set[str] = set()
    while True:
        found: list[tuple[Node, str, Node]] = []
        _groups(top, found)
        by_cls: dict[str, list[tuple[Node, str, Node]]] = {}
        for item in found:
            cls = item[2].get("_cls", "")
            if cls not in CONTAINERS and cls not in done:
                by_cls.setdefault(cls, []).append(item)
        for c in [c for c, v in by_cls.items() if all(repeatable(g, blocks) for _, _, g in v)]:
            done.add(c)  # chains of one block (DenseNet's blocks): stage 2 makes each a repeat
            del by_cls[c]
        pending = {c for c, v in by_cls.items() if len(v) >= 2}
        ready = [c for c in pending if not any(_contains(g, pending - {c}) for _, _, g in by_cls[c])]
        if not ready:
            return
        for cls in ready:
            done.add(cls)
            _fold_class(by_cls[cls], blocks)


def _contains(g: Node, classes: set[str]) -> bool:
    return any(is_group(c) and (c.get("_cls") in classes or _contains(c, classes)) for c in g["nodes"].values())


def _fold_class(insts: list[tuple[Node, str, Node]], blocks: dict[str, Node]) -> None:
    left = list(insts)
    while len(left) >= 2:
        template = max(left, key=lambda it: _size(it[2]))[2]
        same = [it for it in left if match(template, it[2], (), {}, {})]
        left = [it for it in left if it not in same]
        if len(same) >= 2:
            _make_block(same, template, blocks)


# ---- stage 2: repeat --------------------------------------------------------------------------------------

def expr_lit(v: Any) -> str:
    """A value inside ${...}."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return "'" + v + "'"
    if isinstance(v, list):
        return "[" + ", ".join(expr_lit(x) for x in v) + "]"
    return "none" if v is None else repr(v)


def over_i(vec: list[Any], var: str = "i") -> Any:
    """A value, or a ${...} of the loop variable ``var``, that gives vec[i] for each i."""
    if all(v == vec[0] and type(v) is type(vec[0]) for v in vec):
        return vec[0]
    rest = vec[1:]
    if all(v == rest[0] and type(v) is type(rest[0]) for v in rest):
        if vec[0] is True and rest[0] is False:
            return f"${{{var} == 0}}"
        if vec[0] is False and rest[0] is True:
            return f"${{{var} != 0}}"
        return f"${{{expr_lit(vec[0])} if {var} == 0 else {expr_lit(rest[0])}}}"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in vec):
        step = vec[1] - vec[0]
        if all(b - a == step for a, b in zip(vec, vec[1:], strict=False)):
            return f"${{{vec[0]} + {step} * {var}}}"
    if all(isinstance(v, float) for v in vec):  # stochastic depth growing linearly: equal up to rounding
        step = (vec[-1] - vec[0]) / (len(vec) - 1)
        if all(abs(vec[0] + step * k - v) <= 1e-12 * max(1.0, abs(v)) for k, v in enumerate(vec)):
            return f"${{{vec[0]!r} + {step!r} * {var}}}"
    return f"${{{expr_lit(vec)}[{var}]}}"


MAX_EXPR = 400  # archc refuses expressions over 500 characters: longer tables stay unfolded


def numbering(names: list[str]) -> str | None:
    """The ``name:`` of a repeat whose children are ``names`` ('' for 0, 1, ...), or None when they are not
    one prefix and consecutive numbers (``denselayer1``.., ``encoder_layer_0``..)."""
    m = re.fullmatch(r"(.*?)(\d+)", names[0]) if names else None
    if m is None:
        return None
    prefix, start = m.group(1), int(m.group(2))
    if names != [f"{prefix}{start + k}" for k in range(len(names))]:
        return None
    if not prefix and start == 0:
        return ""
    return f"{prefix}${{i + {start}}}" if start else f"{prefix}${{i}}"


def chained(kids: list[Node], names: list[str]) -> bool:
    """Each child reads the one before it (the first, the group's input)."""
    return all(k["in"] == ([names[j - 1]] if j else ["input"]) for j, k in enumerate(kids))


def repeatable(group: Node, blocks: dict[str, Node]) -> bool:
    """A group of N >= 2 chained uses of one block, named 0.. or prefix + consecutive numbers."""
    kids, names = list(group["nodes"].values()), list(group["nodes"])
    op = kids[0].get("op") if kids else None
    # one child too when its name is no archc name (RegNet's 'block1-0': a repeat's name: may make it)
    many = len(kids) >= 2 or (len(kids) == 1 and not re.fullmatch(r"[A-Za-z_]\w*|\d+", names[0]))
    return (many and op in blocks and all(k.get("op") == op and "repeat" not in k for k in kids)
            and numbering(names) is not None and chained(kids, names))


def _args_over(kids: list[Node], block: Node, var: str) -> dict[str, Any]:
    keys = list(dict.fromkeys(k for kid in kids for k in kid if k not in ("op", "in") and not k.startswith("_")))
    return {k: over_i([kid[k] if k in kid else _default(block, k) for kid in kids], var) for k in keys}


def fold_repeats(node: Node, blocks: dict[str, Node]) -> None:
    """Stage 2: a group of N chained uses of one block becomes one node with ``repeat: N``; inside a ``seq:``,
    a run of uses of one block becomes an ``each:`` item."""
    for name, child in list(node["nodes"].items()):
        if not is_group(child):
            continue
        fold_repeats(child, blocks)
        if not repeatable(child, blocks):
            continue
        kids, names = list(child["nodes"].values()), list(child["nodes"])
        op = kids[0]["op"]
        over = _args_over(kids, blocks[op], "i")
        if any(len(str(v)) > MAX_EXPR for v in over.values()):
            continue
        node_: Node = {"op": op, "repeat": len(kids)}
        if numbering(names):
            node_["name"] = numbering(names)
        node_.update(over)
        node["nodes"][name] = {**node_, "in": child["in"], "_cls": kids[0].get("_cls")}
    if node.get("_seq"):
        node["_runs"] = _runs(node, blocks)


def _runs(node: Node, blocks: dict[str, Node]) -> list[tuple[int, int]]:
    """(start, length) of each run of >= 2 chained uses of one block among a seq's children."""
    kids, names = list(node["nodes"].values()), list(node["nodes"])
    runs: list[tuple[int, int]] = []
    j = 0
    while j < len(kids):
        op, k = kids[j].get("op"), j + 1
        while (op in blocks and k < len(kids) and kids[k].get("op") == op and "repeat" not in kids[k]
               and "repeat" not in kids[j] and kids[k]["in"] == [names[k - 1]]):
            k += 1
        if k - j >= 2 and all(len(str(v)) <= MAX_EXPR for v in _args_over(kids[j:k], blocks[op], "v").values()):
            runs.append((j, k - j))
        j = k
    return runs


def run_item(kids: list[Node], block: Node) -> Node:
    """One ``each:`` item standing for a run of uses of one block (the loop variable is ``v``)."""
    return {"each": f"${{range({len(kids)})}}", "items": [{"op": kids[0]["op"], **_args_over(kids, block, "v")}]}


def _default(block: Node, arg: str) -> Any:
    return block["_defaults"][arg]


def fold(top: Node) -> dict[str, Node]:
    """Both stages, in place on the tree; returns the blocks."""
    blocks: dict[str, Node] = {}
    fold_blocks(top, blocks)
    fold_repeats(top, blocks)
    return blocks
