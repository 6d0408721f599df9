"""The structure rules of issue 28, checked: no import cycle between archc's modules, no import from a lower
stage to a higher one (the order is in archc/README.md), and no file in archc/ over 450 lines.

    python tools/check_layers.py          # prints every violation; exit 1 if any
    python tools/check_layers.py --graph  # also prints the stage-to-stage imports

Every import counts, at the top of a module or inside a function (a lazy import is still a dependency),
and so does one under ``if TYPE_CHECKING:``. Exceptions, if one is ever needed, are listed in KNOWN,
KNOWN_CYCLES and LONG_KNOWN with their reason (all empty today); an entry that no longer occurs is an error
too, so the lists only shrink. The READMEs cannot drift from LAYERS: archc/README.md's table has one row per
entry of LAYERS, and each stage folder's README has an "Owns / may import" section whose "May import:"
paragraph names exactly the stages before it. tests/test_layers.py runs this.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "archc"

# Stages from the bottom up: a stage may import the stages before it (and itself), never one after it.
# Stages on one line are siblings: neither imports the other.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "fileio"),
    ("expr",),
    ("load",),
    ("schema",),
    ("ir",),
    ("blocks",),
    ("resolve",),
    ("analyze",),
    ("backend", "importer"),
    ("api",),  # archc/api.py and the package's __init__ (archc.check, archc.compile)
    ("render", "export", "train", "benchmark"),
    ("detect",),
    ("lsp",),
    ("cli",),
    ("__main__",),
]
RANK = {stage: rank for rank, stages in enumerate(LAYERS) for stage in stages}
MAX_LINES = 450  # issue 28: no file in archc/ over this many lines
# The exceptions, kept for the future and empty since issue 28 (a new entry needs the lead's word). An entry that no
# longer occurs is an error too, so each list only shrinks.
# Files known to be longer (path under the repository): why, and who splits them.
LONG_KNOWN: dict[str, str] = {}
# (importing module, imported module): why it is allowed for now, and who removes it.
KNOWN: dict[tuple[str, str], str] = {}
# Import cycles (sorted module names): why, and the way out.
KNOWN_CYCLES: dict[tuple[str, ...], str] = {}


def stage_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__init__", "api"):
        return "api"
    return parts[1]


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {module_of(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, module: str, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported archc module, line) for every import in a file; ``from archc import blocks`` names the module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "archc")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.split(".")[0] != "archc":
                continue
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
            yield from ((m, node.lineno) for m in (subs or [base]))


def graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: first line}, for archc's own modules."""
    mods = _modules()
    names = set(mods)
    out: dict[str, dict[str, int]] = {}
    for module, path in mods.items():
        deps = out.setdefault(module, {})
        for target, line in imports(path, module, names):
            while target not in names and "." in target:  # `from archc.x import name`: the module archc.x
                target = target.rpartition(".")[0]
            if target != module and target in names and not module.startswith(target + "."):
                deps.setdefault(target, line)  # a module naming its own package (for __path__) is no cycle
    return out


