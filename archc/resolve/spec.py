"""Find spec files, follow `extends:` safely, merge overrides, settle `params`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from archc.errors import ArchcError, Loc, ResolveError, UsageError, get_close_matches, rel
from archc.expr import Budget, deep_interpolate
from archc.load import LocDict, load_file, load_text
from archc.schema import validate

__all__ = ["SpecSource", "builtin_dir", "builtin_names", "find_spec", "load_spec", "settle_params", "MAX_EXTENDS"]

MAX_EXTENDS = 8


@dataclass
class SpecSource:
    """A spec after `extends:` merging; ``includes`` maps each file to the chain that pulled it in."""

    data: LocDict
    path: Path
    includes: dict[str, tuple[Loc, ...]] = field(default_factory=dict)
    top: LocDict | None = None  # the top file's own data, before merging (the editor's document)

    def add_chains(self, errors: Any) -> None:
        """Give each error in an extended or imported file the `extends:` chain that led to it."""
        for err in errors:
            if err.loc is not None and not err.chain:
                err.chain = self.includes.get(err.loc.file, ())


def builtin_dir() -> Path:
    """The built-in specs: ``$ARCHC_SPECS``, else the package data ``archc/specs`` of an installed
    wheel or sdist (importlib.resources), else the top-level ``specs/`` of a checkout (editable)."""
    env = os.environ.get("ARCHC_SPECS")
    if env:
        return Path(env)
    return _package_specs()


@lru_cache(maxsize=1)
def _package_specs() -> Path:
    """Where the package's specs are (found once: importlib.resources costs more than loading a spec)."""
    from importlib import resources

    shipped = Path(str(resources.files("archc").joinpath("specs")))
    return shipped if shipped.is_dir() else Path(__file__).resolve().parents[2] / "specs"


def builtin_names() -> list[str]:
    """Built-in names: ``resnet50`` for specs/resnet50.yaml, ``examples/cbam`` for specs/examples/cbam.yaml
    (the top-level specs first, then each subfolder's)."""
    d = builtin_dir()
    if not d.is_dir():
        return []
    names = (p.relative_to(d).with_suffix("").as_posix() for p in d.rglob("*.yaml"))
    return sorted(names, key=lambda n: (n.count("/"), n))


def find_spec(spec: str | os.PathLike[str]) -> Path:
    """A path to a spec file, or the name of a built-in spec (``resnet50``)."""
    p = Path(spec)
    try:
        if p.suffix in (".yaml", ".yml") or p.exists():
            if not p.is_file():
                raise UsageError(f"no such spec file: {p}")
            return p
    except OSError as e:  # a name the OS refuses (too long, a NUL byte)
        raise UsageError(f"not a spec file or built-in name: {str(spec)[:80]!r} ({e.strerror or e})",
                         hint="a path to a .yaml file, a built-in name, or (from Python) the spec's text") from None
    name = str(spec)
    cand = builtin_dir() / f"{name}.yaml"
    if _top_level(name, cand) and cand.is_file():  # the common case, without globbing every folder
        return cand
    if name in builtin_names():  # only listed names: no path of the user's reaches outside specs/
        return cand
    close = get_close_matches(name, builtin_names(), 3)
    raise UsageError(f"unknown spec '{name}'", hint=f"did you mean {', '.join(close)}?" if close else
                     "give a path to a .yaml file or a built-in name (see `archc list`)")


def _top_level(value: str, cand: Path) -> bool:
    """Whether ``value`` is a top-level built-in name (``resnet50``): a name builtin_names() lists, found
    by listing one folder (exact case) instead of globbing them all."""
    if not value or "/" in value or value.startswith(".") or not value.replace("_", "a").replace("-", "a").isalnum():
        return False
    try:
        return cand.name in os.listdir(cand.parent)
    except OSError:
        return False


def _within(path: Path, roots: list[Path]) -> bool:
    rp = path.resolve()
    return any(rp == r or r in rp.parents for r in roots)


