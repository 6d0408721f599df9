"""Block facts (archc/blocks/README.md, "Facts"): memory, summary and lint read what a block declares (its
`view`, `layout`, `mixes` and `scratch` rules and its tags), never its name. So a user's block registered
through the `archc.blocks` entry points that declares the same facts as a built-in is analysed exactly as
that built-in, and one that declares none is not."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from math import prod
from typing import Any

import pytest

from archc import blocks
from archc.analyze.lint import lint
from archc.analyze.memory import memory
from archc.analyze.summary import rows
from archc.api import analyse
from archc.blocks.base import Args, Block, Layout, Param, Shape, Strides


def _swap(shape: Shape) -> Shape:
    return (*shape[:-2], shape[-1], shape[-2])


def _swap_view(args: Args, strides: Strides, sizes: Shape, out: Shape) -> Strides:
    return _swap(strides)  # type: ignore[arg-type]


def _swap_layout(args: Args, dims: Layout, out: Shape) -> Layout:
    return (*dims[:-2], dims[-1], dims[-2])


def _scratch(args: Args, ins: Sequence[Shape], out: Shape, batch: int, size: int) -> Any:
    return batch * prod(out) * size  # one temporary the size of its output


def _fn(args: Args) -> tuple[Any, dict[str, Any]]:
    raise AssertionError("analysis only: never built")


def _user_blocks() -> list[Block]:
    """What a plugin declares: its own shape rules and the facts, or a built-in's rules under new tags."""
    get = blocks.get
    same = lambda a, s: s[0]  # noqa: E731
    return [
        Block("fact_swap", "fact_swap: swap the last two dims (a view)", {}, lambda a, s: _swap(s[0]),
              kind="function", function=_fn, category="layout", tags=frozenset({"alias", "view"}),
              view=_swap_view, layout=_swap_layout),
        Block("fact_swap_bare", "fact_swap_bare: fact_swap declaring no view or layout rule", {},
              lambda a, s: _swap(s[0]), kind="function", function=_fn, tags=frozenset({"alias", "view"})),
        Block("fact_proj", "fact_proj: a linear map of the last dim", {"out_features": Param("int")},
              lambda a, s: (*s[0][:-1], a["out_features"]), kind="function", function=_fn,
              mixes=lambda a, rank: (rank - 1,), tags=frozenset({"projects"})),
        Block("fact_scratch", "fact_scratch: a copy with one temporary", {}, same, kind="function", function=_fn,
              scratch=_scratch),
        Block("fact_plain", "fact_plain: a copy", {}, same, kind="function", function=_fn),
        replace(get("unfold"), name="fact_unfold", tags=frozenset({"resized"})),
        replace(get("unfold"), name="fact_unfold_bare", tags=frozenset()),
        replace(get("conv2d"), name="fact_conv", tags=frozenset({"map", "strided", "biased"})),
        replace(get("batchnorm2d"), name="fact_bn", tags=frozenset({"map", "norm"})),
        replace(get("add"), name="fact_add", tags=frozenset({"elementwise", "broadcast"})),
        replace(get("add"), name="fact_add_bare", tags=frozenset({"elementwise"})),
        Block("fact_proj_bare", "fact_proj_bare: fact_proj declaring no mixes rule", {"out_features": Param("int")},
              lambda a, s: (*s[0][:-1], a["out_features"]), kind="function", function=_fn),
    ]


@pytest.fixture(autouse=True)
def _plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    class EP:
        name = "facts"

        def load(self) -> Any:
            return _user_blocks

    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [EP()] if group == "archc.blocks" else [])
    blocks.registry.load_plugins()
    try:
        yield
    finally:
        for b in _user_blocks():
            blocks.registry._BLOCKS.pop(b.name, None)


HEAD = "name: facts\ninput: [8, 6, 6]\nnodes:\n  c: {op: conv2d, out_channels: 8, kernel_size: 3, padding: 1}\n"


def _spec(body: str, **ops: str) -> Any:
    text = HEAD + body
    for key, op in ops.items():
        text = text.replace("{" + key + "}", op)
    return analyse(text)