def cycles(deps: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for root in deps:
        if root in index:
            continue
        work = [(root, iter(deps[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(deps.get(w, {}))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def upward(deps: dict[str, dict[str, int]]) -> list[tuple[str, str, int]]:
    """(module, imported module, line) where a stage imports a stage after it (or a sibling)."""
    out = []
    for module, targets in deps.items():
        here = stage_of(module)
        for target, line in targets.items():
            there = stage_of(target)
            if there != here and RANK[there] >= RANK[here]:
                out.append((module, target, line))
    return sorted(out)


def long_files() -> list[tuple[str, int]]:
    """(path, lines) of every file in archc/ over MAX_LINES."""
    out = []
    for p in sorted(PACKAGE.rglob("*.py")):
        n = len(p.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            out.append((p.relative_to(ROOT).as_posix(), n))
    return out


SECTION = "## Owns / may import"  # the heading of each stage folder README's section
MAY_IMPORT = re.compile(r"^May import:(.*?)(?:\n\s*\n|\Z)", re.M | re.S)  # the paragraph, to a blank line


def allowed(stage: str) -> list[str]:
    """The stages ``stage`` may import (besides itself), in LAYERS order: every stage on an earlier row."""
    return [s for stages in LAYERS[:RANK[stage]] for s in stages]


def may_import_line(stage: str) -> str:
    """The paragraph a stage README's section must start with (what the check expects, to copy)."""
    names = ", ".join(f"`{s}`" for s in allowed(stage)) or "nothing of archc"
    return f"May import: {names}."


def readme_names(text: str) -> list[str] | None:
    """The stage names in backticks of the "May import:" paragraph of the README's section (None: no
    section or no such paragraph)."""
    start = text.find("\n" + SECTION + "\n")
    if start < 0:
        return None
    body = text[start + len(SECTION) + 2:]
    end = body.find("\n## ")
    match = MAY_IMPORT.search(body if end < 0 else body[:end])
    return None if match is None else re.findall(r"`([^`]+)`", match.group(1))


def stage_readme_problems(root: Path = PACKAGE) -> list[str]:
    """Each stage that is a folder of archc/ has a README whose section names exactly the stages LAYERS
    allows below it."""
    found = []
    for stage in sorted(RANK, key=lambda s: (RANK[s], s)):
        folder = root / stage
        if not folder.is_dir():
            continue
        readme = folder / "README.md"
        where = readme.relative_to(root.parent).as_posix()
        names = readme_names(readme.read_text(encoding="utf-8")) if readme.is_file() else None
        if names is None:
            found.append(f"{where}: no '{SECTION}' section with a 'May import:' paragraph; "
                         f"add one (expected: {may_import_line(stage)})")
            continue
        want = allowed(stage)
        extra = [n for n in names if n not in want]
        missing = [n for n in want if n not in names]
        if extra or missing or len(names) != len(set(names)):
            found.append(f"{where}: 'May import:' names {', '.join(names) or 'nothing'}; LAYERS "
                         f"(tools/check_layers.py) allows {', '.join(want) or 'nothing'}"
                         + (f" (not allowed: {', '.join(extra)})" if extra else "")
                         + (f" (missing: {', '.join(missing)})" if missing else "")
                         + f"; expected: {may_import_line(stage)}")
    return found


def table_problems(readme: Path = PACKAGE / "README.md") -> list[str]:
    """archc/README.md's stage table: row K names the stages of LAYERS[K] and may import rows 0..K-1."""
    rows = [line.split("|")[1:-1] for line in readme.read_text(encoding="utf-8").splitlines()
            if re.match(r"^\| *\d+ *\|", line)]
    found = []
    if len(rows) != len(LAYERS):
        found.append(f"archc/README.md: the stage table has {len(rows)} rows; LAYERS has {len(LAYERS)}")
    for k, (row, stages) in enumerate(zip(rows, LAYERS)):
        names = re.findall(r"`([^`]+)`", row[1])
        want = "nothing of archc" if k == 0 else "row 0" if k == 1 else f"rows 0-{k - 1}"
        if row[0].strip() != str(k) or names != list(stages) or row[3].strip() != want:
            found.append(f"archc/README.md: table row {k} reads '|{'|'.join(row)}|'; LAYERS row {k} is "
                         f"{', '.join(stages)}, which may import {want}")
    return found


def problems() -> list[str]:
    deps = graph()
    unknown = set(map(stage_of, deps)) - set(RANK)
    found = [f"stage {s} is not in LAYERS (tools/check_layers.py) nor in archc/README.md" for s in sorted(unknown)]
    if unknown:
        return found
    found_cycles = [tuple(c) for c in cycles(deps)]
    found += [f"import cycle: {' <-> '.join(c)}" for c in found_cycles if c not in KNOWN_CYCLES]
    found += [f"KNOWN_CYCLES lists {' <-> '.join(c)}, which no longer occurs: delete the entry"
              for c in KNOWN_CYCLES if c not in found_cycles]
    seen = set()
    for module, target, line in upward(deps):
        seen.add((module, target))
        if (module, target) not in KNOWN:
            found.append(f"{module_file(module)}:{line}: {stage_of(module)} imports {target} ({stage_of(target)}), "
                         "a stage above it (archc/README.md lists the order)")
    found += [f"KNOWN lists {m} -> {t}, which no longer occurs: delete the entry"
              for m, t in KNOWN if (m, t) not in seen]
    long = long_files()
    found += [f"{path}: {n} lines (at most {MAX_LINES}): split it by concern" for path, n in long
              if path not in LONG_KNOWN]
    found += [f"LONG_KNOWN lists {path}, which is no longer over {MAX_LINES} lines: delete the entry"
              for path in LONG_KNOWN if path not in {q for q, _ in long}]
    return found + table_problems() + stage_readme_problems()


def module_file(module: str) -> str:
    path = _modules()[module]
    return str(path.relative_to(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--graph", action="store_true", help="print the stage-to-stage imports")
    args = ap.parse_args()
    if args.graph:
        edges: dict[str, set[str]] = {}
        for module, targets in graph().items():
            edges.setdefault(stage_of(module), set()).update(stage_of(t) for t in targets)
        for stage in sorted(edges, key=lambda s: RANK.get(s, 99)):
            print(f"{stage:>10} -> {', '.join(sorted(edges[stage] - {stage}, key=lambda s: RANK.get(s, 99)))}")
    found = problems()
    for line in found:
        print(line)
    print(f"{len(found)} problem(s)" if found else "layers, cycles and file sizes: ok")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