def _extends_target(value: Any, loc: Loc | None, here: Path, roots: list[Path], key: str = "extends") -> Path:
    if not isinstance(value, str) or "://" in value or value.startswith(("/", "~")) or "\\" in value:
        raise ResolveError(f"{key}: '{value}' must be a built-in spec name or a relative path", loc,
                           hint="URLs and absolute paths are not followed")
    if value.endswith((".yaml", ".yml")):
        target = here.parent / value
        if not _within(target, roots):
            raise ResolveError(f"{key}: '{value}' points outside the spec's folder", loc,
                               hint="specs may only extend files in their own folder tree or built-in specs")
        if not target.is_file():
            raise ResolveError(f"{key}: no such file '{value}'", loc)
        return target
    cand = builtin_dir() / f"{value}.yaml"
    if _top_level(value, cand) and cand.is_file():  # the common case, without listing every folder
        return cand
    if value not in builtin_names() or not cand.is_file():  # examples/NAME too; nothing outside specs/
        close = get_close_matches(value, builtin_names(), 3)
        raise ResolveError(f"{key}: unknown spec '{value}'", loc,
                           hint=f"did you mean {', '.join(close)}?" if close else None)
    return cand


REPLACE = "replace"  # `replace: true` on a node or block: take it whole instead of deep-merging


def merge(base: Any, over: Any) -> Any:
    """Deep-merge ``over`` into ``base``: mappings merge key by key, ``null`` deletes, the rest replaces.

    An inherited mapping whose override carries ``replace: true`` is replaced whole (in the base's
    place in the order); ``replace`` on something not inherited is an error (a misspelt name would
    otherwise add a new node at the end)."""
    if not (isinstance(base, LocDict) and isinstance(over, LocDict)):
        return over
    out = LocDict(over.loc)
    for src in (base, over):
        for k, v in src.items():
            if src is over and v is None:
                out.pop(k, None)
                continue
            if src is over and isinstance(v, LocDict) and REPLACE in v:
                if k not in out:
                    raise _nothing_to_replace(k, v, list(out))
                out[k] = _without_replace(v) if v[REPLACE] is True else merge(out[k], _without_replace(v))
            else:
                out[k] = merge(out[k], v) if (src is over and k in out) else v
            out.key_locs[k] = src.key_locs[k]
            out.val_locs[k] = src.val_locs[k]
    return out


def _without_replace(d: LocDict) -> LocDict:
    out = LocDict(d.loc)
    for k, v in d.items():
        if k != REPLACE:
            out[k], out.key_locs[k], out.val_locs[k] = v, d.key_locs[k], d.val_locs[k]
    return out


def _nothing_to_replace(name: str, node: LocDict, inherited: list[str]) -> ResolveError:
    close = get_close_matches(name, inherited, 1)
    return ResolveError(f"'{name}' has `replace:` but inherits no '{name}' to replace", node.key_locs[REPLACE],
                        hint=f"did you mean '{close[0]}'?" if close else
                        "`replace: true` only applies to a node or block inherited through `extends:`")


def _merged_problem(data: LocDict, includes: dict[str, tuple[Loc, ...]]) -> ResolveError | None:
    """After merging: a `replace:` that found nothing inherited, or a node that is both an op and a
    group (a `seq:`/`nodes:` deep-merged into an inherited `op:` node, whose op would be ignored)."""
    stack: list[tuple[str, Any]] = [("blocks", data.get("blocks")), ("nodes", data.get("nodes"))]
    while stack:  # depth first, in file order; `where` is the path as schema errors write it
        where, x = stack.pop()
        if isinstance(x, list):
            stack.extend((f"{where}.{i}", item) for i, item in reversed(list(enumerate(x))))
        if not isinstance(x, LocDict):
            continue
        body = "seq" if "seq" in x else "nodes" if "nodes" in x else None
        if REPLACE in x:
            err = ResolveError("`replace:` here has nothing to replace", x.key_locs[REPLACE],
                               hint="`replace: true` only applies to a node or block inherited through `extends:`")
        elif "op" in x and body is not None:
            merged = x.key_locs["op"].file != x.key_locs[body].file
            err = ResolveError(f"{where} has both `op:` and `{body}:`", x.key_locs[body],
                               hint=f"this `{body}:` merges into the inherited `op: {x['op']}` node; add "
                                    "`replace: true` to take the node whole" if merged else
                                    f"a group's children are its ops: drop `op:` or `{body}:`")
        else:
            stack.extend((f"{where}.{k}", v) for k, v in reversed(x.items()))
            continue
        err.chain = includes.get(err.loc.file, ()) if err.loc else ()
        return err
    return None


try:  # hashlib's own blake2b, without hashlib's import (it loads OpenSSL: ~3 ms of every command's start)
    from _blake2 import blake2b
except ImportError:  # a Python built without it
    from hashlib import blake2b

_VALIDATED: set[tuple[str, bytes, str]] = set()