def _rf(a: Any) -> list[Any]:
    return [(r.path, r.output_shape, r.receptive_field) for r in rows(a)]


def test_a_user_view_is_followed_by_memory_and_summary() -> None:
    """A view declaring its strides makes the flatten after it copy, as after a transpose; its layout rule
    keeps the receptive field through tokens and back to a map, as linear's `mixes` does."""
    view = "  s: {S}\n  f: {op: flatten, in: s}\n"
    builtin = _spec(view, S="{op: transpose, dim0: 2, dim1: 3}")
    user, bare = _spec(view, S="fact_swap"), _spec(view, S="fact_swap_bare")
    assert memory(user, 2) == memory(builtin, 2)
    assert memory(bare, 2) != memory(builtin, 2)  # without the rule the same-shaped view looks contiguous
    tokens = ("  t: {op: flatten, start_dim: 2}\n  s: {S}\n  p: {P}\n  b: {S}\n"
              "  u: {op: unflatten, dim: 2, sizes: [6, 6]}\n  d: {op: conv2d, out_channels: 8, kernel_size: 3}\n")
    builtin = _spec(tokens, S="{op: transpose, dim0: 1, dim1: 2}", P="{op: linear, out_features: 8}")
    user = _spec(tokens, S="fact_swap", P="{op: fact_proj, out_features: 8}")
    assert _rf(user) == _rf(builtin)
    assert _rf(user)[-1][2] == 5  # a map again: 3 + 2, not "global"
    bare = _spec(tokens, S="fact_swap_bare", P="{op: fact_proj, out_features: 8}")
    assert _rf(bare)[-1][2] == "global"


def test_a_user_scratch_rule_and_resized_tag_are_counted() -> None:
    with_rule, without = _spec("  x: fact_scratch\n"), _spec("  x: fact_plain\n")
    for batch, dtype, size in ((1, "fp32", 4), (3, "fp16", 2)):
        peak = memory(with_rule, batch, dtype)["inference_peak_activation_bytes"]
        assert peak - memory(without, batch, dtype)["inference_peak_activation_bytes"] == batch * 8 * 6 * 6 * size
    unfold = "  u: {op: {U}, kernel_size: 2, stride: 3}\n"  # (8, 6, 6) -> (32, 4): the storage holds the input's 288
    builtin, user = _spec(unfold, U="unfold"), _spec(unfold, U="fact_unfold")
    bare = _spec(unfold, U="fact_unfold_bare")
    assert memory(user) == memory(builtin)
    assert memory(bare)["training_activation_bytes"] < memory(builtin)["training_activation_bytes"]


def test_user_tags_drive_lint() -> None:
    body = ("  s: {op: {CONV}, out_channels: 8, kernel_size: 2, stride: 3}\n"
            "  k: {op: {CONV}, out_channels: 8, kernel_size: 1, in: c}\n  n: {NORM}\n"
            "  g: {op: mean, dim: [2, 3], keepdim: true, in: c}\n  v: {op: permute, dims: [0, 2, 3, 1]}\n"
            "  a: {op: {ADD}, in: [c, v]}\n  l: {op: {PROJ}, out_features: 4, in: n}\n"
            "outputs: [s, a, l]\n")
    builtin = _spec(body, CONV="conv2d", NORM="batchnorm2d", ADD="add", PROJ="linear")
    user = _spec(body, CONV="fact_conv", NORM="fact_bn", ADD="fact_add", PROJ="fact_proj")
    found = [(w.code, w.loc.line if w.loc else 0) for w in lint(builtin)]
    assert sorted(found) == [("W002", 10), ("W004", 5), ("W006", 11), ("W007", 6)]
    assert [(w.code, w.loc.line if w.loc else 0) for w in lint(user)] == found
    assert any(w.message.startswith("fact_proj applied to the (C, H, W) map") for w in lint(user))
    bare = _spec(body, CONV="conv2d", NORM="batchnorm2d", ADD="fact_add_bare", PROJ="fact_proj_bare")
    assert sorted(w.code for w in lint(bare)) == ["W004", "W007"]
