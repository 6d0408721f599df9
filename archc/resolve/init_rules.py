"""`init:` rules: evaluated once here (torch-free), applied by archc.backend.init after the build.

A rule matches nodes by op (`op: conv2d` or a list) and/or node path (`path: "layer*.conv*"`, globs
that match the path, its tail, or a group above it); each other key names a parameter of the
matched module (`weight`, `bias`, `out_proj.weight`) and the method that fills it. Rules are
ordered: the first rule that sets a parameter wins. `when: false` drops a rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from archc import blocks as library
from archc.errors import Loc, ResolveError, get_close_matches
from archc.expr import Budget, deep_interpolate
from archc.load import LocDict

__all__ = ["InitRule", "InitSetting", "check_parameter_nodes", "init_rules"]

_MATCH_KEYS = ("op", "path", "when", "doc")
_NUMERIC = {"a", "b", "mean", "std", "gain", "value", "start", "step"}


@dataclass(frozen=True)
class InitSetting:
    """One parameter's method (a torch.nn.init name without the `_`) and its evaluated arguments."""

    method: str
    args: Mapping[str, Any]
    loc: Loc | None = None


@dataclass(frozen=True)
class InitRule:
    ops: tuple[str, ...]
    paths: tuple[str, ...]
    params: tuple[tuple[str, InitSetting], ...]
    loc: Loc | None = None

    def matches(self, op: str, path: str) -> bool:
        if self.ops and op not in self.ops:
            return False
        return not self.paths or any(_glob(path, p) for p in self.paths)


def _glob(path: str, pattern: str) -> bool:
    """`bn3` matches `layer1.0.bn3`; `classifier` matches `classifier.1` (a group above the node)."""
    return any(fnmatchcase(path, p) for p in (pattern, f"*.{pattern}", f"{pattern}.*", f"*.{pattern}.*"))


def _names(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)


def _setting(raw: Any, env: Mapping[str, Any], loc: Loc | None, budget: Budget) -> InitSetting:
    if isinstance(raw, str):
        return InitSetting(raw, {}, loc)
    (method, args), = raw.items()
    out = {}
    arg_locs = getattr(args, "val_locs", {})
    for key, value in (args or {}).items():
        v = deep_interpolate(value, env, arg_locs.get(key, loc), budget)
        if key in _NUMERIC and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ResolveError(f"init: {method} argument '{key}' must be a number, got {v!r}", arg_locs.get(key, loc))
        out[key] = v
    return InitSetting(str(method), out, loc)


def _check_ops(ops: tuple[str, ...], rule: LocDict) -> None:
    for op in ops:
        if not library.is_registered(op):
            close = get_close_matches(op, library.names(), 1)
            raise ResolveError(f"init: unknown op '{op}'", rule.val_locs.get("op", rule.loc),
                               hint=f"did you mean '{close[0]}'?" if close else "see `archc ops`")


def check_parameter_nodes(rules: tuple[InitRule, ...], nodes: Sequence[Any]) -> None:
    """A rule that matches a parameter node (op: parameter, class_token, layer_scale) names its tensor as
    the node itself: `{path: "*.bias_table", bias_table: {trunc_normal: {std: 0.02}}}`. Any other name
    is refused here, torch-free (archc/backend/init.py fills it)."""
    for node in nodes:
        if node.shares is not None or library.get(node.op).kind != "parameter":
            continue
        own = node.path.rpartition(".")[2]
        for rule in rules:
            if not rule.matches(node.op, node.path):
                continue
            for name, setting in rule.params:
                if name != own:
                    raise ResolveError(f"init: node '{node.path}' is a parameter node: it has no '{name}'",
                                       setting.loc, node=node.path,
                                       hint=f"its tensor is named after the node: write `{own}: ...` in this rule "
                                            "(or give the node its own `init:` argument)")


def init_rules(data: LocDict, env: Mapping[str, Any], budget: Budget) -> tuple[InitRule, ...]:
    """The spec's `init:` list with `when` and arguments evaluated; rules with `when: false` dropped."""
    raw = data.get("init") or []
    locs = getattr(raw, "locs", [data.loc] * len(raw))
    rules = []
    for rule, loc in zip(raw, locs):
        when = deep_interpolate(rule.get("when", True), env, rule.val_locs.get("when", loc), budget)
        if not isinstance(when, bool):
            raise ResolveError(f"init: `when` must be true or false, got {when!r}", rule.val_locs.get("when", loc))
        if not when:
            continue
        if "op" not in rule and "path" not in rule:
            raise ResolveError("init: a rule needs `op:` or `path:` to say what it matches", loc,
                               hint='e.g. `- {op: conv2d, weight: {kaiming_normal: {mode: fan_out}}}`')
        ops = _names(rule["op"]) if "op" in rule else ()
        _check_ops(ops, rule)
        params = tuple((k, _setting(v, env, rule.val_locs.get(k, loc), budget))
                       for k, v in rule.items() if k not in _MATCH_KEYS)
        if not params:
            raise ResolveError("init: the rule sets no parameter", loc,
                               hint="name a parameter and its method: `weight: zeros`, `bias: {constant: {value: 0}}`")
        paths = _names(rule["path"]) if "path" in rule else ()
        rules.append(InitRule(ops, paths, params, loc))
    return tuple(rules)