def _validate_once(path: Path, data: Any, display: str) -> None:
    """Schema-check each file once per process (keyed by path and content, not mtime: the language
    server lives long and a base can be rewritten within one mtime tick at the same size): bases
    shared by many specs (resnet50.yaml under resnet18..152) are not re-validated for every child."""
    key = (str(path.resolve()), blake2b(path.read_bytes(), digest_size=16).digest(), display)
    if key not in _VALIDATED:
        validate(data, display)
        _VALIDATED.add(key)


def load_spec(path: Path, text: str | None = None, schema: bool = True) -> SpecSource:
    """Load a spec and everything it extends (depth, cycles and folders checked). With ``text``, the
    top file is that text (an editor's unsaved document); what it extends or imports comes from disk.
    ``schema=False`` skips the schema check of that text: only the editor does it, to show shapes beside
    a schema error it has already reported (never for a spec that is built or run)."""
    roots = [path.resolve().parent, builtin_dir().resolve()]
    includes: dict[str, tuple[Loc, ...]] = {}
    tops: list[LocDict] = []

    def load(p: Path, chain: tuple[Loc, ...], seen: tuple[Path, ...]) -> LocDict:
        display = rel(p)
        includes.setdefault(display, chain)
        if not tops and text is not None:
            data = load_text(text, display)
            if schema:
                validate(data, display)
        else:
            data = load_file(p, display)
            _validate_once(p, data, display)
        if not tops:
            tops.append(data)
        if "extends" not in data:
            return data
        loc = data.val_locs["extends"]
        target = _extends_target(data["extends"], loc, p, roots)
        real = target.resolve()
        if real in seen:
            raise ResolveError(f"extends cycle: {' -> '.join(rel(s) for s in (*seen, target))}", loc)
        if len(chain) >= MAX_EXTENDS:
            raise ResolveError(f"extends chain deeper than {MAX_EXTENDS}", loc)
        base = load(target, (*chain, loc), (*seen, real))
        child = LocDict(data.loc)
        for k, v in data.items():
            if k != "extends":
                child[k], child.key_locs[k], child.val_locs[k] = v, data.key_locs[k], data.val_locs[k]
        return merge(base, child)

    try:
        data = load(path, (), (path.resolve(),))
        _import_blocks(data, path, roots, load)
        problem = _merged_problem(data, includes)
    except ArchcError as e:  # a problem in a base or imported file: the chain that led there
        SpecSource(LocDict(Loc(rel(path), 1, 1)), path, includes).add_chains((e, *e.others))
        raise
    if problem is not None:
        raise problem
    return SpecSource(data, path, includes, tops[0])


def _import_blocks(data: LocDict, path: Path, roots: list[Path], load: Any) -> None:
    """Add the `blocks:` of each spec named in `imports:`; a name defined twice is an error."""
    imports = data.get("imports") or []
    blocks = data.get("blocks")
    if not isinstance(imports, list) or (blocks is not None and not isinstance(blocks, LocDict)):
        return  # the schema reports the wrong types
    merged = LocDict(data.loc) if blocks is None else blocks
    for i, name in enumerate(imports):
        loc = imports.locs[i] if hasattr(imports, "locs") else data.loc
        target = _extends_target(name, loc, path, roots, "imports")
        other = load(target, (loc,), (path.resolve(), target.resolve())).get("blocks")
        if not isinstance(other, LocDict):
            continue
        for key, value in other.items():
            if key in merged:
                first = merged.key_locs[key]
                raise ResolveError(f"block '{key}' imported from '{name}' is already defined", loc,
                                   hint=f"first defined at {first}")
            merged[key], merged.key_locs[key], merged.val_locs[key] = value, other.key_locs[key], other.val_locs[key]
    if imports:
        data["blocks"] = merged
        data.key_locs.setdefault("blocks", data.loc)
        data.val_locs.setdefault("blocks", data.loc)


def settle_params(data: LocDict, overrides: Mapping[str, Any], budget: Budget | None = None) -> dict[str, Any]:
    """Defaults from the spec, overridden by the caller; later params may use earlier ones in `${}`
    (each evaluation charged to ``budget``)."""
    declared = data.get("params") or LocDict(data.loc)
    for key in overrides:
        if key not in declared:
            close = get_close_matches(key, list(declared), 1)
            raise UsageError(f"unknown parameter '{key}' for spec '{data.get('name')}'",
                             hint=f"did you mean '{close[0]}'?" if close else
                             f"parameters: {', '.join(declared) or 'none'}")
    env: dict[str, Any] = {}
    for key, value in declared.items():
        value = overrides.get(key, value)
        env[key] = deep_interpolate(value, env, declared.val_locs.get(key), budget)
    return env
